package store

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// BlockID names one committed block for as long as the store lives: the
// segment that holds it and its offset there. Segment ids are never reused
// and segments are never rewritten, so whatever is computed from a block's
// entries stays true for the block with that id; compaction and retention
// only ever remove a block (its id stops being live), never change it.
type BlockID struct {
	Seg uint64
	Off int64
}

func (id BlockID) String() string { return fmt.Sprintf("%s@%d", segName(id.Seg), id.Off) }

// BlockInfo is one immutable block of a stream, and an iterator over all of
// its entries (whatever the select's time range: a caller caching per-block
// results needs the whole block). The iterator reads nothing before its
// first Next; close it either way.
type BlockInfo struct {
	ID           BlockID
	MinTs, MaxTs int64 // of its entries, both inclusive
	Entries      int
	Iter         StreamIterator
	ref          *blockRef
}

// Corrupt reports whether the block was found corrupt: reads skip it (and
// count it in Stats.BlocksCorrupt), so nothing computed from it should be
// kept or reused.
func (b *BlockInfo) Corrupt() bool { return b.ref != nil && b.ref.corrupt.Load() }

// BlockStream is one stream of a select, split by where its entries live:
// its blocks overlapping the range, oldest first, and its head (entries not
// yet in a block), restricted to the select's range. Together they hold
// exactly the entries Select would return, the blocks' beyond the range too.
type BlockStream struct {
	Labels labels.Labels
	Blocks []BlockInfo
	// Head is nil when the stream has no unflushed entry in the range.
	Head StreamIterator
}

// BlockReader is implemented by readers whose flushed entries live in
// immutable blocks (the *Store): callers may keep results per block.
type BlockReader interface {
	Reader
	// SelectBlocks is Select split per block. Close every iterator it
	// returns.
	SelectBlocks(ctx context.Context, p SelectParams) ([]BlockStream, error)
	// BlocksEpoch changes whenever a block may have been removed
	// (retention, compaction, a reload of a read-only store), so a cache
	// sweeps for dead blocks only then.
	BlocksEpoch() uint64
	// BlockLive reports whether the block is still in the store.
	BlockLive(id BlockID) bool
}

var _ BlockReader = (*Store)(nil)

// SelectBlocks selects as Select does, then hands out each stream's blocks
// one by one with their ids, and its head apart.
func (s *Store) SelectBlocks(ctx context.Context, p SelectParams) ([]BlockStream, error) {
	its, err := s.Select(ctx, p)
	if err != nil {
		return nil, err
	}
	whole := p
	whole.Start, whole.End = math.MinInt64, math.MaxInt64
	out := make([]BlockStream, 0, len(its))
	// Blocks handed out one by one are read whole, a few at a time, not a
	// block per stream: they never spill, as a merge of the streams may.
	dec := newDecodedHeld(p.MaxDecodedBytes, len(its))
	s.mu.Lock()
	for _, it := range its {
		si := it.(*streamIter)
		bs := BlockStream{Labels: si.lbls, Blocks: make([]BlockInfo, 0, len(si.pending))}
		// Forward order: oldest first, whatever the direction asked.
		for _, b := range sortedByMinTs(si.pending) {
			b.seg.readers++
			sub := &blockIter{&streamIter{s: s, ctx: ctx, p: whole, lbls: si.lbls, pending: []*blockRef{b}, held: []*segment{b.seg}, stats: si.stats, dec: dec}}
			bs.Blocks = append(bs.Blocks, BlockInfo{
				ID:    BlockID{Seg: b.seg.id, Off: b.off},
				MinTs: b.h.MinTs, MaxTs: b.h.MaxTs, Entries: int(b.h.Count),
				Iter: sub, ref: b,
			})
		}
		if anyInRange(si.mem[0], p.Start, p.End) || anyInRange(si.mem[1], p.Start, p.End) {
			bs.Head = &streamIter{s: s, ctx: ctx, p: p, lbls: si.lbls, mem: si.mem, stats: si.stats, dec: dec}
		}
		out = append(out, bs)
	}
	s.mu.Unlock()
	for _, it := range its {
		it.Close() // the sub-iterators hold the segments now
	}
	return out, nil
}

// blockIter is one block's iterator; Close lets go of everything it read,
// so a query over a thousand blocks holds one block's entries at a time,
// not all of them until it ends.
type blockIter struct {
	it *streamIter
}

func (b *blockIter) Labels() labels.Labels { return b.it.lbls }
func (b *blockIter) At() *Batch            { return &b.it.batch }
func (b *blockIter) Err() error            { return b.it.err }
func (b *blockIter) Next() bool            { return b.it.Next() }

func (b *blockIter) Close() error {
	err := b.it.Close()
	b.it = &streamIter{lbls: b.it.lbls, err: b.it.err, closed: true}
	return err
}

func sortedByMinTs(bs []*blockRef) []*blockRef {
	out := slices.Clone(bs)
	slices.SortStableFunc(out, func(a, b *blockRef) int { return cmpInt64(a.h.MinTs, b.h.MinTs) })
	return out
}

// BlocksEpoch changes whenever a block may have left the store: a removal
// lowers the block count, and every block added since raises the next
// segment id. (A collision would only keep a dead block's results in a
// cache until its LRU drops them: a dead id is never selected again.)
func (s *Store) BlocksEpoch() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m == nil {
		return 0
	}
	return s.m.nextSeg*1_000_003 + uint64(len(s.m.blocks))
}

// BlockLive reports whether the block is still committed.
func (s *Store) BlockLive(id BlockID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m == nil {
		return false
	}
	_, ok := s.m.blocks[blockKey{seg: id.Seg, off: id.Off}]
	return ok
}

// BlockFilter lets a log query skip blocks it already knows hold no line it
// wants, and learn which those are: a select whose context carries one (see
// WithBlockFilter) asks Skip before it reads a block, and hands every block
// it decodes (all its lines, whatever the range) to AnyWanted; a block
// without any wanted line is dropped whole. Both are called from many
// iterators at once.
type BlockFilter interface {
	Skip(id BlockID) bool
	// AnyWanted reports whether the caller may want any of the lines.
	AnyWanted(id BlockID, lines []string) bool
}

type blockFilterKey struct{}

// WithBlockFilter returns a context whose selects with lines consult f.
func WithBlockFilter(ctx context.Context, f BlockFilter) context.Context {
	return context.WithValue(ctx, blockFilterKey{}, f)
}

func blockFilterFrom(ctx context.Context) BlockFilter {
	f, _ := ctx.Value(blockFilterKey{}).(BlockFilter)
	return f
}

// skipByFilter reports whether the context's block filter rules b out
// before it is read.
func (it *streamIter) skipByFilter(b *blockRef) bool {
	f := blockFilterFrom(it.ctx)
	if f == nil || !it.p.Lines || !f.Skip(BlockID{Seg: b.seg.id, Off: b.off}) {
		return false
	}
	it.delta.BlocksSkipped++
	return true
}

// wantedByFilter reports whether the context's block filter wants any line
// of a decoded block. The entries of a block it drops still count as
// scanned.
func (it *streamIter) wantedByFilter(b *blockRef, d *blockData) bool {
	f := blockFilterFrom(it.ctx)
	if f == nil || !it.p.Lines || f.AnyWanted(BlockID{Seg: b.seg.id, Off: b.off}, d.lines) {
		return true
	}
	for i, ts := range d.ts {
		if ts >= it.p.Start && ts < it.p.End {
			it.delta.EntriesScanned++
			it.delta.BytesScanned += int64(d.sizes[i])
		}
	}
	return false
}
