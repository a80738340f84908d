package store

import (
	"bytes"
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
	return b.scan(true, func(it *streamIter, blk *blockRef) (bool, error) {
		d := scanData.Get().(*blockData)
		defer scanData.Put(d)
		if read, handled, err := readForScan(it, blk, decodeLines, d, nil); !read {
			return handled, err
		}
		return true, fn(&BlockLines{Text: d.text, Sizes: d.sizes, Ts: d.ts})
	})
}

// readForScan reads blk for ScanLines and ScanStored: its meta section and
// its lines, decoded by dec into d, then laid out by then when it is not
// nil. read says the block is in d, to hand on; otherwise handled and err
// are the scan's answer: a corrupt block counted and skipped, or false for
// a block with structured metadata, which the iterator must read instead.
// A read block counts in the select's stats.
func readForScan(it *streamIter, blk *blockRef, dec linesDecoder, d *blockData, then func() error) (read, handled bool, err error) {
	it.scratch, err = it.s.readBlockWith(blk, dec, d, it.scratch)
	if err == nil && d.md == nil && then != nil {
		err = then()
	}
	if err != nil {
		return false, true, it.readFailed(blk, err)
	}
	if d.md != nil {
		return false, false, nil // the iterator reads it again, metadata and all
	}
	it.delta.BlocksRead++
	it.delta.EntriesScanned += int64(len(d.ts))
	for _, sz := range d.sizes {
		it.delta.BytesScanned += int64(sz)
	}
	return true, true, nil
}

// BlockTimes is one block's entry times in the block's order, and the
// lengths of its lines when asked for, in buffers the store reuses for the
// next block.
type BlockTimes struct {
	Ts    []int64
	Sizes []uint32 // nil unless asked for
}

// timesData holds the buffers of ScanTimes: a block's decompressed meta
// section and its times, or the whole decoded meta section when the sizes
// are wanted.
type timesData struct {
	d       blockData
	ts      []int64
	scratch []byte
}

var timesPool = sync.Pool{New: func() any { return new(timesData) }}

// ScanTimes is ScanLines for a select without lines (a count of lines or
// bytes): it decodes only the block's time column, and the line sizes when
// sizes is set, into buffers reused from block to block, and hands them to
// fn, which must keep nothing of them. A block's first read in the process
// still reads it whole and checks every checksum (though it decodes only
// the time columns), so a block is found corrupt (counted and skipped)
// exactly as its iterator would find it. It reports false, calling nothing, when the iterator must
// be used instead: b is not one of the store's unread block iterators, the
// select asked for lines, or the block holds structured metadata (entries
// may then belong to other series). Close b.Iter afterwards either way.
func (b *BlockInfo) ScanTimes(sizes bool, fn func(*BlockTimes) error) (bool, error) {
	if b.ref != nil && b.ref.h.Metadata {
		return false, nil
	}
	return b.scan(false, func(it *streamIter, blk *blockRef) (bool, error) {
		td := timesPool.Get().(*timesData)
		defer timesPool.Put(td)
		bt, err := it.s.readTimes(blk, td, sizes)
		if err != nil {
			return true, it.readFailed(blk, err)
		}
		it.delta.BlocksRead++
		it.delta.EntriesScanned += int64(len(bt.Ts))
		return true, fn(&bt)
	})
}

// scan is what ScanLines and ScanTimes share: it checks that b is an
// unread block iterator of a select with lines or without, as lines says
// (and with lines, that the context carries no BlockFilter, which wants
// them as strings), skips (and counts) a corrupt block or one the filter hint rules out, and
// otherwise calls read, which reports false when the iterator must read the
// block instead. Once the block is read or skipped, the iterator is done.
func (b *BlockInfo) scan(lines bool, read func(*streamIter, *blockRef) (bool, error)) (bool, error) {
	bi, ok := b.Iter.(*blockIter)
	if !ok || b.ref == nil {
		return false, nil
	}
	it := bi.it
	if it.closed || it.started || it.p.Lines != lines || len(it.pending) != 1 || it.pending[0] != b.ref || (lines && blockFilterFrom(it.ctx) != nil) {
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
	handled, err := read(it, blk)
	if !handled {
		return false, nil
	}
	return done(err)
}

// StoredLines is one block's lines as the block stores them, for a search
// that StoredMatchExact says finds the same lines in them: Text holds each
// line's stored text back to back (the line without its elided timestamp,
// each run of digits one marker byte), line i being Sizes[i] bytes of it,
// Lens[i] bytes long in full and stamped Ts[i]. An occurrence counts only
// within a line and, when Cuts[i] is not 0, only on one side of that
// offset in the line's stored text, where a timestamp was cut out. All of
// it lives in buffers the store reuses for the next block.
type StoredLines struct {
	Text  []byte
	Sizes []uint32
	Cuts  []uint32
	Lens  []uint32
	Ts    []int64
	sd    *storedData
}

// storedData is a blockData with where each line lies in its stored text.
type storedData struct {
	d                    blockData
	sizes, cuts, digitAt []uint32
	line, scratch        []byte
}

var storedPool = sync.Pool{New: func() any { return new(storedData) }}

// StoredMatchExact reports whether a line holds lit exactly when its stored
// text (StoredLines) holds it on one side of its cut. The encoding drops a
// timestamp and replaces runs of digits by a marker byte (0x00), keeping
// every other byte; so lit must have no digit and no zero byte, and must
// not overlap a timestamp "2006-01-02T15:04:05.000Z" (its separators sit
// between digits, so only a one-byte literal of them, or one opening with
// the closing 'Z', could). Then an occurrence in the line lies before or
// after the timestamp, among bytes stored as they are, and an occurrence
// in the stored text contains no marker and does not span the cut, so it
// is the same bytes in the line.
func StoredMatchExact(lit []byte) bool {
	if len(lit) == 0 || lit[0] == 'Z' || len(lit) == 1 && bytes.IndexByte([]byte("-T :.,"), lit[0]) >= 0 {
		return false
	}
	for _, c := range lit {
		if c == digitMarker || isDigit(c) {
			return false
		}
	}
	return true
}

// ScanStored is ScanLines without rebuilding the lines: it hands fn each
// block's stored lines (see StoredLines), decompressed but with their
// digits and timestamps left out, and declines (false) exactly when
// ScanLines would. The block is read, checked, counted and skipped as
// ScanLines reads it.
func (b *BlockInfo) ScanStored(fn func(*StoredLines) error) (bool, error) {
	return b.scan(true, func(it *streamIter, blk *blockRef) (bool, error) {
		sd := storedPool.Get().(*storedData)
		defer storedPool.Put(sd)
		d := &sd.d
		if read, handled, err := readForScan(it, blk, decompressLines, d, sd.layoutStored); !read {
			return handled, err
		}
		return true, fn(&StoredLines{Text: d.raw[:d.skelLen], Sizes: sd.sizes, Cuts: sd.cuts, Lens: d.sizes, Ts: d.ts, sd: sd})
	})
}

// Line rebuilds line i in full. The result is valid until the next call
// or the end of fn.
func (s *StoredLines) Line(i int) ([]byte, error) {
	sp := 0
	for _, sz := range s.Sizes[:i] {
		sp += int(sz)
	}
	sd := s.sd
	var err error
	sd.line, sd.scratch, _, _, err = sd.d.appendLine(sd.line[:0], sd.scratch, s.Text, sd.d.raw[sd.d.skelLen:], i, sp, int(sd.digitAt[i]))
	return sd.line, err
}
