package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Additive range aggregations (count_over_time, rate, bytes_over_time,
// bytes_rate, without unwrap) fold block by block here, keeping each
// immutable block's partial result in the engine's cache: the next query
// over unchanged blocks (a dashboard refresh, an alert evaluation) reads
// only the head and the blocks written since.
//
// A block's partial result is, per label set the pipeline gives, the sum of
// its samples and their count in buckets (e-gran, e] on a grid of period gran
// = gcd(step, range) and phase = (first step - offset) mod gran. Every window
// (t-range, t] (shifted by the offset) starts and ends on that grid, so it
// is exactly the union of whole buckets, and a bucket folds into the steps as
// a single sample at its end e would: the sums are of integers, so the floats
// come out bit for bit the same as a line-by-line fold. A block that lies
// inside one bucket keeps a single bucket ending at its last entry, under a
// key with no alignment (gran 0), so queries of any step, range or
// evaluation time share it: an instant query's window holds all but the
// blocks straddling its two edges whole.

// blockGrid is the bucketing of one query's windows.
type blockGrid struct {
	gran, phase int64
}

// gridFor returns the bucketing of windows (t-rng, t] shifted back by off at
// the given steps: windows of a range query start every step, so gcd(step,
// rng); an instant query's single window is one bucket of rng.
func gridFor(steps []int64, rng, off int64) blockGrid {
	gran := rng
	if len(steps) > 1 {
		gran = gcd(steps[1]-steps[0], rng)
	}
	return blockGrid{gran: gran, phase: floorMod(steps[0]-off, gran)}
}

// end is the right edge of the bucket holding ts.
func (g blockGrid) end(ts int64) int64 {
	return g.phase + ceilDiv(ts-g.phase, g.gran)*g.gran
}

// oneBucket reports whether every entry of [minTs, maxTs] falls in the same
// bucket, so the block's whole total can stand for it.
func (g blockGrid) oneBucket(minTs, maxTs int64) bool {
	return g.end(minTs) == g.end(maxTs)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	if a < 0 {
		return -a
	}
	return a
}

func floorMod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}

// blockPart is one block's partial result.
type blockPart struct {
	series []partSeries
	size   int64 // bytes held, for the cache's budget
}

// partSeries holds one label set's buckets, ascending by end.
type partSeries struct {
	ls   labels.Labels
	hash uint64
	ends []int64
	vals []float64
	cnts []uint32
}

func (s *partSeries) add(end int64, v float64) {
	if n := len(s.ends); n > 0 && s.ends[n-1] == end {
		s.vals[n-1] += v
		s.cnts[n-1]++
		return
	}
	s.ends = append(s.ends, end)
	s.vals = append(s.vals, v)
	s.cnts = append(s.cnts, 1)
}

// pipelineKey is the normalized pipeline of an additive range aggregation
// for cache keys, and false when its result over a block may differ between
// runs (a template calling now).
func pipelineKey(x *syntax.RangeAggregationExpr) (string, bool) {
	sel := unusedParsersDropped(x)
	if callsNow(sel) {
		return "", false
	}
	kind := "count"
	switch x.Operation {
	case syntax.OpRangeTypeBytes, syntax.OpRangeTypeBytesRate:
		kind = "bytes"
	}
	key := kind + " " + sel.String()
	if x.Grouping != nil {
		key += " " + x.Grouping.String()
	}
	return key, true
}

// callsNow reports whether a template of the pipeline may call now, so
// that its result over a block may differ between runs.
func callsNow(sel syntax.LogSelectorExpr) bool {
	if p, ok := sel.(*syntax.PipelineExpr); ok {
		for _, st := range p.Stages {
			switch st.(type) {
			case *syntax.LineFmtExpr, *syntax.LabelFmtExpr:
				if strings.Contains(st.String(), "now") {
					return true
				}
			}
		}
	}
	return false
}

