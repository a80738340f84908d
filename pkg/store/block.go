package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// Block layout constants; FORMAT.md is the prose version of these.
const (
	blockMagic      = "LKB1"
	blockVersion    = 2
	blockHeaderSize = 56 // fixed header including its CRC

	codecZstd = 1
	codecS2   = 2
	// codecZstdStrong is zstd written by recompaction at a stronger level;
	// it decodes exactly like codecZstd and marks the block as done.
	codecZstdStrong = 3

	// maxBlockRawBytes bounds what a decoder will allocate for one block,
	// so a corrupt or hostile header cannot make us allocate gigabytes. It is
	// far above the target size to leave room for a few very long lines.
	maxBlockRawBytes = 256 << 20
	// maxBlockEntries bounds the entry count for the same reason.
	maxBlockEntries = 16 << 20
)

// Version 3 blocks: structured metadata.
const (
	// blockVersionMetadata is a block whose meta section ends with a
	// structured metadata column; only blocks with metadata use it, so
	// blocks without are byte for byte what version 2 wrote.
	blockVersionMetadata = 3
	// codecFlagMetadata is set in the codec byte (of the header and of the
	// manifest's copy) of a version 3 block.
	codecFlagMetadata = 0x80
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt marks data that fails a checksum or a structural check.
var ErrCorrupt = errors.New("corrupt block")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// blockHeader is the fixed-size head of every block. The manifest keeps a
// copy so that reads go straight to the section they need.
type blockHeader struct {
	Codec      uint8
	Count      uint32
	MinTs      int64
	MaxTs      int64
	RawBytes   uint64 // sum of line lengths
	MetaLen    uint32 // compressed meta (ts/seq/size) section
	LinesLen   uint32 // compressed lines section
	FilterLen  uint32 // token filter section
	MetaRawLen uint32 // uncompressed meta section
	// Metadata says the block is version 3: its meta section has a
	// structured metadata column.
	Metadata bool
}

// codecByte is the codec with the metadata flag, as the header and the
// manifest store it.
func (h *blockHeader) codecByte() byte {
	if h.Metadata {
		return h.Codec | codecFlagMetadata
	}
	return h.Codec
}

// setCodecByte is the inverse of codecByte.
func (h *blockHeader) setCodecByte(b byte) {
	h.Codec = b &^ codecFlagMetadata
	h.Metadata = b&codecFlagMetadata != 0
}

// totalLen is the block's size on disk: header, three sections, three CRCs.
func (h *blockHeader) totalLen() int64 {
	return blockHeaderSize + int64(h.MetaLen) + 4 + int64(h.LinesLen) + 4 + int64(h.FilterLen) + 4
}

func (h *blockHeader) metaOff() int64   { return blockHeaderSize }
func (h *blockHeader) linesOff() int64  { return h.metaOff() + int64(h.MetaLen) + 4 }
func (h *blockHeader) filterOff() int64 { return h.linesOff() + int64(h.LinesLen) + 4 }

func (h *blockHeader) marshal(b []byte) {
	copy(b[0:4], blockMagic)
	b[4] = blockVersion
	if h.Metadata {
		b[4] = blockVersionMetadata
	}
	b[5] = h.codecByte()
	b[6], b[7] = 0, 0
	le := binary.LittleEndian
	le.PutUint32(b[8:], h.Count)
	le.PutUint64(b[12:], uint64(h.MinTs))
	le.PutUint64(b[20:], uint64(h.MaxTs))
	le.PutUint64(b[28:], h.RawBytes)
	le.PutUint32(b[36:], h.MetaLen)
	le.PutUint32(b[40:], h.LinesLen)
	le.PutUint32(b[44:], h.FilterLen)
	le.PutUint32(b[48:], h.MetaRawLen)
	le.PutUint32(b[52:], crc32.Checksum(b[:52], castagnoli))
}

func parseHeader(b []byte) (blockHeader, error) {
	var h blockHeader
	if len(b) < blockHeaderSize {
		return h, corruptf("header truncated: %d bytes", len(b))
	}
	if string(b[0:4]) != blockMagic {
		return h, corruptf("bad magic %q", b[0:4])
	}
	le := binary.LittleEndian
	if got, want := crc32.Checksum(b[:52], castagnoli), le.Uint32(b[52:]); got != want {
		return h, corruptf("header checksum %08x, want %08x", got, want)
	}
	if b[4] != blockVersion && b[4] != blockVersionMetadata {
		return h, corruptf("unsupported block version %d", b[4])
	}
	h.setCodecByte(b[5])
	if h.Metadata != (b[4] == blockVersionMetadata) {
		return h, corruptf("block version %d with codec byte %#x", b[4], b[5])
	}
	h.Count = le.Uint32(b[8:])
	h.MinTs = int64(le.Uint64(b[12:]))
	h.MaxTs = int64(le.Uint64(b[20:]))
	h.RawBytes = le.Uint64(b[28:])
	h.MetaLen = le.Uint32(b[36:])
	h.LinesLen = le.Uint32(b[40:])
	h.FilterLen = le.Uint32(b[44:])
	h.MetaRawLen = le.Uint32(b[48:])
	return h, h.validate()
}

// validate checks what a header claims before anything is allocated from it;
// the manifest's copies of headers go through it too.
func (h *blockHeader) validate() error {
	if h.Codec != codecZstd && h.Codec != codecS2 && h.Codec != codecZstdStrong {
		return corruptf("unknown codec %d", h.Codec)
	}
	if h.Count == 0 || h.Count > maxBlockEntries {
		return corruptf("entry count %d out of range", h.Count)
	}
	if h.MinTs > h.MaxTs {
		return corruptf("min time %d after max time %d", h.MinTs, h.MaxTs)
	}
	if h.RawBytes > maxBlockRawBytes {
		return corruptf("raw size %d over limit", h.RawBytes)
	}
	// The time unit byte, then at least 5 bytes per entry and at most
	// 10+10+10+5+10, plus the metadata column (at least a count per
	// entry) in version 3.
	maxMeta := 1 + 45*uint64(h.Count)
	if h.Metadata {
		maxMeta = maxBlockRawBytes
	}
	if uint64(h.MetaRawLen) < 1+5*uint64(h.Count) || uint64(h.MetaRawLen) > maxMeta {
		return corruptf("meta size %d impossible for %d entries", h.MetaRawLen, h.Count)
	}
	if h.MetaLen > maxBlockRawBytes || h.LinesLen > maxBlockRawBytes || h.FilterLen > maxBlockRawBytes {
		return corruptf("section length out of range")
	}
	return nil
}

// metaMaxTimeExp is the coarsest time unit the meta section uses: seconds.
const metaMaxTimeExp = 9

var pow10 = [metaMaxTimeExp + 1]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// codecs holds the compressors a store shares between goroutines; both
// zstd's EncodeAll and DecodeAll are safe for concurrent use.
type codecs struct {
	codec uint8
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	// splitDigits makes encodeBlock move digit runs out of the lines (see
	// digits.go): on the 64 MiB corpus, 12.7% -> 11.2% of raw at zstd's
	// fastest level for 187 -> 160 MB per CPU-second.
	splitDigits bool
}

// blockZstdLevel trades CPU for size. Measured on a 64 MiB loggen corpus in
// 1 MiB blocks (BenchmarkBlockCodecs, encode MB per CPU-second including
// the filter), before timestamp elision and digit splitting: s2 21.0% at
// 239, zstd fastest 14.8% at 195, default 14.7% at 165, better 13.4% at 105,
// best 12.7% at 40. Fastest keeps nearly all of zstd's gain over s2 at the
// lowest CPU cost, which ingestion needs most. With elision and digit
// splitting (both on at ingestion), fastest stores 11.2% at 160.
const blockZstdLevel = zstd.SpeedFastest

func newCodecs(codec uint8) (*codecs, error) { return newCodecsLevel(codec, blockZstdLevel) }

func newCodecsLevel(codec uint8, level zstd.EncoderLevel) (*codecs, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(workers()),
		zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(1<<20),
		zstd.WithZeroFrames(true),
		// Sections carry CRC-32C already; zstd's own xxhash would be
		// computed twice per block for nothing.
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(maxBlockRawBytes),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &codecs{codec: codec, enc: enc, dec: dec, splitDigits: true}, nil
}

func (c *codecs) close() {
	c.enc.Close()
	c.dec.Close()
}

func (c *codecs) compress(dst, src []byte) []byte {
	switch c.codec {
	case codecS2:
		n := s2.MaxEncodedLen(len(src))
		if cap(dst)-len(dst) < n {
			nd := make([]byte, len(dst), len(dst)+n)
			copy(nd, dst)
			dst = nd
		}
		out := s2.EncodeBetter(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(out)]
	default:
		return c.enc.EncodeAll(src, dst)
	}
}

// decompress decodes src into a fresh or reused buffer of exactly want bytes;
// any other size is corruption.
func (c *codecs) decompress(codec uint8, dst, src []byte, want int) ([]byte, error) {
	if want == 0 && len(src) == 0 {
		return dst[:0], nil
	}
	if cap(dst) < want {
		dst = make([]byte, 0, want)
	}
	switch codec {
	case codecS2:
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, corruptf("s2: %v", err)
		}
		if n != want {
			return nil, corruptf("section decodes to %d bytes, want %d", n, want)
		}
		out, err := s2.Decode(dst[:want], src)
		if err != nil {
			return nil, corruptf("s2: %v", err)
		}
		return out, nil
	case codecZstd, codecZstdStrong:
		out, err := c.dec.DecodeAll(src, dst[:0])
		if err != nil {
			return nil, corruptf("zstd: %v", err)
		}
		if len(out) != want {
			return nil, corruptf("section decodes to %d bytes, want %d", len(out), want)
		}
		return out, nil
	}
	return nil, corruptf("unknown codec %d", codec)
}

