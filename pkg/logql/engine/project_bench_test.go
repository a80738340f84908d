package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/bench"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// projectBenchQueries are the queries label projection is for: the
// benchmark's logfmt-duration (a label filter after logfmt) and the
// provisioned dashboard's panels (issue 12) with $instance=~".*", plus a
// logfmt grouped by one key.
var projectBenchQueries = []bench.Query{
	{Name: "logfmt-duration", Kind: "logs", Limit: 1000, Expr: `{job="cosyvoice3"} |= "duration=" | logfmt | duration > 10s`},
	{Name: "json-gpu-mem", Kind: "logs", Limit: 1000, Expr: `{job="cosyvoice3"} |= "mem_gib" | json | gpu_mem_gib > 20`},
	{Name: "logfmt-by-level", Kind: "range", Step: 5 * time.Minute, Expr: `sum by (level) (count_over_time({job="cosyvoice3"} |= "duration=" | logfmt [5m]))`},
	{Name: "panel-text-len-bucket", Kind: "instant", Expr: `sum by (text_len_bucket) (count_over_time({job="cosyvoice3", instance=~".*"} |= "Generating audio" | regexp ` +
		"`text_len=(?P<text_len>\\d+)` | label_format text_len_bucket=`{{ printf \"%03d-%03d\" (mul (div .text_len 100) 100) (add (mul (div .text_len 100) 100) 99) }}`" + ` [$__range]))`},
	{Name: "panel-avg-text-len", Kind: "range", Step: 5 * time.Minute, Expr: `avg_over_time({job="cosyvoice3", instance=~".*"} |= "Generating audio" | regexp ` + "`text_len=(?P<text_len>\\d+)`" + ` | unwrap text_len [5m]) by (instance)`},
	{Name: "panel-p95-text-len", Kind: "range", Step: 5 * time.Minute, Expr: `quantile_over_time(0.95, {job="cosyvoice3", instance=~".*"} |= "Generating audio" | regexp ` + "`text_len=(?P<text_len>\\d+)`" + ` | unwrap text_len [5m]) by (instance)`},
	{Name: "panel-rate-by-level", Kind: "range", Step: 5 * time.Minute, Expr: `sum by (level) (rate({job="cosyvoice3", instance=~".*", filename!~".*/(access|startup)\\.log"}[5m]))`},
}

// BenchmarkProjectionRealStore runs projectBenchQueries over a real store
// (LOKAL_BENCH_STORE), each run in a fresh engine with the block cache off,
// with label projection (proj/…) and without (full/…). Compare with
// benchstat; cpu-ms/op says more than wall time on a shared machine.
func BenchmarkProjectionRealStore(b *testing.B) {
	st, start, end := openBenchStore(b)
	for _, q := range projectBenchQueries {
		for _, mode := range []string{"proj", "full"} {
			b.Run(mode+"/"+q.Name, func(b *testing.B) {
				p := bench.Params(q, start, end)
				cpu := testshared.CPUTime()
				for b.Loop() {
					e := engine.New(st, engine.Options{BlockCacheBytes: -1})
					if mode == "full" {
						e = engine.WithoutProjection(e)
					}
					if _, err := e.Query(context.Background(), p); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(testshared.CPUTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
			})
		}
	}
}
