package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

var _ Reader = (*Store)(nil)
var _ Appender = (*Store)(nil)

// match returns the streams every matcher accepts, sorted by labels. Equality
// matchers narrow through the inverted index first.
func (m *meta) match(ms []*labels.Matcher) []*streamState {
	var cand []*streamState
	narrowed := false
	for _, mt := range ms {
		if mt.Type != labels.MatchEqual || mt.Value == "" {
			continue
		}
		list := m.postings[mt.Name][mt.Value]
		if !narrowed {
			cand = slices.Clone(list)
			narrowed = true
			continue
		}
		in := make(map[*streamState]bool, len(list))
		for _, st := range list {
			in[st] = true
		}
		cand = slices.DeleteFunc(cand, func(st *streamState) bool { return !in[st] })
	}
	if !narrowed {
		cand = make([]*streamState, 0, len(m.streams))
		for _, st := range m.streams {
			cand = append(cand, st)
		}
	}
	cand = slices.DeleteFunc(cand, func(st *streamState) bool { return !labels.MatchLabels(st.lbls, ms...) })
	slices.SortFunc(cand, func(a, b *streamState) int { return labels.Compare(a.lbls, b.lbls) })
	return cand
}

func overlaps(b *blockRef, start, end int64) bool {
	return b.h.MinTs < end && b.h.MaxTs >= start
}

func anyInRange(es []Entry, start, end int64) bool {
	for _, e := range es {
		if e.Ts >= start && e.Ts < end {
			return true
		}
	}
	return false
}

// hasData reports whether a stream may have entries in [start, end).
func (st *streamState) hasData(start, end int64) bool {
	for _, b := range st.blocks {
		if overlaps(b, start, end) {
			return true
		}
	}
	return anyInRange(st.flushing, start, end) || anyInRange(st.head, start, end)
}

func (s *Store) refresh() error {
	if s.readOnly {
		return s.reload()
	}
	return nil
}

// Streams lists the label sets of matching streams with data in [start, end).
func (s *Store) Streams(ctx context.Context, ms []*labels.Matcher, start, end int64) ([]labels.Labels, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []labels.Labels
	for _, st := range s.m.match(ms) {
		if st.hasData(start, end) {
			out = append(out, st.lbls)
		}
	}
	return out, nil
}

