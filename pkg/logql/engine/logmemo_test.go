package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// appLevelStreams are the test stores' two streams.
func appLevelStreams() []labels.Labels {
	return []labels.Labels{
		labels.New(labels.Label{Name: "app", Value: "a"}, labels.Label{Name: "level", Value: "info"}),
		labels.New(labels.Label{Name: "app", Value: "a"}, labels.Label{Name: "level", Value: "error"}),
	}
}

// orderedTestStore writes two streams whose blocks follow each other in
// time (as a tailed file's do), each flush a block, the last in the head.
func orderedTestStore(t *testing.T) *store.Store {
	t.Helper()
	streams := appLevelStreams()
	pad := strings.Repeat("x", 15000)
	return flushedStore(t, streams, 6, 37, func(si, n int) store.Entry {
		// Three entries at a time, 13 s apart, in the first stream (the
		// blocks share their edge times), one at a time in the second.
		ts := int64(n/3)*13*int64(time.Second) + int64(si*(n%3))
		line := fmt.Sprintf("level=%s n=%d msg=%q duration=%dms pad=%s", streams[si].Get("level"), n, []string{"ok", "CUDA out of memory", "retry"}[(n+si)%3], (n*7919)%20000, pad)
		e := store.Entry{Ts: ts, Line: line}
		if n%5 == 0 {
			e.Metadata = labels.New(labels.Label{Name: "trace", Value: fmt.Sprint(n % 3)})
		}
		return e
	})
}

// A repeated log query reads the kept passing entries of every block
// instead of the block, and answers as a read of the blocks does: both
// directions, limits that stop mid-block, ranges whose edges cut blocks.
func TestLogMemoSameAnswers(t *testing.T) {
	st := orderedTestStore(t)
	sec := func(n int) time.Time { return time.Unix(int64(n), 0) }
	for _, tt := range []struct {
		q          string
		start, end time.Time
		limit      int
		memo       bool // served from the memo on a repeat
	}{
		{q: `{app="a"} |= "duration=" | logfmt | duration > 10s`, start: sec(0), end: sec(4000), limit: 1000, memo: true},
		{q: `{app="a"} |= "duration=" | logfmt | duration > 10s`, start: sec(0), end: sec(780), limit: 7, memo: true}, // the head is past the end
		{q: `{app="a"} |= "CUDA" | logfmt | n > 20 | line_format "{{.n}} {{.trace}}"`, start: sec(150), end: sec(700), limit: 1000, memo: true},
		{q: `{app="a"} != "retry" | trace="1"`, start: sec(30), end: sec(777), limit: 30, memo: true},
		{q: `{app="a", level="error"} |~ "n=1[0-9]+ "`, start: sec(0), end: sec(4000), limit: 1000, memo: true},
		{q: `{app="a"} | logfmt | level="info" | n < 3`, start: sec(0), end: sec(4000), limit: 1000, memo: true},
		{q: `{app="a"} |= "ok"`, start: sec(312), end: sec(313), limit: 1000, memo: true}, // a time two blocks share
		{q: `{app="a"} != "retry"`, start: sec(0), end: sec(4000), limit: 80, memo: true},
		{q: `{app="a"} != "retry"`, start: sec(156), end: sec(640), limit: 3, memo: true},
		// Nothing to drop: the blocks are read.
		{q: `{app="a"} | logfmt`, start: sec(0), end: sec(4000), limit: 50},
		// May change between runs: never kept.
		{q: `{app="a"} |= "ok" | line_format "{{ now }}"`, start: sec(0), end: sec(4000), limit: 5},
	} {
		for _, dir := range []store.Direction{store.Forward, store.Backward} {
			t.Run(fmt.Sprintf("%s/%d-%d/limit %d/%v", tt.q, tt.start.Unix(), tt.end.Unix(), tt.limit, dir), func(t *testing.T) {
				p := Params{Query: tt.q, Start: tt.start, End: tt.end, Limit: tt.limit, Direction: dir}
				want := mustQuery(t, New(st, Options{BlockCacheBytes: -1}), p)
				on := New(st, Options{})
				for run := 0; run < 2; run++ {
					got := mustQuery(t, on, p)
					if strings.Contains(tt.q, "now") { // the lines hold the time
						if len(render(got)) != len(render(want)) {
							t.Fatalf("run %d: %d rows, want %d", run, len(render(got)), len(render(want)))
						}
					} else if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
						t.Fatalf("run %d with the memo:\n got %v\nwant %v", run, g, w)
					}
					if got.LimitReached != want.LimitReached {
						t.Errorf("run %d: limit reached %v, want %v", run, got.LimitReached, want.LimitReached)
					}
					c := got.Stats.Cache
					switch {
					case run == 1 && tt.memo && (c.Hits == 0 || c.Misses != 0):
						t.Errorf("repeated query: cache %+v, want only hits", c)
					case !tt.memo && c.Hits != 0:
						t.Errorf("run %d: cache %+v, want no hits", run, c)
					}
				}
			})
		}
	}
}

