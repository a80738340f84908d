package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Range aggregations folded in time order (every unwrap function:
// sum/avg/min/max/first/last/stddev/stdvar/quantile_over_time,
// rate_counter, and unwrapped rate/count) keep, per immutable block, the
// samples its pipeline gives: time, unwrapped value and grouped label set,
// in the block's order. Parsing the lines is what these queries spend
// their time on; a dashboard refresh then parses only the head and the
// blocks written since, and merges the kept samples with them.
//
// The kept samples are exactly those the streamed fold extracts, and they
// go through the same time-ordered merge (ties by the grouped labels' text)
// and the same fold, so the answers are the streamed ones bit for bit,
// whatever the function: no float is summed in another order. (A series
// fed by two streams with a sample each at the same nanosecond has no
// defined order in either path.) Folding per-bucket partial sums would be
// smaller, but avg's running mean and quantile would then differ from the
// streamed answer; samples are kept instead, bounded by the cache's budget.
//
// The kept samples do not depend on the steps, the range or the function
// (only on the pipeline, the unwrap and the grouping), so avg and
// quantile_over_time of the same pipeline, and every zoom, share them.

// samplesPart is one block's samples in the block's order.
type samplesPart struct {
	recs []sampleRec
	size int64
}

// sampleRecBytes is what one kept sample costs: its time, value, hash and
// label slice header (the label sets are shared between samples).
const sampleRecBytes = 48

// samplesKey is the cache key's pipeline of a time-ordered range
// aggregation, and false when its samples may differ between runs.
func samplesKey(x *syntax.RangeAggregationExpr) (string, bool) {
	if callsNow(x.Left.Left) {
		return "", false
	}
	key := "samples " + x.Left.Left.String()
	if x.Left.Unwrap != nil {
		key += " " + x.Left.Unwrap.String()
	} else {
		key += " " + x.Operation // what a line counts as without unwrap
	}
	if x.Grouping != nil {
		key += " " + x.Grouping.String()
	}
	return key, true
}

// foldBlockSamples folds a time-ordered range aggregation from the blocks'
// kept samples and the heads read live. It reports false (having kept what
// it computed) when there is no cache, the reader keeps no blocks, the
// pipeline's samples may change between runs, or the blocks' samples
// would not fit the cache's budget: the query then streams, its memory
// bounded as before, and the next query of the pipeline over as many
// block entries streams at once.
func (ev *evaluator) foldBlockSamples(x *syntax.RangeAggregationExpr, rng, off int64) ([]*rangeAcc, bool, error) {
	bs, err := ev.selectCached(x, samplesKey)
	if bs == nil || err != nil {
		return nil, err != nil, err
	}
	cache, ex, streams := bs.cache, bs.ex, bs.streams
	var blocks []*store.BlockInfo
	var heads []store.StreamIterator
	for i := range streams {
		for j := range streams[i].Blocks {
			blocks = append(blocks, &streams[i].Blocks[j])
		}
		if streams[i].Head != nil {
			heads = append(heads, streams[i].Head)
		}
	}
	defer func() {
		for _, b := range blocks {
			b.Iter.Close()
		}
		closeAll(heads)
	}()
	entries := int64(0)
	for _, b := range blocks {
		entries += int64(b.Entries)
	}
	if cache.tooLarge(bs.pipe, entries) {
		return nil, false, nil
	}
	cache.sweep(bs.br)
	parts, fits, err := ev.blockSamples(cache, blocks, ex, x.Grouping, bs.pipe)
	if err != nil {
		return nil, true, err
	}
	if !fits {
		cache.noteTooLarge(bs.pipe, entries)
		return nil, false, nil
	}

	ctx, cancel := context.WithCancel(ev.ctx)
	wg := &sync.WaitGroup{}
	defer func() {
		cancel()
		wg.Wait()
	}()
	done := make(chan fed[sampleRec])
	close(done)
	cs := make([]*sampleCursor, 0, len(parts)+len(heads))
	for _, part := range parts {
		if part != nil && len(part.recs) > 0 {
			cs = append(cs, &sampleCursor{feed: &feed[sampleRec]{ch: done, pending: part.recs}})
		}
	}
	sem := make(chan struct{}, ev.e.opts.Parallelism)
	lim := fedLimitsFor(len(heads))
	for _, it := range heads {
		cs = append(cs, &sampleCursor{feed: ev.feedSamples(ctx, wg, sem, it, ex.ForStream(it.Labels()), x.Grouping, rng, off, lim)})
	}
	// Heads' feeds send marks of how far they have read; none leaves the merge.
	m, err := newMarkedMerge(ev.ctx, cs, sampleOrder, func(c *sampleCursor) bool { return c.mark })
	if err != nil {
		return nil, true, err
	}
	accs, err := ev.foldMerged(m, ev.newAccSet(x.Operation), x, rng, off)
	return accs, true, err
}

// blockSamples returns every block's kept samples (nil for a corrupt
// block, which reads skip), computing the missing ones on all cores and
// keeping them. fits is false, and the parts are dropped, once they add up
// to more than the cache's budget.
func (ev *evaluator) blockSamples(cache *blockCache, blocks []*store.BlockInfo, ex *log.SampleExtractor, grouping *syntax.Grouping, pipe string) ([]*samplesPart, bool, error) {
	counter := cacheCounterFrom(ev.ctx)
	parts := make([]*samplesPart, len(blocks))
	var mu sync.Mutex
	total := int64(0)
	// over adds a part's bytes and reports whether they are past the budget.
	over := func(part *samplesPart) bool {
		mu.Lock()
		defer mu.Unlock()
		total += part.size
		return total > cache.budget/samplesShare
	}
	var missing []int
	for i, b := range blocks {
		k := cacheKey{block: b.ID, pipe: pipe}
		if v, ok := cache.get(k); ok && !b.Corrupt() {
			counter.hit()
			parts[i] = v.(*samplesPart)
			if over(parts[i]) {
				return nil, false, nil
			}
			continue
		}
		missing = append(missing, i)
	}
	// The workers of foldJobs compute the missing parts (each with its
	// own grouper); they fold nothing into its sets.
	_, err := ev.foldJobs(&syntax.RangeAggregationExpr{Operation: pipe, Grouping: grouping}, len(missing), func(ctx context.Context, g *grouper, _ *accSet, j int) error {
		b := blocks[missing[j]]
		counter.miss()
		part, err := computeSamples(ctx, b.Iter, ex, g)
		b.Iter.Close() // let go of the block's entries now
		if err != nil || b.Corrupt() {
			return err
		}
		cache.put(cacheKey{block: b.ID, pipe: pipe}, part, part.size)
		parts[missing[j]] = part
		if over(part) {
			return errSamplesOverBudget
		}
		return nil
	})
	switch {
	case errors.Is(err, errSamplesOverBudget):
		// The query streams now, holding its windows' samples: what this
		// run kept would sit in the heap beside them (32 MiB at the
		// default budget), and a query of this pipeline over as many
		// entries streams too, so it goes.
		for _, i := range missing {
			cache.drop(cacheKey{block: blocks[i].ID, pipe: pipe})
		}
		return nil, false, nil
	case err != nil:
		return nil, true, err
	}
	return parts, true, nil
}

// samplesShare divides the cache's budget into what one query's kept
// samples may take. While they are computed they are held beside the
// blocks being decoded, and a query past its share drops them and goes on
// to stream with its windows' samples. A 7-day quantile by instance over
// 10 GiB, refused by the query budget, peaked in the plugin at 159 MB when
// it kept the whole budget's worth (32 MiB), 122 MB when it dropped them,
// and 93 MB at half (2026-12-06). Half still holds the 6 h text-length
// panels of the dashboard (TestDashboardLoad: same engine times).
const samplesShare = 2

// errSamplesOverBudget stops the workers of blockSamples once the parts
// will not fit the cache.
var errSamplesOverBudget = errors.New("the blocks' samples are over the cache's budget")

// computeSamples extracts every sample of one block, as feedSamples does
// for the samples inside a query's windows: grouped label sets, block
// order.
func computeSamples(ctx context.Context, it store.StreamIterator, ex *log.SampleExtractor, g *grouper) (*samplesPart, error) {
	sx := ex.ForStream(it.Labels())
	part := &samplesPart{}
	var lastHash uint64
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := it.At()
		if len(b.Lines) != len(b.Ts) {
			return nil, fmt.Errorf("read stream %s: store returned a batch without lines", it.Labels())
		}
		for i, ts := range b.Ts {
			if stopped(ctx) {
				return nil, ctx.Err()
			}
			v, ls, h, ok := sx.ProcessStringMetadata(ts, b.Lines[i], metadataAt(b, i))
			if !ok {
				continue
			}
			gl, gh := g.group(ls, h)
			if n := len(part.recs); n == 0 || gh != lastHash {
				part.size += int64(labelsBytes(gl))
				lastHash = gh
			}
			part.recs = append(part.recs, sampleRec{ts: ts, v: v, ls: gl, hash: gh})
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", it.Labels(), err)
	}
	part.recs = part.recs[:len(part.recs):len(part.recs)]
	part.size += int64(len(part.recs)) * sampleRecBytes
	return part, nil
}

// foldEdgeBlock folds a block straddling an instant query's window edge
// from its kept samples. Its buckets would be keyed by the evaluation time
// (the window's edges lie anywhere), so the next refresh, a few seconds
// later, would compute them again; its samples (values of the additive
// function, label sets grouped) serve every evaluation time. Its pipeline
// parses (a pipeline of line filters alone has a faster scan), which is
// what a refresh would spend its time on.
func (ev *evaluator) foldEdgeBlock(ctx context.Context, cache *blockCache, counter *cacheCounter, b *store.BlockInfo, ex *log.SampleExtractor, pipe string, gr *grouper, set *accSet, rng, off int64) error {
	k := cacheKey{block: b.ID, pipe: "samples " + pipe}
	var part *samplesPart
	if v, ok := cache.get(k); ok && !b.Corrupt() {
		counter.hit()
		b.Iter.Close()
		part = v.(*samplesPart)
	} else {
		counter.miss()
		var err error
		part, err = computeSamples(ctx, b.Iter, ex, gr)
		b.Iter.Close() // let go of the block's entries now
		if err != nil {
			return err
		}
		if !b.Corrupt() {
			cache.put(k, part, part.size)
		}
	}
	for _, r := range part.recs {
		lo, hi := ev.stepSpan(r.ts+off, rng)
		if lo > hi {
			continue
		}
		a, err := set.get(r.ls, r.hash)
		if err != nil {
			return err
		}
		a.addSpan(lo, hi, r.v)
	}
	return nil
}