// LabelNames lists label names of streams with data in [start, end).
func (s *Store) LabelNames(ctx context.Context, start, end int64) ([]string, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	for _, st := range s.m.streams {
		if st.hasData(start, end) {
			for _, l := range st.lbls {
				seen[l.Name] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// LabelValues lists the values of a label among matching streams with data
// in [start, end).
func (s *Store) LabelValues(ctx context.Context, name string, ms []*labels.Matcher, start, end int64) ([]string, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	for _, st := range s.m.match(ms) {
		if v := st.lbls.Get(name); v != "" && st.hasData(start, end) {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out, nil
}

// Select returns lazy iterators, one per matching stream with data in range.
func (s *Store) Select(ctx context.Context, p SelectParams) ([]StreamIterator, error) {
	return s.selectAttempt(ctx, p, 1)
}

// readOnlySelectTries bounds how often a read-only select re-reads the
// manifest because files it names were replaced meanwhile.
const readOnlySelectTries = 3

func (s *Store) selectAttempt(ctx context.Context, p SelectParams, attempt int) ([]StreamIterator, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Direction != Forward && p.Direction != Backward {
		return nil, fmt.Errorf("select: unknown direction %d", p.Direction)
	}
	if p.End <= p.Start {
		return nil, nil
	}
	stats := StatsFrom(ctx)
	prunes := hintPrunes(p.Hint)
	if prunes {
		s.loadFilterSums(p.Start, p.End, false)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	var its []StreamIterator
	var total, skipped int
	matched := s.m.match(p.Matchers)
	dec := newDecodedHeld(p.MaxDecodedBytes, 0)
	for _, st := range matched {
		var blocks []*blockRef
		for _, b := range st.blocks {
			if !overlaps(b, p.Start, p.End) {
				continue
			}
			total++
			// A block whose filter summary rules it out is neither held
			// nor counted in the select's decoded bytes (a corrupt one is
			// left to the iterator, which counts it).
			if prunes && !b.corrupt.Load() {
				if sum := b.filterSum.Load(); sum != nil && !sum.mayMatch(p.Hint) {
					skipped++
					continue
				}
			}
			blocks = append(blocks, b)
		}
		mem := [2][]Entry{st.flushing[:len(st.flushing):len(st.flushing)], st.head[:len(st.head):len(st.head)]}
		if len(blocks) == 0 && !anyInRange(mem[0], p.Start, p.End) && !anyInRange(mem[1], p.Start, p.End) {
			continue
		}
		it := &streamIter{s: s, ctx: ctx, p: p, lbls: st.lbls, pending: blocks, mem: mem, stats: stats, dec: dec}
		for _, b := range blocks {
			b.seg.readers++
			it.held = append(it.held, b.seg)
		}
		if p.Direction == Forward {
			slices.SortStableFunc(it.pending, func(a, b *blockRef) int { return cmpInt64(a.h.MinTs, b.h.MinTs) })
		} else {
			slices.SortStableFunc(it.pending, func(a, b *blockRef) int { return cmpInt64(b.h.MaxTs, a.h.MaxTs) })
		}
		its = append(its, it)
	}
	s.mu.Unlock()
	perStream, heads, blockMax := selectCosts(its, p.Lines)
	if prunes && dec.max >= 0 && perStream > dec.max {
		// The select would hold windows of its blocks and decode them
		// again for each (spill.go), whatever its line filter rules out:
		// check the filters first, on both cores, and plan for the
		// blocks they leave.
		skipped += s.pruneByFilters(ctx, its, p.Hint)
		perStream, heads, blockMax = selectCosts(its, p.Lines)
	}
	dec.plan(len(its), perStream, heads, blockMax, p.Lines)
	if s.readOnly {
		// The writer deletes segment files that merges and recompaction
		// replaced as soon as its own readers are done, and knows nothing of
		// ours: open every file this query needs now, so that a deletion
		// from here on leaves our handles readable.
		for _, it := range its {
			for _, seg := range it.(*streamIter).held {
				if _, err := s.segFile(seg); err != nil {
					for _, it := range its {
						it.Close()
					}
					if errors.Is(err, fs.ErrNotExist) && attempt < readOnlySelectTries {
						// Replaced since we read the manifest: read it again.
						return s.selectAttempt(ctx, p, attempt+1)
					}
					return nil, fmt.Errorf("select: %w", err)
				}
			}
		}
	}
	if prunes {
		s.prefetchFilters(ctx, its, p)
	}
	stats.Add(Stats{Streams: len(its), BlocksTotal: total, BlocksSkipped: skipped})
	return its, nil
}

// selectCosts sums what dec.plan needs: each stream's largest block plus
// its head, the heads alone, and the largest block.
func selectCosts(its []StreamIterator, lines bool) (perStream, heads, blockMax int64) {
	for _, si := range its {
		it := si.(*streamIter)
		var largest int64
		for _, b := range it.pending {
			c := blockCostMD(b, lines)
			largest, blockMax = max(largest, c), max(blockMax, c)
		}
		if n := len(it.mem[0]) + len(it.mem[1]); n > 0 {
			head := decodedCost(n, 0, lines) + mdCost(n)
			heads += head
			largest += head
		}
		perStream += largest
	}
	return perStream, heads, blockMax
}

// pruneByFilters reads and checks, on two goroutines, the token filters of
// the iterators' pending blocks, keeps their summaries, and drops the
// blocks they rule out from pending; it returns how many it dropped. A
// filter it cannot read or verify leaves its block pending: the iterator
// reads it again and reports it as before.
func (s *Store) pruneByFilters(ctx context.Context, its []StreamIterator, h *LineFilterHint) int {
	var blocks []*blockRef
	for _, it := range its {
		for _, b := range it.(*streamIter).pending {
			if !b.corrupt.Load() {
				blocks = append(blocks, b)
			}
		}
	}
	out := make([]bool, len(blocks))
	var next atomic.Int64
	check := func() {
		var buf []byte
		for {
			i := int(next.Add(1) - 1)
			if i >= len(blocks) || (i%64 == 0 && ctx.Err() != nil) {
				return
			}
			out[i], _ = s.filterRulesOut(blocks[i], h, &buf)
		}
	}
	var wg sync.WaitGroup
	wg.Go(check)
	check()
	wg.Wait()
	dropped := map[*blockRef]bool{}
	for i, b := range blocks {
		if out[i] {
			dropped[b] = true
		}
	}
	if len(dropped) == 0 {
		return 0
	}
	for _, si := range its {
		it := si.(*streamIter)
		it.pending = slices.DeleteFunc(it.pending, func(b *blockRef) bool { return dropped[b] })
	}
	return len(dropped)
}

// prefetchFilters prepares the token filter checks of a query with a
// pruning line filter. Blocks whose in-memory filter summary rules them out
// need nothing. For the others it asks the kernel to read their filters, in
// the order the query reads them: a query after a restart (cold page cache)
// otherwise waits for one small read per block in turn, and a store of a
// week holds thousands of blocks; the kernel reads them in parallel
// instead. When many are left, a second goroutine then reads and checks
// them ahead of the iterators (filterAhead), so that a needle query's
// first run in a process uses both cores.
func (s *Store) prefetchFilters(ctx context.Context, its []StreamIterator, p SelectParams) {
	var need []*blockRef
	for _, it := range its {
		for _, b := range it.(*streamIter).pending {
			// Blocks with a summary were ruled out by it at select time
			// or will need their full filter read: advise them too.
			if !b.corrupt.Load() {
				need = append(need, b)
			}
		}
	}
	if p.Direction == Forward {
		slices.SortStableFunc(need, func(a, b *blockRef) int { return cmpInt64(a.h.MinTs, b.h.MinTs) })
	} else {
		slices.SortStableFunc(need, func(a, b *blockRef) int { return cmpInt64(b.h.MaxTs, a.h.MaxTs) })
	}
	for _, b := range need {
		f, err := s.segFile(b.seg)
		if err != nil {
			continue // the read itself reports it
		}
		adviseWillNeed(f, b.off+b.h.filterOff(), int64(b.h.FilterLen)+4)
	}
	if len(need) < minFilterAhead || summaryBytes.used.Load() >= summaryBytes.budget.Load() {
		return // few, or no room to keep what a second goroutine would find
	}
	fa := &filterAhead{ctx: ctx, s: s, blocks: need}
	fa.open.Store(int32(len(its)))
	for _, it := range its {
		it.(*streamIter).ahead = fa
	}
	go fa.run()
}

// minFilterAhead is the number of filters to read below which a select
// reads them on its own goroutine only (a variable for tests).
var minFilterAhead = 256

// filterAhead reads and checks, on its own goroutine, the token filters of
// a select's blocks that have no summary yet, in the order the iterators
// will want them, and keeps their summaries; an iterator that reaches a
// block the goroutine has done then rules it out without a read. It only
// ever adds summaries: a filter it cannot read or verify it leaves alone,
// and the iterator that reaches the block reads it again and reports it as
// before. It stops when every iterator of the select is finished or the
// query is cancelled.
type filterAhead struct {
	ctx    context.Context
	s      *Store
	blocks []*blockRef
	open   atomic.Int32 // iterators not finished yet
}

func (fa *filterAhead) run() {
	var buf []byte
	for i, b := range fa.blocks {
		if fa.open.Load() <= 0 || (i%64 == 0 && fa.ctx.Err() != nil) {
			return
		}
		if summaryBytes.used.Load() >= summaryBytes.budget.Load() {
			return // what it reads could not be kept
		}
		if b.filterSum.Load() != nil || b.corrupt.Load() || !summarizable(b.h.FilterLen) {
			continue
		}
		if f, err := fa.s.readFilterInto(b, &buf); err == nil {
			keepSummary(b, f)
		}
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// source is a sorted run of entries being merged: a decoded block or the
// head. [lo, hi) is what is left; forward takes from lo, backward from hi.
type source struct {
	ts     []int64
	seq    []uint64
	sizes  []uint32
	lines  []string
	md     []labels.Labels // nil when no entry has metadata
	lo, hi int
	cost   int64 // decoded bytes it holds, counted in the select's decodedHeld

	// blk is set when the source is a window copied out of a block too
	// big to keep decoded (the select spills): [rlo, rhi) are the block's
	// entries in range not yet copied; the window is taken from rlo on
	// forward, from rhi down backward.
	blk      *blockRef
	rlo, rhi int
}

type key struct {
	ts  int64
	seq uint64
}

func cmpKey(a, b key) int {
	if c := cmpInt64(a.ts, b.ts); c != 0 {
		return c
	}
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

type streamIter struct {
	s     *Store
	ctx   context.Context
	p     SelectParams
	lbls  labels.Labels
	stats *StatsCollector

	pending []*blockRef // not yet read, in the order they can start
	mem     [2][]Entry  // head snapshot, read at the first Next
	held    []*segment
	started bool
	srcs    []*source
	stalled []*source // windows read out whose blocks have more: refill them
	batch   Batch
	delta   Stats
	err     error
	closed  bool
	scratch []byte
	fbuf    []byte       // token filter reads
	ahead   *filterAhead // checks this select's filters ahead, if any

	// dec counts the decoded bytes of every iterator of the select; this
	// one's part is the cost of its sources plus retired, the cost of the
	// sources it finished whose lines the last batch may still share,
	// given back at the next Next.
	dec     *decodedHeld
	retired int64
}

func (it *streamIter) Labels() labels.Labels { return it.lbls }
func (it *streamIter) At() *Batch            { return &it.batch }
func (it *streamIter) Err() error            { return it.err }

// before reports whether a comes before b in the iteration's direction.
func (it *streamIter) before(a, b key) bool {
	if it.p.Direction == Backward {
		return cmpKey(a, b) > 0
	}
	return cmpKey(a, b) < 0
}

func (it *streamIter) head(src *source) key {
	i := src.lo
	if it.p.Direction == Backward {
		i = src.hi - 1
	}
	return key{src.ts[i], src.seq[i]}
}

func (it *streamIter) startKey(b *blockRef) key {
	if it.p.Direction == Backward {
		return key{b.h.MaxTs, math.MaxUint64}
	}
	return key{b.h.MinTs, 0}
}

func (it *streamIter) Next() bool {
	if it.err != nil || it.closed {
		return false
	}
	if !it.started {
		it.started = true
		if src := it.memSource(); src != nil {
			if err := it.dec.takeHeld(src.cost); err != nil {
				it.err = err
				it.finish()
				return false
			}
			it.srcs = append(it.srcs, src)
		}
	}
	b := &it.batch
	b.Labels = it.lbls
	b.Ts, b.Seq, b.Sizes = b.Ts[:0], b.Seq[:0], b.Sizes[:0]
	// The last batch's lines and metadata are no longer the caller's: drop
	// them all, also past the new batch's end, so that no finished block
	// stays reachable from this batch's arrays.
	clear(b.Metadata[:cap(b.Metadata)])
	b.Metadata = b.Metadata[:0]
	if it.p.Lines {
		clear(b.Lines[:cap(b.Lines)])
		b.Lines = b.Lines[:0]
	} else {
		b.Lines = nil
	}
	it.dec.give(it.retired)
	it.retired = 0
fill:
	for len(b.Ts) < batchMaxEntries {
		if len(it.stalled) > 0 {
			// A window's block has entries the merge has not seen: hand
			// out the batch first, then copy the next window.
			if len(b.Ts) > 0 {
				break
			}
			if err := it.refill(); err != nil {
				it.err = err
				it.finish()
				return false
			}
			continue
		}
		// Read every block that could hold the next entry.
		for len(it.pending) > 0 {
			if best := it.best(); best >= 0 && it.before(it.head(it.srcs[best]), it.startKey(it.pending[0])) {
				break
			}
			if len(b.Ts) > 0 {
				// Hand out what the batch holds first: the blocks it
				// came from are then released before the next one is
				// decoded, so a stream holds one block at a time, not two.
				break fill
			}
			if err := it.ctx.Err(); err != nil {
				it.err = err
				it.finish()
				return false
			}
			blk := it.pending[0]
			it.pending = it.pending[1:]
			src, err := it.load(blk)
			if err != nil {
				it.err = err
				it.finish()
				return false
			}
			if src != nil {
				it.srcs = append(it.srcs, src)
			}
		}
		bi := it.best()
		if bi < 0 {
			break
		}
		it.take(bi)
	}
	if len(b.Ts) == 0 {
		it.finish()
		return false
	}
	if len(b.Metadata) == 0 {
		b.Metadata = nil
	}
	return true
}

// best is the index of the source whose next entry comes first, or -1.
func (it *streamIter) best() int {
	bi := -1
	var bk key
	for i, src := range it.srcs {
		k := it.head(src)
		if bi < 0 || it.before(k, bk) {
			bi, bk = i, k
		}
	}
	return bi
}

// take moves entries from source bi into the batch while no other source
// or unread block could come in between.
func (it *streamIter) take(bi int) {
	src := it.srcs[bi]
	var bound key
	hasBound := false
	for i, o := range it.srcs {
		if i == bi {
			continue
		}
		if k := it.head(o); !hasBound || it.before(k, bound) {
			bound, hasBound = k, true
		}
	}
	if len(it.pending) > 0 {
		if k := it.startKey(it.pending[0]); !hasBound || it.before(k, bound) {
			bound, hasBound = k, true
		}
	}
	b := &it.batch
	room := batchMaxEntries - len(b.Ts)
	// The run is every entry before the bound, at least one (ties go to
	// this source), at most room. Keys are sorted, so search for its end.
	var lo, hi int // the run is src[lo:hi]
	if it.p.Direction == Forward {
		lo, hi = src.lo, src.hi
		if hasBound {
			n := sort.Search(src.hi-src.lo-1, func(j int) bool {
				i := src.lo + 1 + j
				return cmpKey(key{src.ts[i], src.seq[i]}, bound) >= 0
			})
			hi = src.lo + 1 + n
		}
		hi = min(hi, lo+room)
		src.lo = hi
	} else {
		lo, hi = src.lo, src.hi
		if hasBound {
			// Entries at the top end come first; find how far down they
			// stay after the bound (greater keys).
			n := sort.Search(src.hi-src.lo-1, func(j int) bool {
				i := src.hi - 2 - j
				return cmpKey(key{src.ts[i], src.seq[i]}, bound) <= 0
			})
			lo = src.hi - 1 - n
		}
		lo = max(lo, hi-room)
		src.hi = lo
	}
	k := hi - lo
	if src.md != nil || len(b.Metadata) > 0 {
		// Entries before the batch's first metadata have none.
		b.Metadata = append(b.Metadata, make([]labels.Labels, len(b.Ts)-len(b.Metadata))...)
		if src.md == nil {
			b.Metadata = append(b.Metadata, make([]labels.Labels, k)...)
		} else if it.p.Direction == Forward {
			b.Metadata = append(b.Metadata, src.md[lo:hi]...)
		} else {
			for i := hi - 1; i >= lo; i-- {
				b.Metadata = append(b.Metadata, src.md[i])
			}
		}
	}
	if it.p.Direction == Forward {
		b.Ts = append(b.Ts, src.ts[lo:hi]...)
		b.Seq = append(b.Seq, src.seq[lo:hi]...)
		b.Sizes = append(b.Sizes, src.sizes[lo:hi]...)
		if it.p.Lines {
			b.Lines = append(b.Lines, src.lines[lo:hi]...)
		}
	} else {
		for i := hi - 1; i >= lo; i-- {
			b.Ts = append(b.Ts, src.ts[i])
			b.Seq = append(b.Seq, src.seq[i])
			b.Sizes = append(b.Sizes, src.sizes[i])
			if it.p.Lines {
				b.Lines = append(b.Lines, src.lines[i])
			}
		}
	}
	if it.p.Lines {
		for _, sz := range src.sizes[lo:hi] {
			it.delta.BytesScanned += int64(sz)
		}
	}
	it.delta.EntriesScanned += int64(k)
	if src.lo >= src.hi {
		it.srcs = slices.Delete(it.srcs, bi, bi+1)
		if src.blk != nil && src.rlo < src.rhi {
			it.stalled = append(it.stalled, src)
		} else {
			it.retired += src.cost
		}
	}
}

// memSource turns the head snapshot into a sorted source.
func (it *streamIter) memSource() *source {
	var es []Entry
	for _, part := range it.mem {
		for _, e := range part {
			if e.Ts >= it.p.Start && e.Ts < it.p.End {
				es = append(es, e)
			}
		}
	}
	it.mem = [2][]Entry{}
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, compareEntries)
	// The lines are the head's own strings, shared, not copies: only the
	// columns are new.
	src := &source{ts: make([]int64, len(es)), seq: make([]uint64, len(es)), sizes: make([]uint32, len(es)), hi: len(es),
		cost: decodedCost(len(es), 0, it.p.Lines)}
	if it.p.Lines {
		src.lines = make([]string, len(es))
	}
	for i, e := range es {
		src.ts[i], src.seq[i], src.sizes[i] = e.Ts, e.Seq, uint32(len(e.Line))
		if src.lines != nil {
			src.lines[i] = e.Line
		}
		if len(e.Metadata) > 0 {
			if src.md == nil {
				src.md = make([]labels.Labels, len(es))
			}
			src.md[i] = e.Metadata
		}
	}
	if src.md != nil {
		src.cost += mdCost(len(es))
	}
	return src
}

// load reads one block, or returns nil when its filter rules it out, it has
// nothing in range, or it is corrupt (counted and skipped).
func (it *streamIter) load(b *blockRef) (*source, error) {
	if b.corrupt.Load() {
		it.delta.BlocksCorrupt++
		return nil, nil
	}
	if it.skipByFilter(b) {
		return nil, nil
	}
	if hintPrunes(it.p.Hint) {
		out, err := it.s.filterRulesOut(b, it.p.Hint, &it.fbuf)
		if err != nil {
			return nil, it.readFailed(b, err)
		}
		if out {
			it.delta.BlocksSkipped++
			return nil, nil
		}
	}
	if it.dec.spilling() {
		return it.loadSpilled(b)
	}
	// Count the block before decoding it, from its header, so that a
	// select past its bound fails before it allocates.
	cost := blockCost(b, it.p.Lines)
	if err := it.dec.take(cost); err != nil {
		return nil, err
	}
	d := &blockData{}
	var err error
	it.scratch, err = it.s.readBlock(b, it.p.Lines, d, it.scratch)
	if err != nil {
		it.dec.give(cost)
		return nil, it.readFailed(b, err)
	}
	it.delta.BlocksRead++
	if !it.wantedByFilter(b, d) {
		it.dec.give(cost)
		return nil, nil
	}
	lo := sort.Search(len(d.ts), func(i int) bool { return d.ts[i] >= it.p.Start })
	hi := sort.Search(len(d.ts), func(i int) bool { return d.ts[i] >= it.p.End })
	if lo >= hi {
		it.dec.give(cost)
		return nil, nil
	}
	if d.md != nil {
		extra := mdCost(len(d.md))
		if err := it.dec.take(extra); err != nil {
			it.dec.give(cost)
			return nil, err
		}
		cost += extra
	}
	return &source{ts: d.ts, seq: d.seq, sizes: d.sizes, lines: d.lines, md: d.md, lo: lo, hi: hi, cost: cost}, nil
}

// readFailed marks corrupt blocks and skips them; other errors end the
// iteration.
func (it *streamIter) readFailed(b *blockRef, err error) error {
	if isReadCorruption(err) {
		if !b.corrupt.Swap(true) {
			it.s.noteCorrupt(b, err)
		}
		it.delta.BlocksCorrupt++
		return nil
	}
	return fmt.Errorf("read block of %s: %w", it.lbls, err)
}

// isReadCorruption tells a block that cannot be read as written (a bad
// checksum, a short or missing segment file) from other failures.
func isReadCorruption(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, fs.ErrNotExist)
}

func hintPrunes(h *LineFilterHint) bool {
	if h == nil {
		return false
	}
	for _, g := range h.Groups {
		prunes := len(g) > 0
		for _, lit := range g {
			if len(lit) < trigramLen {
				prunes = false
			}
		}
		if prunes {
			return true
		}
	}
	return false
}

func (it *streamIter) finish() {
	if it.ahead != nil {
		it.ahead.open.Add(-1)
		it.ahead = nil
	}
	if it.stats != nil && it.delta != (Stats{}) {
		it.stats.Add(it.delta)
	}
	it.delta = Stats{}
	if it.held != nil {
		it.s.releaseSegments(it.held)
		it.held = nil
	}
	for _, src := range it.srcs {
		it.dec.give(src.cost)
	}
	for _, src := range it.stalled {
		it.dec.give(src.cost)
	}
	it.dec.give(it.retired)
	it.retired = 0
	it.srcs, it.stalled = nil, nil
	it.pending = nil
	// The last batch's lines share the last decoded block: a query that
	// keeps its finished iterators until the end (every stream of a count
	// folded one after another) must not keep a block per stream.
	it.batch = Batch{Labels: it.lbls}
	it.scratch = nil
}

func (it *streamIter) Close() error {
	if !it.closed {
		it.closed = true
		it.finish()
	}
	return nil
}

func (s *Store) noteCorrupt(b *blockRef, err error) {
	s.mu.Lock()
	s.lastErr = fmt.Errorf("corrupt block in segment %s of stream %s skipped: %w", segName(b.seg.id), b.stream.lbls, err)
	s.lastErrAt = time.Now()
	s.mu.Unlock()
}

// segFile returns an open handle on a segment, cached so a query over a
// thousand blocks does not open a thousand files.
func (s *Store) segFile(seg *segment) (*os.File, error) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	if f := s.files[seg.id]; f != nil {
		return f, nil
	}
	f, err := os.Open(segPath(s.dir, seg))
	if err != nil {
		return nil, err
	}
	if s.files == nil {
		s.files = map[uint64]*os.File{}
	}
	s.files[seg.id] = f
	return f, nil
}

// dropFiles closes cached handles of the given segments, or of all
// segments not in keep when keep is not nil.
func (s *Store) dropFiles(ids []uint64, keep map[uint64]*segment) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	for _, id := range ids {
		if f := s.files[id]; f != nil {
			f.Close()
			delete(s.files, id)
		}
	}
	if keep != nil {
		for id, f := range s.files {
			if keep[id] == nil {
				f.Close()
				delete(s.files, id)
			}
		}
	}
}

// readAt reads n bytes at off of a block's segment into buf.
func (s *Store) readAt(b *blockRef, off, n int64, buf []byte) ([]byte, error) {
	f, err := s.segFile(b.seg)
	if err != nil {
		return buf, err
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := f.ReadAt(buf, b.off+off); err != nil {
		return buf, err
	}
	return buf, nil
}

func (s *Store) readFilter(b *blockRef) (tokenFilter, error) {
	var buf []byte
	return s.readFilterInto(b, &buf)
}

// readFilterInto reads, checks and parses a block's token filter into
// *buf, which the filter points into until the next call.
func (s *Store) readFilterInto(b *blockRef, buf *[]byte) (tokenFilter, error) {
	raw, err := s.readAt(b, b.h.filterOff(), int64(b.h.FilterLen)+4, *buf)
	*buf = raw
	if err != nil {
		return tokenFilter{}, err
	}
	body, err := checkSection(raw, "filter")
	if err != nil {
		return tokenFilter{}, err
	}
	return parseFilter(body)
}

// filterRulesOut reports whether b's token filter shows that no line of b
// satisfies h. The block's summary answers without a read when it can;
// otherwise the full filter is read (into *buf) and checked, and its
// summary kept for the next query while the summary budget lasts.
func (s *Store) filterRulesOut(b *blockRef, h *LineFilterHint, buf *[]byte) (bool, error) {
	sum := b.filterSum.Load()
	if sum != nil && !sum.mayMatch(h) {
		return true, nil
	}
	f, err := s.readFilterInto(b, buf)
	if err != nil {
		return false, err
	}
	if sum == nil {
		keepSummary(b, f)
	}
	return !f.mayMatch(h), nil
}

// readBlock reads and decodes a block's meta and, when asked, lines. The
// first read of a block in this process checks all of it (readSections):
// a block is corrupt or not whatever the query kind, so a count over time
// skips exactly the blocks a log query skips.
func (s *Store) readBlock(b *blockRef, lines bool, d *blockData, scratch []byte) ([]byte, error) {
	var dec linesDecoder
	if lines {
		dec = decodeLines
	}
	return s.readBlockWith(b, dec, d, scratch)
}

// linesDecoder decodes a block's checked, compressed lines section into d,
// whose meta section is decoded.
type linesDecoder func(h *blockHeader, comp []byte, c *codecs, d *blockData) error

// readBlockWith is readBlock with the lines section, when dec is not nil,
// decoded by dec.
func (s *Store) readBlockWith(b *blockRef, dec linesDecoder, d *blockData, scratch []byte) ([]byte, error) {
	lines := dec != nil
	bp := s.getBuf()
	defer s.bufPool.Put(bp)
	raw, err := s.readSections(b, lines, bp)
	if err != nil {
		return scratch, err
	}
	meta, err := checkSection(raw[:b.h.MetaLen+4], "meta")
	if err != nil {
		return scratch, err
	}
	scratch, err = decodeMeta(&b.h, meta, s.codecs, scratch, d)
	if err != nil {
		return scratch, err
	}
	if lines {
		ls, err := checkSection(raw[b.h.MetaLen+4:b.h.filterOff()-b.h.metaOff()], "lines")
		if err != nil {
			return scratch, err
		}
		if err := dec(&b.h, ls, s.codecs, d); err != nil {
			return scratch, err
		}
	}
	return scratch, nil
}

// getBuf takes a read buffer from the pool; put it back when done.
func (s *Store) getBuf() *[]byte {
	if bp, _ := s.bufPool.Get().(*[]byte); bp != nil {
		return bp
	}
	return new([]byte)
}

// readSections reads a block from its meta section on, into *bp: up to the
// end of the meta section, or of the lines section when lines is set. The
// first read of a block in this process reads and checks all of it instead
// (verifyBlock), whatever it needs; later reads read what they need, and
// their callers check the CRC of each section they decode.
func (s *Store) readSections(b *blockRef, lines bool, bp *[]byte) ([]byte, error) {
	if !b.verified.Load() {
		whole, err := s.verifyBlock(b, *bp)
		*bp = whole[:0]
		if err != nil {
			return nil, err
		}
		return whole[b.h.metaOff():], nil
	}
	end := b.h.linesOff()
	if lines {
		end = b.h.filterOff()
	}
	raw, err := s.readAt(b, b.h.metaOff(), end-b.h.metaOff(), *bp)
	*bp = raw[:0]
	if err != nil {
		return nil, err
	}
	return raw, nil
}

// readTimes decodes a block's entry times, and its line sizes when sizes
// is set, into td's buffers. With the sizes it decodes the whole meta
// section (readBlock); without, only the time columns at its start. Either
// way the block's first read in the process verifies all of it.
func (s *Store) readTimes(b *blockRef, td *timesData, sizes bool) (BlockTimes, error) {
	if sizes {
		var err error
		td.scratch, err = s.readBlock(b, false, &td.d, td.scratch)
		if err != nil {
			return BlockTimes{}, err
		}
		return BlockTimes{Ts: td.d.ts, Sizes: td.d.sizes}, nil
	}
	bp := s.getBuf()
	defer s.bufPool.Put(bp)
	raw, err := s.readSections(b, false, bp)
	if err != nil {
		return BlockTimes{}, err
	}
	meta, err := checkSection(raw[:b.h.MetaLen+4], "meta")
	if err != nil {
		return BlockTimes{}, err
	}
	dec, err := s.codecs.decompress(b.h.Codec, td.scratch, meta, int(b.h.MetaRawLen))
	if err != nil {
		return BlockTimes{}, fmt.Errorf("meta: %w", err)
	}
	td.scratch = dec
	td.ts = growInt64(td.ts, int(b.h.Count))
	if _, err := decodeTimes(&b.h, dec, td.ts); err != nil {
		return BlockTimes{}, err
	}
	return BlockTimes{Ts: td.ts}, nil
}

// verifyBlock reads a whole block into buf and checks every checksum: the
// header's (and that it is the header the manifest recorded) and those of
// the meta, lines and filter sections. It marks the block verified when
// all pass.
func (s *Store) verifyBlock(b *blockRef, buf []byte) ([]byte, error) {
	whole, err := s.readAt(b, 0, b.h.totalLen(), buf)
	if err != nil {
		return whole, err
	}
	if err := checkBlockBytes(&b.h, whole); err != nil {
		return whole, err
	}
	b.verified.Store(true)
	return whole, nil
}

// checkBlockBytes checks a block's bytes against the header the manifest
// recorded for it.
func checkBlockBytes(want *blockHeader, whole []byte) error {
	h, err := parseHeader(whole)
	if err != nil {
		return err
	}
	if h != *want {
		return corruptf("block header differs from the manifest's copy")
	}
	for _, sec := range []struct {
		name     string
		from, to int64
	}{{"meta", h.metaOff(), h.linesOff()}, {"lines", h.linesOff(), h.filterOff()}, {"filter", h.filterOff(), h.totalLen()}} {
		if _, err := checkSection(whole[sec.from:sec.to], sec.name); err != nil {
			return err
		}
	}
	return nil
}

// readBlockEntries reads a whole block as entries (for merging small blocks).
func (s *Store) readBlockEntries(b *blockRef) ([]Entry, error) {
	d := &blockData{}
	if _, err := s.readBlock(b, true, d, nil); err != nil {
		return nil, err
	}
	out := make([]Entry, len(d.ts))
	for i := range out {
		out[i] = Entry{Ts: d.ts[i], Seq: d.seq[i], Line: d.lines[i]}
		if d.md != nil {
			out[i].Metadata = d.md[i]
		}
	}
	return out, nil
}
