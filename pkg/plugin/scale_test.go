//go:build linux

package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/sample"
)

// Issue 12's measurements of the plugin process at scale, through the real
// plugin binary over gRPC as Grafana drives it. Both need a corpus:
//
//	../shared/bin/loggen -out /tmp/corpus1g -size 1GiB -span 168h -needles 20 -seed 1
//	LOKAL_SCALE_CORPUS=/tmp/corpus1g go test -run 'PluginColdStart|DashboardLoad' -v -timeout 1h ./pkg/plugin
//
// LOKAL_SCALE_DATA names a data directory to keep the plugin's store in
// between runs (the catch-up then happens once); LOKAL_LOAD_DURATION sets
// how long the load runs (default 60s). They report numbers with t.Log and
// assert only correctness, never speed.
const (
	scaleCorpusEnv   = "LOKAL_SCALE_CORPUS"
	scaleDataEnv     = "LOKAL_SCALE_DATA"
	loadDurationEnv  = "LOKAL_LOAD_DURATION"
	liveBytesPerSec  = 5e6 // issue 12: a live 5 MB/s stream
	liveChunkEvery   = 20 * time.Millisecond
	probeEvery       = 250 * time.Millisecond
	loadViewers      = 4
	dashboardRefresh = 10 * time.Second
)

// scaleSetup is a built plugin, a corpus and a data directory whose store
// holds the corpus (caught up once, then reused).
type scaleSetup struct {
	bin, corpus, live, data string
	pc                      backend.PluginContext
}

func newScaleSetup(t *testing.T) *scaleSetup {
	t.Helper()
	if testing.Short() {
		t.Skip("scale measurements build the plugin and read a large corpus; skipped with -short")
	}
	corpus, err := filepath.Abs(testshared.EnvDir(t, scaleCorpusEnv, "set "+scaleCorpusEnv+" to a directory of logs (e.g. from ../shared/bin/loggen -size 1GiB -span 168h) to measure the plugin at scale"))
	if err != nil {
		t.Fatal(err)
	}
	if testshared.LogBytes(t, corpus) == 0 {
		t.Fatalf("no *.log under %s", corpus)
	}
	tmp := t.TempDir()
	data := os.Getenv(scaleDataEnv)
	if data == "" {
		data = filepath.Join(tmp, "data")
	}
	live := filepath.Join(tmp, "live") // fresh each run: a new live stream
	for _, d := range []string{data, live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The corpus's files with the labels its manifest gives them (the
	// dashboard selects by instance), or one glob.
	statics := []any{}
	if m, err := sample.ReadManifest(corpus); err == nil {
		for _, f := range m.Files {
			ls := map[string]string{"job": "cosyvoice3", "__path__": filepath.Join(corpus, filepath.FromSlash(f.Path))}
			for k, v := range f.Labels {
				if k != "filename" {
					ls[k] = v
				}
			}
			statics = append(statics, map[string]any{"labels": ls})
		}
	}
	if len(statics) == 0 {
		statics = append(statics, map[string]any{"labels": map[string]string{"job": "cosyvoice3", "__path__": filepath.Join(corpus, "**", "*.log")}})
	}
	statics = append(statics, map[string]any{"labels": map[string]string{"job": "cosyvoice3", "instance": "live:1", "__path__": filepath.Join(live, "*.log")}})
	jsonData, _ := json.Marshal(map[string]any{
		"storage":        map[string]any{"path": "scale", "retention": "0s", "max_bytes": "0"},
		"scrape_configs": []any{map[string]any{"job_name": "cosyvoice3", "static_configs": statics}},
	})
	s := &scaleSetup{
		bin: buildPlugin(t, tmp), corpus: corpus, live: live, data: data,
		pc: backend.PluginContext{OrgID: 1, PluginID: "lokal-logql-datasource", DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: "scale", Name: "Lokal", JSONData: jsonData, Updated: time.Unix(1700000000, 0),
		}},
	}
	return s
}

