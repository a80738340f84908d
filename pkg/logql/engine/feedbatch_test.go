package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// oneBatch is a stream iterator that returns a single store batch.
type oneBatch struct {
	b    store.Batch
	done bool
}

func (o *oneBatch) Labels() labels.Labels { return o.b.Labels }
func (o *oneBatch) Next() bool {
	if o.done {
		return false
	}
	o.done = true
	return true
}
func (o *oneBatch) At() *store.Batch { return &o.b }
func (o *oneBatch) Err() error       { return nil }
func (o *oneBatch) Close() error     { return nil }

// A stream's goroutine hands a store batch to the merge in pieces of at
// most fedLimitsFor(streams) items and about as many bytes of lines or
// label sets, whatever the store's batch holds: each stream of a merge has
// a piece read, one waiting and one being made, and a parser gives every
// line a label set. The more streams, the smaller the pieces, so that what
// all of them hold stays within fedTotalBytes and fedTotalItems.
func TestFedBatchesBounded(t *testing.T) {
	const n = 10000
	long := strings.Repeat("x", 200)
	b := store.Batch{Labels: labels.FromStrings("app", "a")}
	for i := 0; i < n; i++ {
		b.Ts = append(b.Ts, int64(i+1)*int64(time.Millisecond))
		b.Seq = append(b.Seq, uint64(i))
		line := fmt.Sprintf("id=%d n=%d pad=%s", i, i, long)
		b.Lines = append(b.Lines, line)
		b.Sizes = append(b.Sizes, uint32(len(line)))
	}
	ctx := context.Background()
	e := New(nil, Options{})
	tests := []struct {
		name    string
		query   string
		streams int
	}{
		{"samples with a label set per line, one stream", `max(count_over_time({app="a"} | logfmt [1h]))`, 1},
		{"samples with a label set per line, 41 streams", `max(count_over_time({app="a"} | logfmt [1h]))`, 41},
		{"samples with a label set per line, 1000 streams", `max(count_over_time({app="a"} | logfmt [1h]))`, 1000},
		{"entries, one stream", `{app="a"} | logfmt`, 1},
		{"entries, 41 streams", `{app="a"} | logfmt`, 41},
		{"entries, 1000 streams", `{app="a"} | logfmt`, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := fedLimitsFor(tt.streams)
			if lim.bytes > minFedBatchBytes && 3*tt.streams*lim.bytes > fedTotalBytes {
				t.Fatalf("%d streams may hold 3×%d bytes of pieces each, over %d", tt.streams, lim.bytes, fedTotalBytes)
			}
			if lim.items > minFedItems && 3*tt.streams*lim.items > fedTotalItems {
				t.Fatalf("%d streams may hold 3×%d items each, over %d", tt.streams, lim.items, fedTotalItems)
			}
			it := &oneBatch{b: b}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 1)
			expr, err := syntax.ParseExpr(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			var bytes []int
			switch x := expr.(type) {
			case *syntax.VectorAggregationExpr:
				ra := x.Left.(*syntax.RangeAggregationExpr)
				sel, err := e.compileSelector(unusedParsersDropped(ra))
				if err != nil {
					t.Fatal(err)
				}
				ex, err := sampleExtractor(ra, sel.pipeline)
				if err != nil {
					t.Fatal(err)
				}
				ev := &evaluator{e: e, ctx: ctx, steps: []int64{int64(time.Hour)}}
				f := ev.feedSamples(ctx, &wg, sem, it, ex.ForStream(it.Labels()), nil, int64(time.Hour), 0, lim)
				sizes, bytes = drainFeed(t, f, func(r sampleRec) int { return labelsBytes(r.ls) })
			case *syntax.PipelineExpr, syntax.LogSelectorExpr:
				sel, err := e.compileSelector(x.(syntax.LogSelectorExpr))
				if err != nil {
					t.Fatal(err)
				}
				fd := &feeder{ctx: ctx, sem: sem, lim: lim}
				f := fd.start(&entryCursor{it: it, sp: sel.pipeline.ForStream(it.Labels())})
				sizes, bytes = drainFeed(t, f, func(p processed) int { return len(p.line) })
			default:
				t.Fatalf("%T", expr)
			}
			wg.Wait()
			total := 0
			for i, k := range sizes {
				total += k
				if k > lim.items || bytes[i] > lim.bytes+4096 {
					t.Errorf("piece %d holds %d items and %d bytes, over %d items or %d bytes", i, k, bytes[i], lim.items, lim.bytes)
				}
			}
			if total != n {
				t.Errorf("%d items handed over, want %d", total, n)
			}
		})
	}
}

// drainFeed reads a feed to its end: the items of each piece and their
// bytes by size.
func drainFeed[T any](t *testing.T, f *feed[T], size func(T) int) (items, bytes []int) {
	t.Helper()
	for fb := range f.ch {
		if fb.err != nil {
			t.Fatal(fb.err)
		}
		n := 0
		for _, x := range fb.items {
			n += size(x)
		}
		items, bytes = append(items, len(fb.items)), append(bytes, n)
	}
	return items, bytes
}
