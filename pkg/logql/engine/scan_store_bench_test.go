package engine_test

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/bench"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/store"
)

// BenchmarkScanRealStore runs the benchmark's metric queries over a real
// store (LOKAL_BENCH_STORE) as a first run does: each run in a fresh engine,
// its block cache empty, so every block is decoded and matched (first/…),
// and with the cache off (off/…), streamed as before it; fresh/… also opens
// the store again for each run, so every block read is the process's first
// (verified whole, as in the first query of a `lokal bench` worker).
// Compare runs with benchstat.
func BenchmarkScanRealStore(b *testing.B) {
	st, start, end := openBenchStore(b)
	for _, mode := range []struct {
		name  string
		cache int64
		fresh bool
	}{{"first", 0, false}, {"off", -1, false}, {"fresh", 0, true}} {
		for _, q := range bench.QuerySet("needle") {
			if q.Kind == "logs" {
				continue
			}
			b.Run(mode.name+"/"+q.Name, func(b *testing.B) {
				p := bench.Params(q, start, end)
				var scanned int64
				var read, skipped int
				cpu := testshared.CPUTime()
				for b.Loop() {
					r := st
					if mode.fresh {
						var err error
						if r, err = store.OpenReadOnly(os.Getenv("LOKAL_BENCH_STORE"), store.Options{}); err != nil {
							b.Fatal(err)
						}
					}
					e := engine.New(r, engine.Options{BlockCacheBytes: mode.cache})
					res, err := e.Query(context.Background(), p)
					if mode.fresh {
						r.Close()
					}
					if err != nil {
						b.Fatal(err)
					}
					scanned, read, skipped = res.Stats.Store.BytesScanned, res.Stats.Store.BlocksRead, res.Stats.Store.BlocksSkipped
				}
				// MB/s of raw lines per core: what the query decoded over
				// the CPU time it could use.
				perCore := b.Elapsed().Seconds() / float64(b.N) * float64(runtime.GOMAXPROCS(0))
				b.ReportMetric(float64(scanned)/1e6/perCore, "MB/s/core")
				// CPU time says more than wall time on a shared machine.
				b.ReportMetric(float64(testshared.CPUTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(read), "blocks-read")
				b.ReportMetric(float64(skipped), "blocks-skipped")
			})
		}
	}
}

// openBenchStore opens the real store LOKAL_BENCH_STORE names, read-only
// and closed when b ends, with the time range it holds; it skips b when
// none is named.
func openBenchStore(b *testing.B) (*store.Store, time.Time, time.Time) {
	b.Helper()
	dir := os.Getenv("LOKAL_BENCH_STORE")
	if dir == "" {
		b.Skip("LOKAL_BENCH_STORE is not set: no real store to scan")
	}
	st, err := store.OpenReadOnly(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	info := st.Info()
	return st, time.Unix(0, info.MinTime).UTC(), time.Unix(0, info.MaxTime+1).UTC()
}
