package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

func TestBlockGrid(t *testing.T) {
	s, m := int64(time.Second), int64(time.Minute)
	for _, tt := range []struct {
		name      string
		steps     []int64
		rng, off  int64
		gran, ph  int64
		ts, end   int64 // a timestamp and the end of its bucket
		one       [2]int64
		oneBucket bool
	}{
		{name: "step divides range", steps: []int64{10 * m, 11 * m}, rng: 5 * m, gran: m, ph: 0, ts: 10*m + 1, end: 11 * m, one: [2]int64{10*m + 1, 11 * m}, oneBucket: true},
		{name: "entry on a bucket edge belongs to the bucket it ends", steps: []int64{10 * m, 11 * m}, rng: 5 * m, gran: m, ph: 0, ts: 10 * m, end: 10 * m, one: [2]int64{10 * m, 10*m + 1}, oneBucket: false},
		{name: "step does not divide range", steps: []int64{0, 2 * m}, rng: 3 * m, gran: m, ph: 0, ts: 90 * s, end: 2 * m, one: [2]int64{61 * s, 2 * m}, oneBucket: true},
		{name: "offset shifts the phase", steps: []int64{10 * m, 12 * m}, rng: 4 * m, off: 30 * s, gran: 2 * m, ph: 90 * s, ts: 10 * m, end: 690 * s, one: [2]int64{90*s + 1, 210 * s}, oneBucket: true},
		{name: "unaligned first step", steps: []int64{7 * s, 67 * s}, rng: 2 * m, gran: m, ph: 7 * s, ts: 8 * s, end: 67 * s, one: [2]int64{7 * s, 8 * s}, oneBucket: false},
		{name: "coprime step and range", steps: []int64{0, 7 * s}, rng: 5 * s, gran: s, ph: 0, ts: 1, end: s, one: [2]int64{s, s + 1}, oneBucket: false},
		{name: "instant: one bucket of the range ending at the evaluation time", steps: []int64{100*m + 17}, rng: 25 * m, gran: 25 * m, ph: 17, ts: 75*m + 18, end: 100*m + 17, one: [2]int64{75*m + 18, 100*m + 17}, oneBucket: true},
		{name: "instant: a block straddling the window's start", steps: []int64{100 * m}, rng: 25 * m, gran: 25 * m, ph: 0, ts: 75 * m, end: 75 * m, one: [2]int64{75 * m, 75*m + 1}, oneBucket: false},
		{name: "negative times", steps: []int64{-10 * m, -9 * m}, rng: 2 * m, gran: m, ph: 0, ts: -10*m - 1, end: -10 * m, one: [2]int64{-11*m + 1, -10 * m}, oneBucket: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := gridFor(tt.steps, tt.rng, tt.off)
			if g.gran != tt.gran || g.phase != tt.ph {
				t.Fatalf("grid = %+v, want gran %d phase %d", g, tt.gran, tt.ph)
			}
			if got := g.end(tt.ts); got != tt.end {
				t.Errorf("end(%d) = %d, want %d", tt.ts, got, tt.end)
			}
			if got := g.oneBucket(tt.one[0], tt.one[1]); got != tt.oneBucket {
				t.Errorf("oneBucket(%d, %d) = %v, want %v", tt.one[0], tt.one[1], got, tt.oneBucket)
			}
			// Every window's edges lie on the grid.
			for _, st := range tt.steps {
				for _, edge := range []int64{st - tt.off, st - tt.off - tt.rng} {
					if g.end(edge) != edge {
						t.Errorf("window edge %d is not on the grid", edge)
					}
				}
			}
		})
	}
}

// blockTestStore writes entries of two streams at second-aligned and
// off-by-one times into several flushes (so blocks cross window edges),
// and leaves the last part in the head.
func blockTestStore(t *testing.T) *store.Store {
	t.Helper()
	streams := appLevelStreams()
	pad := strings.Repeat("x", 15000)
	// 37 entries of each stream per flush: blocks end anywhere.
	return flushedStore(t, streams, 6, 37, func(si, n int) store.Entry {
		// Every 7th entry sits exactly on a whole minute (a window
		// edge), the others 13 s apart with a nanosecond skew.
		ts := int64(n)*13*int64(time.Second) + int64(n%3)
		if n%7 == 0 {
			ts = int64(n/7) * int64(time.Minute)
		}
		// The padding makes each flush's part a block of its own
		// (the store merges small parts into the last block).
		line := fmt.Sprintf("level=%s n=%d msg=%q pad=%s", streams[si].Get("level"), n, []string{"ok", "CUDA out of memory", "retry"}[(n+si)%3], pad)
		e := store.Entry{Ts: ts, Line: line}
		if n%5 == 0 { // structured metadata on some entries
			e.Metadata = labels.New(labels.Label{Name: "trace", Value: fmt.Sprint(n % 3)})
		}
		return e
	})
}

