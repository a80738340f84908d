package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// A metric query past the memory budget is refused with ErrMemoryBudget and
// the numbers that show why: what it would hold and the budget, whichever
// way it is evaluated (fused or not, streamed per stream or merged in time
// order), and the same query is answered under a budget that pays for it.
func TestMemoryBudgetRefusalNumbers(t *testing.T) {
	st := testStore(t, 20, 100)
	tests := []struct {
		name   string
		query  string
		budget int64
		want   string // regexp the error must match
	}{
		{"quantile window samples, time ordered", `quantile_over_time(0.5, {app="a", pod="p1"} | regexp "n=(?P<v>\\d+)" | unwrap v [1h])`, 1 << 10,
			`quantile_over_time would hold \d+ series and \d+ samples of its \[1h0m0s\] windows at once \(\d+ MiB\), more than the memory budget of one query \(1 MiB\)`},
		{"quantile window samples under max", `max(quantile_over_time(0.5, {app="a"} | regexp "n=(?P<v>\\d+)" | unwrap v [1h]))`, 2 << 10,
			`quantile_over_time would hold \d+ series and \d+ samples of its \[1h0m0s\] windows at once`},
		{"rate_counter window samples", `rate_counter({app="a", pod="p1"} | regexp "n=(?P<v>\\d+)" | unwrap v [1h])`, 1 << 10,
			`rate_counter would hold \d+ series and \d+ samples`},
		{"parser label sets, streamed", `count_over_time({app="a"} | logfmt [1m])`, 8 << 10,
			`count_over_time would hold more than \d+ series \(\d+ MiB with their labels and \d+ steps\) at once, more than the memory budget of one query \(1 MiB\)`},
		{"parser label sets under max", `max(count_over_time({app="a"} | logfmt [1m]))`, 8 << 10,
			`count_over_time would hold \d+ series and \d+ samples of its \[1m0s\] windows at once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Params{Query: tt.query, Start: at(0), End: at(100 * time.Second), Step: 10 * time.Second}
			e := New(st, Options{MemoryBudget: tt.budget, MaxSeries: 5000})
			_, err := e.Query(context.Background(), p)
			if !errors.Is(err, ErrMemoryBudget) || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("err = %v, want ErrMemoryBudget matching %q", err, tt.want)
			}
			if _, err := New(st, Options{MaxSeries: 5000}).Query(context.Background(), p); err != nil {
				t.Fatalf("with the default budget: %v", err)
			}
		})
	}
}

// boundedReader selects from a store, block by block or stream by stream,
// with MaxDecodedBytes set on every select.
type boundedReader struct {
	*store.Store
	max int64
}

func (r boundedReader) Select(ctx context.Context, p store.SelectParams) ([]store.StreamIterator, error) {
	p.MaxDecodedBytes = r.max
	return r.Store.Select(ctx, p)
}

func (r boundedReader) SelectBlocks(ctx context.Context, p store.SelectParams) ([]store.BlockStream, error) {
	p.MaxDecodedBytes = r.max
	return r.Store.SelectBlocks(ctx, p)
}

// A query whose streams would hold more decoded blocks at once than the
// store admits is refused with ErrMemoryBudget and the store's numbers,
// whether it is a log query or a metric query over lines, and is answered
// when the store's bound pays for it.
func TestDecodedLimitRefusal(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b store.AppendBatch
	for s := 0; s < 3; s++ {
		es := make([]store.Entry, 2000)
		for i := range es {
			es[i] = store.Entry{Ts: int64(time.Duration(i) * 50 * time.Millisecond), Seq: uint64(i), Line: fmt.Sprintf("pod=p%d n=%d msg=hello", s, i)}
		}
		b.Streams = append(b.Streams, store.StreamEntries{Labels: labels.FromStrings("app", "a", "pod", fmt.Sprintf("p%d", s)), Entries: es})
	}
	if err := st.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	const want = `^the query would hold too many decoded bytes at once \(query: 1 MiB decoded over 3 streams, limit: 1 MiB\); narrow the stream selector or add a line filter$`
	for _, tt := range []struct {
		name, query string
	}{
		{"log query", `{app="a"}`},
		{"log query with a parser", `{app="a"} | logfmt | n > 10`},
		{"metric query over a parser", `max(count_over_time({app="a"} | logfmt [1m]))`},
		{"counts over a parser, folded block by block", `sum by (pod) (count_over_time({app="a"} | logfmt [1m]))`},
		{"unwrapped range aggregation", `quantile_over_time(0.5, {app="a"} | logfmt | unwrap n [1m])`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Params{Query: tt.query, Start: at(0), End: at(100 * time.Second), Step: 10 * time.Second, Limit: 100}
			_, err := New(boundedReader{st, 1 << 10}, Options{}).Query(context.Background(), p)
			if !errors.Is(err, ErrMemoryBudget) || !regexp.MustCompile(want).MatchString(err.Error()) {
				t.Fatalf("err = %v, want ErrMemoryBudget matching %q", err, want)
			}
			if _, err := New(boundedReader{st, 0}, Options{}).Query(context.Background(), p); err != nil {
				t.Fatalf("with the store's default bound: %v", err)
			}
		})
	}
}