// caughtUpStore starts the plugin on the data directory, waits until its
// store holds the whole corpus and the head is flushed, and stops it.
func (s *scaleSetup) caughtUpStore(ctx context.Context, t *testing.T) health {
	t.Helper()
	p := s.start(t)
	s.caughtUp(ctx, t, p)
	time.Sleep(5 * time.Second) // let the head flush and a compaction settle, as before a real restart
	h := s.health(ctx, t, p)
	t.Logf("store: %d entries in %d bytes", h.Store.Entries, h.Store.StoredBytes)
	p.client.Kill()
	return h
}

// freshCopy copies the data directory, so that a run's live stream does
// not stay in the store LOKAL_SCALE_DATA keeps for the next run.
func (s *scaleSetup) freshCopy(t *testing.T) {
	t.Helper()
	if os.Getenv(scaleDataEnv) == "" {
		return // already a temporary directory
	}
	dst := filepath.Join(t.TempDir(), "data")
	err := filepath.WalkDir(s.data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.data, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the store: %v", err)
	}
	s.data = dst
}

func (s *scaleSetup) start(t *testing.T) *pluginProc {
	return startPlugin(t, s.bin, s.corpus+","+s.live, s.data)
}

// health is the part of CheckHealth's details the scale tests read.
type health struct {
	BytesRead int64 `json:"bytesRead"`
	Store     struct {
		To          time.Time `json:"to"`
		Entries     int64     `json:"entries"`
		StoredBytes int64     `json:"storedBytes"`
	} `json:"store"`
}

func (s *scaleSetup) health(ctx context.Context, t *testing.T, p *pluginProc) health {
	t.Helper()
	d, err := s.checkHealth(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkHealth is the plugin's health details. Grafana's health check does
// not wait for a query slot, so it sees the store while queries queue.
func (s *scaleSetup) checkHealth(ctx context.Context, p *pluginProc) (health, error) {
	var d health
	h, err := p.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(s.pc)})
	if err != nil {
		return d, fmt.Errorf("CheckHealth: %w", err)
	}
	if err := json.Unmarshal(h.JsonDetails, &d); err != nil {
		return d, fmt.Errorf("health details %s: %w", h.JsonDetails, err)
	}
	return d, nil
}

// caughtUp waits until the plugin has read everything there is: its byte
// count has not moved for 3 s and the store holds entries.
func (s *scaleSetup) caughtUp(ctx context.Context, t *testing.T, p *pluginProc) health {
	t.Helper()
	began := time.Now()
	var last health
	still := 0
	for still < 12 {
		select {
		case <-ctx.Done():
			t.Fatalf("catch-up did not finish: read %d bytes", last.BytesRead)
		case <-time.After(250 * time.Millisecond):
		}
		h := s.health(ctx, t, p)
		if h.BytesRead == last.BytesRead && h.Store.Entries > 0 {
			still++
		} else {
			still = 0
		}
		last = h
	}
	if last.BytesRead > 0 {
		el := time.Since(began) - 3*time.Second
		t.Logf("catch-up: %d bytes in %s = %.0f MB/s, plugin peak RSS %.0f MB", last.BytesRead, el.Round(time.Millisecond),
			float64(last.BytesRead)/1e6/el.Seconds(), float64(procStatusKB(t, p.pid, "VmHWM"))/1024)
	}
	return last
}

// query sends one query as Grafana's /api/ds/query does and returns its
// wall time and the rows of its first frame.
// query runs one query through the plugin and returns how long it took,
// how long of that the engine ran it (the frame's "Summary: exec time"; the
// rest is mostly the wait for a query slot) and how many rows it answered.
func (s *scaleSetup) query(ctx context.Context, p *pluginProc, model string, from, to time.Time, interval time.Duration) (el, exec time.Duration, rows int, err error) {
	req := &backend.QueryDataRequest{PluginContext: s.pc, Queries: []backend.DataQuery{{
		RefID: "A", JSON: json.RawMessage(model), TimeRange: backend.TimeRange{From: from, To: to}, Interval: interval, MaxDataPoints: 1000,
	}}}
	began := time.Now()
	resp, err := p.data.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
	el = time.Since(began)
	if err != nil {
		return el, 0, 0, err
	}
	out, err := backend.FromProto().QueryDataResponse(resp)
	if err != nil {
		return el, 0, 0, err
	}
	r := out.Responses["A"]
	if r.Error != nil {
		return el, 0, 0, r.Error
	}
	for _, f := range r.Frames {
		n, _ := f.RowLen()
		rows += n
		if f.Meta == nil {
			continue
		}
		for _, st := range f.Meta.Stats {
			if st.DisplayName == "Summary: exec time" {
				exec = time.Duration(st.Value * float64(time.Second))
			}
		}
	}
	return el, exec, rows, nil
}

