//go:build grafanae2e

package grafanae2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/sample"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// ruleState is one alert rule as Grafana's Prometheus-style rules API
// reports it.
type ruleState struct {
	Name           string    `json:"name"`
	State          string    `json:"state"`  // inactive, pending, firing
	Health         string    `json:"health"` // ok, nodata, error
	LastError      string    `json:"lastError"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

const (
	oomRule    = "CUDA out of memory"
	silentRule = "No logs for 10 minutes"
)

// ruleStates reads every alert rule's state by name.
func (g *grafana) ruleStates() (map[string]ruleState, error) {
	var out struct {
		Data struct {
			Groups []struct {
				Rules []ruleState `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	code, raw, err := g.api("GET", "/api/prometheus/grafana/api/v1/rules", nil, &out)
	if err != nil || code != 200 {
		return nil, fmt.Errorf("rules API: HTTP %d %v %.200s", code, err, raw)
	}
	m := map[string]ruleState{}
	for _, gr := range out.Data.Groups {
		for _, r := range gr.Rules {
			m[r.Name] = r
		}
	}
	return m, nil
}

func (g *grafana) rules(t *testing.T) map[string]ruleState {
	t.Helper()
	m, err := g.ruleStates()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// transition is a rule entering a state, as the test saw it.
type transition struct {
	Rule, State string
	At          time.Time
}

// ruleWatcher polls the rules API and records every state change and every
// evaluation error.
type ruleWatcher struct {
	mu     sync.Mutex
	seen   map[string]string
	trans  []transition
	errors []string
	stop   chan struct{}
	done   chan struct{}
}

func watchRules(t *testing.T, g *grafana) *ruleWatcher {
	w := &ruleWatcher{seen: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if rules, err := g.ruleStates(); err == nil {
				w.mu.Lock()
				for _, r := range rules {
					if w.seen[r.Name] != r.State {
						w.seen[r.Name] = r.State
						w.trans = append(w.trans, transition{r.Name, r.State, time.Now()})
					}
					if r.Health == "error" || r.LastError != "" {
						w.errors = append(w.errors, fmt.Sprintf("%s: health %s: %s", r.Name, r.Health, r.LastError))
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return w
}

// waitState waits until rule is in state, returning when it got there.
func (w *ruleWatcher) waitState(rule, state string, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for i := len(w.trans) - 1; i >= 0; i-- {
			if w.trans[i].Rule == rule {
				if w.trans[i].State == state {
					at := w.trans[i].At
					w.mu.Unlock()
					return at, true
				}
				break
			}
		}
		w.mu.Unlock()
		time.Sleep(500 * time.Millisecond)
	}
	return time.Time{}, false
}

func (w *ruleWatcher) close() { close(w.stop); <-w.done }

func (w *ruleWatcher) transitions() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, tr := range w.trans {
		out = append(out, fmt.Sprintf("%s %s at %s", tr.Rule, tr.State, tr.At.UTC().Format("15:04:05")))
	}
	return out
}

// timings collects what the check measured, for its summary.
type timings struct {
	mu sync.Mutex
	m  map[string]string
}

func (tm *timings) set(k, format string, args ...any) {
	tm.mu.Lock()
	tm.m[k] = fmt.Sprintf(format, args...)
	tm.mu.Unlock()
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := testshared.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// timestampless are the sample's files whose lines carry no time of their
// own: they are held back at first so that the "no logs" rule can see a
// quiet service, then arrive as a backlog, as on a real first start.
func timestampless(name string) bool {
	return name == "access.log" || name == "startup.log"
}

func TestGrafana(t *testing.T) {
	home := os.Getenv("LOKAL_GRAFANA_HOME")
	if home == "" {
		t.Skip("real-Grafana check skipped: LOKAL_GRAFANA_HOME is not set (build Grafana with pkg/grafanae2e/build-grafana.sh)")
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "grafana")); err != nil {
		t.Skipf("real-Grafana check skipped: no %s/bin/grafana (%v)", home, err)
	}
	began := time.Now()
	tm := &timings{m: map[string]string{}}
	root := repoRoot(t)
	for _, f := range []string{"plugin.json", "module.js", fmt.Sprintf("gpx_lokal_linux_%s", runtime.GOARCH)} {
		if _, err := os.Stat(filepath.Join(root, "dist", f)); err != nil {
			t.Fatalf("dist/%s missing: build the plugin first (go tool mage grafanaE2E does)", f)
		}
	}
	art := filepath.Join(root, "artifacts", "grafana-e2e")
	must(t, os.RemoveAll(art))
	must(t, os.MkdirAll(art, 0o755))
	run, err := os.MkdirTemp("", "lokal-grafana-e2e-")
	must(t, err)
	t.Logf("run directory %s (kept when the check fails)", run)
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(run)
		}
	})

	// A 2-hour history that ended 15 minutes ago: quiet now, as far as the
	// "no logs" rule can tell.
	logs := filepath.Join(run, "cosyvoice-logs")
	held := filepath.Join(run, "held")
	now := time.Now()
	man, err := sample.Write(logs, sample.Options{Seed: 7, Size: 6 << 20, Span: 2 * time.Hour, Start: now.Add(-2*time.Hour - 15*time.Minute), Needles: 3})
	must(t, err)
	must(t, os.Remove(filepath.Join(logs, sample.ManifestFile)))
	var visible, heldEntries, visibleOOM int64
	for _, f := range man.Files {
		if timestampless(filepath.Base(f.Path)) {
			heldEntries += f.Entries
			dst := filepath.Join(held, filepath.FromSlash(f.Path))
			must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
			must(t, os.Rename(filepath.Join(logs, filepath.FromSlash(f.Path)), dst))
			continue
		}
		visible += f.Entries
	}
	// OOM lines are all in cosyvoice.log, which carries timestamps.
	visibleOOM = man.OOMEntries

	layout(t, root, run, logs)
	port := freePort(t)
	writeIni(t, run, logs, port)
	g := &grafana{home: home, run: run, port: port, base: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 30 * time.Second}}
	g.start(t)
	defer func() { g.stop(false) }()
	tm.set("grafana start", "%.1f s", time.Since(began).Seconds())

	t.Run("plugin loaded", func(t *testing.T) {
		var s struct {
			ID        string `json:"id"`
			Type      string `json:"type"`
			Enabled   bool   `json:"enabled"`
			Module    string `json:"module"`
			Signature string `json:"signature"`
			Info      struct {
				Version string `json:"version"`
			} `json:"info"`
			Backend bool `json:"backend"`
		}
		code, raw, err := g.api("GET", "/api/plugins/"+pluginID+"/settings", nil, &s)
		if err != nil || code != 200 {
			t.Fatalf("plugin settings: HTTP %d %v %s", code, err, raw)
		}
		if s.ID != pluginID || s.Type != "datasource" || !strings.Contains(s.Module, pluginID+"/module.js") || s.Signature != "unsigned" {
			t.Errorf("plugin settings: %s", raw)
		}
		t.Logf("plugin settings: id %s, type %s, module %s, signature %s, version %s", s.ID, s.Type, s.Module, s.Signature, s.Info.Version)
	})

	t.Run("datasource health", func(t *testing.T) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var h struct {
				Status  string          `json:"status"`
				Message string          `json:"message"`
				Details json.RawMessage `json:"details"`
			}
			code, raw, _ := g.api("GET", "/api/datasources/uid/"+dsUID+"/health", nil, &h)
			if code == 200 && h.Status == "OK" {
				t.Logf("health: %s", h.Message)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("datasource health not OK after 60 s: HTTP %d %s", code, raw)
			}
			time.Sleep(time.Second)
		}
	})

	count := func(expr string) (float64, error) {
		r, _, err := g.query("now-6h", "now", map[string]any{"expr": expr, "queryType": "instant"})
		if err != nil {
			return 0, err
		}
		var v float64
		for _, f := range r.Frames {
			for i, fl := range f.Schema.Fields {
				if fl.Type == "number" && i < len(f.Data.Values) && len(f.Data.Values[i]) > 0 {
					if x, ok := f.Data.Values[i][0].(float64); ok {
						v += x
					}
				}
			}
		}
		return v, nil
	}
	waitCount := func(t *testing.T, expr string, want int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := count(expr)
			if err == nil && int64(got) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v (%v), want %d after %s", expr, got, err, want, within)
			}
			time.Sleep(time.Second)
		}
	}

	t.Run("catch-up stores every entry once", func(t *testing.T) {
		t0 := time.Now()
		waitCount(t, `sum(count_over_time({job="cosyvoice3"}[6h]))`, visible, 90*time.Second)
		tm.set("catch-up visible", "%d entries in %.1f s", visible, time.Since(t0).Seconds())
	})

	var newestError string
	t.Run("queries through /api/ds/query", func(t *testing.T) {
		r, took, err := g.query("now-3h", "now", map[string]any{"expr": `{job="cosyvoice3"} |= "error"`, "queryType": "range", "maxLines": 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Frames) != 1 || r.Frames[0].Schema.Meta.Type != "log-lines" || r.Frames[0].rows() != 100 {
			t.Fatalf("log query: want one log-lines frame of 100 rows, got %+v", summary(r))
		}
		for i, fl := range r.Frames[0].Schema.Fields {
			if fl.Name == "body" {
				newestError = fmt.Sprint(r.Frames[0].Data.Values[i][0])
			}
		}
		tm.set("log query (100 lines)", "%d ms", took.Milliseconds())

		r, took, err = g.query("now-3h", "now", map[string]any{"expr": `sum by (level) (rate({job="cosyvoice3"}[5m]))`, "queryType": "range", "intervalMs": 60000, "maxDataPoints": 300})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Frames) < 2 || r.Frames[0].Schema.Meta.Type != "timeseries-multi" || r.Frames[0].rows() == 0 {
			t.Fatalf("range query: want timeseries-multi frames by level, got %+v", summary(r))
		}
		tm.set("range metric query", "%d ms, %d series", took.Milliseconds(), len(r.Frames))

		r, took, err = g.query("now-6h", "now", map[string]any{"expr": `sum(count_over_time({job="cosyvoice3"} |= "CUDA out of memory" [6h]))`, "queryType": "instant"})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Frames) != 1 || r.Frames[0].Schema.Meta.Type != "numeric-multi" {
			t.Fatalf("instant query: want one numeric-multi frame, got %+v", summary(r))
		}
		if got, _ := count(`sum(count_over_time({job="cosyvoice3"} |= "CUDA out of memory" [6h]))`); int64(got) != visibleOOM {
			t.Errorf("OOM count %v, want the sample's %d", got, visibleOOM)
		}
		tm.set("instant query", "%d ms", took.Milliseconds())
	})

	// The panel that shows lines without a timestamp apart has none yet:
	// those files are held back until the live phase.
	t.Run("dashboard panels", func(t *testing.T) {
		checkDashboard(t, g, tm, regexp.MustCompile(`access\|startup`))
	})

	t.Run("resources through Grafana's proxy", func(t *testing.T) {
		res := "/api/datasources/uid/" + dsUID + "/resources/"
		end := time.Now()
		start := end.Add(-6 * time.Hour)
		rng := fmt.Sprintf("start=%d&end=%d", start.UnixNano(), end.UnixNano())
		for _, c := range []struct{ path, want string }{
			{"labels?" + rng, `"job"`},
			{"label/job/values?" + rng, `"cosyvoice3"`},
			{"label/level/values?" + rng, `"error"`},
			{"series?" + rng + "&match[]=" + url.QueryEscape(`{job="cosyvoice3"}`), `"filename"`},
			{"index/stats?" + rng + "&query=" + url.QueryEscape(`{job="cosyvoice3"}`), `"entries"`},
			{"index/stats?" + rng + "&query=" + url.QueryEscape(`sum by (level) (rate({job="cosyvoice3"}[5m]))`), `"entries"`},
		} {
			code, raw, err := g.api("GET", res+c.path, nil, nil)
			if err != nil || code != 200 || !strings.Contains(string(raw), c.want) {
				t.Errorf("GET %s: HTTP %d %v %.300s (want %s)", c.path, code, err, raw, c.want)
			}
		}
	})

	t.Run("Grafana's Loki datasource on Lokal's resources URL", func(t *testing.T) { lokiDatasourceChecks(t, g) })

	watcher := watchRules(t, g)
	defer watcher.close()

	var badQuery [2]time.Time // when the browser check sent a malformed query
	if chromium := findChromium(); chromium == "" {
		t.Log("browser checks skipped: no chromium (apt-get install chromium)")
	} else {
		t.Run("browser", func(t *testing.T) { badQuery = browserChecks(t, g, chromium, art, newestError, tm) })
	}

	t.Run("no-logs rule fires on a quiet service", func(t *testing.T) {
		at, ok := watcher.waitState(silentRule, "firing", 150*time.Second)
		if !ok {
			t.Fatalf("%q never fired; transitions %v", silentRule, watcher.transitions())
		}
		tm.set("no-logs rule firing", "%.0f s after Grafana started", at.Sub(began).Seconds())
	})

	// Live phase: the held-back files arrive, the service writes again,
	// and an OOM burst comes in.
	must(t, os.Rename(held, filepath.Join(logs, "backlog")))
	// The service writes again: a plain line every 200 ms (the sample's
	// live writer also writes OOM bursts, which would fire the OOM rule by
	// themselves).
	liveCtx, stopLive := context.WithCancel(context.Background())
	liveDone := make(chan int64, 1)
	go func() {
		var n int64
		defer func() { liveDone <- n }()
		p := filepath.Join(logs, "live", "host-e2e", "cosyvoice.log")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Errorf("live writer: %v", err)
			return
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Errorf("live writer: %v", err)
			return
		}
		defer f.Close()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-liveCtx.Done():
				return
			case now := <-tick.C:
				if _, err := fmt.Fprintf(f, "[INFO] %s Inference finished: mode=sft text_len=%d e2e heartbeat seq=e2e-%d\n", now.UTC().Format(time.RFC3339Nano), 10+n%300, n); err != nil {
					t.Errorf("live writer: %v", err)
					return
				}
				n++
			}
		}
	}()
	var extra int64 // lines the test writes itself
	oomFile := filepath.Join(logs, "burst", "cosyvoice.log")
	must(t, os.MkdirAll(filepath.Dir(oomFile), 0o755))
	appendLines := func(lines ...string) {
		f, err := os.OpenFile(oomFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		must(t, err)
		defer f.Close()
		_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
		must(t, err)
		extra += int64(len(lines))
	}

	t.Run("live tail through Grafana Live", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		marker := fmt.Sprintf("lokal-e2e-live-%d", time.Now().UnixNano())
		lines := make(chan string, 1000)
		if err := g.liveTail(ctx, `{job="cosyvoice3"} |= "lokal-e2e-live"`, lines); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // the subscription reaches the plugin
		sent := time.Now()
		appendLines(fmt.Sprintf("[INFO] %s live tail check %s", time.Now().UTC().Format(time.RFC3339Nano), marker))
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("live tail: connection closed before the line arrived")
				}
				if strings.HasPrefix(l, "ERROR ") {
					t.Fatalf("live tail: %s", l)
				}
				if strings.Contains(l, marker) {
					tm.set("live tail", "appended line arrived after %d ms", time.Since(sent).Milliseconds())
					return
				}
			case <-ctx.Done():
				t.Fatal("live tail: the appended line did not arrive within 30 s")
			}
		}
	})

	t.Run("OOM rule: Normal, Pending, Firing, Normal", func(t *testing.T) {
		// Evaluations come every minute, at a phase the API does not tell
		// exactly. Stamped 150 s before it is written, the burst is inside
		// the rule's [5m] window for the next two evaluations whatever
		// their phase (Pending, then Firing) and out of it 150 s after the
		// write, so the rule is Normal again within 210 s.
		r := g.rules(t)[oomRule]
		if r.State != "inactive" {
			t.Fatalf("rule %q is %s before the burst, want inactive (Normal)", oomRule, r.State)
		}
		stamp := time.Now().Add(-150 * time.Second)
		var burst []string
		for i := 0; i < 8; i++ {
			burst = append(burst, fmt.Sprintf("[ERROR] %s Inference failed: CUDA out of memory. Tried to allocate 2.00 GiB (e2e burst %d)",
				stamp.Add(time.Duration(i)*100*time.Millisecond).UTC().Format(time.RFC3339Nano), i))
		}
		wrote := time.Now()
		appendLines(burst...)
		pending, ok := watcher.waitState(oomRule, "pending", 100*time.Second)
		if !ok {
			t.Fatalf("%q never went Pending after the burst; transitions %v", oomRule, watcher.transitions())
		}
		firing, ok := watcher.waitState(oomRule, "firing", 100*time.Second)
		if !ok {
			t.Fatalf("%q never went Firing after Pending", oomRule)
		}
		// Normal again at the first evaluation whose [5m] window no longer
		// holds the burst.
		normal, ok := watcher.waitState(oomRule, "inactive", time.Until(wrote.Add(230*time.Second)))
		if !ok {
			t.Fatalf("%q never went back to Normal; transitions %v", oomRule, watcher.transitions())
		}
		tm.set("OOM rule", "burst written; Pending after %.0f s, Firing after %.0f s, Normal after %.0f s (evaluation every 60 s)",
			pending.Sub(wrote).Seconds(), firing.Sub(wrote).Seconds(), normal.Sub(wrote).Seconds())
		if firing.Sub(wrote) > 2*time.Minute+10*time.Second {
			t.Errorf("Firing %.0f s after the burst: more than two evaluation intervals", firing.Sub(wrote).Seconds())
		}
		if _, ok := watcher.waitState(silentRule, "inactive", 5*time.Second); !ok {
			t.Errorf("%q did not return to Normal once logs flowed again", silentRule)
		}
	})

	watcher.mu.Lock()
	evalErrors := append([]string(nil), watcher.errors...)
	watcher.mu.Unlock()
	if len(evalErrors) > 0 {
		t.Errorf("alert rule evaluation errors: %v", dedupe(evalErrors))
	}

	t.Run("dashboard panels, backlog and live lines included", func(t *testing.T) { checkDashboard(t, g, tm, nil) })

	stopLive()
	live := <-liveDone
	total := visible + heldEntries + live + extra

	t.Run("Grafana killed with SIGKILL, then restarted", func(t *testing.T) {
		waitCount(t, `sum(count_over_time({job="cosyvoice3"}[6h]))`, total, 60*time.Second)
		pids := pluginPids()
		if len(pids) == 0 {
			t.Fatal("no plugin process found")
		}
		g.stop(true)
		deadline := time.Now().Add(15 * time.Second)
		for len(pluginPids()) > 0 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if left := pluginPids(); len(left) > 0 {
			t.Errorf("plugin process(es) %v still run 15 s after Grafana was killed: they hold the store's lock", left)
			for _, p := range left {
				if proc, err := os.FindProcess(p); err == nil {
					_ = proc.Kill()
				}
			}
		} else {
			tm.set("plugin after SIGKILL of Grafana", "exited within %.1f s", 15-time.Until(deadline).Seconds())
		}
		t0 := time.Now()
		g.start(t)
		waitCount(t, `sum(count_over_time({job="cosyvoice3"}[6h]))`, total, 60*time.Second)
		tm.set("restart after SIGKILL", "all %d entries answered, once each, %.1f s after the restart", total, time.Since(t0).Seconds())
		if r := g.rules(t); r[oomRule].Health == "error" || r[silentRule].Health == "error" {
			t.Errorf("rules after restart: %+v", r)
		}
	})

	g.stop(false)
	// Grafana's own log about the plugin: no errors, and no warnings but the
	// expected one for an unsigned plugin.
	logText, _ := os.ReadFile(filepath.Join(run, "grafana.out"))
	var bad []string
	for _, l := range strings.Split(string(logText), "\n") {
		if !strings.Contains(l, pluginID) && !strings.Contains(l, "gpx_lokal") {
			continue
		}
		switch {
		case !strings.Contains(l, "level=error") && !strings.Contains(l, "level=warn"):
		case strings.Contains(l, "unsigned"):
			// the expected notice for an unsigned plugin
		case strings.Contains(l, "/api/gnet/"):
			// Grafana asks grafana.com about the plugin; no internet here
		case strings.Contains(l, "endpoint=queryData") && within(l, badQuery):
			// the browser check's deliberately malformed query, rejected
		default:
			bad = append(bad, l)
		}
	}
	must(t, os.WriteFile(filepath.Join(art, "grafana.log"), logText, 0o644))
	if len(bad) > 0 {
		t.Errorf("Grafana's log has %d error/warning lines about the plugin, e.g.:\n%s", len(bad), strings.Join(bad[:min(len(bad), 5)], "\n"))
	}
	tm.set("whole check", "%.0f s", time.Since(began).Seconds())
	keys := make([]string, 0, len(tm.m))
	for k := range tm.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%-34s %s\n", k, tm.m[k])
	}
	t.Logf("summary:\n%s", sb.String())
	_ = os.WriteFile(filepath.Join(art, "summary.txt"), []byte(sb.String()), 0o644)
}

