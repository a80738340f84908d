package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	c.pushFixture()
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
	c.pushFixture()
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

// TestForwardIntoServe backfills one Lokal into another that runs `lokal
// serve` as the receiving Loki: Loki's push protobuf, the receiver's push
// rules and its query API meet end to end. Every entry arrives once, and a
// second backfill of the same range (a re-sent batch, as after a crash)
// stores nothing twice.
func TestForwardIntoServe(t *testing.T) {
	src := newCLI(t)
	now := time.Now().Truncate(time.Second)
	var b strings.Builder
	b.WriteString(`{"streams":[`)
	const streams, perStream = 3, 400
	for s := 0; s < streams; s++ {
		if s > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"stream":{"job":"app","instance":"host-%d"},"values":[`, s)
		for i := 0; i < perStream; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `["%d","line %d of host-%d"]`, now.Add(-30*time.Minute+time.Duration(i)*time.Second).UnixNano(), i, s)
		}
		b.WriteString("]}")
	}
	b.WriteString("]}")
	pushFile := filepath.Join(src.dir, "push.json")
	if err := os.WriteFile(pushFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := src.run("", "push", "--config", src.config, pushFile); code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}

	dst := newCLI(t)
	tokenFile := filepath.Join(dst.dir, "token")
	if err := os.WriteFile(tokenFile, []byte("sekrit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sv := startServe(t, ctx, dst, "--config", dst.config, "--token-file", tokenFile)

	from, to := strconv.FormatInt(now.Add(-time.Hour).Unix(), 10), strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	for round := 1; round <= 2; round++ {
		code, stdout, stderr := src.run("", "forward", "--config", src.config, "--to", sv.base+"/loki/api/v1/push",
			"--bearer-token-file", tokenFile, "--from", from, "--to-time", to, "--quiet",
			"--state", filepath.Join(t.TempDir(), "state.json"))
		if code != 0 || !strings.Contains(stdout, fmt.Sprintf("sent %d entries", streams*perStream)) {
			t.Fatalf("forward round %d: exit %d\n%s\n%s", round, code, stdout, stderr)
		}
		q := "/loki/api/v1/query?" + url.Values{"query": {`sum by (instance) (count_over_time({job="app"}[2h]))`}, "time": {to}}.Encode()
		req, _ := http.NewRequest("GET", sv.base+q, nil)
		req.Header.Set("Authorization", "Bearer sekrit")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for s := 0; s < streams; s++ {
			want := fmt.Sprintf(`{"metric":{"instance":"host-%d"},"value":[%s,"%d"]}`, s, to, perStream)
			if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Fatalf("round %d: the receiver answers %d %s, want %s", round, resp.StatusCode, body, want)
			}
		}
	}
	cancel()
	if code := <-sv.exited; code != 0 {
		t.Errorf("serve exited %d: %s", code, sv.stderr.String())
	}
}
