package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// cli runs lokal in-process with a fixed clock and environment.
type cli struct {
	t      *testing.T
	dir    string
	config string
	env    map[string]string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	c := &cli{t: t, dir: dir, config: filepath.Join(dir, "lokal.yaml"), env: map[string]string{"HOME": dir}}
	cfg := "storage:\n  path: store\n  retention: 0s\nscrape_configs: []\n"
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// pushFixture stores testdata/push.json with `lokal push`.
func (c *cli) pushFixture() {
	c.t.Helper()
	if code, _, stderr := c.run("", "push", "--config", c.config, filepath.Join("testdata", "push.json")); code != 0 {
		c.t.Fatalf("push: exit %d: %s", code, stderr)
	}
}

func (c *cli) run(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	e := env{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return c.env[k] },
		now:    func() time.Time { return time.Date(2024, 12, 17, 15, 0, 0, 0, time.UTC) },
	}
	code = run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

// volatile are the stats that depend on how fast the machine is.
var volatile = regexp.MustCompile(`"(execTime|bytesProcessedPerSecond|linesProcessedPerSecond)":[0-9.e+-]+`)

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	got = volatile.ReplaceAllString(got, `"$1":0`)
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestQueryGolden(t *testing.T) {
	c := newCLI(t)
	c.pushFixture()
	rng := []string{"--from", "2024-12-17T14:29:00Z", "--to", "2024-12-17T14:33:00Z"}
	tests := []struct {
		name string
		args []string
	}{
		{"logs_backward.json", append([]string{`{job="cosyvoice3"} |= "error"`, "-o", "json"}, rng...)},
		{"logs_forward_limit.json", append([]string{`{job="cosyvoice3"}`, "-o", "json", "--direction", "forward", "--limit", "3"}, rng...)},
		{"matrix.json", append([]string{`sum by (level) (count_over_time({job="cosyvoice3"}[1m]))`, "-o", "json", "--step", "1m"}, rng...)},
		{"vector.json", []string{`count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])`, "-o", "json", "--instant", "--time", "2024-12-17T14:33:00Z"}},
		{"scalar.json", []string{`1 + 1`, "-o", "json", "--instant", "--time", "1734445980"}},
		{"logs.jsonl", append([]string{`{instance="host-2"}`, "-o", "jsonl"}, rng...)},
		{"logs.raw", append([]string{`{job="cosyvoice3"} |~ "timeout|fail"`}, rng...)},
		{"matrix.raw", append([]string{`sum(count_over_time({job="cosyvoice3"}[2m]))`, "--step", "2m"}, rng...)},
		{"relative_time.raw", []string{`{level="error"} |= "timeout"`, "--from", "now-1h", "--to", "now-28m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"query", "--config", c.config}, tt.args...)
			code, stdout, stderr := c.run("", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if strings.HasSuffix(tt.name, ".json") && !json.Valid([]byte(stdout)) {
				t.Fatalf("not JSON: %s", stdout)
			}
			checkGolden(t, tt.name, stdout)
		})
	}
}

func TestQueryErrors(t *testing.T) {
	c := newCLI(t)
	c.pushFixture()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
		wantJSON   bool
	}{
		{"parse error json", []string{"query", "--config", c.config, "-o", "json", `{job="cosyvoice3"} |=`}, 1, "parse error", true},
		{"parse error raw", []string{"query", "--config", c.config, `sum(`}, 1, "parse error", false},
		{"bad time", []string{"query", "--config", c.config, "-o", "json", "--from", "yesterday", `{job="a"}`}, 1, "--from", true},
		{"bad direction", []string{"query", "--config", c.config, "--direction", "up", `{job="a"}`}, 1, "--direction", false},
		{"bad output", []string{"query", "--config", c.config, "-o", "xml", `{job="a"}`}, 1, "-o", false},
		{"no query", []string{"query", "--config", c.config}, 2, "usage", false},
		{"no config", []string{"query", `{job="a"}`}, 1, "--config is required", false},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command", false},
		{"bad push", []string{"push", "--config", c.config, "-"}, 1, "push JSON", false},
		{"timeout", []string{"query", "--config", c.config, "-o", "json", "--timeout", "1ns", `{job="cosyvoice3"}`}, 1, "query timed out after", true},
		{"negative timeout", []string{"query", "--config", c.config, "--timeout", "-1s", `{job="a"}`}, 1, "--timeout", false},
		{"query file missing", []string{"query", "--config", c.config, "-f", filepath.Join(c.dir, "nope.logql")}, 1, "nope.logql", false},
		{"query file and argument", []string{"query", "--config", c.config, "-f", "x", `{job="a"}`}, 2, "usage", false},
		{"query from stdin not a query", []string{"query", "--config", c.config, "-"}, 1, "parse error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := c.run(`{"streams":[{"stream":{"a":"b"},"values":[["x","y"]]}]}`, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.wantStderr)
			}
			if tt.wantJSON {
				var body struct{ Status, ErrorType, Error string }
				if err := json.Unmarshal([]byte(stdout), &body); err != nil || body.Status != "error" || body.Error == "" {
					t.Errorf("stdout %q is not Loki's error body", stdout)
				}
			}
		})
	}
}