// A stream whose blocks overlap in time has their kept entries merged in
// (Ts, Seq) order, as the store merges the blocks.
func TestLogMemoOverlappingBlocks(t *testing.T) {
	st := blockTestStore(t) // every 7th entry goes back in time
	for _, q := range []string{`{app="a"} |= "CUDA" | logfmt | n > 3`, `{app="a"} != "retry"`, `{app="a", level="info"} |= "CUDA"`} {
		for _, dir := range []store.Direction{store.Forward, store.Backward} {
			for _, limit := range []int{1000, 20} {
				t.Run(fmt.Sprintf("%s/%v/%d", q, dir, limit), func(t *testing.T) {
					p := Params{Query: q, Start: time.Unix(0, 0), End: time.Unix(4000, 0), Limit: limit, Direction: dir}
					want := mustQuery(t, New(st, Options{BlockCacheBytes: -1}), p)
					on := New(st, Options{})
					for run := 0; run < 2; run++ {
						got := mustQuery(t, on, p)
						if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
							t.Fatalf("run %d:\n got %v\nwant %v", run, g, w)
						}
						if len(render(got)) == 0 {
							t.Fatal("the query answers nothing: the comparison is vacuous")
						}
						if c := got.Stats.Cache; run == 1 && (c.Hits == 0 || c.Misses != 0) {
							t.Errorf("repeated query: cache %+v, want only hits", c)
						}
					}
				})
			}
		}
	}
}

// sliceIter hands out one batch.
type sliceIter struct {
	ls   labels.Labels
	b    store.Batch
	done bool
}

func (s *sliceIter) Labels() labels.Labels { return s.ls }
func (s *sliceIter) At() *store.Batch      { return &s.b }
func (s *sliceIter) Err() error            { return nil }
func (s *sliceIter) Close() error          { return nil }
func (s *sliceIter) Next() bool {
	if s.done || len(s.b.Ts) == 0 {
		return false
	}
	s.done = true
	return true
}

