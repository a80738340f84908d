package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/store"
)

// WorkerReport is what `lokal bench-worker` prints for the parent.
type WorkerReport struct {
	// FirstQueryMs runs from the parent starting the process (t0) to the
	// first query answered: process start, store open and one query.
	FirstQueryMs float64       `json:"first_query_ms"`
	Queries      []WorkerQuery `json:"queries"`
}

// WorkerQuery is one query's timings in the worker.
type WorkerQuery struct {
	Name    string `json:"name"`
	Results int    `json:"results"`
	Timing  Timing `json:"timing"`
	// FirstMs is the first run in this process: nothing of the query is
	// in the engine's block cache yet. The later runs repeat it over
	// unchanged blocks (a dashboard refresh, an alert evaluation).
	FirstMs float64 `json:"first_ms"`
	// FirstScannedBytes are the raw line bytes the first run decoded and
	// matched (the store's BytesScanned), in FirstCPUMs of the process's
	// CPU time (0 where it is not known).
	FirstScannedBytes int64   `json:"first_scanned_bytes"`
	FirstCPUMs        float64 `json:"first_cpu_ms"`
	Error             string  `json:"error,omitempty"`
}

// Worker runs the query set over the whole time range of the store,
// runs times each, in this process.
func Worker(ctx context.Context, st *store.Store, qs []Query, runs int, t0 time.Time) (*WorkerReport, error) {
	eng := engine.New(st, engine.Options{})
	info := st.Info()
	if info.Entries+info.HeadEntries == 0 {
		return nil, fmt.Errorf("the store is empty: nothing to query")
	}
	start := time.Unix(0, info.MinTime).UTC()
	end := time.Unix(0, info.MaxTime+1).UTC()
	rep := &WorkerReport{}
	for i, q := range qs {
		wq := WorkerQuery{Name: q.Name}
		var ds []time.Duration
		for r := 0; r < runs; r++ {
			began := time.Now()
			cpu0, cpuOK := selfCPUSeconds()
			res, err := eng.Query(ctx, Params(q, start, end))
			ds = append(ds, time.Since(began))
			if cpu1, ok := selfCPUSeconds(); r == 0 && ok && cpuOK {
				wq.FirstCPUMs = (cpu1 - cpu0) * 1000
			}
			if i == 0 && r == 0 {
				rep.FirstQueryMs = float64(time.Since(t0).Microseconds()) / 1000
			}
			if err != nil {
				wq.Error = err.Error()
				break
			}
			wq.Results = size(res)
			if r == 0 {
				wq.FirstScannedBytes = res.Stats.Store.BytesScanned
			}
		}
		wq.Timing = Summarise(ds)
		if len(ds) > 0 {
			wq.FirstMs = float64(ds[0].Microseconds()) / 1000
		}
		rep.Queries = append(rep.Queries, wq)
	}
	return rep, nil
}

// Params are the engine parameters of q over [start, end), as the worker
// runs it.
func Params(q Query, start, end time.Time) engine.Params {
	if q.Window > 0 && end.Add(-q.Window).After(start) {
		start = end.Add(-q.Window)
	}
	expr := strings.ReplaceAll(q.Expr, "$__range", formatRange(end.Sub(start)))
	p := engine.Params{Query: expr, Start: start, End: end, Limit: q.Limit, Direction: store.Backward}
	switch q.Kind {
	case "instant":
		p.Instant, p.Start = true, end
	case "range":
		p.Step = q.Step
	}
	return p
}

// formatRange prints a range in whole seconds, which LogQL accepts.
func formatRange(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("%ds", s)
}

func size(r engine.Result) int {
	switch r.Type {
	case engine.ValueStreams:
		n := 0
		for _, s := range r.Streams {
			n += len(s.Entries)
		}
		return n
	case engine.ValueMatrix:
		n := 0
		for _, s := range r.Matrix {
			n += len(s.Points)
		}
		return n
	case engine.ValueVector:
		return len(r.Vector)
	}
	return 1
}

