package store

import (
	"sort"
	"strings"
)

// A select whose streams' blocks would not all fit under its
// MaxDecodedBytes at once spills (decodedHeld.plan): a block costing more
// than a window is decoded, the next window of its entries (at most
// batchMaxEntries, at most the window's cost) is copied out and the block
// dropped; when the merge has read the window, the block is decoded again
// for the next one. A stream then holds a window, not a block: more CPU,
// bounded memory.

// loadSpilled reads a block as load does, for a select that spills: it
// keeps the block decoded when it costs no more than a window, else the
// first window of its entries in range.
func (it *streamIter) loadSpilled(b *blockRef) (*source, error) {
	cost := blockCostMD(b, it.p.Lines)
	t := cost + it.dec.window
	if err := it.dec.takeTransient(t); err != nil {
		return nil, err
	}
	defer func() { it.dec.giveTransient(t) }()
	d, err := it.decode(b)
	if err != nil {
		return nil, it.readFailed(b, err)
	}
	it.delta.BlocksRead++
	if !it.wantedByFilter(b, d) {
		return nil, nil
	}
	lo := sort.Search(len(d.ts), func(i int) bool { return d.ts[i] >= it.p.Start })
	hi := sort.Search(len(d.ts), func(i int) bool { return d.ts[i] >= it.p.End })
	if lo >= hi {
		return nil, nil
	}
	if cost <= it.dec.window {
		if err := it.dec.keep(cost); err != nil {
			return nil, err
		}
		t -= cost
		return &source{ts: d.ts, seq: d.seq, sizes: d.sizes, lines: d.lines, md: d.md, lo: lo, hi: hi, cost: cost}, nil
	}
	src := &source{blk: b, rlo: lo, rhi: hi}
	kept, err := it.copyWindow(src, d)
	t -= kept
	if err != nil {
		return nil, err
	}
	return src, nil
}

// refill copies the next window of every stalled source out of its block,
// decoded again, and puts the sources back in the merge. The batch that
// shared their last windows has been handed out: those are given back
// first. A block that no longer reads back is skipped from there on and
// counted corrupt, as a block found corrupt at its first read is.
func (it *streamIter) refill() error {
	for len(it.stalled) > 0 {
		src := it.stalled[0]
		it.stalled = it.stalled[1:]
		it.dec.give(src.cost)
		src.cost = 0
		if err := it.ctx.Err(); err != nil {
			return err
		}
		t := blockCostMD(src.blk, it.p.Lines) + it.dec.window
		if err := it.dec.takeTransient(t); err != nil {
			return err
		}
		d, err := it.decode(src.blk)
		if err != nil {
			it.dec.giveTransient(t)
			if err := it.readFailed(src.blk, err); err != nil {
				return err
			}
			continue
		}
		it.delta.BlocksRedecoded++
		kept, err := it.copyWindow(src, d)
		it.dec.giveTransient(t - kept)
		if err != nil {
			return err
		}
		it.srcs = append(it.srcs, src)
	}
	it.stalled = nil
	return nil
}

// decode reads a block for a select that spills. The meta buffer is not
// kept for the next block: a stream holds its window alone.
func (it *streamIter) decode(b *blockRef) (*blockData, error) {
	d := &blockData{}
	_, err := it.s.readBlock(b, it.p.Lines, d, nil)
	return d, err
}

// copyWindow copies the next window of src's block out of d, its decoded
// entries, and counts it as held: it returns the bytes counted. A window
// holds at least one entry; one entry alone costing more than a window
// fails the select with the numbers.
func (it *streamIter) copyWindow(src *source, d *blockData) (int64, error) {
	lines, md := it.p.Lines, d.md != nil
	cost := func(n int, text int64) int64 {
		c := decodedCost(n, text, lines)
		if md {
			c += mdCost(n)
		}
		return c
	}
	lineLen := func(i int) int64 {
		if lines {
			return int64(len(d.lines[i]))
		}
		return 0
	}
	var a, e int // the window is d[a:e]
	var text int64
	if it.p.Direction == Forward {
		a, e = src.rlo, src.rlo
		for e < src.rhi && e-a < batchMaxEntries {
			if e > a && cost(e-a+1, text+lineLen(e)) > it.dec.window {
				break
			}
			text += lineLen(e)
			e++
		}
		src.rlo = e
	} else {
		a, e = src.rhi, src.rhi
		for a > src.rlo && e-a < batchMaxEntries {
			if e > a && cost(e-a+1, text+lineLen(a-1)) > it.dec.window {
				break
			}
			text += lineLen(a - 1)
			a--
		}
		src.rhi = a
	}
	c := cost(e-a, text)
	if err := it.dec.keep(c); err != nil {
		return 0, err
	}
	// The caller has every value of the last window's columns copied in
	// its batches: they are reused; the text is new, since the last
	// batch's lines may still be read.
	src.ts = append(src.ts[:0], d.ts[a:e]...)
	src.seq = append(src.seq[:0], d.seq[a:e]...)
	src.sizes = append(src.sizes[:0], d.sizes[a:e]...)
	if md {
		src.md = append(src.md[:0], d.md[a:e]...)
	} else {
		src.md = nil
	}
	src.lines = src.lines[:0]
	if lines {
		var sb strings.Builder
		sb.Grow(int(text))
		for _, l := range d.lines[a:e] {
			sb.WriteString(l)
		}
		all, off := sb.String(), 0
		for _, l := range d.lines[a:e] {
			src.lines = append(src.lines, all[off:off+len(l)])
			off += len(l)
		}
	}
	src.lo, src.hi, src.cost = 0, e-a, c
	return c, nil
}
