//go:build grafanae2e

package grafanae2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

const (
	pluginID     = "lokal-logql-datasource"
	adminUser    = "admin"
	adminPass    = "lokal-e2e"
	dsUID        = "lokal" // provisioning/datasources/lokal.yaml
	dashboardUID = "lokal-cosyvoice3"
)

// grafana is one Grafana server process over a run directory.
type grafana struct {
	home, run, base string
	port            int
	cmd             *exec.Cmd
	logFile         *os.File
	client          *http.Client
}

// layout is what a user's install looks like, built in run: the plugin in
// plugins/, provisioning/ as shipped with only the log path changed, and a
// grafana.ini with the README's [plugin.lokal-logql-datasource] section.
func layout(t *testing.T, root, run, logs string) {
	t.Helper()
	plugin := filepath.Join(run, "plugins", pluginID)
	must(t, copyTree(filepath.Join(root, "dist"), plugin, func(rel string) bool {
		// the CLI and other platforms' backends are not the plugin's
		return rel != "lokal" && (!strings.HasPrefix(rel, "gpx_") || strings.Contains(rel, "_linux_"))
	}))
	prov := filepath.Join(run, "provisioning")
	must(t, copyTree(filepath.Join(root, "provisioning"), prov, nil))
	dsFile := filepath.Join(prov, "datasources", "lokal.yaml")
	b, err := os.ReadFile(dsFile)
	must(t, err)
	if !bytes.Contains(b, []byte("/var/log/cosyvoice/")) {
		t.Fatalf("%s no longer names /var/log/cosyvoice/: update the e2e check", dsFile)
	}
	must(t, os.WriteFile(dsFile, bytes.ReplaceAll(b, []byte("/var/log/cosyvoice/"), []byte(logs+"/")), 0o644))
	for _, d := range []string{"data", "logs", "lokal"} {
		must(t, os.MkdirAll(filepath.Join(run, d), 0o755))
	}
}

func writeIni(t *testing.T, run, logs string, port int) string {
	t.Helper()
	ini := fmt.Sprintf(`app_mode = production
[paths]
data = %[1]s/data
logs = %[1]s/logs
plugins = %[1]s/plugins
provisioning = %[1]s/provisioning
[server]
http_addr = 127.0.0.1
http_port = %[3]d
[security]
admin_user = %[4]s
admin_password = %[5]s
[analytics]
reporting_enabled = false
check_for_updates = false
check_for_plugin_updates = false
[plugins]
allow_loading_unsigned_plugins = %[6]s
preinstall_disabled = true
[plugin.%[6]s]
allowed_paths = %[2]s
data_path = %[1]s/lokal
[unified_alerting]
enabled = true
min_interval = 10s
[log]
mode = console file
level = info
`, run, logs, port, adminUser, adminPass, pluginID)
	p := filepath.Join(run, "grafana.ini")
	must(t, os.WriteFile(p, []byte(ini), 0o644))
	return p
}

