package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lokal-logs/lokal/pkg/forward"
)

// lokiStub counts the entries pushed to it, per stream.
type lokiStub struct {
	mu      sync.Mutex
	streams map[string]int
	srv     *httptest.Server
}

func newLokiStub(t *testing.T) *lokiStub {
	s := &lokiStub{streams: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := forward.Decode(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		for _, st := range req.Streams {
			s.streams[st.Labels] += len(st.Entries)
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *lokiStub) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.streams {
		n += c
	}
	return n
}

func TestForwardCommand(t *testing.T) {
	c := newCLI(t)
	if code, _, stderr := c.run("", "push", "--config", c.config, filepath.Join("testdata", "push.json")); code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	cases := []struct {
		name     string
		selector []string
		want     int
		code     int
		out      string
	}{
		{"everything", nil, 7, 0, "counts match"},
		{"a selector", []string{`{level="info"}`}, 0, 0, "counts match"}, // want set from the store below
		{"not a selector", []string{`{level="info"} |= "x"`}, 0, 1, ""},
		{"bad selector", []string{`{level=}`}, 0, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loki := newLokiStub(t)
			args := append([]string{"forward", "--config", c.config, "--to", loki.srv.URL + "/loki/api/v1/push",
				"--from", "0", "--to-time", "4102444800", "--quiet", "--state", filepath.Join(t.TempDir(), "s.json")}, tc.selector...)
			code, stdout, stderr := c.run("", args...)
			if code != tc.code || !strings.Contains(stdout, tc.out) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if code != 0 {
				return
			}
			m := regexp.MustCompile(`sent (\d+) entries .* the store holds (\d+) `).FindStringSubmatch(stdout)
			if m == nil || m[1] != m[2] || (tc.want > 0 && loki.total() != tc.want) || m[1] != strconv.Itoa(loki.total()) {
				t.Fatalf("stdout %q, receiver got %d", stdout, loki.total())
			}
		})
	}
	if code, _, _ := c.run("", "forward", "--config", c.config); code != 2 {
		t.Errorf("forward without --to: exit %d, want 2", code)
	}
}

func TestClientsForwardAndStats(t *testing.T) {
	c := newCLI(t)
	loki := newLokiStub(t)
	cfg := "storage:\n  path: store\n  retention: 0s\nscrape_configs: []\nclients:\n  - url: " + loki.srv.URL + "/loki/api/v1/push\n"
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := c.run("", "push", "--config", c.config, filepath.Join("testdata", "push.json")); code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	if loki.total() != 7 {
		t.Fatalf("the client got %d entries, want 7", loki.total())
	}
	code, stdout, stderr := c.run("", "stats", "--config", c.config)
	if code != 0 || !strings.Contains(stdout, "forward "+loki.srv.URL) || !strings.Contains(stdout, "lag none") ||
		!regexp.MustCompile(`sent\s+7 entries`).MatchString(stdout) {
		t.Fatalf("stats: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestMigrateDashboardsCommand(t *testing.T) {
	c := newCLI(t)
	dash := filepath.Join("..", "..", "..", "provisioning", "dashboards", "cosyvoice3.json")
	if _, err := os.Stat(dash); err != nil {
		t.Skipf("no provisioned dashboard: %v", err)
	}
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--from-uid", "lokal", "--to-uid", "loki-prod", dash}, 0, `"uid": "loki-prod"`},
		{[]string{"--from-uid", "nope", "--to-uid", "loki-prod", dash}, 1, ""},
		{[]string{"--to-uid", "loki-prod", dash}, 2, ""},
		{[]string{"--from-uid", "lokal", "--to-uid", "x", dash, dash}, 2, ""},
	}
	for _, tc := range cases {
		code, stdout, stderr := c.run("", append([]string{"migrate-dashboards"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stdout, tc.out) {
			t.Errorf("%v: exit %d (want %d), stderr %q", tc.args, code, tc.code, stderr)
		}
	}
}

func TestIngestForwardsBeforeExiting(t *testing.T) {
	c := newCLI(t)
	loki := newLokiStub(t)
	logs := filepath.Join(c.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 500 {
		b.WriteString("2024-12-17 14:00:00,000 INFO line " + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(filepath.Join(logs, "a.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "storage:\n  path: store\n  retention: 0s\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - labels: {job: a, __path__: " +
		filepath.Join(logs, "*.log") + "}\nclients:\n  - url: " + loki.srv.URL + "/loki/api/v1/push\n"
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := c.run("", "ingest", "--config", c.config); code != 0 {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	if loki.total() != 500 {
		t.Fatalf("the client got %d of 500 lines", loki.total())
	}
}
