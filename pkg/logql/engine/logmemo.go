package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// A log query repeated over unchanged blocks (a dashboard's logs panel, an
// alert's search) reads each block's kept "passing entries" instead of the
// block: the entries, as stored, that passed the whole pipeline when the
// block was last read. The pipeline runs again over those few entries, so
// the lines, labels, structured metadata and order come out as a read of the
// block gives them; the zstd decode and the parse of everything else are
// skipped. Only immutable blocks are kept (the query's range cuts the kept
// entries, so blocks crossing its edges are reused too); the heads are
// always read.
//
// A first run reads a block no further than the merge of its stream needs
// (a limit stops inside the last block of each stream, as it does without
// the memo), so a block may be kept only in part: the run of its entries,
// in the order the query read them, that went through the pipeline. A later
// query reading the same way takes that part from the cache and decodes the
// block only if its merge goes past it (then it reads on from there and
// keeps the longer part). Until then the block's first entry past the part
// stands in for it in the merge ("virtual head"), so the merge order is
// decided without the block.

// passedEntries are the entries of one block that passed a pipeline, in the
// block's forward order.
type passedEntries struct {
	ts    []int64
	seq   []uint64
	sizes []uint32
	lines []string
	meta  []labels.Labels // nil when no entry has structured metadata
	// part is nil when the entries are the whole block's, else which of
	// the block's entries they are the passing ones of.
	part *keptPart
}

// keptPart is the run of a block's entries a partial result covers,
// counted in the order a query in one direction reads the block (the store
// hands out a block's entries in the same order every time).
type keptPart struct {
	backward bool
	// skip entries come first, not covered: they were before the range of
	// the query that read the block (beforeTs is the time of the last of
	// them). covered entries follow them.
	skip, covered int
	beforeTs      int64
	// The block's next entry after the covered ones, when hasNext.
	hasNext bool
	nextTs  int64
	nextSeq uint64
}

// usable reports whether a query reading in direction backward over
// [start, end) can take the part: it reads the same way, and the entries
// the part skipped are before its range too.
func (k *keptPart) usable(backward bool, start, end int64) bool {
	if k.backward != backward {
		return false
	}
	if k.skip == 0 {
		return true
	}
	if backward {
		return k.beforeTs >= end
	}
	return k.beforeTs < start
}

func (p *passedEntries) add(b *store.Batch, i int) {
	p.ts = append(p.ts, b.Ts[i])
	p.seq = append(p.seq, b.Seq[i])
	p.sizes = append(p.sizes, b.Sizes[i])
	p.lines = append(p.lines, strings.Clone(b.Lines[i]))
	md := metadataAt(b, i)
	if md != nil && p.meta == nil {
		p.meta = make([]labels.Labels, len(p.ts)-1, cap(p.ts))
	}
	if p.meta != nil {
		p.meta = append(p.meta, md)
	}
}

// size is what the entries cost in the cache.
func (p *passedEntries) size() int64 {
	n := int64(0)
	for i := range p.ts {
		n += p.entrySize(i)
	}
	if p.part != nil {
		n += 64
	}
	return n
}

// entrySize is what entry i costs in the cache.
func (p *passedEntries) entrySize(i int) int64 {
	n := int64(8+8+4+16+24) + int64(len(p.lines[i]))
	if p.meta != nil {
		for _, l := range p.meta[i] {
			n += int64(len(l.Name)+len(l.Value)) + 32
		}
	}
	return n
}

// logMemoKey names a log query's pipeline in cache keys, or reports false
// when its result over a block may change between runs or it drops no line
// (then every entry would be kept: the block is cheaper to read).
func logMemoKey(sel syntax.LogSelectorExpr) (string, bool) {
	p, ok := sel.(*syntax.PipelineExpr)
	if !ok || callsNow(sel) {
		return "", false
	}
	drops := false
	for _, st := range p.Stages {
		switch st.(type) {
		case *syntax.LineFilterExpr, *syntax.LabelFilterExpr:
			drops = true
		}
	}
	if !drops {
		return "", false
	}
	return "passed " + sel.String(), true
}