// procIO reads a field of /proc/<pid>/io (bytes).
func procIO(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		t.Skipf("no /proc io: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return n
		}
	}
	return 0
}

// TestPluginColdStart is Grafana (re)starting the plugin on a full store:
// the time from process start to the first answered query, with the page
// cache warm and (as root) dropped, and how many bytes the process read
// until then. Opening the store replays its manifest; it must not scan
// blocks, so the bytes read stay a small part of the store.
func TestPluginColdStart(t *testing.T) {
	s := newScaleSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	h := s.caughtUpStore(ctx, t)

	model := `{"expr":"{job=\"cosyvoice3\"} |= \"CUDA out of memory\"","maxLines":1000}`
	for i := 0; i < 4; i++ {
		cache := "warm page cache"
		if i%2 == 1 {
			if !dropPageCache() {
				continue
			}
			cache = "page cache dropped"
		}
		began := time.Now()
		p := s.start(t)
		started := time.Since(began)
		to := h.Store.To.Add(time.Second)
		_, _, rows, err := s.query(ctx, p, model, to.Add(-48*time.Hour), to, time.Minute)
		first := time.Since(began)
		if err != nil {
			t.Fatalf("first query after restart: %v", err)
		}
		if rows == 0 {
			t.Fatalf("first query after restart found no OOM lines in the last 48 h of the store")
		}
		read := procIO(t, p.pid, "rchar")
		t.Logf("restart %d (%s): process up in %s, first query (%d lines) answered %s after start; the process read %.1f MB (%.1f%% of the store)",
			i+1, cache, started.Round(time.Millisecond), rows, first.Round(time.Millisecond), float64(read)/1e6, 100*float64(read)/float64(h.Store.StoredBytes))
		// Reading the store's blocks to rebuild an index would read about
		// all of it; the manifest, the positions and the blocks one query
		// needs are a small part.
		if read > h.Store.StoredBytes/2 {
			t.Errorf("restart read %d bytes of a %d-byte store before answering: it scans blocks", read, h.Store.StoredBytes)
		}
		p.client.Kill()
	}
}

func dropPageCache() bool {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0) == nil
}

type panelQuery struct{ name, model string }

