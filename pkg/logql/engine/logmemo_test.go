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
	// Each range and direction: read as the merge goes (parts of the
	// blocks the range cuts kept), then from the cache; read whole (no
	// room to hold blocks decoded), then from the cache; read as they come
	// (known too many to keep); and over the whole time after the range
	// (parts read on, or read again where unusable).
	type run struct {
		fresh, tooLarge, noRoom, whole bool
	}
	runs := []run{{fresh: true}, {}, {fresh: true, noRoom: true}, {}, {fresh: true, tooLarge: true}, {fresh: true}, {whole: true}, {whole: true}}
	sawParts := false
	for _, tt := range []struct {
		start, end int64
	}{{0, 100}, {20, 21}, {25, 46}, {11, 60}, {21, 50}} {
		for _, backward := range []bool{false, true} {
			var cache *blockCache
			for r, rn := range runs {
				if rn.fresh {
					cache = newBlockCache(1 << 20)
				}
				if rn.tooLarge {
					cache.noteTooLarge("k", 0)
				}
				start, end := tt.start, tt.end
				if rn.whole {
					start, end = 0, 100
				}
				bs := store.BlockStream{Labels: ls}
				for i, es := range blocks {
					bs.Blocks = append(bs.Blocks, store.BlockInfo{ID: store.BlockID{Seg: 1, Off: int64(i)}, MinTs: es[0].ts, MaxTs: es[len(es)-1].ts, Entries: len(es),
						Iter: &sliceIter{ls: ls, b: batchOf(es, backward)}})
				}
				var inRange []ent
				for _, e := range head {
					if e.ts >= start && e.ts < end {
						inRange = append(inRange, e)
					}
				}
				bs.Head = &sliceIter{ls: ls, b: batchOf(inRange, backward)}
				held := newLazyHeld(0)
				if rn.noRoom {
					held.max = 0
				}
				m := &memoStream{ctx: context.Background(), cache: cache, key: "k", held: held, sp: pl.pipeline.ForStream(ls), ls: ls, start: start, end: end, backward: backward}
				if err := m.plan(&bs); err != nil {
					t.Fatal(err)
				}
				var got, want []ent
				for {
					if !m.Next() {
						if m.Err() == nil && m.Suspended() {
							continue
						}
						break
					}
					b := m.At()
					for i := range b.Ts {
						got = append(got, ent{b.Ts[i], b.Seq[i]})
					}
				}
				if err := m.Close(); err != nil || m.Err() != nil {
					t.Fatal(err, m.Err())
				}
				for _, e := range all {
					if e.ts >= start && e.ts < end {
						want = append(want, e)
					}
				}
				if backward {
					slices.Reverse(want)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("[%d, %d) backward %v run %d %+v:\n got %v\nwant %v", start, end, backward, r, rn, got, want)
				}
				if n := held.n.Load(); n != 0 {
					t.Errorf("run %d: %d decoded bytes still counted held", r, n)
				}
				sawParts = sawParts || partialResults(cache) > 0
			}
		}
	}
	if !sawParts {
		t.Error("no part of a block was ever kept")
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

// partialResults counts the kept results of parts of blocks.
func partialResults(c *blockCache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for el := c.lru.Front(); el != nil; el = el.Next() {
		if pe, ok := el.Value.(*cacheEntry).val.(*passedEntries); ok && pe.part != nil {
			n++
		}
	}
	return n
}

// A query whose limit or range stops inside blocks keeps the part of them
// it read; later queries take the parts, read on past them when they go
// further, and read again the blocks whose parts they cannot use (another
// direction, a range that starts inside what a part skipped), answering
// every time as a read of the blocks does.
func TestLogMemoParts(t *testing.T) {
	// Blocks of about 900 entries, longer than a batch of the memo, three
	// entries a second in the first stream (flushes split a second, so
	// blocks share their edge times), one in the second, metadata on some.
	streams := appLevelStreams()
	st := flushedStore(t, streams, 5, 901, func(si, n int) store.Entry {
		ts := int64(n/3)*int64(time.Second) + int64(si*(n%3))
		line := fmt.Sprintf("level=%s n=%d msg=%q duration=%dms pad=%s", streams[si].Get("level"), n, []string{"ok", "CUDA out of memory", "retry"}[(n+si)%3], (n*7919)%20000, strings.Repeat("y", 600))
		e := store.Entry{Ts: ts, Line: line}
		if n%5 == 0 {
			e.Metadata = labels.New(labels.Label{Name: "trace", Value: fmt.Sprint(n % 3)})
		}
		return e
	})
	sec := func(n int) time.Time { return time.Unix(int64(n), 0) }
	// The head holds the entries from 1201 s: the ranges end before it.
	type step struct {
		start, end int
		limit      int
		backward   bool
		onlyHits   bool // a repeat of the step before: served from the cache alone
		readsOn    bool // goes past the parts kept before: some block is decoded again
	}
	for _, q := range []string{
		`{app="a"} |= "duration=" | logfmt | duration > 5s`,
		`{app="a"} != "retry"`,
		`{app="a"} |= "CUDA" | logfmt | n > 20 | line_format "{{.n}} {{.trace}}"`,
	} {
		for _, first := range []bool{true, false} { // backward first, then forward first
			steps := []step{
				{start: 0, end: 1200, limit: 5, backward: first},
				{start: 0, end: 1200, limit: 5, backward: first, onlyHits: true},
				{start: 0, end: 1200, limit: 700, backward: first, readsOn: true},
				{start: 0, end: 1200, limit: 700, backward: first, onlyHits: true},
				{start: 0, end: 1200, limit: 2000, backward: first, readsOn: true},
				{start: 0, end: 1200, limit: 2000, backward: first, onlyHits: true},
				// Ranges cutting blocks, in both directions.
				{start: 456, end: 1140, limit: 3, backward: !first},
				{start: 456, end: 1140, limit: 3, backward: !first, onlyHits: true},
				{start: 300, end: 1300, limit: 1000, backward: !first},
				{start: 460, end: 1100, limit: 7, backward: first},
				{start: 300, end: 1300, limit: 1000, backward: !first},
				{start: 0, end: 1200, limit: 1000, backward: !first},
				{start: 0, end: 1200, limit: 1000, backward: !first, onlyHits: true},
			}
			on := New(st, Options{})
			off := New(st, Options{BlockCacheBytes: -1})
			sawParts := false
			for i, s := range steps {
				dir := store.Forward
				if s.backward {
					dir = store.Backward
				}
				p := Params{Query: q, Start: sec(s.start), End: sec(s.end), Limit: s.limit, Direction: dir}
				got, want := mustQuery(t, on, p), mustQuery(t, off, p)
				if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
					t.Fatalf("%s, step %d %+v:\n got %v\nwant %v", q, i, s, g, w)
				}
				if len(render(want)) == 0 {
					t.Fatalf("%s, step %d: the query answers nothing: the comparison is vacuous", q, i)
				}
				if got.LimitReached != want.LimitReached {
					t.Errorf("%s, step %d: limit reached %v, want %v", q, i, got.LimitReached, want.LimitReached)
				}
				c := got.Stats.Cache
				if s.onlyHits && (c.Hits == 0 || c.Misses != 0) {
					t.Errorf("%s, step %d %+v: cache %+v, want only hits", q, i, s, c)
				}
				if s.readsOn && (c.Hits == 0 || c.Misses == 0) {
					t.Errorf("%s, step %d %+v: cache %+v, want hits and a block read on", q, i, s, c)
				}
				sawParts = sawParts || partialResults(on.cache) > 0
			}
			if !sawParts {
				t.Errorf("%s: no part of a block was ever kept: the test tests nothing new", q)
			}
		}
	}
}

