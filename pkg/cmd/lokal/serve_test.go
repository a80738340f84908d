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
	stderr := &lockedBuffer{}
	exited := make(chan int, 1)
	go func() {
		e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string { return c.env[k] }}
		exited <- run(ctx, []string{"serve", "--config", c.config, "--listen", "127.0.0.1:0", "--token-file", tokenFile}, e)
	}()
	addrRE := regexp.MustCompile(`on (http://127\.0\.0\.1:[0-9]+)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
		select {
		case code := <-exited:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never listened: %s", stderr.String())
		}
	}
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