// encodeBlock appends one block holding entries (sorted by (Ts, Seq), not
// empty) to dst. fb builds the token filter.
func encodeBlock(dst []byte, entries []Entry, c *codecs, fb *filterBuilder) ([]byte, blockHeader, error) {
	var h blockHeader
	if len(entries) == 0 || len(entries) > maxBlockEntries {
		return dst, h, fmt.Errorf("encode block: %d entries out of range", len(entries))
	}
	h.Codec = c.codec
	h.Count = uint32(len(entries))
	h.MinTs = entries[0].Ts
	h.MaxTs = entries[len(entries)-1].Ts
	raw := 0
	for _, e := range entries {
		raw += len(e.Line)
		if raw > maxBlockRawBytes {
			return dst, h, fmt.Errorf("encode block: %d line bytes over the %d limit", raw, maxBlockRawBytes)
		}
	}
	n := len(entries)
	// The time unit: the largest power of ten dividing nearly every delta,
	// so times read at millisecond precision cost one or two bytes, not
	// four; the few deltas it does not divide (lines stamped with a read
	// time in ns among lines with their own ms times) keep the remainder in
	// a second column that is otherwise all zeros.
	var divisible [metaMaxTimeExp + 1]int
	prevTs := h.MinTs
	for _, e := range entries {
		d := uint64(e.Ts - prevTs)
		for x := 1; x <= metaMaxTimeExp && d%pow10[x] == 0; x++ {
			divisible[x]++
		}
		prevTs = e.Ts
	}
	exp := 0
	for x := metaMaxTimeExp; x > 0; x-- {
		if divisible[x]*16 >= n*15 {
			exp = x
			break
		}
	}
	unit := pow10[exp]
	meta := append(fb.meta[:0], byte(exp))
	prevTs = h.MinTs
	for _, e := range entries {
		meta = binary.AppendUvarint(meta, uint64(e.Ts-prevTs)/unit)
		prevTs = e.Ts
	}
	prevTs = h.MinTs
	for _, e := range entries {
		meta = binary.AppendUvarint(meta, uint64(e.Ts-prevTs)%unit)
		prevTs = e.Ts
	}
	// Seq is most often the line's byte offset in its file: predicting
	// the next from the previous line's length leaves mostly zeros.
	var pred uint64
	for _, e := range entries {
		meta = binary.AppendVarint(meta, int64(e.Seq-pred))
		pred = e.Seq + uint64(len(e.Line)) + 1
	}
	codes := slices.Grow(fb.codes[:0], n)[:n]
	clear(codes)
	var el tsElider
	lines := slices.Grow(fb.lines[:0], raw)
	digits, scratch := fb.digits[:0], fb.scratch[:0]
	for i, e := range entries {
		stored := e.Line
		if off, layout, ok := el.find(e.Line, e.Ts); ok {
			k := tsRenderLen(layout)
			codes[i] = (1 + (uint64(off)<<tsLayoutBits | uint64(layout))) << 1
			scratch = append(append(scratch[:0], e.Line[:off]...), e.Line[off+k:]...)
			stored = bytesToString(scratch)
		}
		meta = binary.AppendUvarint(meta, uint64(len(stored)))
		if c.splitDigits && strings.IndexByte(stored, digitMarker) < 0 {
			codes[i] |= 1
			lines, digits = appendSplitDigits(lines, digits, stored)
		} else {
			lines = append(lines, stored...)
		}
	}
	for _, c := range codes {
		meta = binary.AppendUvarint(meta, c)
	}
	meta = binary.AppendUvarint(meta, uint64(len(lines)))
	meta = binary.AppendUvarint(meta, uint64(len(digits)))
	if h.Metadata = hasMetadata(entries); h.Metadata {
		meta = appendMetadataColumn(meta, entries)
		if len(meta) > maxBlockRawBytes {
			return dst, h, fmt.Errorf("encode block: %d bytes of meta over the %d limit", len(meta), maxBlockRawBytes)
		}
	}
	lines = append(lines, digits...)
	fb.meta, fb.codes, fb.lines, fb.digits, fb.scratch = meta, codes, lines, digits, scratch
	h.RawBytes = uint64(raw)
	h.MetaRawLen = uint32(len(meta))

	start := len(dst)
	// Room for the whole block in one allocation in the common case: the
	// compressors append to dst, and growing it by doubling from nothing
	// cost several allocations and copies per block. Log lines compress
	// to a tenth or so of their size and a filter is 1-3% of them; a
	// block that needs more grows as before.
	dst = slices.Grow(dst, blockHeaderSize+len(meta)/3+len(lines)/5+raw/32+64)
	dst = append(dst, make([]byte, blockHeaderSize)...)
	mark := len(dst)
	dst = c.compress(dst, meta)
	h.MetaLen = uint32(len(dst) - mark)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[mark:], castagnoli))
	mark = len(dst)
	dst = c.compress(dst, lines)
	h.LinesLen = uint32(len(dst) - mark)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[mark:], castagnoli))
	mark = len(dst)
	dst = fb.build(dst, entries)
	h.FilterLen = uint32(len(dst) - mark)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[mark:], castagnoli))
	h.marshal(dst[start : start+blockHeaderSize])
	return dst, h, nil
}