// memoStreams selects sel's streams per block and returns one iterator per
// stream that reads kept passing entries where it can. It returns nil (and
// no error) when the query cannot use the memo: no cache, no immutable
// blocks, or a pipeline whose result may change or drops nothing.
func (e *Engine) memoStreams(ctx context.Context, sel syntax.LogSelectorExpr, pl *selector, sp store.SelectParams) ([]store.StreamIterator, error) {
	cache, br, ok := e.blockCacheFor()
	if !ok {
		return nil, nil
	}
	key, ok := logMemoKey(sel)
	if !ok {
		return nil, nil
	}
	cache.sweep(br)
	bss, err := br.SelectBlocks(ctx, sp)
	if err != nil {
		return nil, fmt.Errorf("select streams: %w", err)
	}
	out := make([]store.StreamIterator, 0, len(bss))
	held := newLazyHeld(sp.MaxDecodedBytes)
	for i := range bss {
		ms := &memoStream{ctx: ctx, cache: cache, key: key, counter: cacheCounterFrom(ctx), held: held,
			sp: pl.pipeline.ForStream(bss[i].Labels), ls: bss[i].Labels, start: sp.Start, end: sp.End, backward: sp.Direction == store.Backward}
		if err := ms.plan(&bss[i]); err != nil {
			for _, it := range out {
				_ = it.Close()
			}
			for j := i + 1; j < len(bss); j++ {
				closeBlockStream(&bss[j])
			}
			return nil, fmt.Errorf("read stream %s: %w", bss[i].Labels, err)
		}
		out = append(out, ms)
	}
	return out, nil
}

func closeBlockStream(bs *store.BlockStream) {
	for _, b := range bs.Blocks {
		_ = b.Iter.Close()
	}
	if bs.Head != nil {
		_ = bs.Head.Close()
	}
}

// lazyHeld bounds the decoded blocks the streams of one log query hold
// while their merges read them entry by entry. A stream holds the block it
// reads until the merge has passed it (or the query ends); over many
// streams that would pass the store's bound on decoded bytes, so past a
// share of it a block is read whole at once, its passing entries kept and
// the block let go, as the store's reads of blocks one by one are.
type lazyHeld struct {
	n   atomic.Int64
	max int64
}

// lazyShare is the share of the store's bound on decoded bytes
// (1/lazyShare) the blocks read entry by entry may take.
const lazyShare = 4

func newLazyHeld(maxDecoded int64) *lazyHeld {
	if maxDecoded <= 0 { // the store's default, or no bound
		maxDecoded = store.DefaultMaxDecodedBytes
	}
	return &lazyHeld{max: maxDecoded / lazyShare}
}

// take counts d bytes more, unless that would pass the bound.
func (h *lazyHeld) take(d int64) bool {
	if h.n.Add(d) > h.max {
		h.n.Add(-d)
		return false
	}
	return true
}

func (h *lazyHeld) give(d int64) { h.n.Add(-d) }

// memoSource is one block of a stream (or its head) in the merge of its
// entries: a block is read (or its kept entries taken) only once the merge
// reaches its time. It is in one of three states: serving entries from pe
// (the head's, or a block's kept ones); virtual (pe served to its end, a
// partial result: the block's next entry, not read, is pe.part's); or
// reading the block (raw), as the merge takes its entries.
type memoSource struct {
	minTs, maxTs int64
	block        *store.BlockInfo // nil for the head
	pe           *passedEntries
	kept         bool // pe came from the cache
	virtual      bool
	// raw is the current batch of a block being read, pos its next entry
	// (in pe: the next entry counted in the query's direction).
	raw *store.Batch
	pos int
	// keep collects the passing entries of the block being read, in the
	// order read; nil when they are not collected (known to be too many to
	// keep), then every entry is handed on and the stream's pipeline
	// filters them.
	keep      *passedEntries
	keepBytes int64
	// started: an entry of the block went through the pipeline; before
	// that, entries before the query's range are skipped (skip of them,
	// the last at beforeTs). read counts the block's entries passed so far
	// (skipped or through the pipeline).
	started   bool
	skip      int
	read      int
	beforeTs  int64
	heldBytes int64 // taken from the query's lazyHeld
}

