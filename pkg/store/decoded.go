package store

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// DefaultMaxDecodedBytes is what the iterators of one select may hold
// decoded at once when SelectParams.MaxDecodedBytes is 0. A stream being
// read holds one decoded block (about blockTargetRaw of lines and their
// columns), so this admits a log query that merges about fifty streams at
// once; with the engine's memory budget of one query it keeps a query
// process under 100 MB.
const DefaultMaxDecodedBytes = 64 << 20

// ErrDecodedLimit marks a select whose streams would hold more decoded
// blocks at once than SelectParams.MaxDecodedBytes.
var ErrDecodedLimit = errors.New("the query would hold too many decoded bytes")

// decodedHeld counts the decoded bytes the iterators of one select hold,
// across the goroutines that read them, against a bound.
type decodedHeld struct {
	n, peak atomic.Int64
	max     int64 // < 0: no bound
	streams int   // the select's streams, for the error message
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
