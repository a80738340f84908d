package store

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync/atomic"
)

// Token filters answer "can this block contain a line with this substring?".
// LogQL's |= is substring matching, so whole-word tokens would be wrong
// (|= "rror" must find "error"). We index every ASCII-lowercased byte
// trigram of every line: a line containing literal L contains every trigram
// of L, lowercased or not, so a block missing any of L's lowercased trigrams
// cannot hold L, nor any case variant of it (good for (?i) filters too).
// Literals shorter than a trigram cannot prune.
const (
	filterKind = 1
	trigramLen = 3

	// filterBitsPerTrigram sizes the bitmap to the block: with one hash
	// per trigram, 8 bits per distinct trigram leave it about 12% full, so a
	// literal with a handful of rare trigrams is ruled out with high
	// probability while the filter stays ~1-2% of the raw block.
	filterBitsPerTrigram = 8
	minFilterLog2        = 9 // 64 bytes
	// A 2^24-bit bitmap indexes every trigram exactly; never go beyond.
	maxFilterLog2 = 24
)

var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()

// filterBuilder collects the distinct trigrams of a block in a reusable
// exact bitmap before folding them into the block's smaller hashed one.
// It also carries encodeBlock's other scratch columns, so a writer that
// keeps one builder per encoding goroutine allocates nothing per block
// but the block's own bytes.
type filterBuilder struct {
	seen     []uint64 // 2^24 bits
	distinct []uint32

	meta, lines, digits, scratch []byte
	codes                        []uint64
}

func newFilterBuilder() *filterBuilder {
	return &filterBuilder{seen: make([]uint64, (1<<24)/64)}
}

// builderPool keeps up to cap(free) filter builders for good. A
// sync.Pool is emptied by every other garbage collection, which during
// catch-up (a collection every few MB) meant a fresh 2 MiB bitmap and
// fresh scratch columns for nearly every commit.
type builderPool struct{ free chan *filterBuilder }

func newBuilderPool(n int) builderPool {
	return builderPool{free: make(chan *filterBuilder, n)}
}

func (p builderPool) get() *filterBuilder {
	select {
	case fb := <-p.free:
		return fb
	default:
		return newFilterBuilder()
	}
}

func (p builderPool) put(fb *filterBuilder) {
	select {
	case p.free <- fb:
	default: // more builders than the pool keeps: let this one go
	}
}

// drain lets every kept builder go: a store that is not catching up
// should not hold megabytes of scratch between its small commits.
func (p builderPool) drain() {
	for {
		select {
		case <-p.free:
		default:
			return
		}
	}
}

func (fb *filterBuilder) build(dst []byte, entries []Entry) []byte {
	// An array pointer and a local slice keep the per-byte loop free of
	// bounds checks and of stores through fb.
	seen := (*[1 << 18]uint64)(fb.seen)
	distinct := fb.distinct[:0]
	for i := range entries {
		line := entries[i].Line
		if len(line) < trigramLen {
			continue
		}
		t := uint32(lowerASCII[line[0]])<<8 | uint32(lowerASCII[line[1]])
		for j := 2; j < len(line); j++ {
			t = (t<<8 | uint32(lowerASCII[line[j]])) & 0xFFFFFF
			w, b := t>>6, uint64(1)<<(t&63)
			if seen[w]&b == 0 {
				seen[w] |= b
				distinct = append(distinct, t)
			}
		}
	}
	fb.distinct = distinct
	log2 := minFilterLog2
	for log2 < maxFilterLog2 && (1<<log2) < len(fb.distinct)*filterBitsPerTrigram {
		log2++
	}
	start := len(dst)
	dst = append(dst, filterKind, byte(log2))
	dst = append(dst, make([]byte, (1<<log2)/8)...)
	bm := dst[start+2:]
	for _, t := range fb.distinct {
		seen[t>>6] = 0 // reset the scratch bitmap as we go
		h := trigramSlot(t, log2)
		bm[h>>3] |= 1 << (h & 7)
	}
	return dst
}

// trigramSlot maps a trigram to its bit; at full size the map is identity.
func trigramSlot(t uint32, log2 int) uint32 {
	if log2 >= maxFilterLog2 {
		return t
	}
	return (t * 0x9E3779B1) >> (32 - log2)
}

// tokenFilter is a parsed filter section.
type tokenFilter struct {
	log2 int
	bm   []byte
}

func parseFilter(b []byte) (tokenFilter, error) {
	if len(b) < 2 || b[0] != filterKind {
		return tokenFilter{}, corruptf("bad token filter header")
	}
	log2 := int(b[1])
	if log2 < minFilterLog2 || log2 > maxFilterLog2 || len(b)-2 != (1<<log2)/8 {
		return tokenFilter{}, corruptf("token filter of %d bytes does not match size 2^%d bits", len(b)-2, log2)
	}
	return tokenFilter{log2: log2, bm: b[2:]}, nil
}

// mayContain reports whether a line of the block may contain lit.
func (f tokenFilter) mayContain(lit string) bool {
	if len(lit) < trigramLen {
		return true
	}
	t := uint32(lowerASCII[lit[0]])<<8 | uint32(lowerASCII[lit[1]])
	for j := 2; j < len(lit); j++ {
		t = (t<<8 | uint32(lowerASCII[lit[j]])) & 0xFFFFFF
		h := trigramSlot(t, f.log2)
		if f.bm[h>>3]&(1<<(h&7)) == 0 {
			return false
		}
	}
	return true
}

