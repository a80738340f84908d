package engine

import (
	"context"
	"errors"
	"flag"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// Bounds of one fuzzed query: its engine's timeout and memory budget, how
// far past the timeout it may end, and what it may allocate in all (with
// the heap it may leave behind) on a store of 120 short lines. A query that
// needs more is a hostile query the engine failed to bound.
const (
	fuzzTimeout     = 2 * time.Second
	fuzzOverrun     = time.Second
	fuzzBudget      = 16 << 20
	fuzzMaxAlloc    = 1 << 30
	fuzzMaxHeapLeft = 64 << 20
)

// hostileQueries are issue 11's probes: each must end within its timeout
// and memory budget instead of taking the process down.
var hostileQueries = []string{
	`{app="a"} | line_format "{{ repeat 1000000000000 \"x\" }}"`,
	`{app="a"} | line_format "{{ repeat 4000000000 \"xy\" | indent 3 }}"`,
	`{app="a"} | label_format x="{{ alignRight 100000000 .pod }}"`,
	`{app="a"} | line_format "{{ range 1000000000 }}{{ printf \"%9999999d\" 1 }}{{ end }}"`,
	`{app="a"} |~ "((((((((((a*)*)*)*)*)*)*)*)*)*)*b"`,
	`count_over_time({app="a"} |~ "(a+)+$" [10s])`,
	`sum by (n) (quantile_over_time(0.9, {app="a"} | logfmt | unwrap n [1m]))`,
}

// fuzzing reports that the test binary runs with -test.fuzz: only then is
// the wall time of a query a finding. A plain `go test` also runs the seed
// corpus, on machines too shared and noisy for a timing assertion;
// BenchmarkHostileQueries measures the same bound there.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// FuzzQuery evaluates arbitrary query text over a small store: whatever the
// parser accepts must evaluate to a result or an error, never a panic (the
// engine reports recovered panics as ErrInternal, which fails here), and
// within bounded time and memory: the process runs under a soft memory
// limit, and a query that runs past its timeout by more than fuzzOverrun
// (checked while fuzzing),
// allocates more than fuzzMaxAlloc or grows the heap by more than
// fuzzMaxHeapLeft is a failure, so expensive templates, regexps and aggregations are
// findings.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{
		`{app="a"} |= "hello" | logfmt | n > 3 | line_format "{{.pod}} {{.n}}"`,
		`sum by (pod) (count_over_time({app="a"} | logfmt | n > 3 [10s]))`,
		`quantile_over_time(0.5, {app="a"} | logfmt | unwrap n [10s]) by (pod)`,
		`topk(2, rate({app="a"}[5s])) / on (pod) group_left bytes_rate({app="a"}[5s])`,
		`label_replace(sum(rate({app="a"}[5s])), "x", "$1", "pod", "(.*)") or vector(1)`,
		`absent_over_time({app="a", pod="zz"}[5s]) > bool 0`,
		`{app="a"} | json | label_format x="{{ .n | add 1 }}" | drop pod`,
		`stddev_over_time({app="a"} | logfmt | unwrap duration(n) | __error__="" [10s]) by (app)`,
		`1 + 2 * vector(3) - sum(count_over_time({app="a"}[1s] offset 2s))`,
	} {
		f.Add(q, true)
		f.Add(q, false)
	}
	for _, q := range hostileQueries {
		f.Add(q, true)
		f.Add(q, false)
	}
	st := testStore(f, 3, 40)
	eng := New(st, Options{Parallelism: 2, Timeout: fuzzTimeout, MemoryBudget: fuzzBudget})
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(4 * fuzzMaxHeapLeft))
	f.Fuzz(func(t *testing.T, q string, instant bool) {
		p := Params{Query: q, Start: at(0), End: at(time.Minute), Step: 5 * time.Second, Limit: 50, Instant: instant}
		if instant {
			p.Start = at(30 * time.Second)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		began := time.Now()
		_, err := eng.Query(context.Background(), p)
		took := time.Since(began)
		runtime.ReadMemStats(&after)
		if errors.Is(err, ErrInternal) {
			t.Fatalf("%q: %v", q, err)
		}
		if fuzzing() && took > fuzzTimeout+fuzzOverrun {
			t.Fatalf("%q ran %s, past its %s timeout (err %v)", q, took, fuzzTimeout, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > fuzzMaxAlloc {
			t.Fatalf("%q allocated %d MiB (err %v)", q, n>>20, err)
		}
		// The fuzzing worker's own state shares the heap: only growth over
		// the query (garbage before it included) is the query's.
		if after.HeapAlloc > before.HeapAlloc+fuzzMaxHeapLeft {
			runtime.GC()
			runtime.ReadMemStats(&after)
			if after.HeapAlloc > before.HeapAlloc+fuzzMaxHeapLeft {
				t.Fatalf("%q left %d MiB more heap (err %v)", q, (after.HeapAlloc-before.HeapAlloc)>>20, err)
			}
		}
	})
}

// BenchmarkHostileQueries runs issue 11's hostile queries under the fuzz
// target's timeout and budget and reports how far the slowest ran past the
// timeout (overrun-ms: 0 when every query ended within it; the bound is
// fuzzOverrun, 1 s):
//
//	go test -run XXX -bench HostileQueries -benchtime 1x ./pkg/logql/engine
func BenchmarkHostileQueries(b *testing.B) {
	st := testStore(b, 3, 40)
	eng := New(st, Options{Parallelism: 2, Timeout: fuzzTimeout, MemoryBudget: fuzzBudget})
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		for _, q := range hostileQueries {
			began := time.Now()
			_, err := eng.Query(context.Background(), Params{Query: q, Start: at(0), End: at(time.Minute), Step: 5 * time.Second, Limit: 50})
			if errors.Is(err, ErrInternal) {
				b.Fatalf("%q: %v", q, err)
			}
			worst = max(worst, time.Since(began)-fuzzTimeout)
		}
	}
	b.ReportMetric(float64(max(worst, 0).Milliseconds()), "overrun-ms")
}