// freePort asks the kernel for a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs Grafana and waits for /api/health.
func (g *grafana) start(t *testing.T) {
	t.Helper()
	ini := filepath.Join(g.run, "grafana.ini")
	lf, err := os.OpenFile(filepath.Join(g.run, "grafana.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	g.logFile = lf
	g.cmd = exec.Command(filepath.Join(g.home, "bin", "grafana"), "server", "--homepath", g.home, "--config", ini)
	// The shipped dashboards provider reads ${GF_PATHS_PROVISIONING}, as
	// Grafana's Docker image sets it.
	g.cmd.Env = append(os.Environ(), "GF_PATHS_PROVISIONING="+filepath.Join(g.run, "provisioning"))
	g.cmd.Stdout, g.cmd.Stderr = lf, lf
	must(t, g.cmd.Start())
	began := time.Now()
	for {
		resp, err := g.client.Get(g.base + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Logf("grafana answers /api/health %.1f s after start (pid %d)", time.Since(began).Seconds(), g.cmd.Process.Pid)
				return
			}
		}
		if g.cmd.ProcessState != nil || processGone(g.cmd.Process.Pid) {
			t.Fatalf("grafana exited during start-up; its log:\n%s", tail(filepath.Join(g.run, "grafana.out"), 40))
		}
		if time.Since(began) > 90*time.Second {
			t.Fatalf("grafana did not answer /api/health within 90 s; its log:\n%s", tail(filepath.Join(g.run, "grafana.out"), 40))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stop ends Grafana gracefully (SIGTERM), or with SIGKILL when kill is set,
// as a crash or the OOM killer would.
func (g *grafana) stop(kill bool) {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = g.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
	}
	if g.logFile != nil {
		g.logFile.Close()
	}
	g.cmd = nil
}

// processGone reports that pid no longer runs (a zombie counts as gone).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// state is the field after the parenthesised command name
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

// pluginPids lists the running processes of Lokal's plugin backend.
func pluginPids() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !strings.Contains(filepath.Base(exe), "gpx_lokal") || processGone(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// api calls Grafana's HTTP API as the admin and decodes JSON into out.
func (g *grafana) api(method, path string, body, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(adminUser, adminPass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, b, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, b, nil
}

// frame is the part of a data frame in /api/ds/query's JSON the checks read.
type frame struct {
	Schema struct {
		Name  string `json:"name"`
		RefID string `json:"refId"`
		Meta  struct {
			Type    string `json:"type"`
			Notices []struct {
				Severity string `json:"severity"`
				Text     string `json:"text"`
			} `json:"notices"`
		} `json:"meta"`
		Fields []struct {
			Name   string            `json:"name"`
			Type   string            `json:"type"`
			Labels map[string]string `json:"labels"`
		} `json:"fields"`
	} `json:"schema"`
	Data struct {
		Values [][]any `json:"values"`
	} `json:"data"`
}

func (f frame) rows() int {
	if len(f.Data.Values) == 0 {
		return 0
	}
	return len(f.Data.Values[0])
}

type queryResult struct {
	Status int     `json:"status"`
	Error  string  `json:"error"`
	Frames []frame `json:"frames"`
}

// query posts one query to /api/ds/query, as Grafana's frontend does.
func (g *grafana) query(from, to string, q map[string]any) (queryResult, time.Duration, error) {
	if _, ok := q["datasource"]; !ok {
		q["datasource"] = map[string]string{"type": pluginID, "uid": dsUID}
	}
	if _, ok := q["refId"]; !ok {
		q["refId"] = "A"
	}
	body := map[string]any{"from": from, "to": to, "queries": []any{q}}
	var out struct {
		Results map[string]queryResult `json:"results"`
	}
	began := time.Now()
	code, raw, err := g.api("POST", "/api/ds/query", body, &out)
	took := time.Since(began)
	if err != nil {
		return queryResult{}, took, err
	}
	r, ok := out.Results[q["refId"].(string)]
	if code != 200 && !ok {
		return queryResult{}, took, fmt.Errorf("/api/ds/query: HTTP %d: %s", code, raw)
	}
	if r.Error != "" {
		return r, took, fmt.Errorf("/api/ds/query: %s", r.Error)
	}
	return r, took, nil
}

// liveTail subscribes to a live tail through Grafana Live's websocket (the
// centrifuge protocol, JSON) and sends every pushed line to lines.
func (g *grafana) liveTail(ctx context.Context, expr string, lines chan<- string) error {
	u := strings.Replace(g.base, "http://", "ws://", 1) + "/api/live/ws"
	cfg, err := websocket.NewConfig(u, g.base)
	if err != nil {
		return err
	}
	cfg.Header = http.Header{}
	req, _ := http.NewRequest("GET", g.base, nil)
	req.SetBasicAuth(adminUser, adminPass)
	cfg.Header.Set("Authorization", req.Header.Get("Authorization"))
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		return fmt.Errorf("dial %s: %w", u, err)
	}
	ws.MaxPayloadBytes = 64 << 20
	go func() { <-ctx.Done(); ws.Close() }()
	data := map[string]any{"refId": "A", "expr": expr, "queryType": "stream", "datasource": map[string]string{"type": pluginID, "uid": dsUID}}
	// Grafana 12 channels start with the organisation's namespace
	// ("default" for org 1): <namespace>/ds/<uid>/<path>.
	channel := "default/ds/" + dsUID + "/tail/A-e2e"
	for _, cmd := range []map[string]any{
		{"id": 1, "connect": map[string]any{"name": "lokal-e2e"}},
		{"id": 2, "subscribe": map[string]any{"channel": channel, "data": data}},
	} {
		if err := websocket.JSON.Send(ws, cmd); err != nil {
			return err
		}
	}
	go func() {
		defer close(lines)
		for {
			var raw []byte
			if err := websocket.Message.Receive(ws, &raw); err != nil {
				return
			}
			// Several replies may share one frame, one JSON object a line.
			for _, part := range bytes.Split(raw, []byte("\n")) {
				part = bytes.TrimSpace(part)
				if len(part) == 0 {
					continue
				}
				if string(part) == "{}" { // a ping: answer with a pong
					_ = websocket.Message.Send(ws, "{}")
					continue
				}
				var m struct {
					ID    int `json:"id"`
					Error *struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
					Push *struct {
						Channel string `json:"channel"`
						Pub     *struct {
							Data json.RawMessage `json:"data"`
						} `json:"pub"`
					} `json:"push"`
				}
				if json.Unmarshal(part, &m) != nil {
					continue
				}
				if m.Error != nil {
					lines <- fmt.Sprintf("ERROR %d %s (reply %d)", m.Error.Code, m.Error.Message, m.ID)
					continue
				}
				if m.Push == nil || m.Push.Pub == nil {
					continue
				}
				// The publication is a data frame (schema + data or data alone).
				var f frame
				if json.Unmarshal(m.Push.Pub.Data, &f) != nil {
					continue
				}
				for i, fl := range f.Schema.Fields {
					if fl.Name != "body" || i >= len(f.Data.Values) {
						continue
					}
					for _, v := range f.Data.Values[i] {
						lines <- fmt.Sprint(v)
					}
				}
				if len(f.Schema.Fields) == 0 { // data-only frames keep the schema's order: body is field 1
					if len(f.Data.Values) > 1 {
						for _, v := range f.Data.Values[1] {
							lines <- fmt.Sprint(v)
						}
					}
				}
			}
		}
	}()
	return nil
}

func copyTree(src, dst string, keep func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if keep != nil && rel != "." && !keep(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, info.Mode().Perm())
	})
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
