package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

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
// skipped. Only immutable blocks are kept, whole (the query's range cuts the
// kept entries, so blocks crossing its edges are reused too); the heads are
// always read.

// passedEntries are the entries of one block that passed a pipeline, in the
// block's forward order.
type passedEntries struct {
	ts    []int64
	seq   []uint64
	sizes []uint32
	lines []string
	meta  []labels.Labels // nil when no entry has structured metadata
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
	n := int64(len(p.ts)) * (8 + 8 + 4 + 16 + 24)
	for _, l := range p.lines {
		n += int64(len(l))
	}
	for _, md := range p.meta {
		for _, l := range md {
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
	for i := range bss {
		ms := &memoStream{ctx: ctx, cache: cache, key: key, counter: cacheCounterFrom(ctx),
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

// memoSource is one block of a stream (or its head) in the merge of its
// entries: a block is read (or its kept entries taken) only once the merge
// reaches its time.
type memoSource struct {
	minTs, maxTs int64
	block        *store.BlockInfo // nil for the head
	pe           *passedEntries   // once read
	// raw is the current batch of a block read as it comes, every entry
	// handed on (the stream's pipeline filters them), when its passing
	// entries are known to be too many to keep.
	raw *store.Batch
	pos int // next entry, counted in the query's direction (in raw: its index)
}

// memoStream is one stream's entries: each block's kept passing entries
// when the cache has them, else the block read whole and its passing
// entries kept, merged in (Ts, Seq) order as the store merges blocks whose
// times overlap. Its batches hold only entries of [start, end).
type memoStream struct {
	ctx      context.Context
	cache    *blockCache
	key      string
	counter  *cacheCounter
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
}

// memoShare is the share of the block cache's budget one block's kept
// entries may take at most (1/memoShare).
const memoShare = 16

// memoBatch is how many entries a batch holds at most.
const memoBatch = 256

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

func (m *memoStream) Close() error {
	for _, src := range m.pending {
		if src.block != nil {
			_ = src.block.Iter.Close()
		}
	}
	for _, src := range m.active {
		if src.raw != nil { // a block read as it comes
			_ = src.block.Iter.Close()
		}
	}
	m.pending, m.active = nil, nil
	return nil
}

// at returns src's next entry: the batch or kept entries holding it and
// its index there.
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

// advance moves src past its next entry and reports whether it has more.
func (m *memoStream) advance(src *memoSource) (bool, error) {
	src.pos++
	if src.raw == nil {
		return src.pos < len(src.pe.ts), nil
	}
	if src.pos < len(src.raw.Ts) {
		return true, nil
	}
	return m.nextRaw(src)
}

// nextRaw moves a raw source to its next batch with entries, and reports
// whether there is one; the block is closed after its last.
func (m *memoStream) nextRaw(src *memoSource) (bool, error) {
	it := src.block.Iter
	for it.Next() {
		if b := it.At(); len(b.Ts) > 0 {
			if len(b.Lines) != len(b.Ts) {
				_ = it.Close()
				return false, fmt.Errorf("block %s: store returned a batch without lines", src.block.ID)
			}
			src.raw, src.pos = b, 0
			return true, nil
		}
	}
	err := it.Err()
	_ = it.Close()
	src.raw = nil
	if err != nil {
		return false, fmt.Errorf("block %s: %w", src.block.ID, err)
	}
	return false, nil
}

// activate reads the next pending source.
func (m *memoStream) activate() error {
	src := m.pending[0]
	m.pending = m.pending[1:]
	if src.pe == nil {
		if v, ok := m.cache.get(cacheKey{block: src.block.ID, pipe: m.key}); ok {
			_ = src.block.Iter.Close()
			m.counter.hit()
			src.pe = v.(*passedEntries)
		}
	}
	if src.pe == nil && m.cache.tooLarge(m.key, int64(src.block.Entries)) {
		more, err := m.nextRaw(src)
		if more {
			m.counter.miss()
			m.active = append(m.active, src)
		}
		return err
	}
	if src.pe == nil {
		pe, err := m.block(src.block)
		if err != nil {
			return fmt.Errorf("block %s: %w", src.block.ID, err)
		}
		src.pe = pe
	}
	if len(src.pe.ts) > 0 {
		m.active = append(m.active, src)
	}
	return nil
}

// Next hands out the stream's next entries in the range.
func (m *memoStream) Next() bool {
	b := &m.batch
	b.Labels = m.ls
	b.Ts, b.Seq, b.Sizes, b.Lines, b.Metadata = b.Ts[:0], b.Seq[:0], b.Sizes[:0], b.Lines[:0], b.Metadata[:0]
	hasMeta := false
	for m.err == nil && len(b.Ts) < memoBatch {
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
			if err := m.activate(); err != nil {
				m.err = err
				return false
			}
		}
		if best == nil {
			break
		}
		rb, pe, i := m.at(best)
		var ts int64
		if rb != nil {
			ts = rb.Ts[i]
		} else {
			ts = pe.ts[i]
		}
		if ts < m.start || ts >= m.end {
			if (ts < m.start) == m.backward { // past the range: no more
				_ = m.Close()
				break
			}
		} else if rb != nil {
			b.Ts = append(b.Ts, ts)
			b.Seq = append(b.Seq, rb.Seq[i])
			b.Sizes = append(b.Sizes, rb.Sizes[i])
			// The block's buffers go with its next batch.
			b.Lines = append(b.Lines, strings.Clone(rb.Lines[i]))
			md := metadataAt(rb, i)
			hasMeta = hasMeta || md != nil
			b.Metadata = append(b.Metadata, md)
		} else {
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
	return m.err == nil && len(b.Ts) > 0
}

// block reads b's passing entries, and keeps them.
func (m *memoStream) block(b *store.BlockInfo) (*passedEntries, error) {
	k := cacheKey{block: b.ID, pipe: m.key}
	pe := &passedEntries{}
	read := false
	for b.Iter.Next() {
		bt := b.Iter.At()
		read = true
		if len(bt.Lines) != len(bt.Ts) {
			_ = b.Iter.Close()
			return nil, fmt.Errorf("store returned a batch without lines")
		}
		for i := range bt.Ts {
			if _, _, _, ok := m.sp.ProcessStringMetadata(bt.Ts[i], bt.Lines[i], metadataAt(bt, i)); ok {
				pe.add(bt, i)
			}
		}
	}
	err := b.Iter.Err()
	_ = b.Iter.Close()
	if err != nil {
		return nil, err
	}
	// A block the store ruled out by its token filters was not read, so
	// it is not counted as computed; its empty result is kept all the
	// same, as a hit costs less than asking the store again.
	if read {
		m.counter.miss()
	}
	if m.backward { // the block came newest first
		pe.reverse()
	}
	// A block most of whose lines pass is cheaper read again than kept:
	// its entries would push many smaller results out of the cache.
	if size := pe.size(); m.ctx.Err() == nil && !b.Corrupt() {
		if size <= m.cache.budget/memoShare {
			m.cache.put(k, pe, size)
		} else {
			// Blocks as large are read as they come from now on.
			m.cache.noteTooLarge(m.key, int64(b.Entries))
		}
	}
	return pe, nil
}

func (p *passedEntries) reverse() {
	slices.Reverse(p.ts)
	slices.Reverse(p.seq)
	slices.Reverse(p.sizes)
	slices.Reverse(p.lines)
	slices.Reverse(p.meta)
}
