// Package bench measures Lokal the way its users compare it: catch-up
// ingest, restart, idle cost and a fixed query set, each beside grep on the
// raw files in the same run. It drives the lokal binary as child processes so
// that peak RSS and CPU time are those of one process doing one job.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Query is one entry of the fixed query set.
type Query struct {
	Name  string `json:"name"`
	Expr  string `json:"expr"`
	Kind  string `json:"kind"`            // logs, range, instant
	Limit int    `json:"limit,omitempty"` // log queries
	// Step for range queries; instant queries are evaluated at the end of the range.
	Step time.Duration `json:"step,omitempty"`
	// Window limits the query to the last Window of the store (0: the
	// store's whole time range). Queries a user runs over a fixed window
	// (Explore's last hour, a dashboard's 24 h) must not slow down as the
	// store grows.
	Window time.Duration `json:"window,omitempty"`
	// Grep is the baseline on the raw files: argv after "grep -r", "" for none.
	// Windowed queries have none: grep cannot pick a time range.
	Grep []string `json:"grep,omitempty"`
}

// QuerySet is the fixed set of issue 5 and, after it, issue 12's queries over
// a fixed window (Explore's first page, a dashboard's 24 h metrics); needle is
// a token planted in the corpus.
func QuerySet(needle string) []Query {
	sel := `{job="cosyvoice3"}`
	return []Query{
		{Name: "needle", Kind: "logs", Limit: 1000, Expr: sel + ` |= "` + needle + `"`, Grep: []string{"-F", "-c", needle}},
		{Name: "oom-limit-1000", Kind: "logs", Limit: 1000, Expr: sel + ` |= "CUDA out of memory"`, Grep: []string{"-F", "-c", "CUDA out of memory"}},
		{Name: "timeout-or-fail", Kind: "logs", Limit: 1000, Expr: sel + ` |~ "timeout|fail"`, Grep: []string{"-E", "-c", "timeout|fail"}},
		{Name: "error-count", Kind: "instant", Expr: `sum(count_over_time(` + sel + ` |= "error" [$__range]))`, Grep: []string{"-F", "-c", "error"}},
		{Name: "oom-count-25h", Kind: "instant", Expr: `sum(count_over_time(` + sel + ` |= "CUDA out of memory" [25h]))`, Grep: []string{"-F", "-c", "CUDA out of memory"}},
		{Name: "oom-count-over-time", Kind: "range", Step: 5 * time.Minute, Expr: `count_over_time(` + sel + ` |= "CUDA out of memory"[5m])`, Grep: []string{"-F", "-c", "CUDA out of memory"}},
		{Name: "rate-by-level", Kind: "range", Step: 5 * time.Minute, Expr: `sum by (level) (rate(` + sel + `[5m]))`, Grep: []string{"-c", ""}},
		{Name: "logfmt-duration", Kind: "logs", Limit: 1000, Expr: sel + ` |= "duration=" | logfmt | duration > 10s`, Grep: []string{"-F", "-c", "duration="}},
		{Name: "json-gpu-mem", Kind: "logs", Limit: 1000, Expr: sel + ` |= "mem_gib" | json | gpu_mem_gib > 20`, Grep: []string{"-F", "-c", "mem_gib"}},
		{Name: "line-format", Kind: "logs", Limit: 1000, Expr: sel + ` |= "Generating audio" | regexp "text_len=(?P<text_len>\\d+)" | line_format "{{.text_len}} chars"`, Grep: []string{"-F", "-c", "Generating audio"}},
		{Name: "topk-instance", Kind: "range", Step: 5 * time.Minute, Expr: `topk(3, sum by (instance) (rate(` + sel + `[5m])))`, Grep: []string{"-c", ""}},
		{Name: "explore-first-page", Kind: "logs", Limit: 1000, Window: time.Hour, Expr: sel},
		{Name: "volume-24h", Kind: "range", Step: 2 * time.Minute, Window: 24 * time.Hour, Expr: `sum by (level) (count_over_time(` + sel + `[2m]))`},
		{Name: "error-count-24h", Kind: "instant", Window: 24 * time.Hour, Expr: `sum(count_over_time(` + sel + ` |= "error" [$__range]))`},
	}
}

// Timing summarises repeated runs in milliseconds.
type Timing struct {
	Runs   int     `json:"runs"`
	Median float64 `json:"median_ms"`
	Min    float64 `json:"min_ms"`
	Max    float64 `json:"max_ms"`
}

// Summarise turns durations into a Timing.
func Summarise(ds []time.Duration) Timing {
	if len(ds) == 0 {
		return Timing{}
	}
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	sort.Float64s(ms)
	med := ms[len(ms)/2]
	if len(ms)%2 == 0 {
		med = (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
	}
	return Timing{Runs: len(ms), Median: med, Min: ms[0], Max: ms[len(ms)-1]}
}

// Proc is what one child process cost.
type Proc struct {
	WallSeconds float64 `json:"wall_s"`
	CPUSeconds  float64 `json:"cpu_s"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Machine describes where the numbers were taken.
type Machine struct {
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	GoVersion string  `json:"go_version"`
	OS        string  `json:"os"`
	Commit    string  `json:"commit"`
	Date      string  `json:"date"`
	// Load is /proc/loadavg's 1, 5 and 15 minute load averages when the
	// run started: on a shared machine, wall times follow it.
	Load string `json:"load,omitempty"`
}

func describeMachine(repo string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// dropCaches empties the page cache when the OS lets us (root on Linux);
// it reports whether it did, so cold numbers are labelled honestly.
func dropCaches() bool {
	exec.Command("sync").Run()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0) == nil
}

// corpusFiles lists the log files below dir (not the manifest).
func corpusFiles(dir string) ([]string, int64, error) {
	var files []string
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || filepath.Ext(p) == ".json" && filepath.Base(p) == "manifest.json" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, p)
		total += info.Size()
		return nil
	})
	return files, total, err
}

// Baseline is grep (and rg when installed) on the raw files for one query.
type Baseline struct {
	Tool   string `json:"tool"`
	Args   string `json:"args"`
	Count  int64  `json:"count"`
	Timing Timing `json:"timing"`
}

func grepBaseline(ctx context.Context, tool string, args []string, files []string, runs int) (Baseline, error) {
	b := Baseline{Tool: tool, Args: strings.Join(args, " ")}
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		var out bytes.Buffer
		argv := append([]string{tool}, args...)
		if tool == "rg" {
			argv = append(argv, "--no-filename")
		} else {
			argv = append(argv, "-h")
		}
		argv = append(argv, "--")
		argv = append(argv, files...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdout = &out
		start := time.Now()
		err := cmd.Run()
		ds = append(ds, time.Since(start))
		// grep exits 1 when nothing matched: that is a count of 0, not a failure.
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
			return b, fmt.Errorf("%s: %w", strings.Join(argv[:len(args)+1], " "), err)
		}
		var n int64
		for _, l := range strings.Fields(out.String()) {
			c, _ := strconv.ParseInt(l, 10, 64)
			n += c
		}
		b.Count = n
	}
	b.Timing = Summarise(ds)
	return b, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