// flushedStore writes perFlush entries of each stream (entry gives entry n
// of stream si) in each of flushes flushes, leaving the last in the head,
// and wants at least a block per stream and flush.
func flushedStore(t *testing.T, streams []labels.Labels, flushes, perFlush int, entry func(si, n int) store.Entry) *store.Store {
	t.Helper()
	// The head stays a head however slow the test runs (-race).
	st, err := store.Open(t.TempDir(), store.Options{CompactAfterIdle: -1, HeadMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	seq := uint64(0)
	for flush := 0; flush < flushes; flush++ {
		var b store.AppendBatch
		for si, ls := range streams {
			var es []store.Entry
			for i := 0; i < perFlush; i++ {
				e := entry(si, flush*perFlush+i)
				seq++
				e.Seq = seq
				es = append(es, e)
			}
			b.Streams = append(b.Streams, store.StreamEntries{Labels: ls, Entries: es})
		}
		if err := st.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
		if flush < flushes-1 {
			if err := st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, want := st.Info().Blocks, len(streams)*(flushes-1); n < want {
		t.Fatalf("the test store has %d blocks, want one per stream and flush (%d)", n, want)
	}
	return st
}

func TestBlockCacheSameAnswers(t *testing.T) {
	st := blockTestStore(t)
	min := func(n int) time.Time { return time.Unix(0, 0).Add(time.Duration(n) * time.Minute).UTC() }
	queries := []struct {
		q          string
		start, end time.Time
		step       time.Duration
		instant    bool
		// uncached: evaluated as without the cache (streamed, so the
		// floats of avg keep the order they are summed in).
		uncached bool
	}{
		{q: `count_over_time({app="a"}[5m])`, start: min(0), end: min(50), step: time.Minute},
		{q: `sum by (level) (rate({app="a"} |= "CUDA" [3m]))`, start: min(1), end: min(49), step: 2 * time.Minute},
		{q: `sum(count_over_time({app="a"} != "retry" [150s] offset 30s))`, start: min(0), end: min(45), step: 40 * time.Second},
		{q: `bytes_over_time({app="a"} | logfmt | n > 20 [7m])`, start: min(3), end: min(50), step: 3 * time.Minute},
		{q: `sum without (n) (bytes_rate({app="a"} | logfmt | msg="ok" [1m]))`, start: min(0), end: min(50), step: 13 * time.Second},
		{q: `sum by (msg) (count_over_time({app="a"} | logfmt [10m]))`, start: min(0), end: min(50), step: 7 * time.Minute},
		{q: `sum by (trace) (count_over_time({app="a"}[5m]))`, start: min(0), end: min(50), step: time.Minute},
		{q: `bytes_over_time({app="a"} | trace="1" [4m])`, start: min(0), end: min(50), step: 2 * time.Minute},
		{q: `max by (level) (count_over_time({app="a"} |= "CUDA" [5m]))`, start: min(0), end: min(50), step: time.Minute},
		{q: `topk(1, rate({app="a"} != "ok" [3m]))`, start: min(0), end: min(50), step: 90 * time.Second},
		{q: `avg(bytes_over_time({app="a"} | level="info" [4m]))`, start: min(2), end: min(48), step: 2 * time.Minute, uncached: true},
		{q: `count by (trace) (count_over_time({app="a"} | level="info" [4m]))`, start: min(2), end: min(48), step: 2 * time.Minute},
		{q: `sum(count_over_time({app="a"} |= "CUDA out of memory" [25m]))`, start: min(40), instant: true},
		{q: `count_over_time({app="a"}[17m] offset 1m)`, start: min(33), instant: true},
		{q: `sum(count_over_time({app="a"}[1h]))`, start: min(60), instant: true},
	}
	ctx := context.Background()
	off := New(st, Options{BlockCacheBytes: -1})
	on := New(st, Options{})
	for _, q := range queries {
		t.Run(q.q, func(t *testing.T) {
			p := Params{Query: q.q, Start: q.start, End: q.end, Step: q.step, Instant: q.instant}
			want, err := off.Query(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if want.Stats.Cache != (CacheStats{}) {
				t.Errorf("cache off counted %+v", want.Stats.Cache)
			}
			for run := 0; run < 2; run++ {
				got, err := on.Query(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
					t.Fatalf("run %d with the cache:\n got %v\nwant %v", run, g, w)
				}
				switch {
				case q.uncached && got.Stats.Cache != (CacheStats{}):
					t.Errorf("run %d: cache %+v, want it unused", run, got.Stats.Cache)
				case !q.uncached && run == 1 && (got.Stats.Cache.Hits == 0 || got.Stats.Cache.Misses != 0):
					t.Errorf("repeated run: cache %+v, want only hits", got.Stats.Cache)
				}
			}
		})
	}
	if len(render(mustQuery(t, on, Params{Query: queries[0].q, Start: min(0), End: min(50), Step: time.Minute}))) == 0 {
		t.Fatal("the test store answers nothing: the comparison above is vacuous")
	}
}

func mustQuery(t *testing.T, e *Engine, p Params) Result {
	t.Helper()
	res, err := e.Query(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A block the store drops (compaction rewrote it) leaves the cache, and
// the answers stay the same over the new blocks.
func TestBlockCacheDropsRemovedBlocks(t *testing.T) {
	st := blockTestStore(t)
	ctx := context.Background()
	p := Params{Query: `sum(count_over_time({app="a"}[5m]))`, Start: time.Unix(0, 0), End: time.Unix(3000, 0), Step: time.Minute}
	on := New(st, Options{})
	before := mustQuery(t, on, p)
	if on.cache.len() == 0 {
		t.Fatal("nothing cached")
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	after := mustQuery(t, on, p)
	if fmt.Sprint(render(after)) != fmt.Sprint(render(before)) {
		t.Fatalf("after compaction:\n got %v\nwant %v", render(after), render(before))
	}
	if after.Stats.Cache.Hits != 0 {
		t.Errorf("compaction rewrote every block, yet %d hits", after.Stats.Cache.Hits)
	}
	on.cache.mu.Lock()
	defer on.cache.mu.Unlock()
	for k := range on.cache.byKey {
		if !st.BlockLive(k.block) {
			t.Errorf("block %s is gone from the store but still cached", k.block)
		}
	}
}

func TestBlockCacheBudget(t *testing.T) {
	c := newBlockCache(1000)
	for i := 0; i < 20; i++ {
		c.put(cacheKey{block: store.BlockID{Seg: uint64(i)}}, i, 100)
	}
	if c.used > c.budget {
		t.Errorf("used %d over the budget %d", c.used, c.budget)
	}
	if _, ok := c.get(cacheKey{block: store.BlockID{Seg: 0}}); ok {
		t.Error("the oldest entry survived past the budget")
	}
	if v, ok := c.get(cacheKey{block: store.BlockID{Seg: 19}}); !ok || v != 19 {
		t.Errorf("newest entry = %v, %v", v, ok)
	}
	c.put(cacheKey{block: store.BlockID{Seg: 99}}, "huge", 5000)
	if _, ok := c.get(cacheKey{block: store.BlockID{Seg: 99}}); ok {
		t.Error("an entry larger than the whole budget was kept")
	}
}

// A repeated search skips the blocks that held no match the first time,
// and answers the same.
func TestNoMatchMemo(t *testing.T) {
	st := blockTestStore(t)
	off := New(st, Options{BlockCacheBytes: -1})
	for _, q := range []string{
		`{app="a"} |~ "(?i)N=5 MSG"`,                     // in the first flush's blocks only; no literal for the token filters
		`{app="a"} |~ "(?i)n=5[0-9] " | logfmt | n > 52`, // the second flush's
		`{app="a", level="info"} !~ "(?i)(ok|retry|cuda)"`,
		// "now" in a template keeps the passing-entries memo off (see
		// callsNow), leaving the no-match memo to skip the blocks.
		`{app="a"} |~ "(?i)N=5 MSG" | line_format "known {{.msg}}"`,
	} {
		t.Run(q, func(t *testing.T) {
			for _, dir := range []store.Direction{store.Forward, store.Backward} {
				on := New(st, Options{})
				p := Params{Query: q, Start: time.Unix(0, 0), End: time.Unix(4000, 0), Limit: 1000, Direction: dir}
				want := mustQuery(t, off, p)
				var skipped, read []int
				for run := 0; run < 2; run++ {
					got := mustQuery(t, on, p)
					if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
						t.Fatalf("run %d with the memo:\n got %v\nwant %v", run, g, w)
					}
					skipped = append(skipped, got.Stats.Store.BlocksSkipped)
					read = append(read, got.Stats.Store.BlocksRead)
					if run == 1 && got.Stats.Cache.Hits == 0 {
						t.Errorf("repeated search: cache %+v, want hits", got.Stats.Cache)
					}
				}
				// A repeat skips blocks (the no-match memo) or reads
				// their kept passing entries instead (logmemo.go).
				if read[1] >= read[0] {
					t.Errorf("blocks read: first %d, repeated %d", read[0], read[1])
				}
				if strings.Contains(q, "known") && skipped[1] <= skipped[0] {
					t.Errorf("blocks skipped: first %d, repeated %d", skipped[0], skipped[1])
				}
			}
		})
	}
}
