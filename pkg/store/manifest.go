package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// The manifest is an append-only log of commit records. Each record is
// length-prefixed and CRC-protected and lists operations applied all at
// once: a commit adds its segments, blocks, new streams and cursors in one
// record, so after a crash either all of them exist or none does. Replaying
// it rebuilds the store's metadata (never its data) at open.
const (
	manifestMagic = "LKMANIF2"
	// manifestMagicV1 marks stores of format 1 (blocks without timestamp
	// elision), which are rejected with a clear message.
	manifestMagicV1 = "LKMANIF1"
	manifestName    = "MANIFEST"
	manifestTmpName = "MANIFEST.tmp"
	// maxRecordBytes bounds one record so a corrupt length cannot make
	// replay allocate without limit; a snapshot of a large store (tens of
	// thousands of blocks) is still far below it.
	maxRecordBytes = 256 << 20
)

const (
	opStream     = 1 // id, labels
	opSegment    = 2 // id, day, size
	opAddBlock   = 3 // stream, segment, offset, header
	opDelBlock   = 4 // segment, offset
	opCursor     = 5 // key, present, value
	opDropDay    = 6 // day
	opNextIDs    = 7 // next stream id, next segment id
	opDelSegment = 8 // segment (all its blocks are gone)
)

// op is one manifest operation; which fields matter depends on kind.
type op struct {
	kind    byte
	id      uint64 // stream or segment id
	stream  uint64
	seg     uint64
	day     int64
	off     int64
	size    int64
	lbls    labels.Labels
	hdr     blockHeader
	key     string
	val     []byte
	present bool
	next    [2]uint64
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeOps(ops []op) []byte {
	var b []byte
	for i := range ops {
		o := &ops[i]
		b = append(b, o.kind)
		switch o.kind {
		case opStream:
			b = binary.AppendUvarint(b, o.id)
			b = binary.AppendUvarint(b, uint64(len(o.lbls)))
			for _, l := range o.lbls {
				b = appendString(b, l.Name)
				b = appendString(b, l.Value)
			}
		case opSegment:
			b = binary.AppendUvarint(b, o.id)
			b = binary.AppendVarint(b, o.day)
			b = binary.AppendVarint(b, o.size)
		case opAddBlock:
			b = binary.AppendUvarint(b, o.stream)
			b = binary.AppendUvarint(b, o.seg)
			b = binary.AppendVarint(b, o.off)
			h := &o.hdr
			b = append(b, h.codecByte())
			b = binary.AppendUvarint(b, uint64(h.Count))
			b = binary.AppendVarint(b, h.MinTs)
			b = binary.AppendVarint(b, h.MaxTs)
			b = binary.AppendUvarint(b, h.RawBytes)
			b = binary.AppendUvarint(b, uint64(h.MetaLen))
			b = binary.AppendUvarint(b, uint64(h.LinesLen))
			b = binary.AppendUvarint(b, uint64(h.FilterLen))
			b = binary.AppendUvarint(b, uint64(h.MetaRawLen))
		case opDelBlock:
			b = binary.AppendUvarint(b, o.seg)
			b = binary.AppendVarint(b, o.off)
		case opCursor:
			b = appendString(b, o.key)
			if o.present {
				b = append(b, 1)
				b = appendString(b, string(o.val))
			} else {
				b = append(b, 0)
			}
		case opDropDay:
			b = binary.AppendVarint(b, o.day)
		case opNextIDs:
			b = binary.AppendUvarint(b, o.next[0])
			b = binary.AppendUvarint(b, o.next[1])
		case opDelSegment:
			b = binary.AppendUvarint(b, o.id)
		}
	}
	return b
}

// opReader decodes a record's payload, remembering the first error.
type opReader struct {
	b   []byte
	err error
}

func (r *opReader) fail(what string) {
	if r.err == nil {
		r.err = corruptf("manifest record: bad %s", what)
	}
	r.b = nil
}

func (r *opReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) u32(what string) uint32 {
	v := r.uvarint(what)
	if v > math.MaxUint32 {
		r.fail(what)
		return 0
	}
	return uint32(v)
}

func (r *opReader) byte1(what string) byte {
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *opReader) str(what string) string {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeOps(b []byte) ([]op, error) {
	r := &opReader{b: b}
	var ops []op
	for len(r.b) > 0 && r.err == nil {
		o := op{kind: r.byte1("kind")}
		switch o.kind {
		case opStream:
			o.id = r.uvarint("stream id")
			n := r.uvarint("label count")
			if n > uint64(len(r.b)) {
				r.fail("label count")
				break
			}
			ls := make([]labels.Label, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				ls = append(ls, labels.Label{Name: r.str("label name"), Value: r.str("label value")})
			}
			o.lbls = ls
		case opSegment:
			o.id = r.uvarint("segment id")
			o.day = r.varint("segment day")
			o.size = r.varint("segment size")
		case opAddBlock:
			o.stream = r.uvarint("block stream")
			o.seg = r.uvarint("block segment")
			o.off = r.varint("block offset")
			h := &o.hdr
			h.setCodecByte(r.byte1("codec"))
			h.Count = r.u32("count")
			h.MinTs = r.varint("min time")
			h.MaxTs = r.varint("max time")
			h.RawBytes = r.uvarint("raw bytes")
			h.MetaLen = r.u32("meta length")
			h.LinesLen = r.u32("lines length")
			h.FilterLen = r.u32("filter length")
			h.MetaRawLen = r.u32("meta raw length")
			if r.err == nil {
				if err := h.validate(); err != nil {
					return nil, fmt.Errorf("manifest block header: %w", err)
				}
			}
		case opDelBlock:
			o.seg = r.uvarint("segment")
			o.off = r.varint("offset")
		case opCursor:
			o.key = r.str("cursor key")
			o.present = r.byte1("cursor flag") == 1
			if o.present {
				o.val = []byte(r.str("cursor value"))
			}
		case opDropDay:
			o.day = r.varint("day")
		case opNextIDs:
			o.next[0] = r.uvarint("next stream id")
			o.next[1] = r.uvarint("next segment id")
		case opDelSegment:
			o.id = r.uvarint("segment id")
		default:
			return nil, corruptf("manifest record: unknown op %d", o.kind)
		}
		if r.err == nil {
			ops = append(ops, o)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return ops, nil
}

// frameRecord wraps a payload: length, CRC32C, payload.
func frameRecord(payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// errTornTail says replay stopped at an incomplete last record: a commit
// that was being appended when the process died. The bytes before it are
// the committed state, and only such a tail may be cut off.
var errTornTail = errors.New("manifest ends in an incomplete record")

// ErrManifestCorrupt marks a manifest that is damaged somewhere other than
// an interrupted last record, or missing while segments exist. The store
// then refuses to write and readers fail: `lokal repair` rebuilds it.
var ErrManifestCorrupt = errors.New("store manifest is damaged")

// ManifestError says exactly what is wrong with a store's manifest.
type ManifestError struct {
	Path string
	// Missing: no manifest, but Segments segment files exist.
	Missing  bool
	Segments int
	// Otherwise: the record at Offset (Record counts the good ones before
	// it) is bad for Reason.
	Offset int64
	Record int
	Reason string
	// NextValid is the offset of a good record after the bad one (mid-file
	// damage), or -1 when the bad record is the last one but complete.
	NextValid int64
}

func (e *ManifestError) Error() string {
	return e.What() + "; nothing was changed; run `lokal repair` to rebuild it from the segments"
}

// What says what is wrong, without what to do about it.
func (e *ManifestError) What() string {
	if e.Missing {
		return fmt.Sprintf("%s: %s is missing but %d segment files exist", ErrManifestCorrupt, e.Path, e.Segments)
	}
	if e.Record < 0 {
		return fmt.Sprintf("%s: %s: %s", ErrManifestCorrupt, e.Path, e.Reason)
	}
	if e.Offset < 0 {
		return fmt.Sprintf("%s: %s: record %d does not fit the records before it: %s", ErrManifestCorrupt, e.Path, e.Record+1, e.Reason)
	}
	where := fmt.Sprintf("record %d at offset %d (%s)", e.Record+1, e.Offset, e.Reason)
	if e.NextValid >= 0 {
		return fmt.Sprintf("%s: %s: %s is followed by a good record at offset %d, so it is damage, not an interrupted commit",
			ErrManifestCorrupt, e.Path, where, e.NextValid)
	}
	return fmt.Sprintf("%s: %s: its last %s is complete but fails its check, which an interrupted commit cannot leave",
		ErrManifestCorrupt, e.Path, where)
}

func (e *ManifestError) Unwrap() error { return ErrManifestCorrupt }

// parseRecord checks the record framed at data[p:]. It returns the record's
// operations and total length, or why it is bad and whether it is
// incomplete (its frame runs past the end of data).
func parseRecord(data []byte, p int) (ops []op, n int, reason string, incomplete bool) {
	if len(data)-p < 8 {
		return nil, 0, "short frame", true
	}
	size := int(binary.LittleEndian.Uint32(data[p:]))
	sum := binary.LittleEndian.Uint32(data[p+4:])
	if size > maxRecordBytes {
		return nil, 0, fmt.Sprintf("record length %d over the limit", size), size > len(data)-p-8
	}
	if size > len(data)-p-8 {
		return nil, 0, fmt.Sprintf("record of %d bytes runs past the end", size), true
	}
	payload := data[p+8 : p+8+size]
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, 0, "checksum mismatch", false
	}
	ops, err := decodeOps(payload)
	if err != nil {
		return nil, 0, err.Error(), false
	}
	return ops, 8 + size, "", false
}

// nextGoodRecord returns the offset of the first complete, non-empty record
// with a good checksum that starts after p, or -1. A torn tail has none.
func nextGoodRecord(data []byte, p int) int {
	for q := p + 1; q+8 <= len(data); q++ {
		size := int(binary.LittleEndian.Uint32(data[q:]))
		if size == 0 || size > len(data)-q-8 {
			continue
		}
		if _, _, reason, _ := parseRecord(data, q); reason == "" {
			return q
		}
	}
	return -1
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readManifest parses a whole manifest file's bytes into records. It
// returns the records and the length of the valid prefix. err wraps
// errTornTail when only an interrupted last record follows that prefix (a
// record whose frame runs past the end, or zeros a crash left), and is a
// *ManifestError when a bad record is followed by good ones or is complete
// yet bad: damage that cutting would turn into data loss.
func readManifest(data []byte) (records [][]op, valid int64, err error) {
	if len(data) >= len(manifestMagicV1) && string(data[:len(manifestMagicV1)]) == manifestMagicV1 {
		return nil, 0, fmt.Errorf("store written in format 1 by an earlier Lokal; this version reads format 2 only: delete the store directory and ingest again")
	}
	if len(data) < len(manifestMagic) || string(data[:len(manifestMagic)]) != manifestMagic {
		return nil, 0, &ManifestError{Record: -1, Reason: "it does not start with the manifest magic " + manifestMagic, NextValid: -1}
	}
	p := len(manifestMagic)
	for p < len(data) {
		ops, n, reason, incomplete := parseRecord(data, p)
		if reason == "" {
			records = append(records, ops)
			p += n
			continue
		}
		if q := nextGoodRecord(data, p); q >= 0 {
			return records, int64(p), &ManifestError{Offset: int64(p), Record: len(records), Reason: reason, NextValid: int64(q)}
		}
		if incomplete || allZero(data[p:]) {
			return records, int64(p), fmt.Errorf("%w at offset %d: %s", errTornTail, p, reason)
		}
		return records, int64(p), &ManifestError{Offset: int64(p), Record: len(records), Reason: reason, NextValid: -1}
	}
	return records, int64(p), nil
}
