package engine

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// diskTestQueries are folded per block (so the disk tier takes part),
// range and instant, with and without parsers, metadata and offsets.
func diskTestQueries() []Params {
	min := func(n int) time.Time { return time.Unix(0, 0).Add(time.Duration(n) * time.Minute).UTC() }
	return []Params{
		{Query: `count_over_time({app="a"}[5m])`, Start: min(0), End: min(50), Step: time.Minute},
		{Query: `sum by (level) (rate({app="a"} |= "CUDA" [3m]))`, Start: min(1), End: min(49), Step: 2 * time.Minute},
		{Query: `sum(count_over_time({app="a"} != "retry" [150s] offset 30s))`, Start: min(0), End: min(45), Step: 40 * time.Second},
		{Query: `sum without (n) (bytes_rate({app="a"} | logfmt | msg="ok" [1m]))`, Start: min(0), End: min(50), Step: 13 * time.Second},
		{Query: `sum by (trace) (count_over_time({app="a"}[5m]))`, Start: min(0), End: min(50), Step: time.Minute},
		{Query: `sum(count_over_time({app="a"} |= "CUDA out of memory" [25m]))`, Start: min(40), Instant: true},
		{Query: `sum(count_over_time({app="a"}[1h]))`, Start: min(60), Instant: true},
	}
}

func diskOpts() Options { return Options{DiskCache: true, DiskCacheBytes: 64 << 20} }

// runAll evaluates every query, failing on an error.
func runAll(t *testing.T, e *Engine) (answers []string, stats CacheStats) {
	t.Helper()
	for _, p := range diskTestQueries() {
		res := mustQuery(t, e, p)
		answers = append(answers, fmt.Sprint(render(res)))
		stats.Hits += res.Stats.Cache.Hits
		stats.Misses += res.Stats.Cache.Misses
		stats.DiskHits += res.Stats.Cache.DiskHits
	}
	return answers, stats
}

func sameAnswers(t *testing.T, what string, got, want []string) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: %s\n got %s\nwant %s", what, diskTestQueries()[i].Query, got[i], want[i])
		}
	}
}

// warmDisk runs the queries once on a fresh engine with the disk tier and
// waits for its writes.
func warmDisk(t *testing.T, st *store.Store, opts Options) *Engine {
	t.Helper()
	e := New(st, opts)
	runAll(t, e)
	e.cache.disk.flush()
	if err := e.cache.disk.err; err != nil {
		t.Fatalf("disk tier stopped writing: %v", err)
	}
	return e
}

func cacheFiles(t *testing.T, st *store.Store) map[string]int64 {
	t.Helper()
	dir, _ := st.ResultCacheDir()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = info.Size()
	}
	return out
}

