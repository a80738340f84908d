package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configure a run.
type Options struct {
	// Corpus is a directory of log files (with a manifest.json from
	// pkg/sample or loggen when available). It must exist: the caller
	// generates one when the user named none.
	Corpus string
	// Work holds the store and config; it is emptied first.
	Work string
	// Lokal is the lokal binary the children run.
	Lokal string
	// Repo is the checkout, for the commit in the results.
	Repo string
	// Runs of each query (warm); the cold run is extra.
	Runs int
	// IdleWait is how long the idle instance runs before its RSS is read.
	IdleWait time.Duration
	// Log receives progress lines.
	Log io.Writer
}

// Results is everything a run measured; it is written as bench-results.json.
type Results struct {
	Machine Machine       `json:"machine"`
	Corpus  CorpusInfo    `json:"corpus"`
	Ingest  IngestResult  `json:"ingest"`
	Compact CompactResult `json:"compact"`
	Restart RestartResult `json:"restart"`
	Idle    IdleResult    `json:"idle"`
	Queries []QueryResult `json:"queries"`
	// QueryPeakRSSMB is the peak RSS of the process that ran the warm query set.
	QueryPeakRSSMB float64 `json:"query_peak_rss_mb"`
	ColdCache      string  `json:"cold_cache"`
	TotalSeconds   float64 `json:"total_s"`
}

// CorpusInfo describes the raw files.
type CorpusInfo struct {
	Dir    string `json:"dir"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
	Lines  int64  `json:"lines"`
	Needle string `json:"needle"`
	// SpanHours is the time the corpus covers, from its manifest (0: unknown).
	SpanHours float64 `json:"span_h,omitempty"`
}

// IngestResult is the catch-up of the whole corpus into a fresh store.
type IngestResult struct {
	Proc
	MBPerSec     float64 `json:"mb_per_s"`
	LinesPerSec  float64 `json:"lines_per_s"`
	StoreBytes   int64   `json:"store_bytes"`
	StoreRatio   float64 `json:"store_ratio"`
	PageCacheNot string  `json:"page_cache"`
}

// CompactResult is the recompaction after catch-up (stronger zstd level,
// small blocks merged).
type CompactResult struct {
	Proc
	StoreBytes int64   `json:"store_bytes"`
	StoreRatio float64 `json:"store_ratio"`
}

// RestartResult is the time from starting a process on the full store to
// its first answered query.
type RestartResult struct {
	FirstQueryMs float64 `json:"first_query_ms"`
}

// IdleResult is a following instance left alone.
type IdleResult struct {
	AfterSeconds float64 `json:"after_s"`
	RSSMB        float64 `json:"rss_mb"`
	CPUPercent   float64 `json:"cpu_percent"`
}

// QueryResult is one query of the set: warm and cold timings, and the grep
// baselines on the raw files.
type QueryResult struct {
	Query
	Results int     `json:"results"` // entries, series or samples returned
	Warm    Timing  `json:"warm"`
	FirstMs float64 `json:"first_ms"` // the first of the warm runs, before the block cache holds anything`
	Cold    *Timing `json:"cold,omitempty"`
	// PeakRSSMB is the peak RSS of a process that opened the store and ran
	// this query alone, once.
	PeakRSSMB float64    `json:"peak_rss_mb,omitempty"`
	Baselines []Baseline `json:"baselines,omitempty"`
	// Ratio is the grep baseline's median over ours (above 1: we are faster).
	Ratio float64 `json:"ratio_vs_grep,omitempty"`
	Error string  `json:"error,omitempty"`

	// FirstScannedBytes are the raw line bytes the first warm run decoded,
	// in FirstCPUMs of CPU time.
	FirstScannedBytes int64   `json:"first_scanned_bytes,omitempty"`
	FirstCPUMs        float64 `json:"first_cpu_ms,omitempty"`
}

