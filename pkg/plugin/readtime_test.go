package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// TestReadTimeNotices: lines without a timestamp caught up on from a
// backlog are named in health and in the notices of the queries whose
// range and selectors meet them, and only there.
func TestReadTimeNotices(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	writeLines(t, f.logFile, start, 20, "INFO", "served request")
	var access strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&access, "INFO:     127.0.0.1:%d - \"GET /health HTTP/1.1\" 200 OK\n", 30000+i)
	}
	if err := os.WriteFile(filepath.Join(f.logs, "access.log"), []byte(access.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, ds, 60)
	deadline := time.Now().Add(waitTimeout)
	for len(ds.run.Ingester().ReadTimeStamped()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no read-time counts")
		}
		time.Sleep(20 * time.Millisecond)
	}

	h, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != backend.HealthStatusOk || !strings.Contains(h.Message, "40 entries from access.log carry their read time (no timestamp in the line), read ") {
		t.Errorf("health = %v %q", h.Status, h.Message)
	}

	now := time.Now()
	recent := backend.TimeRange{From: start.Add(-time.Minute), To: now.Add(time.Minute)}
	before := backend.TimeRange{From: start.Add(-time.Hour), To: start.Add(-time.Minute)}
	tests := []struct {
		name   string
		query  string
		tr     backend.TimeRange
		notice bool
	}{
		{"rate over the job", `{"expr":"sum by (level) (rate({job=\"app\"}[5m]))","step":"1m"}`, recent, true},
		{"logs of the job", `{"expr":"{job=\"app\"}"}`, recent, true},
		{"binary query, one side", `{"expr":"count_over_time({job=\"x\"}[5m]) or count_over_time({filename=~\".*access.log\"}[5m])","step":"1m"}`, recent, true},
		{"timestamped file only", `{"expr":"sum(rate({job=\"app\", filename=~\".*app.log\"}[5m]))","step":"1m"}`, recent, false},
		{"range before the reading", `{"expr":"{job=\"app\"}"}`, before, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dr := queryOne(t, ds, tc.query, tc.tr, nil)
			if dr.Error != nil {
				t.Fatal(dr.Error)
			}
			var notices []string
			for _, fr := range dr.Frames {
				if fr.Meta != nil {
					for _, n := range fr.Meta.Notices {
						notices = append(notices, n.Text)
					}
				}
			}
			got := strings.Contains(strings.Join(notices, "\n"), "40 entries in this range carry the time they were read, not a time from the line (none was found in it), because they were caught up on from a backlog: 40 from access.log, read ")
			if got != tc.notice {
				t.Errorf("notices %q, want the read-time notice: %v", notices, tc.notice)
			}
		})
	}
}
