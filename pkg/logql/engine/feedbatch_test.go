package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
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
				ev, ex := hourEvaluator(t, ctx, e, ra)
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

// hourEvaluator is an evaluator of one step at 1h and the sample
// extractor of ra, for tests that feed or merge samples by hand.
func hourEvaluator(t *testing.T, ctx context.Context, e *Engine, ra *syntax.RangeAggregationExpr) (*evaluator, *log.SampleExtractor) {
	t.Helper()
	sel, err := e.compileSelector(unusedParsersDropped(ra))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := sampleExtractor(ra, sel.pipeline)
	if err != nil {
		t.Fatal(err)
	}
	return &evaluator{e: e, ctx: ctx, steps: []int64{int64(time.Hour)}}, ex
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

// batches is a stream iterator over given batches that counts how many it
// has handed out.
type batches struct {
	ls   labels.Labels
	bs   []store.Batch
	read atomic.Int64 // the merge reads on a goroutine of its own
}

func (s *batches) Labels() labels.Labels { return s.ls }
func (s *batches) Next() bool {
	if s.read.Load() >= int64(len(s.bs)) {
		return false
	}
	s.read.Add(1)
	return true
}
func (s *batches) At() *store.Batch { return &s.bs[s.read.Load()-1] }
func (s *batches) Err() error       { return nil }
func (s *batches) Close() error     { return nil }

func lineBatches(ls labels.Labels, nBatches, perBatch int, line func(i int) string) *batches {
	s := &batches{ls: ls}
	for b := 0; b < nBatches; b++ {
		bt := store.Batch{Labels: ls}
		for j := 0; j < perBatch; j++ {
			i := b*perBatch + j
			l := line(i)
			bt.Ts = append(bt.Ts, int64(i+1)*int64(time.Millisecond))
			bt.Seq = append(bt.Seq, uint64(i))
			bt.Lines = append(bt.Lines, l)
			bt.Sizes = append(bt.Sizes, uint32(len(l)))
		}
		s.bs = append(s.bs, bt)
	}
	return s
}

// A stream whose lines give no sample does not hold up the time-ordered
// merge of samples: it tells the merge how far it has read, batch by batch,
// so the merge orders the other streams' first samples after reading a
// few of its batches, not all of them, and the marks never come out of
// the merge as samples.
func TestSampleMergeMarks(t *testing.T) {
	const batchesOfNothing, per = 200, 100
	for _, tt := range []struct {
		name      string
		query     string
		samples   int   // what the merge yields in all
		firstRead int64 // at most this many batches of the silent stream read before the first sample
	}{
		{"unwrap finds no label", `quantile_over_time(0.5, {app="a"} | logfmt | unwrap n [1h])`, per, 3},
		{"line filter matches nothing", `quantile_over_time(0.5, {app="a"} |= "n=" | logfmt | unwrap n [1h])`, per, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			silent := lineBatches(labels.FromStrings("app", "a", "pod", "silent"), batchesOfNothing, per, func(i int) string { return fmt.Sprintf("msg=nothing i%d", i) })
			busy := lineBatches(labels.FromStrings("app", "a", "pod", "busy"), 1, per, func(i int) string { return fmt.Sprintf("n=%d", i) })
			ctx := context.Background()
			e := New(nil, Options{Parallelism: 2})
			expr, err := syntax.ParseExpr(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			ra := expr.(*syntax.RangeAggregationExpr)
			ev, ex := hourEvaluator(t, ctx, e, ra)
			m, stop, err := ev.mergeSamples([]store.StreamIterator{silent, busy}, ex, ra, int64(time.Hour), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if m.empty() {
				t.Fatal("no sample merged")
			}
			if read := silent.read.Load(); read > tt.firstRead {
				t.Errorf("the silent stream was read %d batches deep before the first sample, want at most %d", read, tt.firstRead)
			}
			n := 0
			for !m.empty() {
				if c := m.top(); c.mark || c.ls.Get("pod") != "busy" {
					t.Fatalf("merge yielded %+v, a mark or a sample of the silent stream", c)
				}
				n++
				if err := m.next(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n != tt.samples {
				t.Errorf("%d samples merged, want %d", n, tt.samples)
			}
		})
	}
}