func hasMetadata(entries []Entry) bool {
	for i := range entries {
		if len(entries[i].Metadata) > 0 {
			return true
		}
	}
	return false
}

// appendMetadataColumn appends version 3's structured metadata column: for
// each entry uvarint(pairs), then each pair's name and value as
// uvarint(length) and bytes.
func appendMetadataColumn(meta []byte, entries []Entry) []byte {
	for i := range entries {
		md := entries[i].Metadata
		meta = binary.AppendUvarint(meta, uint64(len(md)))
		for _, l := range md {
			meta = binary.AppendUvarint(meta, uint64(len(l.Name)))
			meta = append(meta, l.Name...)
			meta = binary.AppendUvarint(meta, uint64(len(l.Value)))
			meta = append(meta, l.Value...)
		}
	}
	return meta
}

// decodeMetadataColumn reads the structured metadata column from p into
// d.md and returns what follows it. Entries with the same metadata share
// one label set, copied out of p (which the caller reuses).
func decodeMetadataColumn(p []byte, n int, d *blockData) ([]byte, error) {
	if cap(d.md) < n {
		d.md = make([]labels.Labels, n)
	}
	d.md = d.md[:n]
	seen := map[string]labels.Labels{}
	str := func(q []byte) (string, []byte, bool) {
		l, k := binary.Uvarint(q)
		if k <= 0 || l > uint64(len(q)-k) {
			return "", q, false
		}
		return bytesToString(q[k : k+int(l)]), q[k+int(l):], true
	}
	for i := 0; i < n; i++ {
		start := p
		cnt, k := binary.Uvarint(p)
		if k <= 0 || cnt > uint64(len(p)) {
			return p, corruptf("meta entry %d: bad metadata count", i)
		}
		p = p[k:]
		if cnt == 0 {
			d.md[i] = nil
			continue
		}
		prev := ""
		for j := uint64(0); j < cnt; j++ {
			var name string
			var ok bool
			if name, p, ok = str(p); !ok || name == "" || (j > 0 && name <= prev) {
				return p, corruptf("meta entry %d: bad metadata name (empty or not sorted)", i)
			}
			if _, p, ok = str(p); !ok {
				return p, corruptf("meta entry %d: bad metadata value", i)
			}
			prev = name
		}
		enc := start[:len(start)-len(p)]
		if have, ok := seen[bytesToString(enc)]; ok {
			d.md[i] = have
			continue
		}
		// Copy the strings out of the caller's buffer, all in one.
		own := string(enc)
		q := unsafe.Slice(unsafe.StringData(own), len(own))
		_, k = binary.Uvarint(q)
		q = q[k:]
		ls := make(labels.Labels, cnt)
		for j := range ls {
			ls[j].Name, q, _ = str(q)
			ls[j].Value, q, _ = str(q)
		}
		seen[own] = ls
		d.md[i] = ls
	}
	return p, nil
}