// logTime is the time of a line in Grafana's log.
var logTime = regexp.MustCompile(`t=(\S+Z)`)

// checkDashboard runs every LogQL panel of the provisioned dashboard as
// Grafana's frontend sends it and wants data from each, except from panels
// whose query matches mayBeEmpty.
func checkDashboard(t *testing.T, g *grafana, tm *timings, mayBeEmpty *regexp.Regexp) {
	var found []struct {
		UID   string `json:"uid"`
		Title string `json:"title"`
	}
	code, raw, err := g.api("GET", "/api/search?query=", nil, &found)
	if err != nil || code != 200 {
		t.Fatalf("search: HTTP %d %v %s", code, err, raw)
	}
	ok := false
	for _, d := range found {
		ok = ok || d.UID == dashboardUID
	}
	if !ok {
		t.Fatalf("provisioned dashboard %s not found: %s", dashboardUID, raw)
	}
	var dash struct {
		Dashboard struct {
			Templating struct {
				List []struct {
					Name     string `json:"name"`
					Type     string `json:"type"`
					AllValue string `json:"allValue"`
					Current  struct {
						Value any `json:"value"`
					} `json:"current"`
					Query any `json:"query"`
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				Title   string           `json:"title"`
				Type    string           `json:"type"`
				Targets []map[string]any `json:"targets"`
			} `json:"panels"`
		} `json:"dashboard"`
	}
	if code, raw, err := g.api("GET", "/api/dashboards/uid/"+dashboardUID, nil, &dash); err != nil || code != 200 {
		t.Fatalf("dashboard: HTTP %d %v %s", code, err, raw)
	}
	// Dashboard variables are resolved by Grafana's frontend before a
	// query is sent: "All" becomes its allValue, a text box its value.
	vars := map[string]string{}
	for _, v := range dash.Dashboard.Templating.List {
		switch cur := v.Current.Value.(type) {
		case string:
			vars[v.Name] = cur
		case []any:
			if len(cur) == 1 && fmt.Sprint(cur[0]) == "$__all" {
				vars[v.Name] = v.AllValue
			}
		}
		if vars[v.Name] == "$__all" {
			vars[v.Name] = v.AllValue
		}
	}
	n := 0
	for _, p := range dash.Dashboard.Panels {
		for _, q := range p.Targets {
			expr, _ := q["expr"].(string)
			if expr == "" {
				continue
			}
			for name, val := range vars {
				expr = strings.ReplaceAll(expr, "${"+name+"}", val)
				expr = strings.ReplaceAll(expr, "$"+name, val)
			}
			q["expr"] = expr
			q["intervalMs"], q["maxDataPoints"] = 30000, 500
			r, took, err := g.query("now-3h", "now", q)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			rows := 0
			for _, f := range r.Frames {
				rows += f.rows()
			}
			if rows == 0 && (mayBeEmpty == nil || !mayBeEmpty.MatchString(expr)) {
				t.Errorf("panel %q (%s) returned no data: %+v", p.Title, expr, summary(r))
			}
			n++
			t.Logf("panel %q: %d frames, %d rows, %d ms", p.Title, len(r.Frames), rows, took.Milliseconds())
		}
	}
	if n == 0 {
		t.Fatal("the dashboard has no LogQL panel")
	}
	tm.set("dashboard", "%d panel queries returned data", n)
}

// within reports that a Grafana log line was written during span.
func within(l string, span [2]time.Time) bool {
	m := logTime.FindStringSubmatch(l)
	if m == nil || span[0].IsZero() {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	return err == nil && !at.Before(span[0].Add(-time.Second)) && !at.After(span[1].Add(time.Second))
}

func summary(r queryResult) []string {
	var s []string
	for _, f := range r.Frames {
		s = append(s, fmt.Sprintf("%s(%s, %d rows)", f.Schema.Name, f.Schema.Meta.Type, f.rows()))
	}
	return s
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var seqRE = regexp.MustCompile(`"?seq"?[=:](\d+)\b`)

// exploreURL is Explore's URL state for one Lokal query.
func exploreURL(base, expr, queryType, from string) string {
	panes := map[string]any{"a": map[string]any{
		"datasource": dsUID,
		"queries": []any{map[string]any{
			"refId": "A", "expr": expr, "queryType": queryType,
			"datasource": map[string]string{"type": pluginID, "uid": dsUID},
		}},
		"range": map[string]string{"from": from, "to": "now"},
	}}
	b, _ := json.Marshal(panes)
	return base + "/explore?schemaVersion=1&orgId=1&panes=" + url.QueryEscape(string(b))
}

// browserChecks opens the real Grafana UI as a user would and keeps a
// screenshot of each page in art.
// It returns when it showed the editor a malformed query, which Grafana
// then logs as a failed request.
func browserChecks(t *testing.T, g *grafana, chromium, art, newestError string, tm *timings) (badQuery [2]time.Time) {
	profile := t.TempDir()
	b, err := startBrowser(context.Background(), chromium, profile)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	must(t, b.navigate(g.base+"/login"))
	must(t, b.waitFor(`document.readyState === "complete"`, 60*time.Second))
	var status int
	must(t, b.eval(fmt.Sprintf(`fetch("/login", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({user: %q, password: %q})}).then(r => r.status)`, adminUser, adminPass), &status))
	if status != 200 {
		t.Fatalf("login: HTTP %d", status)
	}
	b.takeErrors()
	// The newest error line's seq number: Explore shows it as written
	// (seq=N) or, for a JSON line, pretty-printed ("seq": N).
	snippet := seqRE.FindStringSubmatch(newestError)
	if snippet == nil {
		t.Fatalf("the newest error line has no seq number: %q", newestError)
	}
	pages := []struct {
		name, url, ready string
	}{
		{"explore-logs", exploreURL(g.base, `{job="cosyvoice3"} |= "error"`, "range", "now-3h"),
			fmt.Sprintf(`document.body.innerText.includes("Logs volume") && document.body.innerText.includes(%q)`, snippet[1])},
		{"explore-metrics", exploreURL(g.base, `sum by (level) (rate({job="cosyvoice3"}[5m]))`, "range", "now-3h"),
			`document.querySelectorAll("canvas").length > 0 && document.body.innerText.includes("info")`},
		{"dashboard", g.base + "/d/" + dashboardUID + "?orgId=1&from=now-3h&to=now",
			`document.querySelectorAll("canvas").length >= 2 && document.body.innerText.includes("CUDA")`},
		{"editor-syntax-error", exploreURL(g.base, `{job="cosyvoice3"} |= `, "range", "now-1h"),
			`document.querySelector(".squiggly-error") !== null`},
		{"datasource-settings", g.base + "/connections/datasources/edit/" + dsUID,
			`document.body.innerText.includes("scrape") || document.body.innerText.includes("Scrape")`},
		// The rules are listed under their folder, collapsed: open it as a
		// user would.
		{"alert-list", g.base + "/alerting/list?view=list",
			`(() => { document.querySelectorAll('main [aria-expanded="false"]').forEach((b) => b.click()); ` +
				`return document.body.innerText.includes("CUDA out of memory") && document.body.innerText.includes("No logs for 10 minutes"); })()`},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			t0 := time.Now()
			if p.name == "editor-syntax-error" {
				defer func() { badQuery = [2]time.Time{t0, time.Now()} }()
			}
			must(t, b.navigate(p.url))
			err := b.waitFor(p.ready, 60*time.Second)
			// Let late panels and the log volume finish drawing.
			time.Sleep(2 * time.Second)
			shot := filepath.Join(art, p.name+".png")
			if serr := b.screenshot(shot); serr != nil {
				t.Errorf("screenshot: %v", serr)
			}
			if err != nil {
				t.Errorf("%s: %v (screenshot %s)", p.name, err, shot)
			}
			tm.set("page "+p.name, "ready in %.1f s", time.Since(t0).Seconds())
			var ours []string
			for _, e := range b.takeErrors() {
				t.Logf("browser console: %s", e)
				switch {
				case !strings.Contains(strings.ToLower(e), "lokal"):
				case strings.Contains(e, "/api/gnet/"):
					// Grafana asks grafana.com about every plugin; no internet here.
				case p.name == "editor-syntax-error" && strings.Contains(e, "/api/ds/query") && strings.Contains(e, "400"):
					// the deliberately malformed query is rejected: as it should be
				default:
					ours = append(ours, e)
				}
			}
			if len(ours) > 0 {
				t.Errorf("browser errors about the plugin: %v", ours)
			}
		})
	}
	return badQuery
}