// WriteTable prints the results for people.
func WriteTable(w io.Writer, r *Results) {
	fmt.Fprintf(w, "Lokal benchmark — %s, %d cores, %.0f GiB, %s, commit %s", r.Machine.Date, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.GoVersion, r.Machine.Commit)
	if r.Machine.Load != "" {
		fmt.Fprintf(w, ", load %s", r.Machine.Load)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "corpus: %s, %d files, %s, %d lines\n\n", r.Corpus.Dir, r.Corpus.Files, mib(r.Corpus.Bytes), r.Corpus.Lines)
	fmt.Fprintf(w, "ingest   %.1f s wall, %.1f CPU-s, %.0f MB/s, %.0f lines/s, peak RSS %.0f MB, store %s = %.1f%% of raw\n",
		r.Ingest.WallSeconds, r.Ingest.CPUSeconds, r.Ingest.MBPerSec, r.Ingest.LinesPerSec, r.Ingest.PeakRSSMB, mib(r.Ingest.StoreBytes), 100*r.Ingest.StoreRatio)
	fmt.Fprintf(w, "compact  %.1f s wall, %.1f CPU-s, peak RSS %.0f MB, store %s = %.1f%% of raw\n",
		r.Compact.WallSeconds, r.Compact.CPUSeconds, r.Compact.PeakRSSMB, mib(r.Compact.StoreBytes), 100*r.Compact.StoreRatio)
	fmt.Fprintf(w, "restart  first query answered %.0f ms after process start\n", r.Restart.FirstQueryMs)
	fmt.Fprintf(w, "idle     RSS %.1f MB after %.0f s, CPU %.2f%%\n", r.Idle.RSSMB, r.Idle.AfterSeconds, r.Idle.CPUPercent)
	fmt.Fprintf(w, "queries  peak RSS %.0f MB; cold: %s\n\n", r.QueryPeakRSSMB, r.ColdCache)
	fmt.Fprintf(w, "first: the first run in the warm process (no block result cached yet); median, min, max: all %d runs there;\n", runsOf(r))
	fmt.Fprintf(w, "first MB/s/core: raw line bytes the first run decoded and matched per CPU-second of the query process;\n")
	fmt.Fprintf(w, "RSS MB: peak RSS of a process that ran the query alone, once\n\n")
	fmt.Fprintf(w, "%-20s %8s %10s %10s %10s %10s %10s %10s %8s %8s %15s %8s\n", "query", "results", "median ms", "min ms", "max ms", "first ms", "cold ms", "grep ms", "× grep", "first ×", "first MB/s/core", "RSS MB")
	for _, q := range r.Queries {
		cold, grep, ratio, firstRatio, rate := "-", "-", "-", "-", "-"
		if q.FirstScannedBytes > 0 && q.FirstCPUMs > 0 {
			rate = fmt.Sprintf("%.0f", float64(q.FirstScannedBytes)/1e6/(q.FirstCPUMs/1000))
		}
		if q.Cold != nil {
			cold = fmt.Sprintf("%.1f", q.Cold.Median)
		}
		if len(q.Baselines) > 0 {
			grep = fmt.Sprintf("%.1f", q.Baselines[0].Timing.Median)
			if q.FirstMs > 0 {
				firstRatio = fmt.Sprintf("%.1f", q.Baselines[0].Timing.Median/q.FirstMs)
			}
		}
		if q.Ratio > 0 {
			ratio = fmt.Sprintf("%.1f", q.Ratio)
		}
		fmt.Fprintf(w, "%-20s %8d %10.1f %10.1f %10.1f %10.1f %10s %10s %8s %8s %15s %8.0f\n", q.Name, q.Results, q.Warm.Median, q.Warm.Min, q.Warm.Max, q.FirstMs, cold, grep, ratio, firstRatio, rate, q.PeakRSSMB)
		if q.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", q.Error)
		}
	}
	fmt.Fprintf(w, "\ntotal %.0f s\n", r.TotalSeconds)
}

func runsOf(r *Results) int {
	for _, q := range r.Queries {
		if q.Warm.Runs > 0 {
			return q.Warm.Runs
		}
	}
	return 0
}

// Save writes results (*Results or *ScaleResults) as JSON.
func Save(path string, r any) error { return writeJSON(path, r) }