// checkSection verifies the CRC that follows a section and returns the
// section without it.
func checkSection(b []byte, name string) ([]byte, error) {
	if len(b) < 4 {
		return nil, corruptf("%s section truncated", name)
	}
	body := b[:len(b)-4]
	want := binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != want {
		return nil, corruptf("%s section checksum %08x, want %08x", name, got, want)
	}
	return body, nil
}

// blockData is a decoded block. Lines point into one buffer that is never
// reused, so the engine may keep them after the batch is gone.
type blockData struct {
	ts    []int64
	seq   []uint64
	sizes []uint32 // lengths of the lines as appended
	lines []string
	// elide holds each entry's line code (timestamp elision code << 1 |
	// digits split); elided and split say whether any entry has either.
	// The lines section is skelLen bytes of skeleton then digitsLen of
	// digit runs.
	elide     []uint64
	elided    bool
	split     bool
	skelLen   int
	digitsLen int
	// md is each entry's structured metadata; nil when the block has none.
	md []labels.Labels
	// text is every line back to back, as lines holds them; raw and rebuilt
	// are the decompressed section and the rebuilt lines, kept so a reused
	// blockData (ScanLines) decodes the next block without allocating.
	text, raw, rebuilt []byte
}

// decodeMeta decodes the checked, compressed meta section.
func decodeMeta(h *blockHeader, comp []byte, c *codecs, scratch []byte, d *blockData) ([]byte, error) {
	raw, err := c.decompress(h.Codec, scratch, comp, int(h.MetaRawLen))
	if err != nil {
		return scratch, fmt.Errorf("meta: %w", err)
	}
	n := int(h.Count)
	d.ts = growInt64(d.ts, n)
	d.seq = growUint64(d.seq, n)
	d.sizes = growUint32(d.sizes, n)
	d.elide = growUint64(d.elide, n)
	d.elided = false
	p, err := decodeTimes(h, raw, d.ts)
	if err != nil {
		return raw, err
	}
	// The seq column needs the line lengths: keep its deltas for now.
	for i := 0; i < n; i++ {
		ds, k := varint(p)
		if k <= 0 {
			return raw, corruptf("meta entry %d: bad seq", i)
		}
		p = p[k:]
		d.seq[i] = uint64(ds)
	}
	for i := 0; i < n; i++ {
		sz, k := uvarint(p)
		if k <= 0 || sz > maxBlockRawBytes {
			return raw, corruptf("meta entry %d: bad size", i)
		}
		p = p[k:]
		d.sizes[i] = uint32(sz)
	}
	var total, stored uint64
	split := false
	for i := 0; i < n; i++ {
		v, k := uvarint(p)
		if k <= 0 {
			return raw, corruptf("meta entry %d: bad line code", i)
		}
		p = p[k:]
		sz := uint64(d.sizes[i])
		full := sz
		if code := v >> 1; code != 0 {
			layout, off := uint32((code-1)&tsLayoutMask), (code-1)>>tsLayoutBits
			if !tsLayoutValid(layout) || off > sz {
				return raw, corruptf("meta entry %d: bad timestamp code %d", i, code)
			}
			full += uint64(tsRenderLen(layout))
			d.elided = true
		}
		if v&1 != 0 {
			split = true
		}
		d.sizes[i], d.elide[i] = uint32(full), v
		total += full
		stored += sz
	}
	skel, k := uvarint(p)
	if k <= 0 {
		return raw, corruptf("meta: bad skeleton length")
	}
	p = p[k:]
	digits, k := uvarint(p)
	if k <= 0 {
		return raw, corruptf("meta: bad digits length")
	}
	p = p[k:]
	// Splitting only shortens a line (a digit run becomes one marker) and
	// moves its digits out with one separator per run.
	if (!split && (skel != stored || digits != 0)) || skel > stored || digits > 2*stored {
		return raw, corruptf("meta: lines section lengths %d+%d impossible for %d stored bytes", skel, digits, stored)
	}
	d.skelLen, d.digitsLen, d.split = int(skel), int(digits), split
	d.md = d.md[:0]
	if h.Metadata {
		if p, err = decodeMetadataColumn(p, n, d); err != nil {
			return raw, err
		}
	} else {
		d.md = nil
	}
	var pred uint64
	for i := 0; i < n; i++ {
		d.seq[i] += pred
		pred = d.seq[i] + uint64(d.sizes[i]) + 1
	}
	if len(p) != 0 {
		return raw, corruptf("meta: %d trailing bytes", len(p))
	}
	if total != h.RawBytes {
		return raw, corruptf("line sizes sum to %d, header says %d", total, h.RawBytes)
	}
	return raw, nil
}