func TestLabelsSeriesStats(t *testing.T) {
	c := newCLI(t)
	c.pushFixture()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"labels", "--config", c.config}, "instance\njob\nlevel\n"},
		{[]string{"labels", "--config", c.config, "level"}, "error\ninfo\n"},
		{[]string{"series", "--config", c.config, `{level="info"}`}, `{instance="host-1", job="cosyvoice3", level="info"}` + "\n" + `{instance="host-2", job="cosyvoice3", level="info"}` + "\n"},
	}
	for _, tt := range tests {
		code, stdout, stderr := c.run("", tt.args...)
		if code != 0 || stdout != tt.want {
			t.Errorf("%v: exit %d, stdout %q, want %q (stderr %q)", tt.args, code, stdout, tt.want, stderr)
		}
	}
	code, stdout, stderr := c.run("", "stats", "--config", c.config)
	if code != 0 || !regexp.MustCompile(`entries\s+7\n`).MatchString(stdout) || !regexp.MustCompile(`streams\s+3\n`).MatchString(stdout) {
		t.Errorf("stats: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestIngestAndDemo(t *testing.T) {
	c := newCLI(t)
	dir := filepath.Join(c.dir, "demo")
	code, stdout, stderr := c.run("", "demo", "--dir", dir, "--size", "256KiB")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, q := range guideQueries {
		if !strings.Contains(stdout, q.query) {
			t.Errorf("demo output lacks the guide's query %s", q.query)
		}
	}
	// The demo leaves a config a user can query with.
	cfg := filepath.Join(dir, "lokal.yaml")
	code, stdout, stderr = c.run("", "query", "--config", cfg, "--from", "0", "--to", "4102444800", "-o", "jsonl", "--limit", "3", `{job="cosyvoice3"}`)
	if code != 0 || strings.Count(stdout, "\n") != 3 {
		t.Errorf("query on the demo store: exit %d, %q, %q", code, stdout, stderr)
	}
	// The sample's access and startup lines have no timestamp: the demo's
	// catch-up stored them at their read time, and the query says so.
	if !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, "carry the time they were read") || !strings.Contains(stderr, "access.log, read ") {
		t.Errorf("query on the demo store: no read-time warning on stderr: %q", stderr)
	}
	// Ingesting again reads nothing twice: positions are in the store.
	code, _, stderr = c.run("", "ingest", "--config", cfg)
	if code != 0 {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	code, stdout, _ = c.run("", "stats", "--config", cfg)
	before := stdout
	code2, _, stderr := c.run("", "ingest", "--config", cfg)
	_, after, _ := c.run("", "stats", "--config", cfg)
	if code != 0 || code2 != 0 || entriesLine(before) != entriesLine(after) {
		t.Errorf("a second ingest changed the store: %q -> %q (%s)", entriesLine(before), entriesLine(after), stderr)
	}
}

func entriesLine(stats string) string {
	for _, l := range strings.Split(stats, "\n") {
		if strings.HasPrefix(l, "entries") {
			return l
		}
	}
	return ""
}

func TestParseTime(t *testing.T) {
	now := time.Date(2024, 12, 17, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "now", want: now},
		{in: "now-1h", want: now.Add(-time.Hour)},
		{in: "now+90s", want: now.Add(90 * time.Second)},
		{in: "now-2d", want: now.Add(-48 * time.Hour)},
		{in: "now-1h30m", want: now.Add(-90 * time.Minute)},
		{in: "1734445800", want: time.Unix(1734445800, 0).UTC()},
		{in: "1734445800.5", want: time.Unix(1734445800, 5e8).UTC()},
		{in: "2024-12-17T14:30:00Z", want: time.Date(2024, 12, 17, 14, 30, 0, 0, time.UTC)},
		{in: "2024-12-17T14:30:00.123+01:00", want: time.Date(2024, 12, 17, 13, 30, 0, 123e6, time.UTC)},
		{in: "now*2", err: true},
		{in: "now-", err: true},
		{in: "now-1x", err: true},
		{in: "yesterday", err: true},
		{in: "", err: true},
		{in: "1e300", err: true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, now)
		if tt.err {
			if err == nil {
				t.Errorf("parseTime(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// `lokal tail` follows until its context ends (SIGINT/SIGTERM in main),
// then stores what it read and exits 0.
func TestTailStopsCleanly(t *testing.T) {
	c := newCLI(t)
	logs := filepath.Join(c.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 0; i < 10; i++ {
		b.WriteString(time.Now().UTC().Format(time.RFC3339) + " level=info msg=\"line\" i=" + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(filepath.Join(logs, "app.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "storage:\n  path: store\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - labels: {job: app, __path__: " + filepath.Join(logs, "*.log") + "}\n"
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"tail", "--config", c.config}, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return c.env[k] }})
	}()
	// Wait until the tail has stored the lines, as a reader sees them.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, stdout, _ := c.run("", "stats", "--config", c.config)
		if code == 0 && strings.Contains(entriesLine(stdout), " 10") {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("tail never stored the lines: %q", stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "stopped: 10 lines") {
		t.Errorf("tail output %q", out.String())
	}
}

// The query can come from a file or standard input (a query too long for
// an argument, or one with quotes a shell mangles), with the same answer.
func TestQueryFromFile(t *testing.T) {
	c := newCLI(t)
	c.pushFixture()
	q := `{job="cosyvoice3"} |~ "timeout|fail"`
	file := filepath.Join(c.dir, "q.logql")
	if err := os.WriteFile(file, []byte("\n"+q+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := []string{"--from", "2024-12-17T14:29:00Z", "--to", "2024-12-17T14:33:00Z"}
	_, want, _ := c.run("", append([]string{"query", "--config", c.config, q}, rng...)...)
	if want == "" {
		t.Fatal("the query found nothing; the comparison would prove nothing")
	}
	for name, tc := range map[string]struct {
		stdin string
		args  []string
	}{
		"file":       {"", []string{"-f", file}},
		"dash":       {q, []string{"-"}},
		"file dash":  {q, []string{"-f", "-"}},
		"no timeout": {"", []string{"-f", file, "--timeout", "0"}},
	} {
		args := append(append([]string{"query", "--config", c.config}, rng...), tc.args...)
		code, got, stderr := c.run(tc.stdin, args...)
		if code != 0 || got != want {
			t.Errorf("%s: exit %d (%s), output %q, want %q", name, code, stderr, got, want)
		}
	}
	if code, _, stderr := c.run("  \n", "query", "--config", c.config, "-"); code != 1 || !strings.Contains(stderr, "empty") {
		t.Errorf("empty stdin: exit %d, %q", code, stderr)
	}
}
