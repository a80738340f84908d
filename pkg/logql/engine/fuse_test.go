package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// Which vector aggregations stream their range aggregation sample by sample
// (every stream open at once, every sample of a window held) and which fold
// stream by stream: a sum that Loki pushes its grouping into is grouped
// already and must fold, so counting lines that match a filter over a
// whole day holds a block per worker, not the day's samples.
func TestFusesAsWritten(t *testing.T) {
	tests := []struct {
		query string
		fuses bool
	}{
		{`sum(count_over_time({app="a"} |= "error" [24h]))`, false},
		{`sum by (pod) (rate({app="a"} | logfmt [5m]))`, false},
		{`sum(bytes_over_time({app="a"} | json [5m]))`, false},
		{`sum by (pod) (count_over_time({app="a"} [5m]))`, false},
		{`max(count_over_time({app="a"} | logfmt [5m]))`, true},
		{`count by (n) (count_over_time({app="a"} | logfmt [1m]))`, true},
		{`sum(sum_over_time({app="a"} | logfmt | unwrap n [5m]))`, true},
		{`max(count_over_time({app="a"} [5m]))`, false},
		{`topk(3, count_over_time({app="a"} | logfmt [5m]))`, false},
	}
	for _, tt := range tests {
		e, err := syntax.ParseSampleExpr(tt.query)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		x, ok := e.(*syntax.VectorAggregationExpr)
		if !ok {
			t.Fatalf("%s: %T, want a vector aggregation", tt.query, e)
		}
		if got := fusesInto(x); got != tt.fuses {
			t.Errorf("%s: fuses %v, want %v", tt.query, got, tt.fuses)
		}
	}
}

// A streamed aggregation counts what its live series' label sets cost
// against the memory budget, not only their samples: a parser that gives
// every line a long label set is refused with a number long before the
// series cap.
func TestWindowSeriesLabelsCountAgainstBudget(t *testing.T) {
	st := memstore.New()
	pad := strings.Repeat("p", 1000)
	var es []store.Entry
	for i := 0; i < 2000; i++ {
		es = append(es, store.Entry{Ts: int64(time.Duration(i) * time.Millisecond), Seq: uint64(i), Line: fmt.Sprintf("id=%d pad=%s", i, pad)})
	}
	if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: labels.FromStrings("app", "a"), Entries: es}}}); err != nil {
		t.Fatal(err)
	}
	const budget = 64 << 10
	e := New(st, Options{MemoryBudget: budget})
	if c := e.seriesCap(1); c <= budget/1000 {
		t.Fatalf("series cap %d: the test needs one far above what the labels pay for", c)
	}
	_, err := e.Query(context.Background(), Params{Query: `max(count_over_time({app="a"} | logfmt [1m]))`, Start: at(time.Minute), Instant: true})
	if !errors.Is(err, ErrMemoryBudget) || !strings.Contains(err.Error(), "series and") {
		t.Fatalf("%v, want ErrMemoryBudget for the series' labels", err)
	}
	// with the default budget it is answered
	res, err := New(st, Options{}).Query(context.Background(), Params{Query: `max(count_over_time({app="a"} | logfmt [1m]))`, Start: at(time.Minute), Instant: true})
	if err != nil || len(res.Vector) != 1 || res.Vector[0].V != 1 {
		t.Fatalf("default budget: %v %+v", err, res.Vector)
	}
}