// decodeTimes decodes the time columns that open a decompressed meta
// section into ts (one per entry) and returns what follows them. They are
// all a count needs of a block (see BlockInfo.ScanTimes).
func decodeTimes(h *blockHeader, p []byte, ts []int64) ([]byte, error) {
	if len(p) == 0 || p[0] > metaMaxTimeExp {
		return p, corruptf("meta: bad time unit")
	}
	unit := pow10[p[0]]
	p = p[1:]
	maxHi := math.MaxInt64 / unit // not divided per entry: a third of the loop's time
	j := 0                        // indexing p is cheaper than reslicing it per value
	for i := range ts {
		var hi uint64
		if j < len(p) && p[j] < 0x80 {
			hi, j = uint64(p[j]), j+1
		} else if hi, j = uvarintAt(p, j); j < 0 {
			return nil, corruptf("meta entry %d: bad time", i)
		}
		if hi > maxHi {
			return nil, corruptf("meta entry %d: bad time", i)
		}
		ts[i] = int64(hi * unit)
	}
	prevTs := h.MinTs
	for i := range ts {
		var lo uint64
		if j < len(p) && p[j] < 0x80 {
			lo, j = uint64(p[j]), j+1
		} else if lo, j = uvarintAt(p, j); j < 0 {
			return nil, corruptf("meta entry %d: bad time remainder", i)
		}
		if lo >= unit {
			return nil, corruptf("meta entry %d: bad time remainder", i)
		}
		dt := ts[i] + int64(lo)
		t := prevTs + dt
		if dt < 0 || t < prevTs || t > h.MaxTs {
			return nil, corruptf("meta entry %d: time outside the block's range", i)
		}
		ts[i] = t
		prevTs = t
	}
	p = p[j:]
	if n := len(ts); n > 0 && (ts[0] != h.MinTs || ts[n-1] != h.MaxTs) {
		return p, corruptf("entry times disagree with the header's range")
	}
	return p, nil
}

