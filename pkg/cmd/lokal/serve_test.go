package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/lokal-logs/lokal/pkg/lokihttp"
)

func TestCheckExposure(t *testing.T) {
	auth := lokihttp.NewAuth(nil, "tok")
	none := lokihttp.NewAuth(nil, "")
	tests := []struct {
		listen string
		auth   *lokihttp.Auth
		ok     bool
	}{
		{"127.0.0.1:3100", none, true},
		{"localhost:3100", none, true},
		{"[::1]:3100", none, true},
		{"0.0.0.0:3100", none, false},
		{":3100", none, false},
		{"192.168.1.5:3100", none, false},
		{"0.0.0.0:3100", auth, true},
		{"nocolon", none, false},
	}
	for _, tt := range tests {
		err := checkExposure(tt.listen, tt.auth)
		if (err == nil) != tt.ok {
			t.Errorf("checkExposure(%q, auth=%v) = %v, want ok=%v", tt.listen, tt.auth.Enabled(), err, tt.ok)
		}
	}
}

// TestCheckExposureResolves: a host name is accepted without
// authentication only when every address it resolves to is loopback.
func TestCheckExposureResolves(t *testing.T) {
	none := lokihttp.NewAuth(nil, "")
	resolver := map[string][]string{
		"localhost":  {"127.0.0.1", "::1"},
		"loop6":      {"::1"},
		"mixed":      {"127.0.0.1", "10.0.0.7"},
		"lan":        {"192.168.1.5"},
		"hijacked":   {"203.0.113.9"},
		"empty":      {},
		"not-an-ip":  {"garbage"},
		"zoned-link": {"fe80::1%eth0"},
	}
	lookup := func(host string) ([]string, error) {
		addrs, ok := resolver[host]
		if !ok {
			return nil, fmt.Errorf("lookup %s: no such host", host)
		}
		return addrs, nil
	}
	tests := []struct {
		listen  string
		wantErr string // "" when accepted
	}{
		{"localhost:3100", ""},
		{"loop6:3100", ""},
		{"127.0.0.2:3100", ""},
		{"mixed:3100", "refusing to serve on mixed:3100 (mixed resolves to 10.0.0.7) without authentication"},
		{"lan:3100", "refusing to serve on lan:3100 (lan resolves to 192.168.1.5)"},
		{"hijacked:3100", "(hijacked resolves to 203.0.113.9)"},
		{"zoned-link:3100", "(zoned-link resolves to fe80::1%eth0)"},
		{"not-an-ip:3100", "(not-an-ip resolves to garbage)"},
		{"empty:3100", `--listen "empty:3100": empty resolves to no address`},
		{"unknown:3100", `--listen "unknown:3100": resolve unknown to check it is loopback-only: lookup unknown: no such host`},
		{":3100", "(every interface)"},
		{"[::]:3100", "(::)"},
	}
	for _, tt := range tests {
		err := checkExposureWith(tt.listen, none, lookup)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("checkExposure(%q) = %v, want accepted", tt.listen, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("checkExposure(%q) = %v, want an error containing %q", tt.listen, err, tt.wantErr)
		}
	}
	if err := checkExposureWith("lan:3100", lokihttp.NewAuth(nil, "tok"), lookup); err != nil {
		t.Errorf("with a token, lan:3100 refused: %v", err)
	}
}

func TestServeRefusesWithoutAuth(t *testing.T) {
	c := newCLI(t)
	code, _, stderr := c.run("", "serve", "--config", c.config, "--listen", "0.0.0.0:0")
	if code != 1 || !strings.Contains(stderr, "refusing to serve on 0.0.0.0:0 (0.0.0.0) without authentication") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, _, stderr = c.run("", "serve", "--config", c.config, "--tls-cert", "x.pem")
	if code != 1 || !strings.Contains(stderr, "--tls-cert and --tls-key go together") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// --max-concurrent must be a positive number of queries.
func TestServeMaxConcurrentFlag(t *testing.T) {
	c := newCLI(t)
	for _, tt := range []struct{ value, want string }{
		{"0", "--max-concurrent 0: give a positive number of queries"},
		{"-3", "--max-concurrent -3: give a positive number of queries"},
		{"many", "many"},
	} {
		code, _, stderr := c.run("", "serve", "--config", c.config, "--max-concurrent", tt.value)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("--max-concurrent %s: exit %d: %s", tt.value, code, stderr)
		}
	}
}

