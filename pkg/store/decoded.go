package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// DefaultMaxDecodedBytes is what the iterators of one select may hold
// decoded at once when SelectParams.MaxDecodedBytes is 0. A stream being
// read holds one decoded block (about blockTargetRaw of lines and their
// columns), so this lets a log query merge about fifty streams at once
// block by block, and more a window of each block at a time; with the
// engine's memory budget of one query it keeps a query process under
// 100 MB.
const DefaultMaxDecodedBytes = 64 << 20

// ErrDecodedLimit marks a select whose streams would hold more decoded
// bytes at once than SelectParams.MaxDecodedBytes, even a window of a
// block each.
var ErrDecodedLimit = errors.New("the query would hold too many decoded bytes")

// decodedHeld counts the decoded bytes the iterators of one select hold,
// across the goroutines that read them, against a bound.
//
// When every stream's largest block (and its head) fit under the bound
// at once, a stream holds its decoded block until it is read (the fast
// path). Otherwise the select spills (see plan): a block costing more
// than window is decoded, the next window of its entries copied out and
// the block dropped, and decoded again for the next window. The windows
// and the blocks small enough to keep stay under max-reserve; the
// decodes in progress take from reserve, one block's worth.
type decodedHeld struct {
	n, peak atomic.Int64
	max     int64 // < 0: no bound
	streams int   // the select's streams, for the error message

	spill   bool
	window  int64 // what one stream's window may cost
	reserve int64 // kept for decodes in progress: the largest block's cost

	mu    sync.Mutex // in spill mode, every take and the transient counts
	cond  *sync.Cond // signalled when a decode in progress gives back
	trans int64      // bytes of the decodes in progress (in n too)
}

const (
	// windowMaxText is the line bytes a spilled stream's window may copy
	// out of its block at most; with batchMaxEntries of columns, the cost
	// a window aims at when the bound leaves room.
	windowMaxText = 256 << 10
	// windowMin is the least a window may cost: below it a block would be
	// decoded again for a few lines, so a select whose streams cannot each
	// have this much is refused instead.
	windowMin = 32 << 10
)

// plan decides, before any block is read, whether the select spills:
// perStream is the sum over its streams of the largest block's cost plus
// the head's, heads the sum of the heads' costs and blockMax the largest
// block's cost. The fast path is kept when perStream fits the bound.
// Spilling, every stream may keep a window and one decode in progress
// (a block and the window copied out of it) has the reserve.
func (h *decodedHeld) plan(streams int, perStream, heads, blockMax int64, lines bool) {
	h.streams = streams
	if h.max < 0 || perStream <= h.max || streams == 0 {
		return
	}
	h.spill = true
	h.cond = sync.NewCond(&h.mu)
	h.window = decodedCost(batchMaxEntries, windowMaxText, lines) + mdCost(batchMaxEntries)
	if share := (h.max - blockMax - heads) / int64(streams+1); share < h.window {
		h.window = max(share, windowMin)
	}
	h.reserve = blockMax + h.window
}

// spilling reports whether the select copies windows out of its blocks.
func (h *decodedHeld) spilling() bool { return h != nil && h.spill }

// takeHeld counts d more bytes an iterator keeps (a window, a block small
// enough to keep, a head): spilling, they must leave the reserve, and it
// waits while the decodes in progress leave no room. Its caller must hold
// no transient bytes.
func (h *decodedHeld) takeHeld(d int64) error {
	if !h.spilling() {
		return h.take(d)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		n := h.n.Load()
		if held := n - h.trans + d; held > h.max-h.reserve && d > 0 {
			return &DecodedLimitError{Held: held + h.reserve, Max: h.max, Streams: h.streams}
		}
		if n+d <= h.max || h.trans == 0 {
			h.addPeak(d)
			return nil
		}
		h.cond.Wait()
	}
}

