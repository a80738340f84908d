package stages

import (
	"bufio"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLoggenGroundTruth checks entry counts and levels against the
// generator's manifest: every file must give exactly its entries (tracebacks
// joined), and levels must be distributed as the generator wrote them.
func TestLoggenGroundTruth(t *testing.T) {
	dir, m := testshared.Loggen(t, "1MiB", "11")
	levels, refLevels := map[string]int{}, map[string]int{}
	total := 0
	for _, f := range m.Files {
		p, err := New(nil, Options{Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		var off int64
		var prevTs time.Time
		emit := func(e Entry) {
			got++
			levels[e.Labels.Get(LevelLabel)]++
			refLevels[refLevel(e.Line)]++
			if e.Ts.IsZero() && !strings.HasSuffix(f.Path, "access.log") && !strings.HasSuffix(f.Path, "startup.log") {
				t.Errorf("%s: no timestamp found in %q", f.Path, e.Line)
			}
			if !e.Ts.IsZero() && e.Ts.Before(prevTs.Add(-time.Hour)) {
				t.Errorf("%s: time went back from %s to %s at %q", f.Path, prevTs, e.Ts, e.Line)
			}
			prevTs = e.Ts
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.Process(Entry{Line: line, Offset: off}, emit)
			off += int64(len(line)) + 1
		}
		fh.Close()
		p.Flush(time.Time{}, emit)
		if _, ok := p.Pending(); ok {
			t.Errorf("%s: entries still pending after a final flush", f.Path)
		}
		if got != f.Entries {
			t.Errorf("%s: %d entries, manifest says %d (%d lines)", f.Path, got, f.Entries, f.Lines)
		}
		st := p.Stats()
		if st.TimestampFailures != 0 {
			t.Errorf("%s: %d timestamp failures", f.Path, st.TimestampFailures)
		}
		total += got
	}
	if total != m.TotalEntries {
		t.Errorf("total %d entries, manifest says %d", total, m.TotalEntries)
	}
	// The manifest's level counts are the generator's intent, not what
	// its lines say (they differ); compare against a regexp reference of
	// the shapes the conformance README lists, over the same entries.
	if len(levels) == 0 {
		t.Fatal("no entries")
	}
	for k, v := range refLevels {
		if levels[k] != v {
			t.Errorf("level %s: %d entries, the regexp reference says %d", k, levels[k], v)
		}
	}
	for k, v := range levels {
		if _, ok := refLevels[k]; !ok {
			t.Errorf("level %s: %d entries, the reference has none", k, v)
		}
	}
}

var refLevelRes = []*regexp.Regexp{
	regexp.MustCompile(`^\[(\w+)\]`),
	regexp.MustCompile(`^(\w+):`),
	regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)? (\w+)`),
	regexp.MustCompile(`(?:^|\s)level=(\w+)`),
	regexp.MustCompile(`"level":"(\w+)"`),
}

// refLevel is a slow, obviously right classifier to compare DetectLevel with.
func refLevel(line string) string {
	line = regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(firstLine(line), "")
	for _, re := range refLevelRes {
		if m := re.FindStringSubmatch(line); m != nil {
			switch strings.ToLower(m[1]) {
			case "info":
				return "info"
			case "warn", "warning":
				return "warn"
			case "error":
				return "error"
			case "debug":
				return "debug"
			case "critical", "fatal":
				return "critical"
			case "trace":
				return "trace"
			}
		}
	}
	return "unknown"
}