// The merge of a stream's blocks orders entries by (Ts, Seq) whatever the
// blocks' bounds: blocks sharing a time whose entries interleave by Seq,
// blocks inside others, the head among them; each entry comes once, in
// both directions, from the blocks and again from the kept entries.
func TestLogMemoMergeOrder(t *testing.T) {
	type ent struct {
		ts  int64
		seq uint64
	}
	ls := labels.New(labels.Label{Name: "app", Value: "a"})
	blocks := [][]ent{
		{{10, 1}, {20, 4}, {20, 6}},
		{{20, 5}, {20, 7}, {30, 8}}, // shares 20 with the first, seqs interleave
		{{25, 2}, {26, 3}},          // inside the second
		{{30, 9}, {40, 10}, {50, 11}},
		{{45, 12}},
	}
	head := []ent{{50, 13}, {60, 14}}
	var all []ent
	for _, b := range blocks {
		all = append(all, b...)
	}
	all = append(all, head...)
	slices.SortFunc(all, func(a, b ent) int {
		if a.ts != b.ts {
			return cmp.Compare(a.ts, b.ts)
		}
		return cmp.Compare(a.seq, b.seq)
	})
	batchOf := func(es []ent, backward bool) store.Batch {
		var b store.Batch
		for _, e := range es {
			b.Ts = append(b.Ts, e.ts)
			b.Seq = append(b.Seq, e.seq)
			b.Sizes = append(b.Sizes, 3)
			b.Lines = append(b.Lines, fmt.Sprintf("n=%d", e.seq))
		}
		if backward {
			slices.Reverse(b.Ts)
			slices.Reverse(b.Seq)
			slices.Reverse(b.Sizes)
			slices.Reverse(b.Lines)
		}
		return b
	}
	sel, err := syntax.ParseLogSelector(`{app="a"} != "zzz"`)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := New(nil, Options{}).compileSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	cache := newBlockCache(1 << 20)
	for _, tt := range []struct {
		start, end int64
	}{{0, 100}, {20, 21}, {25, 46}, {11, 60}} {
		for _, backward := range []bool{false, true} {
			for run := 0; run < 3; run++ { // read, then kept, then read as they come
				if run == 2 {
					cache = newBlockCache(1 << 20)
					cache.noteTooLarge("k", 0)
				}
				bs := store.BlockStream{Labels: ls}
				for i, es := range blocks {
					bs.Blocks = append(bs.Blocks, store.BlockInfo{ID: store.BlockID{Seg: 1, Off: int64(i)}, MinTs: es[0].ts, MaxTs: es[len(es)-1].ts, Entries: len(es),
						Iter: &sliceIter{ls: ls, b: batchOf(es, backward)}})
				}
				var inRange []ent
				for _, e := range head {
					if e.ts >= tt.start && e.ts < tt.end {
						inRange = append(inRange, e)
					}
				}
				bs.Head = &sliceIter{ls: ls, b: batchOf(inRange, backward)}
				m := &memoStream{ctx: context.Background(), cache: cache, key: "k", held: newLazyHeld(0), sp: pl.pipeline.ForStream(ls), ls: ls, start: tt.start, end: tt.end, backward: backward}
				if err := m.plan(&bs); err != nil {
					t.Fatal(err)
				}
				var got, want []ent
				for m.Next() {
					b := m.At()
					for i := range b.Ts {
						got = append(got, ent{b.Ts[i], b.Seq[i]})
					}
				}
				for _, e := range all {
					if e.ts >= tt.start && e.ts < tt.end {
						want = append(want, e)
					}
				}
				if backward {
					slices.Reverse(want)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("[%d, %d) backward %v run %d:\n got %v\nwant %v", tt.start, tt.end, backward, run, got, want)
				}
			}
		}
	}
}

// A block most of whose lines pass is read again rather than kept when its
// entries would take more than its share of the cache.
func TestLogMemoLargeBlocksNotKept(t *testing.T) {
	st := orderedTestStore(t) // 37 lines of 15 kB a block
	p := Params{Query: `{app="a"} != "zzz"`, Start: time.Unix(0, 0), End: time.Unix(4000, 0), Limit: 1000, Direction: store.Backward}
	want := mustQuery(t, New(st, Options{BlockCacheBytes: -1}), p)
	on := New(st, Options{BlockCacheBytes: 4 << 20}) // 256 kB a block
	for run := 0; run < 2; run++ {
		got := mustQuery(t, on, p)
		if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("run %d:\n got %v\nwant %v", run, g, w)
		}
		if c := got.Stats.Cache; c.Hits != 0 || c.Misses == 0 {
			t.Errorf("run %d: cache %+v, want only misses", run, c)
		}
	}
	if n := on.cache.len(); n != 0 {
		t.Errorf("the cache keeps %d results, want none", n)
	}
	// Read as they come, overlapping blocks merge as the store's do.
	over := blockTestStore(t)
	for _, dir := range []store.Direction{store.Forward, store.Backward} {
		p := Params{Query: `{app="a"} != "zzz"`, Start: time.Unix(0, 0), End: time.Unix(4000, 0), Limit: 1000, Direction: dir}
		want := mustQuery(t, New(over, Options{BlockCacheBytes: -1}), p)
		on := New(over, Options{BlockCacheBytes: 4 << 20})
		for run := 0; run < 2; run++ {
			if g, w := render(mustQuery(t, on, p)), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
				t.Fatalf("%v run %d:\n got %v\nwant %v", dir, run, g, w)
			}
		}
	}
}
