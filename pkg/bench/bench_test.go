package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
)

func TestSummarise(t *testing.T) {
	cases := []struct {
		in   []time.Duration
		want Timing
	}{
		{nil, Timing{}},
		{[]time.Duration{3 * time.Millisecond}, Timing{Runs: 1, Median: 3, Min: 3, Max: 3}},
		{[]time.Duration{5 * time.Millisecond, time.Millisecond, 3 * time.Millisecond}, Timing{Runs: 3, Median: 3, Min: 1, Max: 5}},
		{[]time.Duration{4 * time.Millisecond, 2 * time.Millisecond}, Timing{Runs: 2, Median: 3, Min: 2, Max: 4}},
	}
	for _, c := range cases {
		if got := Summarise(c.in); got != c.want {
			t.Errorf("Summarise(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestQuerySetNamesNeedleAndHasBaselines(t *testing.T) {
	qs := QuerySet("needle-abc")
	if len(qs) != 14 {
		t.Fatalf("query set has %d queries, want the 10 of issue 5, issue 15's OOM count over 25h and issue 12's 3 windowed ones", len(qs))
	}
	for i, q := range qs {
		if (i < 11) != (q.Window == 0) {
			t.Errorf("%s: window %s; the first 11 cover the whole store, the rest a window", q.Name, q.Window)
		}
		if q.Window > 0 && len(q.Grep) > 0 {
			t.Errorf("%s: a windowed query has a grep baseline, which cannot pick a time range", q.Name)
		}
	}
	if !strings.Contains(qs[0].Expr, `|= "needle-abc"`) {
		t.Errorf("needle query %q does not filter for the needle", qs[0].Expr)
	}
	seen := map[string]bool{}
	for _, q := range qs {
		if seen[q.Name] {
			t.Errorf("duplicate query name %s", q.Name)
		}
		seen[q.Name] = true
		if q.Kind == "range" && q.Step <= 0 {
			t.Errorf("%s: range query without a step", q.Name)
		}
	}
}

func TestGrepBaselineCountsAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	b := filepath.Join(dir, "b.log")
	os.WriteFile(a, []byte("x error\nok\nerror again\n"), 0o644)
	os.WriteFile(b, []byte("fine\n"), 0o644)
	got, err := grepBaseline(t.Context(), "grep", []string{"-F", "-c", "error"}, []string{a, b}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 2 {
		t.Errorf("grep counted %d matches, want 2", got.Count)
	}
	got, err = grepBaseline(t.Context(), "grep", []string{"-F", "-c", "absent"}, []string{a, b}, 1)
	if err != nil {
		t.Fatalf("no match must be a count of 0, not an error: %v", err)
	}
	if got.Count != 0 {
		t.Errorf("count %d, want 0", got.Count)
	}
	n, err := countLines([]string{a, b})
	if err != nil || n != 4 {
		t.Errorf("countLines = %d, %v; want 4", n, err)
	}
}

func TestWriteConfigFromManifest(t *testing.T) {
	dir := t.TempDir()
	m := manifest{}
	m.Files = append(m.Files, struct {
		Path   string            `json:"path"`
		Labels map[string]string `json:"labels"`
	}{"host-1/run.log", map[string]string{"job": "cosyvoice3", "instance": "host-1:50000", "filename": "host-1/run.log"}})
	cfg := filepath.Join(dir, "c.json")
	if err := writeConfig(cfg, filepath.Join(dir, "store"), "/corpus", m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cfg)
	s := string(b)
	for _, want := range []string{`"__path__": "/corpus/host-1/run.log"`, `"instance": "host-1:50000"`, `"retention": "0s"`} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %s:\n%s", want, s)
		}
	}
	if _, err := config.Parse(b); err != nil {
		t.Errorf("config.Parse rejects the bench config: %v\n%s", err, s)
	}
	if strings.Contains(s, `"filename"`) {
		t.Errorf("config sets filename, which the ingester owns:\n%s", s)
	}
}

func TestFormatRange(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{24 * time.Hour, "86400s"}, {1500 * time.Millisecond, "2s"}, {0, "1s"}} {
		if got := formatRange(c.d); got != c.want {
			t.Errorf("formatRange(%s) = %s, want %s", c.d, got, c.want)
		}
	}
}