// computePart folds all entries of one block into buckets, per label set
// after the grouping (so a parser's per-line labels do not make a series
// each). Its samples and label sets are foldStream's: a counting extractor
// without stages sees the stream's labels and the entry's structured
// metadata; any other runs the pipeline.
func computePart(ctx context.Context, it store.StreamIterator, ex *log.SampleExtractor, gr *grouper, whole bool, maxTs int64, g blockGrid) (*blockPart, error) {
	lineOnly := ex.LineOnly()
	bytes := ex.Kind() == log.LineBytes
	part := &blockPart{}
	var sx *log.StreamSampleExtractor
	var wm *withMetadata
	byHash := map[uint64][]int{}
	// seriesOf is the index of the grouped series of a label set.
	seriesOf := func(ls labels.Labels, h uint64) int {
		ls, h = gr.group(ls, h)
		for _, j := range byHash[h] {
			if labels.Equal(part.series[j].ls, ls) {
				return j
			}
		}
		byHash[h] = append(byHash[h], len(part.series))
		part.series = append(part.series, partSeries{ls: ls, hash: h})
		return len(part.series) - 1
	}
	plain := -1 // the series of a line-only entry without metadata
	if lineOnly {
		wm = newWithMetadata(it.Labels())
	} else {
		sx = ex.ForStream(it.Labels())
	}
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := it.At()
		if !lineOnly && len(b.Lines) != len(b.Ts) {
			return nil, fmt.Errorf("read stream %s: store returned a batch without lines", it.Labels())
		}
		for i, ts := range b.Ts {
			end := maxTs
			if !whole {
				end = g.end(ts)
			}
			if lineOnly {
				v := 1.0
				if bytes {
					v = float64(b.Sizes[i])
				}
				j := plain
				if md := metadataAt(b, i); len(md) > 0 {
					j = seriesOf(wm.labels(md))
				} else if j < 0 {
					j = seriesOf(wm.stream, wm.hash)
					plain = j
				}
				part.series[j].add(end, v)
				continue
			}
			if stopped(ctx) {
				return nil, ctx.Err()
			}
			v, ls, h, ok := sx.ProcessStringMetadata(ts, b.Lines[i], metadataAt(b, i))
			if !ok {
				continue
			}
			part.series[seriesOf(ls, h)].add(end, v)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", it.Labels(), err)
	}
	part.measure()
	return part, nil
}

// measure sets the part's size as the cache budgets it.
func (part *blockPart) measure() {
	for i := range part.series {
		s := &part.series[i]
		part.size += 64 + int64(len(s.ends))*20
		for _, l := range s.ls {
			part.size += 32 + int64(len(l.Name)+len(l.Value))
		}
	}
}

// foldPart adds a block's buckets to the accumulators of the steps whose
// windows hold them. A series is created only once one of its buckets is in
// some window, as a line-by-line fold creates it.
func (ev *evaluator) foldPart(part *blockPart, set *accSet, rng, off int64) error {
	for i := range part.series {
		s := &part.series[i]
		var a *rangeAcc
		for j, e := range s.ends {
			lo, hi := ev.stepSpan(e+off, rng)
			if lo > hi {
				continue
			}
			if a == nil {
				var err error
				if a, err = set.get(s.ls, s.hash); err != nil {
					return err
				}
			}
			a.addSpanN(lo, hi, s.vals[j], float64(s.cnts[j]))
		}
	}
	return nil
}

// foldsPerBlock reports whether a counting range aggregation under the
// vector aggregation vecOp is better folded per block through the cache than
// streamed window by window. Streaming bounds the memory of a pipeline that
// makes many label sets, but a sum with its grouping pushed down holds only
// its groups either way, and a pipeline of filters alone keeps the streams'
// label sets. Only aggregations whose value does not depend on the order
// their series arrive in (min, max, count) switch: avg and stddev would
// differ from the streamed answer in the last bits.
func (ev *evaluator) foldsPerBlock(vecOp string, ra *syntax.RangeAggregationExpr, groupingPushed bool) bool {
	if ev.e.cache == nil || !additive(ra.Operation) || ra.Left.Unwrap != nil {
		return false
	}
	if groupingPushed {
		return true
	}
	switch vecOp {
	case syntax.OpTypeMin, syntax.OpTypeMax, syntax.OpTypeCount:
	default:
		return false
	}
	if p, ok := ra.Left.Left.(*syntax.PipelineExpr); ok {
		for _, st := range p.Stages {
			switch st.(type) {
			case *syntax.LineFilterExpr, *syntax.LabelFilterExpr:
			default:
				return false
			}
		}
	}
	return true
}

// cachedSelect is a range aggregation's streams split per block, for a
// fold through the cache.
type cachedSelect struct {
	cache   *blockCache
	br      store.BlockReader
	pipe    string // the cache key's pipeline
	ex      *log.SampleExtractor
	streams []store.BlockStream
}