// uvarint is binary.Uvarint with the one-byte case, most of a meta
// section's values, inlined.
func uvarint(p []byte) (uint64, int) {
	if len(p) > 0 && p[0] < 0x80 {
		return uint64(p[0]), 1
	}
	return binary.Uvarint(p)
}

// uvarintAt decodes the uvarint at p[j:] and returns it with the index
// after it, or with -1 when there is none. Loops test the one-byte case
// before calling it (a call is not inlined), so it tries two bytes first.
func uvarintAt(p []byte, j int) (uint64, int) {
	if j+1 < len(p) && p[j+1] < 0x80 {
		return uint64(p[j]&0x7f) | uint64(p[j+1])<<7, j + 2
	}
	if j >= len(p) {
		return 0, -1
	}
	v, k := binary.Uvarint(p[j:])
	if k <= 0 {
		return 0, -1
	}
	return v, j + k
}

// varint is binary.Varint with the one-byte case inlined.
func varint(p []byte) (int64, int) {
	if len(p) > 0 && p[0] < 0x80 {
		x := int64(p[0] >> 1)
		if p[0]&1 != 0 {
			x = ^x
		}
		return x, 1
	}
	return binary.Varint(p)
}

// decodeLines decodes the checked, compressed lines section into strings
// sharing one fresh buffer.
func decodeLines(h *blockHeader, comp []byte, c *codecs, d *blockData) error {
	if err := decompressLines(h, comp, c, d); err != nil {
		return err
	}
	buf := d.raw
	var err error
	n := int(h.Count)
	if cap(d.lines) < n {
		d.lines = make([]string, n)
	}
	d.lines = d.lines[:n]
	if !d.elided && !d.split {
		off := 0
		for i := 0; i < n; i++ {
			sz := int(d.sizes[i])
			d.lines[i] = bytesToString(buf[off : off+sz])
			off += sz
		}
		d.text = buf[:off]
		return nil
	}
	// Rebuild each line (digits back into the skeleton, the timestamp back
	// into the line) into one fresh buffer of the lines as appended, which
	// the strings share.
	skel, digits := buf[:d.skelLen], buf[d.skelLen:]
	out := d.rebuilt[:0]
	if uint64(cap(out)) < h.RawBytes {
		out = make([]byte, 0, h.RawBytes)
	}
	var line []byte
	sp, dp := 0, 0
	for i := 0; i < n; i++ {
		start := len(out)
		if out, line, sp, dp, err = d.appendLine(out, line, skel, digits, i, sp, dp); err != nil {
			return err
		}
		d.lines[i] = bytesToString(out[start:])
	}
	if sp != len(skel) || dp != len(digits) {
		return corruptf("lines: %d skeleton and %d digit bytes left over", len(skel)-sp, len(digits)-dp)
	}
	d.rebuilt, d.text = out, out
	return nil
}

