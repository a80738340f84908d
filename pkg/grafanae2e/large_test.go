//go:build grafanae2e

package grafanae2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestGrafanaLargeStore times what a user waits for in Explore, through the
// real Grafana's /api/ds/query, on a big store: the first page of logs
// (limit 1000, last hour) and the log volume over 24 hours. It runs when
// LOKAL_E2E_CORPUS names a directory of logs (e.g. the 1 GiB corpus of
// `../shared/bin/loggen -out DIR -size 1GiB -seed 1`), which the
// provisioned datasource then follows.
func TestGrafanaLargeStore(t *testing.T) {
	home, corpus := os.Getenv("LOKAL_GRAFANA_HOME"), os.Getenv("LOKAL_E2E_CORPUS")
	if home == "" || corpus == "" {
		t.Skip("large-store timings skipped: set LOKAL_GRAFANA_HOME and LOKAL_E2E_CORPUS (a directory of logs, e.g. a 1 GiB loggen corpus)")
	}
	corpus, err := filepath.Abs(corpus)
	must(t, err)
	root := repoRoot(t)
	run, err := os.MkdirTemp("", "lokal-grafana-large-")
	must(t, err)
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(run)
		}
	})
	layout(t, root, run, corpus)
	port := freePort(t)
	writeIni(t, run, corpus, port)
	g := &grafana{home: home, run: run, port: port, base: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 60 * time.Second}}
	began := time.Now()
	g.start(t)
	defer g.stop(false)

	// Caught up once the count stops growing.
	count := func() float64 {
		r, _, err := g.query("now-30d", "now", map[string]any{"expr": `sum(count_over_time({job="cosyvoice3"}[30d]))`, "queryType": "instant"})
		if err != nil {
			return -1
		}
		for _, f := range r.Frames {
			for i, fl := range f.Schema.Fields {
				if fl.Type == "number" && len(f.Data.Values[i]) > 0 {
					v, _ := f.Data.Values[i][0].(float64)
					return v
				}
			}
		}
		return 0
	}
	last := -1.0
	for deadline := time.Now().Add(10 * time.Minute); ; {
		time.Sleep(5 * time.Second)
		n := count()
		if n > 0 && n == last {
			t.Logf("caught up: %.0f entries, %.0f s after Grafana started", n, time.Since(began).Seconds())
			break
		}
		last = n
		if time.Now().After(deadline) {
			t.Fatalf("catch-up did not settle in 10 minutes (last count %.0f)", n)
		}
	}
	// The corpus's newest entry sets "now" for the ranges, so that an
	// older corpus is measured the same way.
	r, _, err := g.query("now-30d", "now", map[string]any{"expr": `{job="cosyvoice3"}`, "queryType": "range", "maxLines": 1})
	must(t, err)
	if len(r.Frames) == 0 || r.Frames[0].rows() == 0 {
		t.Fatal("no newest entry")
	}
	var end time.Time
	for i, fl := range r.Frames[0].Schema.Fields {
		if fl.Name == "timestamp" {
			ms, _ := r.Frames[0].Data.Values[i][0].(float64)
			end = time.UnixMilli(int64(ms)).Add(time.Second)
		}
	}
	ms := func(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }
	cases := []struct {
		name, target string
		from         time.Time
		q            map[string]any
	}{
		{"Explore's first page (limit 1000, last 1 h)", "< 200 ms", end.Add(-time.Hour),
			map[string]any{"expr": `{job="cosyvoice3"}`, "queryType": "range", "maxLines": 1000}},
		{"log volume over 24 h", "< 1.5 s", end.Add(-24 * time.Hour),
			map[string]any{"expr": `sum by (level) (count_over_time({job="cosyvoice3"}[$__auto]))`, "queryType": "range", "intervalMs": 60000, "maxDataPoints": 1400}},
	}
	var sb strings.Builder
	for _, c := range cases {
		var took []time.Duration
		for i := 0; i < 6; i++ {
			q := map[string]any{}
			for k, v := range c.q {
				q[k] = v
			}
			r, d, err := g.query(ms(c.from), ms(end), q)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			rows := 0
			for _, f := range r.Frames {
				rows += f.rows()
			}
			if rows == 0 {
				t.Fatalf("%s: no data", c.name)
			}
			if i > 0 { // the first run warms the page cache
				took = append(took, d)
			}
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		line := fmt.Sprintf("%-46s median %4d ms (min %d, max %d; target %s)", c.name, took[len(took)/2].Milliseconds(), took[0].Milliseconds(), took[len(took)-1].Milliseconds(), c.target)
		t.Log(line)
		sb.WriteString(line + "\n")
	}
	art := filepath.Join(root, "artifacts", "grafana-e2e")
	must(t, os.MkdirAll(art, 0o755))
	_ = os.WriteFile(filepath.Join(art, "large-store.txt"), []byte(sb.String()), 0o644)
}