// A fresh engine (a new process, as far as the cache knows) answers from
// the disk tier alone, the same as without any cache; so does a read-only
// store opened beside the writer, which writes nothing.
func TestDiskCacheSameAnswers(t *testing.T) {
	st := blockTestStore(t)
	want, _ := runAll(t, New(st, Options{BlockCacheBytes: -1}))
	noDisk, s := runAll(t, New(st, Options{}))
	sameAnswers(t, "memory cache only", noDisk, want)
	if len(cacheFiles(t, st)) != 0 || s.DiskHits != 0 {
		t.Fatalf("without the disk tier: files %v, disk hits %d", cacheFiles(t, st), s.DiskHits)
	}

	warmDisk(t, st, diskOpts())
	files := cacheFiles(t, st)
	if len(files) == 0 {
		t.Fatal("the disk tier wrote nothing")
	}
	got, s := runAll(t, New(st, diskOpts()))
	sameAnswers(t, "fresh engine, warm disk", got, want)
	if s.Misses != 0 || s.DiskHits == 0 || s.DiskHits != s.Hits {
		t.Errorf("fresh engine, warm disk: cache %+v, want every block from disk", s)
	}

	// A read-only store does not see the writer's head: its own answers
	// without a cache are the reference.
	ro, err := store.OpenReadOnly(st.Info().Dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	roWant, _ := runAll(t, New(ro, Options{BlockCacheBytes: -1}))
	e := New(ro, diskOpts())
	got, s = runAll(t, e)
	sameAnswers(t, "read-only store", got, roWant)
	if s.DiskHits == 0 {
		t.Errorf("read-only store: cache %+v, want disk hits", s)
	}
	e.cache.disk.flush()
	if after := cacheFiles(t, st); fmt.Sprint(after) != fmt.Sprint(files) {
		t.Errorf("a read-only store changed the cache files: %v, were %v", after, files)
	}
}

// A damaged file is a miss, never an error: the answers stay the same, and
// the writer makes the file sound again (the next fresh engine hits).
func TestDiskCacheDamagedFiles(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func([]byte) []byte
		intact bool // every record survives
	}{
		{"empty", func([]byte) []byte { return nil }, false},
		{"header only", func(b []byte) []byte { return b[:diskHdrLen] }, false},
		{"truncated in the header", func(b []byte) []byte { return b[:3] }, false},
		{"truncated in a record", func(b []byte) []byte { return b[:len(b)-5] }, false},
		{"a flipped byte in the last record", func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }, false},
		{"a flipped byte in the first record", func(b []byte) []byte { b[diskHdrLen+9] ^= 0x01; return b }, false},
		{"a huge record length", func(b []byte) []byte { b[diskHdrLen+3] = 0xff; return b }, false},
		{"another format version", func(b []byte) []byte { b[4] = diskVersion + 1; return b }, false},
		{"not a cache file", func([]byte) []byte { return []byte(strings.Repeat("garbage\n", 40)) }, false},
		{"trailing garbage", func(b []byte) []byte { return append(b, "\x05\x00\x00\x00junk!"...) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := blockTestStore(t)
			want, _ := runAll(t, New(st, Options{BlockCacheBytes: -1}))
			warmDisk(t, st, diskOpts())
			dir, _ := st.ResultCacheDir()
			for name := range cacheFiles(t, st) {
				p := filepath.Join(dir, name)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, tt.damage(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// A reader only reads: it must cope with the damage as found.
			ro, err := store.OpenReadOnly(st.Info().Dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			roWant, _ := runAll(t, New(ro, Options{BlockCacheBytes: -1}))
			got, _ := runAll(t, New(ro, diskOpts()))
			sameAnswers(t, "read-only over damaged files", got, roWant)

			e := New(st, diskOpts())
			got, s := runAll(t, e)
			sameAnswers(t, "writer over damaged files", got, want)
			if (s.Misses == 0) != tt.intact {
				t.Errorf("damaged files: cache %+v, want misses unless every record is intact", s)
			}
			e.cache.disk.flush()
			got, s = runAll(t, New(st, diskOpts()))
			sameAnswers(t, "after the writer rebuilt the files", got, want)
			if s.Misses != 0 || s.DiskHits == 0 {
				t.Errorf("after the rebuild: cache %+v, want every block from disk", s)
			}
		})
	}
}

// Entries leave with their blocks: compaction's dead segments take their
// files along, retention's dropped days too, and a file of a segment the
// store no longer holds is removed at the writer's next open.
func TestDiskCacheDroppedWithBlocks(t *testing.T) {
	live := func(t *testing.T, st *store.Store) {
		t.Helper()
		for name := range cacheFiles(t, st) {
			seg, ok := store.ParseResultCacheFile(name)
			if !ok {
				continue
			}
			if !segmentLive(st, seg) {
				t.Errorf("cache file %s outlived its segment", name)
			}
		}
	}
	t.Run("compaction", func(t *testing.T) {
		st := blockTestStore(t)
		want, _ := runAll(t, New(st, Options{BlockCacheBytes: -1}))
		warmDisk(t, st, diskOpts())
		before := cacheFiles(t, st)
		ctx := context.Background()
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		after := cacheFiles(t, st)
		for name := range before {
			if _, ok := after[name]; ok {
				t.Errorf("compaction rewrote every block, yet %s stayed", name)
			}
		}
		got, s := runAll(t, New(st, diskOpts()))
		sameAnswers(t, "after compaction", got, want)
		if s.DiskHits != 0 {
			t.Errorf("after compaction: %d disk hits of blocks that are gone", s.DiskHits)
		}
		live(t, st)
	})
	t.Run("retention", func(t *testing.T) {
		st := blockTestStore(t)
		dir := st.Info().Dir
		warmDisk(t, st, diskOpts())
		if len(cacheFiles(t, st)) == 0 {
			t.Fatal("nothing cached")
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		// Opening applies retention: every day of 1970 goes.
		st2, err := store.Open(dir, store.Options{Retention: 24 * time.Hour, CompactAfterIdle: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		if n := st2.Info().Blocks; n != 0 {
			t.Fatalf("retention left %d blocks", n)
		}
		if files := cacheFiles(t, st2); len(files) != 0 {
			t.Errorf("retention dropped every block, yet the cache holds %v", files)
		}
	})
	t.Run("stray files at open", func(t *testing.T) {
		st := blockTestStore(t)
		dir := st.Info().Dir
		warmDisk(t, st, diskOpts())
		cdir, _ := st.ResultCacheDir()
		stray := filepath.Join(cdir, store.ResultCacheFile(1<<40))
		tmp := filepath.Join(cdir, store.ResultCacheTemp(store.ResultCacheFile(3)))
		other := filepath.Join(cdir, "README")
		for _, p := range []string{stray, tmp, other} {
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st2, err := store.Open(dir, store.Options{CompactAfterIdle: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		for _, p := range []string{stray, tmp} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s survived the open: %v", filepath.Base(p), err)
			}
		}
		if _, err := os.Stat(other); err != nil {
			t.Errorf("a file that is not the cache's was removed: %v", err)
		}
		live(t, st2)
		if _, s := runAll(t, New(st2, diskOpts())); s.DiskHits == 0 {
			t.Errorf("the live segments' files went too: %+v", s)
		}
	})
}

// segmentLive reports whether any block of segment seg is live (offsets
// are below a segment's size, which stays under a few MB here).
func segmentLive(st *store.Store, seg uint64) bool {
	streams, err := st.SelectBlocks(context.Background(), store.SelectParams{Start: math.MinInt64, End: math.MaxInt64, Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "a")}})
	if err != nil {
		return false
	}
	found := false
	for _, s := range streams {
		for _, b := range s.Blocks {
			found = found || b.ID.Seg == seg
			b.Iter.Close()
		}
		if s.Head != nil {
			s.Head.Close()
		}
	}
	return found
}

// The files stay within the budget, least recently used first out.
func TestDiskCacheBudget(t *testing.T) {
	st := blockTestStore(t)
	want, _ := runAll(t, New(st, Options{BlockCacheBytes: -1}))
	warmDisk(t, st, diskOpts())
	var total, largest int64
	for _, n := range cacheFiles(t, st) {
		total += n
		largest = max(largest, n)
	}
	dir, _ := st.ResultCacheDir()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	budget := total / 2
	if budget < largest {
		t.Fatalf("files of %d bytes, the largest %d: no budget holds some but not all", total, largest)
	}
	e := warmDisk(t, st, Options{DiskCache: true, DiskCacheBytes: budget})
	var kept int64
	for _, n := range cacheFiles(t, st) {
		kept += n
	}
	if kept > budget || kept == 0 {
		t.Errorf("files hold %d bytes, budget %d", kept, budget)
	}
	if e.cache.disk.used != kept {
		t.Errorf("the tier counts %d bytes, the files hold %d", e.cache.disk.used, kept)
	}
	got, s := runAll(t, New(st, diskOpts()))
	sameAnswers(t, "after eviction", got, want)
	if s.DiskHits == 0 || s.Misses == 0 {
		t.Errorf("half the files evicted: cache %+v, want hits and misses", s)
	}
	// The default budget is a share of the store.
	d := newDiskTier(st, 0)
	if got, want := d.budgetBytes(), int64(DefaultDiskCacheShare*float64(st.SegmentBytes())); got != want || got <= 0 {
		t.Errorf("default budget %d, want %d", got, want)
	}
}

// Queries on several engines at once, writers and readers, agree (run it
// with -race).
func TestDiskCacheConcurrent(t *testing.T) {
	st := blockTestStore(t)
	want, _ := runAll(t, New(st, Options{BlockCacheBytes: -1}))
	ro, err := store.OpenReadOnly(st.Info().Dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	shared := New(st, diskOpts())
	roWant, _ := runAll(t, New(ro, Options{BlockCacheBytes: -1}))
	engines := []*Engine{shared, shared, New(st, Options{DiskCache: true, DiskCacheBytes: 2000}), New(ro, diskOpts())}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for run := 0; run < 3; run++ {
				for j, p := range diskTestQueries() {
					res, err := e.Query(context.Background(), p)
					if err != nil {
						errs <- fmt.Sprintf("engine %d: %s: %v", i, p.Query, err)
						return
					}
					w := want[j]
					if e.r == ro {
						w = roWant[j]
					}
					if got := fmt.Sprint(render(res)); got != w {
						errs <- fmt.Sprintf("engine %d run %d: %s differs", i, run, p.Query)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestDiskRecordRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		key  diskKey
		part *blockPart
	}{
		{"empty", diskKey{off: 0, fp: 1, pipe: "count {}"}, &blockPart{}},
		{"negative times, empty label value", diskKey{off: 1 << 40, fp: math.MaxUint64, pipe: `bytes {a="b"} | logfmt`, gran: 60e9, phase: 17}, &blockPart{series: []partSeries{
			{ls: labels.New(labels.Label{Name: "a", Value: ""}, labels.Label{Name: "z", Value: "ünï"}), ends: []int64{-5e9, -1, 0, 7e18}, vals: []float64{1, 2.5, 0, 1e300}, cnts: []uint32{1, 2, 3, math.MaxUint32}},
			{ls: labels.Labels{}, ends: []int64{10}, vals: []float64{3}, cnts: []uint32{3}},
			{ls: labels.New(labels.Label{Name: "grid", Value: "whole"}), ends: []int64{17 - 60e9, 17 + 60e9, 17 + 600e9}, vals: []float64{100, 500, 7}, cnts: []uint32{1, 2, 3}},
			{ls: labels.New(labels.Label{Name: "grid", Value: "counts"}), ends: []int64{17, 17 + 120e9}, vals: []float64{1, 2}, cnts: []uint32{1, 2}},
			{ls: labels.New(labels.Label{Name: "negative zero"}), ends: []int64{17}, vals: []float64{math.Copysign(0, -1)}, cnts: []uint32{0}},
		}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := appendDiskRecord(nil, tt.key, tt.part)
			payload, n, ok := nextDiskRecord(b)
			if !ok || n != len(b) {
				t.Fatalf("record of %d bytes read as %d, %v", len(b), n, ok)
			}
			r := &diskReader{b: payload}
			k, err := decodeDiskKey(r)
			if err != nil || k != tt.key {
				t.Fatalf("key %+v, %v; want %+v", k, err, tt.key)
			}
			part, err := decodeDiskPart(r, k)
			if err != nil {
				t.Fatal(err)
			}
			if len(part.series) != len(tt.part.series) {
				t.Fatalf("%d series, want %d", len(part.series), len(tt.part.series))
			}
			for i, s := range part.series {
				w := tt.part.series[i]
				if !labels.Equal(s.ls, w.ls) || s.hash != w.ls.Hash() || fmt.Sprint(s.ends, s.cnts) != fmt.Sprint(w.ends, w.cnts) {
					t.Errorf("series %d = %+v, want %+v", i, s, w)
				}
				for j := range w.vals {
					if math.Float64bits(s.vals[j]) != math.Float64bits(w.vals[j]) {
						t.Errorf("series %d bucket %d: sum %v, want %v bit for bit", i, j, s.vals[j], w.vals[j])
					}
				}
				flags := seriesFlags(&w, tt.key)
				if want := map[string]byte{"whole": flagGrid | flagWhole, "counts": flagGrid | flagCounts | flagWhole}[w.ls.Get("grid")]; want != 0 && flags != want {
					t.Errorf("series %d written with flags %03b, want %03b", i, flags, want)
				}
			}
			// Every cut short and every flipped bit is refused.
			for cut := 0; cut < len(b); cut++ {
				if _, _, ok := nextDiskRecord(b[:cut]); ok {
					t.Fatalf("record cut at %d of %d accepted", cut, len(b))
				}
			}
			for i := 8; i < len(b); i++ {
				c := append([]byte(nil), b...)
				c[i] ^= 0x10
				if _, _, ok := nextDiskRecord(c); ok {
					t.Fatalf("record with byte %d flipped accepted", i)
				}
			}
		})
	}
}

// Nothing is written once the store is closed (a test's directory being
// removed, a datasource being deleted), nor by a read-only store.
func TestDiskCacheAfterClose(t *testing.T) {
	st := blockTestStore(t)
	ro, err := store.OpenReadOnly(st.Info().Dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.ResultCacheWrite(func() { t.Error("a read-only store ran a cache write") }) {
		t.Error("a read-only store accepted a cache write")
	}
	e := New(st, diskOpts())
	streams, err := st.SelectBlocks(context.Background(), store.SelectParams{Start: math.MinInt64, End: math.MaxInt64, Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "a")}})
	if err != nil {
		t.Fatal(err)
	}
	var blocks []store.BlockInfo
	for _, s := range streams {
		blocks = append(blocks, s.Blocks...)
		for _, b := range s.Blocks {
			b.Iter.Close()
		}
		if s.Head != nil {
			s.Head.Close()
		}
	}
	if len(blocks) == 0 {
		t.Fatal("no blocks")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	part := &blockPart{series: []partSeries{{ls: labels.New(labels.Label{Name: "app", Value: "a"}), ends: []int64{1}, vals: []float64{1}, cnts: []uint32{1}}}}
	for _, b := range blocks {
		e.cache.disk.offer(&b, cacheKey{block: b.ID, pipe: "count {app=\"a\"}"}, part)
	}
	e.cache.disk.flush()
	if files := cacheFiles(t, st); len(files) != 0 {
		t.Errorf("written after the store closed: %v", files)
	}
	if e.cache.disk.writable.Load() || e.cache.disk.err != nil {
		t.Errorf("after close: writable %v, error %v; want writing off without an error", e.cache.disk.writable.Load(), e.cache.disk.err)
	}
}

// The script suite through the disk tier: a first engine computes and
// writes, a fresh one answers from the disk, and both answers are the
// scripts' expectations.
func TestScriptsDiskTier(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.test files: %v", err)
	}
	var diskHits int64
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			st, err := store.Open(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cmds := loadScript(t, f, st)
			if err := st.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// A script's store is a few KB: 3% of it would hold nothing.
			first := New(st, Options{Parallelism: 2, DiskCache: true, DiskCacheBytes: 1 << 20})
			runScript(t, first, cmds, 1)
			first.FlushResultCache()
			fresh := New(st, Options{Parallelism: 2, DiskCache: true, DiskCacheBytes: 1 << 20})
			runScript(t, fresh, cmds, 1)
			counted := New(st, Options{Parallelism: 2, DiskCache: true, DiskCacheBytes: 1 << 20})
			for _, c := range cmds {
				if res, err := counted.Query(context.Background(), c.params); err == nil {
					diskHits += res.Stats.Cache.DiskHits
				}
			}
		})
	}
	if diskHits == 0 {
		t.Error("no script query took a block result from the disk")
	}
}