// selectCached selects x's streams per block, with keyOf naming its
// pipeline in cache keys. It returns nil (and no error) when there is no
// cache, the reader keeps no immutable blocks, or keyOf says the
// pipeline's result over a block may change between runs. The caller
// closes the iterators.
func (ev *evaluator) selectCached(x *syntax.RangeAggregationExpr, keyOf func(*syntax.RangeAggregationExpr) (string, bool)) (*cachedSelect, error) {
	cache, br, ok := ev.e.blockCacheFor()
	if !ok {
		return nil, nil
	}
	pipe, ok := keyOf(x)
	if !ok {
		return nil, nil
	}
	p, ex, err := ev.rangeSelectParams(x, false)
	if err != nil {
		return nil, err
	}
	streams, err := br.SelectBlocks(ev.ctx, p)
	if err != nil {
		return nil, fmt.Errorf("select streams: %w", err)
	}
	return &cachedSelect{cache: cache, br: br, pipe: pipe, ex: ex, streams: streams}, nil
}

// blockJob is one unit of a cached fold: a block or a stream's head.
type blockJob struct {
	block *store.BlockInfo
	head  store.StreamIterator
}

// foldBlocks folds an additive range aggregation block by block through the
// cache. It reports false (and does nothing) when there is no cache, the
// reader keeps no immutable blocks, or the pipeline's result over a block
// may change between runs.
func (ev *evaluator) foldBlocks(x *syntax.RangeAggregationExpr, rng, off int64) ([]*rangeAcc, bool, error) {
	bs, err := ev.selectCached(x, pipelineKey)
	if bs == nil || err != nil {
		return nil, err != nil, err
	}
	cache, br, pipe, ex, streams := bs.cache, bs.br, bs.pipe, bs.ex, bs.streams
	var jobs []blockJob
	for i := range streams {
		for j := range streams[i].Blocks {
			jobs = append(jobs, blockJob{block: &streams[i].Blocks[j]})
		}
		if streams[i].Head != nil {
			jobs = append(jobs, blockJob{head: streams[i].Head})
		}
	}
	defer func() {
		for _, j := range jobs {
			if j.block != nil {
				j.block.Iter.Close()
			} else {
				j.head.Close()
			}
		}
	}()
	cache.sweep(br)
	grid := gridFor(ev.steps, rng, off)
	counter := cacheCounterFrom(ev.ctx)
	scan := lineScanFor(x, ex)

	accs, err := ev.foldJobs(x, len(jobs), func(ctx context.Context, gr *grouper, set *accSet, i int) error {
		if j := jobs[i]; j.head != nil {
			defer j.head.Close()
			return ev.foldStream(ctx, j.head, ex, x.Operation, gr, set, ex.LineOnly(), rng, off)
		}
		return ev.foldBlock(ctx, cache, counter, jobs[i].block, ex, scan, pipe, grid, gr, set, rng, off)
	})
	return accs, true, err
}

// foldBlock folds one block's kept result, computing and keeping it first
// when the cache has none.
func (ev *evaluator) foldBlock(ctx context.Context, cache *blockCache, counter *cacheCounter, b *store.BlockInfo, ex *log.SampleExtractor, scan *lineScan, pipe string, grid blockGrid, gr *grouper, set *accSet, rng, off int64) error {
	whole := grid.oneBucket(b.MinTs, b.MaxTs)
	k := cacheKey{block: b.ID, pipe: pipe, gran: grid.gran, phase: grid.phase}
	if whole {
		k.gran, k.phase = 0, 0
	}
	if !whole && len(ev.steps) == 1 && scan == nil && !ex.LineOnly() {
		return ev.foldEdgeBlock(ctx, cache, counter, b, ex, pipe, gr, set, rng, off)
	}
	// A block found corrupt is skipped (and reported) as a read skips it.
	v, ok := cache.get(k)
	if !ok {
		v, ok = cache.getDisk(b, k, counter)
	}
	if ok && !b.Corrupt() {
		counter.hit()
		b.Iter.Close()
		return ev.foldPart(v.(*blockPart), set, rng, off)
	}
	counter.miss()
	part, scanned, err := (*blockPart)(nil), false, error(nil)
	if scan != nil {
		part, scanned, err = scanPart(ctx, b, scan, ex, gr, whole, grid)
	} else if ex.LineOnly() {
		part, scanned, err = timesPart(ctx, b, ex, gr, whole, grid)
	}
	if !scanned {
		part, err = computePart(ctx, b.Iter, ex, gr, whole, b.MaxTs, grid)
	}
	b.Iter.Close() // let go of the block's entries now
	if err != nil {
		return err
	}
	if !b.Corrupt() {
		cache.put(k, part, part.size)
		cache.offerDisk(b, k, part)
	}
	return ev.foldPart(part, set, rng, off)
}