// memoStream is one stream's entries: each block's kept passing entries
// when the cache has them, else the block read as the merge needs it and
// its passing entries kept, merged in (Ts, Seq) order as the store merges
// blocks whose times overlap. Its batches hold only entries of [start,
// end): the passing entries of the blocks it reads (or every entry of a
// block whose passing entries are too many to keep) and the head's.
//
// A stream that has handed out kept entries stops short (Next false, Err
// nil, Suspended true) rather than decode a block: a goroutine reading
// ahead of the merge would otherwise decode blocks a repeated query does
// not need. Its reader calls Next again once the merge wants its next
// entry.
type memoStream struct {
	ctx      context.Context
	cache    *blockCache
	key      string
	counter  *cacheCounter
	held     *lazyHeld
	sp       *log.StreamPipeline
	ls       labels.Labels
	start    int64
	end      int64
	backward bool

	// pending are the sources not read yet, in the order the merge
	// reaches them (by MinTs forward, by MaxTs backward); active those read
	// and not exhausted.
	pending []*memoSource
	active  []*memoSource
	batch   store.Batch
	err     error
	// servedKept: entries from the cache were handed out since the last
	// resume; suspended: Next stopped short.
	servedKept bool
	suspended  bool
	// scanned counts the entries of blocks read that went through the
	// pipeline.
	scanned int
	// proc holds the pipeline's result for each entry of the batch.
	proc []memoProcessed
}

// memoShare is the share of the block cache's budget one block's kept
// entries may take at most (1/memoShare).
const memoShare = 16

// memoBatch is how many entries a batch holds at most.
const memoBatch = 256

// memoScan is how many entries of blocks read Next puts through the
// pipeline at most before it hands out its batch, however few passed (none,
// maybe). A query whose filter passes few lines then reads a block no
// further than its merge needs (a batch of memoBatch passing entries could
// take blocks), and its reader, counting batches, hands a long scan to
// goroutines of their own as early as without the memo.
const memoScan = 256

// plan reads the head (it is in memory) and orders the blocks and head
// for the merge.
func (m *memoStream) plan(bs *store.BlockStream) error {
	for i := range bs.Blocks {
		b := &bs.Blocks[i]
		m.pending = append(m.pending, &memoSource{minTs: b.MinTs, maxTs: b.MaxTs, block: b})
	}
	if bs.Head != nil {
		h := &passedEntries{}
		for bs.Head.Next() {
			b := bs.Head.At()
			for i := range b.Ts {
				h.add(b, i)
			}
		}
		err := bs.Head.Err()
		_ = bs.Head.Close()
		bs.Head = nil
		if err != nil {
			m.pending = nil
			for _, b := range bs.Blocks {
				_ = b.Iter.Close()
			}
			return err
		}
		if m.backward { // the head came newest first
			h.reverse()
		}
		if len(h.ts) > 0 {
			m.pending = append(m.pending, &memoSource{minTs: h.ts[0], maxTs: h.ts[len(h.ts)-1], pe: h})
		}
	}
	if m.backward {
		slices.SortStableFunc(m.pending, func(a, b *memoSource) int { return cmp.Compare(b.maxTs, a.maxTs) })
	} else {
		slices.SortStableFunc(m.pending, func(a, b *memoSource) int { return cmp.Compare(a.minTs, b.minTs) })
	}
	return nil
}

func (m *memoStream) Labels() labels.Labels { return m.ls }
func (m *memoStream) At() *store.Batch      { return &m.batch }
func (m *memoStream) Err() error            { return m.err }

// Suspended reports whether the last Next stopped short of the stream's
// end: call Next again for the rest.
func (m *memoStream) Suspended() bool { return m.suspended }

// Close keeps the passing entries of the blocks being read, as far as
// they were read, and lets go of every block.
func (m *memoStream) Close() error {
	for _, src := range m.pending {
		if src.block != nil {
			_ = src.block.Iter.Close()
		}
	}
	for _, src := range m.active {
		switch {
		case src.raw != nil:
			if src.keep != nil {
				hasNext := src.pos < len(src.raw.Ts)
				var nts int64
				var nseq uint64
				if hasNext {
					nts, nseq = src.raw.Ts[src.pos], src.raw.Seq[src.pos]
				}
				m.finish(src, hasNext, nts, nseq)
			}
			m.letGo(src)
		case src.kept && src.pe.part != nil:
			_ = src.block.Iter.Close() // a partial result's block, kept open to read on
		}
	}
	m.pending, m.active = nil, nil
	return nil
}