// Run measures everything and returns the results.
func Run(ctx context.Context, o Options) (*Results, error) {
	began := time.Now()
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if o.Runs <= 0 {
		o.Runs = 5
	}
	if o.IdleWait <= 0 {
		o.IdleWait = 10 * time.Second
	}
	res := &Results{Machine: describeMachine(o.Repo)}
	files, total, err := corpusFiles(o.Corpus)
	if err != nil {
		return nil, fmt.Errorf("read corpus %s: %w", o.Corpus, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("corpus %s holds no files", o.Corpus)
	}
	lines, err := countLines(files)
	if err != nil {
		return nil, err
	}
	man := readManifest(o.Corpus)
	res.Corpus = CorpusInfo{Dir: o.Corpus, Files: len(files), Bytes: total, Lines: lines, Needle: man.needle()}
	if man.End.After(man.Start) && !man.Start.IsZero() {
		res.Corpus.SpanHours = man.End.Sub(man.Start).Hours()
	}
	if res.Corpus.Needle == "" {
		res.Corpus.Needle = "needle-0000000000000000" // a miss is still the needle workload
	}
	logf("corpus: %d files, %s, %d lines", len(files), mib(total), lines)

	if err := os.RemoveAll(o.Work); err != nil {
		return nil, fmt.Errorf("empty work dir: %w", err)
	}
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(o.Work, "lokal.json")
	storeDir := filepath.Join(o.Work, "store")
	if err := writeConfig(cfg, storeDir, o.Corpus, man); err != nil {
		return nil, err
	}
	env := []string{"GF_PLUGIN_ALLOWED_PATHS=" + o.Corpus, "GF_PLUGIN_DATA_PATH=" + o.Work}

	// 1. catch-up ingest (the files were just read to count lines: page cache warm)
	logf("ingest: lokal ingest into a fresh store…")
	p, err := runChildEnv(ctx, env, []string{o.Lokal, "ingest", "--config", cfg}, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	sb, err := dirBytes(storeDir)
	if err != nil {
		return nil, err
	}
	res.Ingest = IngestResult{Proc: p, StoreBytes: sb, PageCacheNot: "warm (raw files read just before)",
		MBPerSec: float64(total) / 1e6 / p.WallSeconds, LinesPerSec: float64(lines) / p.WallSeconds,
		StoreRatio: float64(sb) / float64(total)}
	logf("ingest: %.1f s, %.0f MB/s, peak RSS %.0f MB, store %.1f%% of raw", p.WallSeconds, res.Ingest.MBPerSec, p.PeakRSSMB, 100*res.Ingest.StoreRatio)

	// 1b. recompaction, which a running plugin does by itself once ingestion
	// is idle; the queries below run on the compacted store, as they would
	// on a plugin's.
	logf("compact: lokal compact…")
	cp, err := runChildEnv(ctx, env, []string{o.Lokal, "compact", "--config", cfg}, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	if sb, err = dirBytes(storeDir); err != nil {
		return nil, err
	}
	res.Compact = CompactResult{Proc: cp, StoreBytes: sb, StoreRatio: float64(sb) / float64(total)}
	logf("compact: %.1f s, store %.1f%% of raw", cp.WallSeconds, 100*res.Compact.StoreRatio)

	qs := QuerySet(res.Corpus.Needle)
	spec := filepath.Join(o.Work, "queries.json")
	if err := writeJSON(spec, qs); err != nil {
		return nil, err
	}
	// 2. cold: a fresh process after dropping the page cache, each query once
	dropped := dropCaches()
	res.ColdCache = "page cache dropped before the cold run"
	if !dropped {
		res.ColdCache = "page cache could not be dropped (not root or not Linux): cold numbers are a fresh process with a warm page cache"
	}
	// The worker runs without the engine's result cache on disk, so cold
	// is every block computed, never a restart that finds results kept.
	res.ColdCache += "; no block results on disk (the worker does not use the result cache)"
	logf("queries: cold run (%s)…", res.ColdCache)
	cold, _, err := runWorker(ctx, env, o.Lokal, cfg, spec, 1)
	if err != nil {
		return nil, fmt.Errorf("cold queries: %w", err)
	}
	res.Restart = RestartResult{FirstQueryMs: cold.FirstQueryMs}
	// 3. warm
	logf("queries: %d warm runs each…", o.Runs)
	warm, wp, err := runWorker(ctx, env, o.Lokal, cfg, spec, o.Runs)
	if err != nil {
		return nil, fmt.Errorf("warm queries: %w", err)
	}
	res.QueryPeakRSSMB = wp.PeakRSSMB
	// 3b. each query alone in its own process, for its own peak RSS
	logf("queries: each alone in a process, for its peak RSS…")
	alone, err := runEachAlone(ctx, env, o.Lokal, cfg, o.Work, qs)
	if err != nil {
		return nil, err
	}
	for i, q := range qs {
		qr := QueryResult{Query: q, PeakRSSMB: alone[i]}
		if i < len(warm.Queries) {
			qr.Results, qr.Warm, qr.FirstMs, qr.Error = warm.Queries[i].Results, warm.Queries[i].Timing, warm.Queries[i].FirstMs, warm.Queries[i].Error
			qr.FirstScannedBytes, qr.FirstCPUMs = warm.Queries[i].FirstScannedBytes, warm.Queries[i].FirstCPUMs
		}
		if i < len(cold.Queries) {
			t := cold.Queries[i].Timing
			qr.Cold = &t
		}
		// 4. baselines in the same run
		if len(q.Grep) > 0 {
			for _, tool := range []string{"grep", "rg"} {
				if _, err := exec.LookPath(tool); err != nil {
					continue
				}
				b, err := grepBaseline(ctx, tool, q.Grep, files, o.Runs)
				if err != nil {
					return nil, err
				}
				qr.Baselines = append(qr.Baselines, b)
			}
			if len(qr.Baselines) > 0 && qr.Warm.Median > 0 {
				qr.Ratio = qr.Baselines[0].Timing.Median / qr.Warm.Median
			}
		}
		res.Queries = append(res.Queries, qr)
	}
	// 5. idle
	logf("idle: following for %s…", o.IdleWait)
	idle, err := measureIdle(ctx, env, o.Lokal, cfg, o.IdleWait)
	if err != nil {
		return nil, fmt.Errorf("idle: %w", err)
	}
	res.Idle = idle
	res.TotalSeconds = time.Since(began).Seconds()
	return res, nil
}

func runChildEnv(ctx context.Context, env, argv []string, stdout io.Writer) (Proc, error) {
	return runChildWith(ctx, append(os.Environ(), env...), argv, stdout)
}

func runChildWith(ctx context.Context, env, argv []string, stdout io.Writer) (Proc, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	p := Proc{WallSeconds: time.Since(start).Seconds()}
	if cmd.ProcessState != nil {
		if cpu, rss, ok := childUsage(cmd.ProcessState); ok {
			p.CPUSeconds, p.PeakRSSMB = cpu, rss
		}
	}
	if err != nil {
		return p, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, lastLines(stderr.String(), 5))
	}
	return p, nil
}

// runWorker starts `lokal bench-worker` and decodes its report.
func runWorker(ctx context.Context, env []string, lokal, cfg, spec string, runs int) (*WorkerReport, Proc, error) {
	var out bytes.Buffer
	argv := []string{lokal, "bench-worker", "--config", cfg, "--queries", spec, "--runs", strconv.Itoa(runs),
		"--t0", strconv.FormatInt(time.Now().UnixNano(), 10)}
	p, err := runChildEnv(ctx, env, argv, &out)
	if err != nil {
		return nil, p, err
	}
	var r WorkerReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, p, fmt.Errorf("bench-worker report: %w", err)
	}
	return &r, p, nil
}

// runEachAlone runs each query once in a process of its own and returns
// each process's peak RSS.
func runEachAlone(ctx context.Context, env []string, lokal, cfg, work string, qs []Query) ([]float64, error) {
	peaks := make([]float64, len(qs))
	for i, q := range qs {
		spec := filepath.Join(work, "query-"+q.Name+".json")
		if err := writeJSON(spec, []Query{q}); err != nil {
			return nil, err
		}
		_, p, err := runWorker(ctx, env, lokal, cfg, spec, 1)
		if err != nil {
			return nil, fmt.Errorf("query %s alone: %w", q.Name, err)
		}
		// a query's own error is reported by the warm run
		peaks[i] = p.PeakRSSMB
	}
	return peaks, nil
}

// measureIdle runs `lokal tail` on the full store and samples its RSS and CPU.
func measureIdle(ctx context.Context, env []string, lokal, cfg string, wait time.Duration) (IdleResult, error) {
	cmd := exec.CommandContext(ctx, lokal, "tail", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return IdleResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	// settle first: start-up work is not idle work
	settle := wait / 5
	time.Sleep(settle)
	cpu0, err := procCPUSeconds(cmd.Process.Pid)
	if err != nil {
		return IdleResult{}, fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 3))
	}
	time.Sleep(wait - settle)
	cpu1, err := procCPUSeconds(cmd.Process.Pid)
	if err != nil {
		return IdleResult{}, fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 3))
	}
	rss, err := procRSSMB(cmd.Process.Pid)
	if err != nil {
		return IdleResult{}, err
	}
	return IdleResult{AfterSeconds: wait.Seconds(), RSSMB: rss, CPUPercent: 100 * (cpu1 - cpu0) / (wait - settle).Seconds()}, nil
}

func procRSSMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of pid %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// procCPUSeconds reads utime+stime; Linux reports them in clock ticks,
// which are 100 a second on every platform Go supports.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100, nil
}

func countLines(files []string) (int64, error) {
	var n int64
	buf := make([]byte, 1<<20)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		r := bufio.NewReaderSize(f, 1<<20)
		for {
			k, err := r.Read(buf)
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("read %s: %w", p, err)
			}
		}
		f.Close()
	}
	return n, nil
}

func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure store %s: %w", dir, err)
	}
	return n, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// manifest is the part of pkg/sample's and loggen's manifests we use.
type manifest struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Files []struct {
		Path   string            `json:"path"`
		Labels map[string]string `json:"labels"`
	} `json:"files"`
	Needles []struct {
		Token string `json:"token"`
	} `json:"needles"`
}

func readManifest(dir string) manifest {
	var m manifest
	if b, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func (m manifest) needle() string {
	if len(m.Needles) == 0 {
		return ""
	}
	return m.Needles[len(m.Needles)/2].Token
}

// writeConfig writes a datasource config for the corpus: one static config
// per file when a manifest names their labels, else one glob.
func writeConfig(path, storeDir, corpus string, m manifest) error {
	type staticConfig struct {
		Labels map[string]string `json:"labels"`
	}
	var statics []staticConfig
	for _, f := range m.Files {
		ls := map[string]string{"__path__": filepath.Join(corpus, filepath.FromSlash(f.Path))}
		for k, v := range f.Labels {
			if k != "filename" {
				ls[k] = v
			}
		}
		if ls["job"] == "" {
			ls["job"] = "cosyvoice3"
		}
		statics = append(statics, staticConfig{Labels: ls})
	}
	if len(statics) == 0 {
		statics = []staticConfig{{Labels: map[string]string{"job": "cosyvoice3", "__path__": filepath.Join(corpus, "**", "*.log")}}}
	}
	cfg := map[string]any{
		"storage":        map[string]any{"path": storeDir, "retention": "0s"},
		"scrape_configs": []any{map[string]any{"job_name": "bench", "static_configs": statics}},
	}
	return writeJSON(path, cfg)
}
