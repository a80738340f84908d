package stages

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	logql "github.com/lokal-logs/lokal/pkg/logql/log"
)

// TestConformanceLabels checks the default detectors against the entries
// Loki stored in the shared conformance corpus: each entry's level label
// was set from its first line, and the entry's time is the one its line
// starts with (where it has one).
func TestConformanceLabels(t *testing.T) {
	path := testshared.Path(t, "loki-conformance/entries.push.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("conformance corpus absent: %v", err)
	}
	var push struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values [][2]string       `json:"values"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(b, &push); err != nil {
		t.Fatal(err)
	}
	n, timed := 0, 0
	for _, s := range push.Streams {
		for _, v := range s.Values {
			n++
			line := v[1]
			if got := logql.DetectLevel(firstLine(line)).String(); got != s.Stream["level"] {
				t.Errorf("level %s, Loki's label %s: %.100q", got, s.Stream["level"], line)
			}
			ns, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if ts, ok, _ := logql.DetectTime(line, time.UTC, time.Unix(0, ns)); ok {
				timed++
				if ts.UnixNano() != ns {
					t.Errorf("time %s, Loki's %s: %.100q", ts.UTC().Format(time.RFC3339Nano), time.Unix(0, ns).UTC().Format(time.RFC3339Nano), line)
				}
			}
		}
	}
	if n == 0 || timed == 0 {
		t.Fatalf("%d entries, %d with a time", n, timed)
	}
	t.Logf("%d entries checked, %d with a time in the line", n, timed)
}