// letGo closes the block src reads and gives back what it held.
func (m *memoStream) letGo(src *memoSource) {
	_ = src.block.Iter.Close()
	src.raw = nil
	if src.heldBytes != 0 {
		m.held.give(src.heldBytes)
		src.heldBytes = 0
	}
}

// at returns src's next entry, unless src is virtual: the batch or kept
// entries holding it and its index there.
func (m *memoStream) at(src *memoSource) (*store.Batch, *passedEntries, int) {
	switch {
	case src.raw != nil:
		return src.raw, nil, src.pos
	case m.backward:
		return nil, src.pe, len(src.pe.ts) - 1 - src.pos
	}
	return nil, src.pe, src.pos
}

// next returns the time and sequence number of src's next entry.
func (m *memoStream) next(src *memoSource) (int64, uint64) {
	if src.virtual {
		return src.pe.part.nextTs, src.pe.part.nextSeq
	}
	b, pe, i := m.at(src)
	if b != nil {
		return b.Ts[i], b.Seq[i]
	}
	return pe.ts[i], pe.seq[i]
}

// before reports whether a's next entry comes before b's in the query's
// direction.
func (m *memoStream) before(a, b *memoSource) bool {
	ats, aseq := m.next(a)
	bts, bseq := m.next(b)
	if ats != bts {
		return (ats < bts) != m.backward
	}
	return (aseq < bseq) != m.backward
}

// reaches reports whether the merge, its next entry at ts, has reached
// src's time (then src must be read before that entry is handed out).
func (m *memoStream) reaches(src *memoSource, ts int64) bool {
	if m.backward {
		return src.maxTs >= ts
	}
	return src.minTs <= ts
}

// past reports whether an entry at ts comes after the query's range in
// the order it reads.
func (m *memoStream) past(ts int64) bool {
	if m.backward {
		return ts < m.start
	}
	return ts >= m.end
}

// beforeRange reports whether an entry at ts comes before the query's
// range in the order it reads.
func (m *memoStream) beforeRange(ts int64) bool {
	if m.backward {
		return ts >= m.end
	}
	return ts < m.start
}

// advance moves src past its next entry and reports whether it has more.
func (m *memoStream) advance(src *memoSource) (bool, error) {
	src.pos++
	if src.raw != nil {
		if src.pos < len(src.raw.Ts) {
			return true, nil
		}
		return m.nextRaw(src)
	}
	if src.pos < len(src.pe.ts) {
		return true, nil
	}
	if part := src.pe.part; part != nil && src.kept {
		if part.hasNext && !m.past(part.nextTs) {
			src.virtual = true
			return true, nil
		}
		_ = src.block.Iter.Close()
	}
	return false, nil
}

// nextRaw moves a source reading its block to the block's next batch with
// entries, and reports whether there is one; after the block's last it
// keeps the passing entries collected and lets the block go.
func (m *memoStream) nextRaw(src *memoSource) (bool, error) {
	it := src.block.Iter
	for it.Next() {
		if b := it.At(); len(b.Ts) > 0 {
			if len(b.Lines) != len(b.Ts) {
				m.letGo(src)
				return false, fmt.Errorf("block %s: store returned a batch without lines", src.block.ID)
			}
			src.raw, src.pos = b, 0
			return true, nil
		}
	}
	err := it.Err()
	if err == nil && src.keep != nil {
		m.finish(src, false, 0, 0)
	}
	m.letGo(src)
	if err != nil {
		return false, fmt.Errorf("block %s: %w", src.block.ID, err)
	}
	return false, nil
}

// errBlockShorter is a block that read back shorter than a result kept
// from it said.
var errBlockShorter = errors.New("the block reads back shorter than its kept result")