// lockedBuffer is a stderr a running command and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is a `lokal serve` running in the test's process.
type served struct {
	base   string // http://127.0.0.1:port
	stderr *lockedBuffer
	exited chan int
}

// startServe runs `lokal serve --listen 127.0.0.1:0 args...` until ctx ends
// and waits until it listens.
func startServe(t *testing.T, ctx context.Context, c *cli, args ...string) *served {
	t.Helper()
	sv := &served{stderr: &lockedBuffer{}, exited: make(chan int, 1)}
	go func() {
		e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: sv.stderr, getenv: func(k string) string { return c.env[k] }}
		sv.exited <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), e)
	}()
	addrRE := regexp.MustCompile(`on (http://127\.0\.0\.1:[0-9]+)`)
	for deadline := time.Now().Add(30 * time.Second); sv.base == ""; time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(sv.stderr.String()); m != nil {
			sv.base = m[1]
		}
		select {
		case code := <-sv.exited:
			t.Fatalf("serve exited %d: %s", code, sv.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never listened: %s", sv.stderr.String())
		}
	}
	return sv
}

// TestServe runs `lokal serve` over a followed log file: a token is
// required, queries answer with the file's lines, a tail receives a line
// appended while it listens and a pushed one, and the push is answered.
func TestServe(t *testing.T) {
	c := newCLI(t)
	logs := filepath.Join(c.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(logs, "app.log")
	appendLine := func(line string) {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := fmt.Fprintln(f, line); err != nil {
			t.Fatal(err)
		}
	}
	appendLine("first line")
	cfg := fmt.Sprintf("storage: {path: %s, retention: 0s}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - labels: {job: app, __path__: %s}\n",
		filepath.Join(c.dir, "store"), filepath.Join(logs, "*.log"))
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(c.dir, "token")
	if err := os.WriteFile(tokenFile, []byte("sekrit\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sv := startServe(t, ctx, c, "--config", c.config, "--token-file", tokenFile)
	base, stderr, exited := sv.base, sv.stderr, sv.exited
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/loki/api/v1/labels", ""); code != 401 {
		t.Errorf("no token: status %d, want 401", code)
	}
	if code, _ := get("/loki/api/v1/labels", "wrong"); code != 401 {
		t.Errorf("wrong token: status %d, want 401", code)
	}
	q := "/loki/api/v1/query_range?" + url.Values{"query": {`{job="app"}`}, "since": {"1000h"}}.Encode()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := get(q, "sekrit")
		if code == 200 && strings.Contains(body, "first line") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first line never answered: %d %s", code, body)
		}
	}

	cfgWS, err := websocket.NewConfig("ws"+strings.TrimPrefix(base, "http")+"/loki/api/v1/tail?"+url.Values{"query": {`{job="app"} |= "tailed"`}}.Encode(), base)
	if err != nil {
		t.Fatal(err)
	}
	cfgWS.Header.Set("Authorization", "Bearer sekrit")
	ws, err := websocket.DialConfig(cfgWS)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	appendLine("a tailed line")
	if err := ws.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var msg string
	if err := websocket.Message.Receive(ws, &msg); err != nil {
		t.Fatalf("tail: %v", err)
	}
	if !strings.Contains(msg, `"a tailed line"`) || !strings.Contains(msg, `"job":"app"`) {
		t.Errorf("tail message: %s", msg)
	}

	// A pushed entry is stored, answered and tailed too.
	pushed := fmt.Sprintf(`{"streams":[{"stream":{"job":"app","host":"remote"},"values":[["%d","a tailed push"]]}]}`, time.Now().UnixNano())
	req, _ := http.NewRequest("POST", base+"/loki/api/v1/push", strings.NewReader(pushed))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sekrit")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push: status %d, want 204", resp.StatusCode)
	}
	if err := websocket.Message.Receive(ws, &msg); err != nil {
		t.Fatalf("tail after push: %v", err)
	}
	if !strings.Contains(msg, `"a tailed push"`) || !strings.Contains(msg, `"host":"remote"`) {
		t.Errorf("tail message after push: %s", msg)
	}
	if code, body := get("/loki/api/v1/query_range?"+url.Values{"query": {`{host="remote"}`}}.Encode(), "sekrit"); code != 200 || !strings.Contains(body, "a tailed push") {
		t.Errorf("pushed entry not answered: %d %s", code, body)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
