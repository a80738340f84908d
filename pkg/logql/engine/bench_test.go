package engine_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// syntheticStore holds streams × perStream entries over 24h, with a
// logfmt-ish line, for benchmarks of series aggregation that need no corpus.
func syntheticStore(b *testing.B, streams, perStream int) (*memstore.Store, time.Time, time.Time) {
	b.Helper()
	st := memstore.New()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	span := 24 * time.Hour
	levels := []string{"info", "warn", "error", "debug"}
	for s := 0; s < streams; s++ {
		ls := labels.FromStrings("job", "bench", "instance", fmt.Sprintf("host-%d", s%8), "filename", fmt.Sprintf("f%d.log", s), "level", levels[s%len(levels)])
		es := make([]store.Entry, perStream)
		for i := range es {
			ts := start.Add(time.Duration(int64(span) / int64(perStream) * int64(i)))
			es[i] = store.Entry{Ts: ts.UnixNano(), Seq: uint64(i), Line: fmt.Sprintf("level=%s msg=\"req\" latency=%d status=%d", levels[s%len(levels)], i%997, 200+i%3)}
		}
		if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: ls, Entries: es}}}); err != nil {
			b.Fatal(err)
		}
	}
	return st, start, start.Add(span)
}

func BenchmarkSeriesAggregation(b *testing.B) {
	st, from, to := syntheticStore(b, 64, 20000)
	eng := engine.New(st, engine.Options{})
	for _, q := range []string{
		`sum by (level) (count_over_time({job="bench"}[5m]))`,
		`sum by (level) (rate({job="bench"}[5m]))`,
		`topk(3, sum by (instance) (rate({job="bench"}[5m])))`,
		`avg without (filename) (count_over_time({job="bench"}[15m]))`,
		`sum by (instance) (count_over_time({job="bench"}[5m])) / on (instance) group_left sum(count_over_time({job="bench"}[5m]))`,
		`quantile_over_time(0.9, {job="bench"} | logfmt | unwrap latency [5m]) by (instance)`,
	} {
		b.Run(q, func(b *testing.B) {
			p := engine.Params{Query: q, Start: from, End: to, Step: 5 * time.Minute}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := eng.Query(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCorpus runs issue 3's target queries against a store built from a
// loggen corpus: LOKAL_BENCH_STORE names the store directory (opened
// read-only), LOKAL_BENCH_NEEDLE a needle token from the corpus manifest,
// LOKAL_BENCH_FROM/LOKAL_BENCH_TO (RFC3339) the 24h range,
// LOKAL_BENCH_PARALLELISM optionally the engine's parallelism and
// LOKAL_BENCH_QUERY an extra query (5m step over the range).
func BenchmarkCorpus(b *testing.B) {
	dir := os.Getenv("LOKAL_BENCH_STORE")
	if dir == "" {
		b.Skip("set LOKAL_BENCH_STORE (and LOKAL_BENCH_NEEDLE, LOKAL_BENCH_FROM, LOKAL_BENCH_TO) to benchmark a real corpus")
	}
	st, err := store.OpenReadOnly(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	from, err1 := time.Parse(time.RFC3339, os.Getenv("LOKAL_BENCH_FROM"))
	to, err2 := time.Parse(time.RFC3339, os.Getenv("LOKAL_BENCH_TO"))
	if err1 != nil || err2 != nil {
		b.Fatalf("LOKAL_BENCH_FROM/TO: %v %v", err1, err2)
	}
	opts := engine.Options{}
	if n, err := strconv.Atoi(os.Getenv("LOKAL_BENCH_PARALLELISM")); err == nil {
		opts.Parallelism = n
	}
	eng := engine.New(st, opts)
	qs := []struct {
		name string
		p    engine.Params
	}{
		{"needle", engine.Params{Query: `{job="cosyvoice3"} |= "` + os.Getenv("LOKAL_BENCH_NEEDLE") + `"`, Limit: 1000, Direction: store.Backward,
			Start: time.Unix(0, 0), End: time.Now()}},
		{"oom-limit-1000", engine.Params{Query: `{job="cosyvoice3"} |= "CUDA out of memory"`, Limit: 1000, Direction: store.Backward, Start: from, End: to}},
		{"oom-count-over-time", engine.Params{Query: `count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])`, Start: from, End: to, Step: 5 * time.Minute}},
		{"scan-no-hint", engine.Params{Query: `{job="cosyvoice3"} |~ "(?i)segfault"`, Limit: 100, Direction: store.Backward, Start: from, End: to}},
		{"rate-by-level", engine.Params{Query: `sum by (level) (rate({job="cosyvoice3"}[5m]))`, Start: from, End: to, Step: 5 * time.Minute}},
	}
	if q := os.Getenv("LOKAL_BENCH_QUERY"); q != "" {
		qs = append(qs, struct {
			name string
			p    engine.Params
		}{"custom", engine.Params{Query: q, Limit: 1000, Direction: store.Backward, Start: from, End: to, Step: 5 * time.Minute}})
	}
	for _, q := range qs {
		b.Run(q.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				res, err := eng.Query(context.Background(), q.p)
				if err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					b.ReportMetric(float64(res.Stats.Store.BlocksRead), "blocks-read")
					b.ReportMetric(float64(res.Stats.Store.BlocksSkipped), "blocks-skipped")
				}
			}
		})
	}
}

// BenchmarkMerge runs the queries whose streams are merged in time order:
// log queries (with and without a limit met early) and range aggregations
// that fold or stream samples in time order.
func BenchmarkMerge(b *testing.B) {
	st, from, to := syntheticStore(b, 64, 20000)
	eng := engine.New(st, engine.Options{})
	for _, c := range []struct {
		name string
		p    engine.Params
	}{
		{"log-backward-limit", engine.Params{Query: `{job="bench"}`, Limit: 1000, Direction: store.Backward}},
		{"log-forward-filter", engine.Params{Query: `{job="bench"} |= "status=201"`, Limit: 5000, Direction: store.Forward}},
		{"log-logfmt-scan", engine.Params{Query: `{job="bench"} | logfmt | latency > 995`, Limit: 1000, Direction: store.Backward}},
		{"fold-ordered", engine.Params{Query: `max_over_time({job="bench"} | logfmt | unwrap latency [5m]) by (instance)`, Step: 5 * time.Minute}},
		{"windowed", engine.Params{Query: `sum by (instance) (sum_over_time({job="bench"} | logfmt | unwrap latency [5m]))`, Step: 5 * time.Minute}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := c.p
			p.Start, p.End = from, to
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := eng.Query(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
