package lokihttp_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/store"
)

// BenchmarkHTTPOverhead runs the same queries over the conformance corpus
// through the engine alone and through the HTTP API (a loopback request,
// parameter parsing, Loki's JSON body, reading it back); the difference of
// the medians is what the HTTP layer costs.
func BenchmarkHTTPOverhead(b *testing.B) {
	_, srv, st := conformanceServer(b)
	eng := engine.New(st, engine.Options{})
	start := time.Date(2024, 12, 17, 0, 0, 0, 0, time.UTC)
	end := start.Add(6 * time.Hour)
	queries := []struct {
		name, query string
		step        time.Duration
	}{
		{"logs", `{job="cosyvoice3"} |= "error"`, 0},
		{"metric", `sum by (level) (count_over_time({job="cosyvoice3"}[5m]))`, 2 * time.Minute},
	}
	client := &http.Client{}
	for _, q := range queries {
		p := engine.Params{Query: q.query, Start: start, End: end, Step: q.step, Limit: 100, Direction: store.Backward}
		b.Run("engine/"+q.name, func(b *testing.B) {
			median(b, func() {
				res, err := eng.Query(context.Background(), p)
				if err != nil {
					b.Fatal(err)
				}
				_ = lokiapi.Marshal(res)
			})
		})
		v := url.Values{"query": {q.query}, "start": {start.Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)}, "limit": {"100"}}
		if q.step > 0 {
			v.Set("step", q.step.String())
		}
		u := srv.URL + "/loki/api/v1/query_range?" + v.Encode()
		b.Run("http/"+q.name, func(b *testing.B) {
			median(b, func() {
				resp, err := client.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			})
		})
	}
}

// median runs f b.N times and reports the median time of one run.
func median(b *testing.B, f func()) {
	ds := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t := time.Now()
		f()
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms-median")
}