// A log query long enough that its streams are read on goroutines of their
// own, ahead of the merge, keeps what they read; a repeat is answered from
// the cache alone, however far ahead its goroutines run, since a stream
// stops short of a block to decode until the merge wants its next entry.
func TestLogMemoRepeatAheadReadsNoBlock(t *testing.T) {
	streams := []labels.Labels{
		labels.FromStrings("app", "a", "pod", "1"),
		labels.FromStrings("app", "a", "pod", "2"),
		labels.FromStrings("app", "a", "pod", "3"),
	}
	st := flushedStore(t, streams, 8, 3000, func(si, n int) store.Entry {
		return store.Entry{Ts: int64(n)*int64(time.Second) + int64(si), Line: fmt.Sprintf("level=info n=%d duration=%dms pod=%d pad=%s", n, (n*7919)%10000, si, strings.Repeat("z", 150))}
	})
	q := `{app="a"} |= "duration=" | logfmt | duration > 2s`
	for _, dir := range []store.Direction{store.Forward, store.Backward} {
		for _, limit := range []int{8000} { // the head, from 21000 s, is past the end
			// A first run on one goroutine reads nothing ahead of the
			// merge: its repeats' goroutines go past what it kept.
			for _, firstParallelism := range []int{1, 2} {
				t.Run(fmt.Sprintf("%v/%d/%d", dir, limit, firstParallelism), func(t *testing.T) {
					p := Params{Query: q, Start: time.Unix(0, 0), End: time.Unix(21000, 0), Limit: limit, Direction: dir}
					// Enough batches that the streams are read on goroutines.
					want := mustQuery(t, New(st, Options{BlockCacheBytes: -1, MaxEntriesLimit: limit}), p)
					on := New(st, Options{Parallelism: firstParallelism, MaxEntriesLimit: limit})
					for run := 0; run < 4; run++ {
						if run == 1 {
							on.opts.Parallelism = 2
						}
						got := mustQuery(t, on, p)
						if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
							t.Fatalf("run %d:\n got %d rows\nwant %d rows", run, len(g), len(w))
						}
						c := got.Stats.Cache
						if run == 0 && c.Misses == 0 {
							t.Fatalf("first run: cache %+v, want blocks read", c)
						}
						if run > 0 && (c.Hits == 0 || c.Misses != 0) {
							t.Errorf("run %d: cache %+v, want only hits", run, c)
						}
					}
				})
			}
		}
	}
}