// appendLine appends entry i's line to out, rebuilt from its stored form:
// the skeleton at sp with the digit runs at dp put back, and its elided
// timestamp rendered again. line is scratch; it returns the positions after
// the entry.
func (d *blockData) appendLine(out, line, skel, digits []byte, i, sp, dp int) ([]byte, []byte, int, int, error) {
	v := d.elide[i]
	code := v >> 1
	storedLen := int(d.sizes[i])
	var layout uint32
	at := 0
	if code != 0 {
		layout, at = uint32((code-1)&tsLayoutMask), int((code-1)>>tsLayoutBits)
		storedLen -= tsRenderLen(layout)
	}
	var st []byte
	var err error
	if v&1 != 0 && code == 0 { // no timestamp to put back: rebuild in place
		if out, sp, dp, err = joinDigits(out, skel, digits, sp, dp, len(out)+storedLen); err != nil {
			return out, line, sp, dp, corruptf("lines: entry %d: %v", i, err)
		}
		return out, line, sp, dp, nil
	}
	if v&1 == 0 {
		if sp+storedLen > len(skel) {
			return out, line, sp, dp, corruptf("lines: entry %d runs past the section", i)
		}
		st = skel[sp : sp+storedLen]
		sp += storedLen
	} else {
		if line, sp, dp, err = joinDigits(line[:0], skel, digits, sp, dp, storedLen); err != nil {
			return out, line, sp, dp, corruptf("lines: entry %d: %v", i, err)
		}
		st = line
	}
	if code == 0 {
		return append(out, st...), line, sp, dp, nil
	}
	out = append(out, st[:at]...)
	var ok bool
	if out, ok = appendTs(out, d.ts[i], layout); !ok {
		return out, line, sp, dp, corruptf("lines: entry %d: time %d cannot be rendered", i, d.ts[i])
	}
	return append(out, st[at:]...), line, sp, dp, nil
}