// dashboardPanelQueries reads the provisioned CosyVoice3 dashboard's panel
// queries, with its variables as a viewer who left them at their defaults
// sends them (instance: All, search: empty).
func dashboardPanelQueries(t *testing.T) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "provisioning", "dashboards", "cosyvoice3.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string            `json:"title"`
			Targets []json.RawMessage `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$instance", ".+", "$search", "")
	var models []panelQuery
	for _, pn := range d.Panels {
		for i, tg := range pn.Targets {
			models = append(models, panelQuery{name: fmt.Sprintf("%s/%c", pn.Title, 'A'+i), model: vars.Replace(string(tg))})
		}
	}
	if len(models) == 0 {
		t.Fatal("the dashboard has no panel queries")
	}
	return models
}

// liveTemplates are the cosyvoice.log lines of the corpus without their
// level and time ("[INFO] 2026-11-29T12:36:00Z "), so the live stream has
// the corpus's mix of messages; a synthetic mix when it has none.
func liveTemplates(t *testing.T, corpus string) (levels, msgs []string) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(corpus, "*", "cosyvoice.log"))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4<<20)
		n, _ := io.ReadFull(f, buf)
		f.Close()
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			// "[LEVEL] 2006-01-02T15:04:05Z message"
			lvl, rest, ok := strings.Cut(l, "] ")
			if !ok || !strings.HasPrefix(lvl, "[") || len(rest) < 21 || rest[20] != ' ' || rest[10] != 'T' {
				continue
			}
			levels, msgs = append(levels, lvl[1:]), append(msgs, rest[21:])
		}
		break
	}
	if len(msgs) < 100 {
		levels = []string{"INFO", "INFO", "DEBUG", "WARNING", "ERROR"}
		msgs = []string{"Inference finished: mode=zero_shot text_len=164 audio_len=26.56s rtf=0.253 elapsed=12317ms",
			"Loading speaker embedding spk_id=sichuan_male", "flow matching step 1/10, cfg=0.7",
			"Sample rate 44100Hz resampled to 22050Hz", "Inference failed: CUDA out of memory. Tried to allocate 2.94 GiB"}
	}
	return levels, msgs
}

// liveLine appends template i, stamped now, with a sequence number.
func liveLine(b []byte, now time.Time, levels, msgs []string, i int, seq int64) []byte {
	b = append(b, '[')
	b = append(b, levels[i]...)
	b = append(b, "] "...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05Z ")
	b = append(b, msgs[i]...)
	b = append(b, " seq="...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, '\n')
}

// liveWriter appends liveBytesPerSec to a file in chunks and, every
// probeEvery, a line with a unique probe token whose write time it records.
type liveWriter struct {
	levels []string
	msgs   []string
	mu     sync.Mutex
	probes []time.Time // write time of probe i
	// probeLines is how many lines were written up to and with probe i.
	probeLines []int64
	written    int64
}

func (w *liveWriter) run(ctx context.Context, path, runID string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	perChunk := int64(liveBytesPerSec * liveChunkEvery / time.Second)
	tick := time.NewTicker(liveChunkEvery)
	defer tick.Stop()
	var seq int64
	nextProbe := time.Now()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			buf = buf[:0]
			for int64(len(buf)) < perChunk {
				seq++
				buf = liveLine(buf, now, w.levels, w.msgs, int(seq)%len(w.msgs), seq)
			}
			probe := -1
			if !now.Before(nextProbe) {
				w.mu.Lock()
				probe = len(w.probes)
				w.mu.Unlock()
				buf = now.UTC().AppendFormat(buf, "[INFO] 2006-01-02T15:04:05Z ")
				buf = fmt.Appendf(buf, "lag probe lagprobe%sx%d written\n", runID, probe)
				nextProbe = nextProbe.Add(probeEvery)
			}
			if _, err := f.Write(buf); err != nil {
				return err
			}
			w.mu.Lock()
			if probe >= 0 {
				w.probes = append(w.probes, time.Now())
				w.probeLines = append(w.probeLines, seq+int64(probe)+1)
			}
			w.written += int64(len(buf))
			w.mu.Unlock()
		}
	}
}

// followProbes polls seen, every so often, with the newest probe until it
// reports the probe seen, then with the next newest, until ctx ends. An
// error of seen ends it, unless ctx ended.
func (w *liveWriter) followProbes(ctx context.Context, every time.Duration, seen func(i int, written time.Time, lines int64) (bool, error)) error {
	last := -1
	for ctx.Err() == nil {
		i, written, lines := w.newestProbe()
		if i <= last {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		last = i
		for ctx.Err() == nil {
			ok, err := seen(i, written, lines)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if ok {
				break
			}
			time.Sleep(every)
		}
	}
	return nil
}

// newestProbe is the last probe written (-1 when none yet), when, and
// how many lines had been written with it.
func (w *liveWriter) newestProbe() (int, time.Time, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.probes) == 0 {
		return -1, time.Time{}, 0
	}
	n := len(w.probes) - 1
	return n, w.probes[n], w.probeLines[n]
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// TestDashboardLoad is issue 12's load mode: 4 viewers refresh the
// provisioned CosyVoice3 dashboard (every panel query, over its default last
// 6 h) and Explore's first page every 10 s while the plugin tails a live
// 5 MB/s stream on top of the full store. It reports query latency
// percentiles (and how much of it the engine ran, the rest being the wait
// for a query slot), the ingest lag (a probe line written → in the store,
// seen without a query slot; and → found by a query, with that query's
// wait apart) and the plugin's CPU and RSS.
func TestDashboardLoad(t *testing.T) {
	s := newScaleSetup(t)
	dur := time.Minute
	if v := os.Getenv(loadDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", loadDurationEnv, v, err)
		}
		dur = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute+dur)
	defer cancel()
	s.caughtUpStore(ctx, t)
	s.freshCopy(t)
	p := s.start(t)
	h0 := s.caughtUp(ctx, t, p)
	before := h0.BytesRead
	panels := dashboardPanelQueries(t)
	explore := panelQuery{"Explore first page", `{"expr":"{job=\"cosyvoice3\"}","maxLines":1000,"queryType":"range","direction":"backward"}`}

	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var w liveWriter
	w.levels, w.msgs = liveTemplates(t, s.corpus)
	loadCtx, stopLoad := context.WithTimeout(ctx, dur)
	defer stopLoad()
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		writeErr = w.run(loadCtx, filepath.Join(s.live, "cosyvoice-live.log"), runID)
	}()

	// Ingest lag, two ways. In the store: the newest probe, polled every
	// 25 ms through the health check (which takes no query slot) until the
	// store holds every line written up to it; the store's entries (blocks
	// and head) are what queries read, and only the live stream adds to
	// them during the load. By a query: the newest probe, polled every
	// 50 ms until a query finds it; that query waits for a slot behind the
	// panels' queries, so its wait is reported apart.
	var lags, queryLags, probeWaits []time.Duration
	var lagErr, storeLagErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		storeLagErr = w.followProbes(loadCtx, 25*time.Millisecond, func(_ int, written time.Time, lines int64) (bool, error) {
			h, err := s.checkHealth(loadCtx, p)
			if err != nil || h.Store.Entries-h0.Store.Entries < lines {
				return false, err
			}
			lags = append(lags, time.Since(written))
			return true, nil
		})
	}()
	go func() {
		defer wg.Done()
		lagErr = w.followProbes(loadCtx, 50*time.Millisecond, func(i int, written time.Time, _ int64) (bool, error) {
			model := fmt.Sprintf(`{"expr":"{job=\"cosyvoice3\", instance=\"live:1\"} |= \"lagprobe%sx%d \"","maxLines":1}`, runID, i)
			el, exec, rows, err := s.query(loadCtx, p, model, written.Add(-time.Minute), time.Now().Add(time.Minute), time.Second)
			if err != nil || rows == 0 {
				return false, err
			}
			queryLags = append(queryLags, time.Since(written))
			probeWaits = append(probeWaits, el-exec)
			return true, nil
		})
	}()

	// Viewers: each refreshes every panel (concurrently, as a browser sends
	// a request per panel) and Explore's first page every 10 s, staggered.
	var mu sync.Mutex
	var panelTimes, panelExec, panelWaits, exploreTimes []time.Duration
	byPanel, byPanelExec := map[string][]time.Duration{}, map[string][]time.Duration{}
	var inFlight, maxInFlight int
	var queryErrs []string
	for v := 0; v < loadViewers; v++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-loadCtx.Done():
				return
			case <-time.After(time.Duration(v) * dashboardRefresh / loadViewers):
			}
			for loadCtx.Err() == nil {
				to := time.Now()
				var vw sync.WaitGroup
				for _, m := range append(slices.Clone(panels), explore) {
					vw.Add(1)
					go func() {
						defer vw.Done()
						from, interval := to.Add(-6*time.Hour), 20*time.Second
						if m == explore {
							from, interval = to.Add(-time.Hour), 2*time.Second
						}
						mu.Lock()
						inFlight++
						maxInFlight = max(maxInFlight, inFlight)
						mu.Unlock()
						el, exec, _, err := s.query(ctx, p, m.model, from, to, interval)
						mu.Lock()
						inFlight--
						defer mu.Unlock()
						byPanel[m.name] = append(byPanel[m.name], el)
						switch {
						case err != nil:
							queryErrs = append(queryErrs, err.Error())
						case m == explore:
							exploreTimes = append(exploreTimes, el)
							byPanelExec[m.name] = append(byPanelExec[m.name], exec)
						default:
							panelTimes = append(panelTimes, el)
							panelExec = append(panelExec, exec)
							panelWaits = append(panelWaits, el-exec)
							byPanelExec[m.name] = append(byPanelExec[m.name], exec)
						}
					}()
				}
				vw.Wait()
				select {
				case <-loadCtx.Done():
				case <-time.After(time.Until(to.Add(dashboardRefresh))):
				}
			}
		}()
	}

	// The plugin's CPU over the run and its RSS, sampled each second.
	cpu0, began := procCPUTicks(t, p.pid), time.Now()
	var rssMax, rssSum float64
	samples := 0
	for loadCtx.Err() == nil {
		select {
		case <-loadCtx.Done():
		case <-time.After(time.Second):
			rss := float64(procStatusKB(t, p.pid, "VmRSS")) / 1024
			rssMax, rssSum, samples = max(rssMax, rss), rssSum+rss, samples+1
		}
	}
	cpu := float64(procCPUTicks(t, p.pid)-cpu0) / 100 / time.Since(began).Seconds()
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("live writer: %v", writeErr)
	}
	if lagErr != nil {
		t.Fatalf("lag probe query: %v", lagErr)
	}
	if storeLagErr != nil {
		t.Fatalf("lag probe health check: %v", storeLagErr)
	}
	if len(queryErrs) > 0 {
		// A query over its time limit is a figure of the load, not a test failure.
		t.Logf("⚠ %d queries failed under load, first: %s", len(queryErrs), queryErrs[0])
		for _, e := range queryErrs {
			if !strings.Contains(e, "timed out") {
				t.Errorf("query failed under load: %s", e)
			}
		}
	}
	if len(panelTimes) == 0 || len(lags) == 0 || len(queryLags) == 0 {
		t.Fatalf("the load produced no measurement: %d panel queries, %d lag probes in the store, %d found by a query", len(panelTimes), len(lags), len(queryLags))
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	t.Logf("load: %s, %d viewers × %d panel queries + Explore every %s; live stream %.1f MB/s written (%d probes, %d found)",
		dur, loadViewers, len(panels), dashboardRefresh, float64(w.written)/1e6/dur.Seconds(), len(w.probes), len(lags))
	pct := func(ds []time.Duration) string {
		return fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s", ms(percentile(ds, 50)), ms(percentile(ds, 95)), ms(percentile(ds, 99)), ms(percentile(ds, 100)))
	}
	t.Logf("panel queries (%d): %s", len(panelTimes), pct(panelTimes))
	t.Logf("  of which run by the engine (exec time): %s", pct(panelExec))
	t.Logf("  of which waiting for a query slot (and gRPC): %s", pct(panelWaits))
	for _, m := range append(panels, explore) {
		ds, ex := byPanel[m.name], byPanelExec[m.name]
		t.Logf("  %-58s n=%3d p50 %8s p95 %8s max %8s | exec p50 %8s p95 %8s", m.name, len(ds), ms(percentile(ds, 50)), ms(percentile(ds, 95)), ms(percentile(ds, 100)),
			ms(percentile(ex, 50)), ms(percentile(ex, 95)))
	}
	t.Logf("Explore first page (%d): p50 %s, p95 %s, p99 %s", len(exploreTimes),
		ms(percentile(exploreTimes, 50)), ms(percentile(exploreTimes, 95)), ms(percentile(exploreTimes, 99)))
	t.Logf("ingest lag (line written → in the store, queryable; %d probes seen by the health check, no query slot): %s", len(lags), pct(lags))
	t.Logf("lag probe queries (%d found): written → found %s", len(queryLags), pct(queryLags))
	t.Logf("  of which the finding query waited for a query slot: %s", pct(probeWaits))
	t.Logf("plugin: CPU %.0f%% of one core, at most %d queries in flight, RSS mean %.0f MB, max %.0f MB (peak %.0f MB)", 100*cpu, maxInFlight, rssSum/float64(max(samples, 1)), rssMax,
		float64(procStatusKB(t, p.pid, "VmHWM"))/1024)
	// Everything written must have been read: the lag probes prove it
	// reached queries, this that the tailer kept up to the end.
	deadline := time.Now().Add(30 * time.Second)
	for {
		h := s.health(ctx, t, p)
		if h.BytesRead-before >= w.written {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("30 s after the load the plugin had read %d of the %d live bytes", h.BytesRead-before, w.written)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
}
