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
// through the engine alone (with Loki's body encoded) and through the HTTP
// API (a loopback request, parameter parsing, the body, reading it back);
// the difference is what the HTTP layer costs. Run with
//
//	go test -run XXX -bench HTTPOverhead -benchtime 300x ./pkg/lokihttp/
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
		v := url.Values{"query": {q.query}, "start": {start.Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)}, "limit": {"100"}}
		if q.step > 0 {
			v.Set("step", q.step.String())
		}
		u := srv.URL + "/loki/api/v1/query_range?" + v.Encode()
		direct := func() {
			res, err := eng.Query(context.Background(), p)
			if err != nil {
				b.Fatal(err)
			}
			_ = lokiapi.Marshal(res)
		}
		overHTTP := func() {
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
		}
		// Each iteration runs both, one after the other, so a busy machine
		// slows both alike; overhead is the median of the differences.
		b.Run(q.name, func(b *testing.B) {
			var eng, web, diff []time.Duration
			for b.Loop() {
				t0 := time.Now()
				direct()
				t1 := time.Now()
				overHTTP()
				t2 := time.Now()
				eng = append(eng, t1.Sub(t0))
				web = append(web, t2.Sub(t1))
				diff = append(diff, t2.Sub(t1)-t1.Sub(t0))
			}
			b.ReportMetric(median(eng), "engine-ms-median")
			b.ReportMetric(median(web), "http-ms-median")
			b.ReportMetric(median(diff), "overhead-ms-median")
		})
	}
}

// median returns the median of ds in milliseconds.
func median(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}
