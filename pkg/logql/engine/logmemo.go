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
	pos          int              // next entry, counted in the query's direction
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
	m.pending, m.active = nil, nil
	return nil
}

// entry returns the index in src.pe of src's next entry.
func (m *memoStream) entry(src *memoSource) int {
	if m.backward {
		return len(src.pe.ts) - 1 - src.pos
	}
	return src.pos
}

// before reports whether entry i of a comes before entry j of b in the
// query's direction.
func (m *memoStream) before(a *passedEntries, i int, b *passedEntries, j int) bool {
	if a.ts[i] != b.ts[j] {
		return (a.ts[i] < b.ts[j]) != m.backward
	}
	return (a.seq[i] < b.seq[j]) != m.backward
}

// reaches reports whether the merge, its next entry at ts, has reached
// src's time (then src must be read before that entry is handed out).
func (m *memoStream) reaches(src *memoSource, ts int64) bool {
	if m.backward {
		return src.maxTs >= ts
	}
	return src.minTs <= ts
}

// activate reads the next pending source.
func (m *memoStream) activate() error {
	src := m.pending[0]
	m.pending = m.pending[1:]
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
		bi := 0
		for {
			best = nil
			for _, src := range m.active {
				if i := m.entry(src); best == nil || m.before(src.pe, i, best.pe, bi) {
					best, bi = src, i
				}
			}
			if len(m.pending) == 0 || (best != nil && !m.reaches(m.pending[0], best.pe.ts[bi])) {
				break
			}
			if err := m.activate(); err != nil {
				m.err = err
				return false
			}
		}
		if best == nil {
			break
		}
		if best.pos++; best.pos == len(best.pe.ts) {
			m.active = slices.DeleteFunc(m.active, func(s *memoSource) bool { return s == best })
		}
		pe, i := best.pe, bi
		if ts := pe.ts[i]; ts < m.start || ts >= m.end {
			if (ts < m.start) == m.backward { // past the range: no more
				_ = m.Close()
				break
			}
			continue
		}
		b.Ts = append(b.Ts, pe.ts[i])
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
	if !hasMeta {
		b.Metadata = nil
	}
	return m.err == nil && len(b.Ts) > 0
}

// block returns b's passing entries, kept or read (and then kept).
func (m *memoStream) block(b *store.BlockInfo) (*passedEntries, error) {
	k := cacheKey{block: b.ID, pipe: m.key}
	if v, ok := m.cache.get(k); ok {
		_ = b.Iter.Close()
		m.counter.hit()
		return v.(*passedEntries), nil
	}
	m.counter.miss()
	pe := &passedEntries{}
	for b.Iter.Next() {
		bt := b.Iter.At()
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
	if m.backward { // the block came newest first
		pe.reverse()
	}
	// A block most of whose lines pass is cheaper read again than kept:
	// its entries would push many smaller results out of the cache.
	if size := pe.size(); m.ctx.Err() == nil && !b.Corrupt() && size <= m.cache.budget/memoShare {
		m.cache.put(k, pe, size)
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