// mayMatch reports whether the hint can be satisfied by some line of the
// block: every group needs one literal that may be contained.
func (f tokenFilter) mayMatch(h *LineFilterHint) bool {
	if h == nil {
		return true
	}
	for _, g := range h.Groups {
		ok := len(g) == 0
		for _, lit := range g {
			if f.mayContain(lit) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// fill is the fraction of set bits, for tests and reports.
func (f tokenFilter) fill() float64 {
	n := 0
	for _, b := range f.bm {
		n += bits.OnesCount8(b)
	}
	return float64(n) / float64(len(f.bm)*8)
}

// A filter summary is a block's token filter folded to a fraction of its
// size and kept in memory once the filter was read and its checksum
// verified. It rules a block out without a read: a query for a rare
// literal over a week of logs otherwise reads and checks the filter of
// every block (thousands of small reads), and that cost grows with the
// store. Folding keeps the summary exact in what it rules out:
// trigramSlot takes the top log2 bits of one hash, so bit h of a 2^log2
// filter lands on bit h>>d of the filter the same trigrams would have
// built at 2^(log2-d), and ORing each group of 2^d bits gives exactly that
// filter. A set bit says "maybe" as before, a clear bit "no trigram of
// this block lands here". A summary that says "maybe" sends the reader to
// the full filter.
const (
	// summaryFirstFold is the first fold, by whole bytes (2^3 bits).
	summaryFirstFold = 3
	// maxSummaryFill stops folding before a summary has more than this
	// share of its bits set: a literal with k trigrams absent from a block
	// then passes a summary with probability about maxSummaryFill^k.
	maxSummaryFill = 0.5
	// summaryOverhead is what a summary costs beside its bitmap: the
	// tokenFilter and the pointer to it.
	summaryOverhead = 48
	// defaultSummaryBudget bounds the bytes all summaries of a process
	// hold. At about 0.04% of the raw bytes a 10 GiB store needs ~4 MiB;
	// past the budget, blocks go without a summary and their filters are
	// read as before.
	defaultSummaryBudget = 16 << 20
)

// summaryBytes counts the bytes summaries hold in this process; a
// summary's bytes are given back when its block is garbage collected.
var summaryBytes = struct {
	used   atomic.Int64
	budget atomic.Int64
}{}

func init() { summaryBytes.budget.Store(defaultSummaryBudget) }

// pairFold maps a byte to the 4 bits whose bit i is bit 2i | bit 2i+1.
var pairFold = func() (t [256]byte) {
	for b := range t {
		for i := 0; i < 4; i++ {
			if b>>(2*i)&3 != 0 {
				t[b] |= 1 << i
			}
		}
	}
	return t
}()

// summarize folds a verified filter into a summary, or returns false
// when the filter is small enough to be its own summary's size or uses the
// exact (unhashed) layout, which does not fold.
func (f tokenFilter) summarize() (tokenFilter, bool) {
	if f.log2 >= maxFilterLog2 || f.log2-summaryFirstFold < minFilterLog2 {
		return tokenFilter{}, false
	}
	log2 := f.log2 - summaryFirstFold
	// Filters of at least 2^12 bits are whole words: bit j of summary
	// byte i says whether byte j of word i is non-zero.
	bm := make([]byte, (1<<log2)/8)
	const lo7, hi = 0x7F7F7F7F7F7F7F7F, 0x8080808080808080
	set := 0
	for i := range bm {
		w := binary.LittleEndian.Uint64(f.bm[8*i:])
		nz := ((w & lo7) + lo7 | w) & hi // top bit of each non-zero byte
		bm[i] = byte((nz >> 7) * 0x0102040810204080 >> 56)
		set += bits.OnesCount8(bm[i])
	}
	// One more fold sets at most the bits already set, and at least half:
	// stop when that could pass the fill bound.
	for log2 > minFilterLog2 && set*2 <= int(maxSummaryFill*float64(len(bm)*8)) {
		half := bm[:len(bm)/2]
		set = 0
		for i := range half {
			v := pairFold[bm[2*i]] | pairFold[bm[2*i+1]]<<4
			half[i] = v
			set += bits.OnesCount8(v)
		}
		bm = append([]byte(nil), half...)
		log2--
	}
	return tokenFilter{log2: log2, bm: bm}, true
}

// summarizable tells from a filter section's length whether keepSummary
// keeps a summary of it: every filter but the exact one of 2^24 bits.
func summarizable(filterLen uint32) bool {
	return filterLen < 2+(1<<maxFilterLog2)/8
}

// keepSummary stores the summary of b's verified filter f, unless b has
// one already or the budget is spent.
func keepSummary(b *blockRef, f tokenFilter) {
	if summaryBytes.used.Load() >= summaryBytes.budget.Load() {
		return // spent: do not fold what cannot be kept
	}
	sum, ok := f.summarize()
	if !ok {
		// Small filters are their own summary; keep a copy, as f points
		// into a read buffer.
		if f.log2 >= maxFilterLog2 {
			return
		}
		sum = tokenFilter{log2: f.log2, bm: append([]byte(nil), f.bm...)}
	}
	keepSummaryOf(b, sum)
}

// keepSummaryOf stores sum, which it takes, as b's summary, unless b has
// one already or the budget is spent.
func keepSummaryOf(b *blockRef, sum tokenFilter) {
	n := int64(len(sum.bm)) + summaryOverhead
	if summaryBytes.used.Add(n) > summaryBytes.budget.Load() {
		summaryBytes.used.Add(-n)
		return
	}
	if !b.filterSum.CompareAndSwap(nil, &sum) {
		summaryBytes.used.Add(-n)
		return
	}
	runtime.AddCleanup(b, func(n int64) { summaryBytes.used.Add(-n) }, n)
}
