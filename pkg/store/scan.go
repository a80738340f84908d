package store

import (
	"sync"
)

// BlockLines is one block's lines decoded for a scan: Text holds them back
// to back in the block's order, line i being Sizes[i] bytes long and stamped
// Ts[i]. All of it lives in buffers the store reuses for the next block.
type BlockLines struct {
	Text  []byte
	Sizes []uint32
	Ts    []int64
}

// scanData holds the decoded columns and line buffers of one block at a
// time; scans take one from the pool, so decoding a thousand blocks on
// every core allocates a handful of buffers, not one per block or line.
var scanData = sync.Pool{New: func() any { return new(blockData) }}

// ScanLines reads the block's lines at once, without a batch or a string per
// line, and hands them to fn, which must keep nothing of them. The block is
// read as its iterator would read it: a corrupt block is counted (in the
// select's stats) and skipped, a block the filter hint rules out is skipped
// unread, and the entries and bytes count as scanned. It reports false,
// calling nothing, when the iterator must be used instead: b is not one of
// the store's unread block iterators, the select asked for no lines, the
// context carries a BlockFilter (it wants the lines as strings) or the block
// holds structured metadata. Close b.Iter afterwards either way.
func (b *BlockInfo) ScanLines(fn func(*BlockLines) error) (bool, error) {
	bi, ok := b.Iter.(*blockIter)
	if !ok || b.ref == nil {
		return false, nil
	}
	it := bi.it
	if it.closed || it.started || !it.p.Lines || len(it.pending) != 1 || it.pending[0] != b.ref || blockFilterFrom(it.ctx) != nil {
		return false, nil
	}
	blk := b.ref
	if err := it.ctx.Err(); err != nil {
		return true, err
	}
	done := func(err error) (bool, error) {
		it.pending = nil
		it.finish()
		return true, err
	}
	if blk.corrupt.Load() {
		it.delta.BlocksCorrupt++
		return done(nil)
	}
	if hintPrunes(it.p.Hint) {
		f, err := it.s.readFilter(blk)
		if err != nil {
			return done(it.readFailed(blk, err))
		}
		if !f.mayMatch(it.p.Hint) {
			it.delta.BlocksSkipped++
			return done(nil)
		}
	}
	d := scanData.Get().(*blockData)
	defer scanData.Put(d)
	var err error
	it.scratch, err = it.s.readBlock(blk, true, d, it.scratch)
	if err != nil {
		return done(it.readFailed(blk, err))
	}
	if d.md != nil {
		return false, nil // the iterator reads it again, metadata and all
	}
	it.delta.BlocksRead++
	it.delta.EntriesScanned += int64(len(d.ts))
	for _, sz := range d.sizes {
		it.delta.BytesScanned += int64(sz)
	}
	return done(fn(&BlockLines{Text: d.text, Sizes: d.sizes, Ts: d.ts}))
}