// decompressLines decompresses the checked lines section into d.raw: the
// skeletons (d.skelLen bytes), then the digit runs.
func decompressLines(h *blockHeader, comp []byte, c *codecs, d *blockData) error {
	buf, err := c.decompress(h.Codec, d.raw[:0], comp, d.skelLen+d.digitsLen)
	if err != nil {
		return fmt.Errorf("lines: %w", err)
	}
	d.raw = buf
	return nil
}

// bytesToString shares b's memory; callers never modify b afterwards.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// decodeBlock decodes a whole block from its bytes, verifying every checksum.
// It is what the fuzz target exercises; reads in the store go section by
// section instead.
func decodeBlock(b []byte, c *codecs, wantLines bool) (blockHeader, *blockData, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, nil, err
	}
	if int64(len(b)) != h.totalLen() {
		return h, nil, corruptf("block is %d bytes, header says %d", len(b), h.totalLen())
	}
	meta, err := checkSection(b[h.metaOff():h.linesOff()], "meta")
	if err != nil {
		return h, nil, err
	}
	lines, err := checkSection(b[h.linesOff():h.filterOff()], "lines")
	if err != nil {
		return h, nil, err
	}
	filter, err := checkSection(b[h.filterOff():h.totalLen()], "filter")
	if err != nil {
		return h, nil, err
	}
	if _, err := parseFilter(filter); err != nil {
		return h, nil, err
	}
	d := &blockData{}
	if _, err := decodeMeta(&h, meta, c, nil, d); err != nil {
		return h, nil, err
	}
	if wantLines {
		if err := decodeLines(&h, lines, c, d); err != nil {
			return h, nil, err
		}
	}
	return h, d, nil
}

func growInt64(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	return s[:n]
}

func growUint64(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	return s[:n]
}

func growUint32(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n)
	}
	return s[:n]
}