// activate reads the next pending source, or reports false (and leaves it
// pending) when that needs a block decoded and the stream has handed out
// kept entries since it was last resumed.
func (m *memoStream) activate() (bool, error) {
	src := m.pending[0]
	if src.block == nil { // the head
		m.pending = m.pending[1:]
		m.active = append(m.active, src)
		return true, nil
	}
	if v, ok := m.cache.get(cacheKey{block: src.block.ID, pipe: m.key}); ok {
		pe := v.(*passedEntries)
		if pe.part == nil || pe.part.usable(m.backward, m.start, m.end) {
			m.pending = m.pending[1:]
			m.counter.hit()
			src.pe, src.kept, src.pos = pe, true, 0
			if pe.part == nil {
				_ = src.block.Iter.Close()
				if len(pe.ts) > 0 {
					m.active = append(m.active, src)
				}
				return true, nil
			}
			// The block stays open, unread, to read on past the part.
			src.pos = -1
			if more, _ := m.advance(src); more {
				m.active = append(m.active, src)
			}
			return true, nil
		}
	}
	if m.servedKept {
		return false, nil
	}
	m.pending = m.pending[1:]
	collect := !m.cache.tooLarge(m.key, int64(src.block.Entries))
	if collect {
		src.keep = &passedEntries{}
	}
	more, err := m.nextRaw(src)
	if !more || err != nil {
		// A block the store ruled out by its token filters was not read,
		// so it is not counted as computed; nextRaw kept its empty result
		// all the same, as a hit costs less than asking the store again.
		return true, err
	}
	m.counter.miss()
	if collect && !m.hold(src) {
		if err := m.readWhole(src); err != nil {
			return true, err
		}
		if len(src.pe.ts) == 0 {
			return true, nil
		}
	}
	m.active = append(m.active, src)
	return true, nil
}

// hold counts the block src has just decoded against the query's share of
// decoded bytes, estimated from its current batch, and reports whether it
// may stay decoded while the merge reads it.
func (m *memoStream) hold(src *memoSource) bool {
	var text int64
	for _, l := range src.raw.Lines {
		text += int64(len(l))
	}
	n := int64(src.block.Entries)
	cost := n*(8+8+4+16+24) + text*n/int64(len(src.raw.Ts))
	if !m.held.take(cost) {
		return false
	}
	src.heldBytes = cost
	return true
}