// takeTransient counts a block decoded only to copy a window out of it
// (d: the block's cost and the window's). It waits while other decodes
// hold the reserve: they end without waiting on anything, so the wait is
// short and cannot deadlock.
func (h *decodedHeld) takeTransient(d int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		n := h.n.Load() + d
		if n <= h.max {
			h.trans += d
			h.addPeak(d)
			return nil
		}
		if h.trans == 0 {
			return &DecodedLimitError{Held: n, Max: h.max, Streams: h.streams}
		}
		h.cond.Wait()
	}
}

// keep turns d of an iterator's transient bytes into held ones (the
// window it copied out, or the block it keeps whole), unless the held
// bytes would then pass the reserve.
func (h *decodedHeld) keep(d int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if held := h.n.Load() - h.trans + d; held > h.max-h.reserve {
		return &DecodedLimitError{Held: held + h.reserve, Max: h.max, Streams: h.streams}
	}
	h.trans -= d
	return nil
}

// giveTransient returns what takeTransient counted.
func (h *decodedHeld) giveTransient(d int64) {
	h.mu.Lock()
	h.trans -= d
	h.n.Add(-d)
	h.mu.Unlock()
	h.cond.Broadcast()
}

// addPeak adds d to n and raises peak to it.
func (h *decodedHeld) addPeak(d int64) {
	n := h.n.Add(d)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func newDecodedHeld(max int64, streams int) *decodedHeld {
	if max == 0 {
		max = DefaultMaxDecodedBytes
	}
	return &decodedHeld{max: max, streams: streams}
}

// take counts d more bytes, or returns a *DecodedLimitError and counts
// nothing when that would pass the bound. A nil h counts nothing.
func (h *decodedHeld) take(d int64) error {
	if h == nil {
		return nil
	}
	n := h.n.Add(d)
	if h.max >= 0 && n > h.max && d > 0 {
		h.n.Add(-d)
		return &DecodedLimitError{Held: n, Max: h.max, Streams: h.streams}
	}
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			return nil
		}
	}
}

// DecodedLimitError is the error of a select past its MaxDecodedBytes:
// Held is what its iterators would have held with the refused block.
type DecodedLimitError struct {
	Held, Max int64
	Streams   int
}

func (e *DecodedLimitError) Error() string {
	return fmt.Sprintf("%v at once (query: %d MiB decoded over %d streams, limit: %d MiB); narrow the stream selector or add a line filter",
		ErrDecodedLimit, mibUp(e.Held), e.Streams, mibUp(e.Max))
}

func (e *DecodedLimitError) Is(target error) bool { return target == ErrDecodedLimit }

// give returns d bytes counted by take.
func (h *decodedHeld) give(d int64) {
	if h != nil && d != 0 {
		h.n.Add(-d)
	}
}

// mibUp is b in MiB, rounded up.
func mibUp(b int64) int64 { return (b + 1<<20 - 1) >> 20 }

// decodedCost is what a decoded run of n entries costs: its times,
// sequence numbers and sizes, and the line headers and text bytes when
// lines are decoded.
func decodedCost(n int, textBytes int64, lines bool) int64 {
	c := int64(n) * (8 + 8 + 4)
	if lines {
		c += int64(n)*16 + textBytes
	}
	return c
}

// mdCost is what the metadata headers of n entries cost (their label sets
// are the block's, shared).
func mdCost(n int) int64 { return int64(n) * 24 }

// blockCost is what decoding b will cost, from its header alone, so that a
// block past the bound is refused before it is read.
func blockCost(b *blockRef, lines bool) int64 {
	return decodedCost(int(b.h.Count), int64(b.h.RawBytes), lines)
}

// blockCostMD is blockCost with the metadata headers of a block that has
// a metadata column.
func blockCostMD(b *blockRef, lines bool) int64 {
	c := blockCost(b, lines)
	if b.h.Metadata {
		c += mdCost(int(b.h.Count))
	}
	return c
}
