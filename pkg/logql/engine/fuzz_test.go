package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzQuery evaluates arbitrary query text over a small store: whatever the
// parser accepts must evaluate to a result or an error, never a panic (the
// engine reports recovered panics as ErrInternal, which fails here).
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
	st := testStore(f, 3, 40)
	eng := New(st, Options{Parallelism: 2})
	f.Fuzz(func(t *testing.T, q string, instant bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p := Params{Query: q, Start: at(0), End: at(time.Minute), Step: 5 * time.Second, Limit: 50, Instant: instant}
		if instant {
			p.Start = at(30 * time.Second)
		}
		_, err := eng.Query(ctx, p)
		if errors.Is(err, ErrInternal) {
			t.Fatalf("%q: %v", q, err)
		}
	})
}