// readWhole reads the rest of the block src reads now, every entry
// through the pipeline, keeps its passing entries and lets the block go;
// src then serves them from where it was.
func (m *memoStream) readWhole(src *memoSource) error {
	served := len(src.keep.ts)
	src.started = true
	for {
		for ; src.pos < len(src.raw.Ts); src.pos++ {
			_, _ = m.collect(src, src.raw, src.pos, true)
		}
		m.scanned += len(src.raw.Ts)
		more, err := m.nextRaw(src)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	// nextRaw built and kept the result; serve it past what was served.
	pe := src.keep
	src.keep = nil
	src.pe, src.pos = pe, served
	return nil
}

// readOn decodes the block of a virtual source and reads on from the
// first entry its kept part does not cover.
func (m *memoStream) readOn(src *memoSource) error {
	part := src.pe.part
	// Collect on top of the kept entries (a copy: the cache's stay as
	// they are), in the order read.
	keep := &passedEntries{}
	for j := range src.pe.ts {
		i := j
		if m.backward {
			i = len(src.pe.ts) - 1 - j
		}
		keep.ts = append(keep.ts, src.pe.ts[i])
		keep.seq = append(keep.seq, src.pe.seq[i])
		keep.sizes = append(keep.sizes, src.pe.sizes[i])
		keep.lines = append(keep.lines, src.pe.lines[i])
		if src.pe.meta != nil {
			if keep.meta == nil {
				keep.meta = make([]labels.Labels, j, len(src.pe.ts))
			}
			keep.meta = append(keep.meta, src.pe.meta[i])
		}
	}
	m.counter.miss()
	src.pe, src.virtual, src.kept = nil, false, false
	toSkip := part.skip + part.covered
	for {
		more, err := m.nextRaw(src)
		if err != nil {
			return err
		}
		if !more {
			if src.block.Corrupt() {
				// Found corrupt since: the store skips it, and so does
				// the stream past what was kept of it.
				src.pe, src.pos = &passedEntries{}, 0
				return nil
			}
			return fmt.Errorf("block %s: %w", src.block.ID, errBlockShorter)
		}
		if toSkip < len(src.raw.Ts) {
			src.pos = toSkip
			break
		}
		toSkip -= len(src.raw.Ts)
	}
	if src.raw.Ts[src.pos] != part.nextTs || src.raw.Seq[src.pos] != part.nextSeq {
		m.letGo(src)
		return fmt.Errorf("block %s: its entry after the kept part is not the one kept", src.block.ID)
	}
	src.keep, src.keepBytes = keep, keep.size()
	src.started, src.skip, src.read, src.beforeTs = true, part.skip, part.skip+part.covered, part.beforeTs
	if !m.hold(src) {
		return m.readWhole(src)
	}
	return nil
}

// collect runs the pipeline over entry i of b, the next of the block src
// reads, and collects it if it passes; it returns the pipeline's result
// and whether it passed.
// Unless whole, it stops collecting once the entries would take more than
// their share of the cache.
func (m *memoStream) collect(src *memoSource, b *store.Batch, i int, whole bool) (memoProcessed, bool) {
	src.read++
	out, ls, h, ok := m.sp.ProcessStringMetadata(b.Ts[i], b.Lines[i], metadataAt(b, i))
	if !ok {
		return memoProcessed{}, false
	}
	src.keep.add(b, i)
	src.keepBytes += src.keep.entrySize(len(src.keep.ts) - 1)
	if !whole && src.keepBytes > m.cache.budget/memoShare {
		// Blocks as large are read as they come from now on.
		m.cache.noteTooLarge(m.key, int64(src.block.Entries))
		src.keep = nil
	}
	return memoProcessed{line: out, ls: ls, hash: h, ok: true}, true
}

// finish makes the passing entries src collected its block's result,
// whole or of the part read, and keeps it unless it would take more than
// its share of the cache.
func (m *memoStream) finish(src *memoSource, hasNext bool, nextTs int64, nextSeq uint64) {
	pe := src.keep
	if src.skip > 0 || hasNext {
		pe.part = &keptPart{backward: m.backward, skip: src.skip, covered: src.read - src.skip, beforeTs: src.beforeTs,
			hasNext: hasNext, nextTs: nextTs, nextSeq: nextSeq}
	}
	if m.backward { // the block came newest first
		pe.reverse()
	}
	if m.ctx.Err() != nil || src.block.Corrupt() {
		return
	}
	// A block most of whose lines pass is cheaper read again than kept:
	// its entries would push many smaller results out of the cache.
	if size := pe.size(); size <= m.cache.budget/memoShare {
		m.cache.put(cacheKey{block: src.block.ID, pipe: m.key}, pe, size)
	} else if pe.part == nil {
		m.cache.noteTooLarge(m.key, int64(src.block.Entries))
	}
}

// suspend ends Next short: it hands out the entries gathered, or, with
// none, stops until the reader calls Next again.
func (m *memoStream) suspend(hasMeta bool) bool {
	b := &m.batch
	if len(b.Ts) > 0 {
		if !hasMeta {
			b.Metadata = nil
		}
		return true
	}
	m.suspended = true
	return false
}

// Next hands out the stream's next entries in the range.
func (m *memoStream) Next() bool {
	if m.suspended { // the reader wants more: decode what it takes
		m.suspended, m.servedKept = false, false
	}
	b := &m.batch
	b.Labels = m.ls
	b.Ts, b.Seq, b.Sizes, b.Lines, b.Metadata = b.Ts[:0], b.Seq[:0], b.Sizes[:0], b.Lines[:0], b.Metadata[:0]
	clear(m.proc)
	m.proc = m.proc[:0]
	hasMeta := false
	scanned0, cut := m.scanned, false
	for m.err == nil && len(b.Ts) < memoBatch {
		if m.scanned-scanned0 >= memoScan {
			cut = true
			break
		}
		// The source holding the next entry, once every source the
		// merge has reached is read.
		var best *memoSource
		for {
			best = nil
			for _, src := range m.active {
				if best == nil || m.before(src, best) {
					best = src
				}
			}
			if len(m.pending) == 0 {
				break
			}
			if best != nil {
				if ts, _ := m.next(best); !m.reaches(m.pending[0], ts) {
					break
				}
			}
			ok, err := m.activate()
			if err != nil {
				m.err = err
				return false
			}
			if !ok {
				return m.suspend(hasMeta)
			}
		}
		if best == nil {
			break
		}
		ts, _ := m.next(best)
		if m.past(ts) { // no more
			_ = m.Close()
			break
		}
		if best.virtual {
			if m.servedKept {
				return m.suspend(hasMeta)
			}
			if err := m.readOn(best); err != nil {
				m.err = err
				return false
			}
			if best.raw == nil && best.pos >= len(best.pe.ts) { // nothing more
				m.active = slices.DeleteFunc(m.active, func(s *memoSource) bool { return s == best })
			}
			continue
		}
		rb, pe, i := m.at(best)
		if rb != nil {
			m.emitRaw(best, rb, i, ts, &hasMeta)
		} else {
			if !m.beforeRange(ts) {
				b.Ts = append(b.Ts, ts)
				b.Seq = append(b.Seq, pe.seq[i])
				b.Sizes = append(b.Sizes, pe.sizes[i])
				b.Lines = append(b.Lines, pe.lines[i])
				var md labels.Labels
				if pe.meta != nil {
					md = pe.meta[i]
					hasMeta = hasMeta || md != nil
				}
				b.Metadata = append(b.Metadata, md)
				m.proc = append(m.proc, memoProcessed{})
			}
			if best.kept {
				m.servedKept = true
			}
		}
		more, err := m.advance(best)
		if err != nil {
			m.err = err
			return false
		}
		if !more {
			m.active = slices.DeleteFunc(m.active, func(s *memoSource) bool { return s == best })
		}
	}
	if !hasMeta {
		b.Metadata = nil
	}
	return m.err == nil && (len(b.Ts) > 0 || cut)
}

// emitRaw takes entry i of rb, the next of the block src reads: it skips
// it when before the range and nothing of the block went through the
// pipeline yet, else collects it (when src collects) and adds it to the
// batch if it passed (or, not collecting, whatever it is).
func (m *memoStream) emitRaw(src *memoSource, rb *store.Batch, i int, ts int64, hasMeta *bool) {
	m.scanned++
	before := m.beforeRange(ts)
	if src.keep == nil {
		src.read++
		if before {
			return
		}
		m.appendRaw(rb, i, strings.Clone(rb.Lines[i]), hasMeta)
		return
	}
	if before && !src.started {
		src.read++
		src.skip, src.beforeTs = src.read, ts
		return
	}
	src.started = true
	res, ok := m.collect(src, rb, i, false)
	if !ok || before {
		return
	}
	line := rb.Lines[i]
	if src.keep != nil {
		line = src.keep.lines[len(src.keep.lines)-1]
	} else {
		line = strings.Clone(line)
	}
	m.appendRaw(rb, i, line, hasMeta)
	m.proc[len(m.proc)-1] = res
}

func (m *memoStream) appendRaw(rb *store.Batch, i int, line string, hasMeta *bool) {
	b := &m.batch
	b.Ts = append(b.Ts, rb.Ts[i])
	b.Seq = append(b.Seq, rb.Seq[i])
	b.Sizes = append(b.Sizes, rb.Sizes[i])
	// The block's buffers go with its next batch.
	b.Lines = append(b.Lines, line)
	md := metadataAt(rb, i)
	*hasMeta = *hasMeta || md != nil
	b.Metadata = append(b.Metadata, md)
	m.proc = append(m.proc, memoProcessed{})
}

// memoProcessed is the pipeline's result for an entry of a batch, when
// the stream ran it (ok): its reader need not run it again.
type memoProcessed struct {
	line string
	ls   labels.Labels
	hash uint64
	ok   bool
}

// processed returns the pipeline's result for entry i of the current
// batch when the stream ran it (entries of blocks read now; those kept
// or of the head go through the reader's pipeline).
func (m *memoStream) processed(i int) (string, labels.Labels, uint64, bool) {
	p := m.proc[i]
	return p.line, p.ls, p.hash, p.ok
}

func (p *passedEntries) reverse() {
	slices.Reverse(p.ts)
	slices.Reverse(p.seq)
	slices.Reverse(p.sizes)
	slices.Reverse(p.lines)
	slices.Reverse(p.meta)
}
