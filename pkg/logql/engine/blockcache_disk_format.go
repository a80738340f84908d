package engine

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// The disk tier's file format (pkg/store/FORMAT.md, "Result cache"): one
// file per segment, a header, then records appended one by one.
//
//	file:    "LKRC" magic, u32 format version
//	record:  u32 payload length, u32 CRC-32C of the payload, payload
//	payload: varint block offset, u64 block fingerprint, varint grid
//	         period, varint grid phase, uvarint len + the normalized
//	         pipeline, then the block's partial result: uvarint series;
//	         per series uvarint labels, per label uvarint len + name,
//	         uvarint len + value; uvarint buckets, a flags byte (see
//	         seriesFlags), then per bucket varint end (the first absolute,
//	         then the difference to the previous; in grid periods from the
//	         phase with flagGrid), uvarint count, and the sum: nothing with
//	         flagCounts (it is the count), a uvarint with flagWhole, else
//	         u64 IEEE-754 bits.
//
// A file with another magic or version, or whose records stop making
// sense, is read up to its last good record; the writer truncates or
// rewrites it. Nothing in it is ever needed: it is derived from blocks.
const (
	diskMagic   = "LKRC"
	diskVersion = 1
	diskHdrLen  = 8
	// diskMaxRecord bounds one record, so a corrupt length cannot make a
	// reader allocate without limit.
	diskMaxRecord = 64 << 20
)

var diskCRC = crc32.MakeTable(crc32.Castagnoli)

var errDiskRecord = errors.New("malformed result cache record")

// diskKey is everything that makes a kept result valid for a block, the
// segment aside (it names the file): the block's offset and fingerprint,
// the normalized pipeline and the grid. The format version is the file's.
type diskKey struct {
	off   int64
	fp    uint64
	pipe  string
	gran  int64
	phase int64
}

func diskFileHeader() []byte {
	b := []byte(diskMagic)
	return binary.LittleEndian.AppendUint32(b, diskVersion)
}

func validDiskHeader(b []byte) bool {
	return len(b) >= diskHdrLen && string(b[:4]) == diskMagic && binary.LittleEndian.Uint32(b[4:]) == diskVersion
}

// appendDiskRecord appends the framed record of part under k.
func appendDiskRecord(dst []byte, k diskKey, part *blockPart) []byte {
	mark := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.AppendVarint(dst, k.off)
	dst = binary.LittleEndian.AppendUint64(dst, k.fp)
	dst = binary.AppendVarint(dst, k.gran)
	dst = binary.AppendVarint(dst, k.phase)
	dst = appendDiskString(dst, k.pipe)
	dst = binary.AppendUvarint(dst, uint64(len(part.series)))
	for i := range part.series {
		s := &part.series[i]
		dst = binary.AppendUvarint(dst, uint64(len(s.ls)))
		for _, l := range s.ls {
			dst = appendDiskString(dst, l.Name)
			dst = appendDiskString(dst, l.Value)
		}
		dst = binary.AppendUvarint(dst, uint64(len(s.ends)))
		flags := seriesFlags(s, k)
		dst = append(dst, flags)
		unit, base := int64(1), int64(0)
		if flags&flagGrid != 0 {
			unit, base = k.gran, k.phase
		}
		prev := int64(0)
		for j, e := range s.ends {
			e = (e - base) / unit
			dst = binary.AppendVarint(dst, e-prev)
			prev = e
			dst = binary.AppendUvarint(dst, uint64(s.cnts[j]))
			switch {
			case flags&flagCounts != 0:
			case flags&flagWhole != 0:
				dst = binary.AppendUvarint(dst, uint64(s.vals[j]))
			default:
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.vals[j]))
			}
		}
	}
	payload := dst[mark+8:]
	binary.LittleEndian.PutUint32(dst[mark:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[mark+4:], crc32.Checksum(payload, diskCRC))
	return dst
}

// A series' flags say how its buckets are written, in the fewest bytes
// that keep them exact.
const (
	// flagGrid: every end lies on the key's grid, written as
	// (end - phase) / period.
	flagGrid = 1 << iota
	// flagCounts: every sum equals its count (counting), not written.
	flagCounts
	// flagWhole: every sum is a whole number below 2^53, written as a
	// uvarint; otherwise as its IEEE-754 bits.
	flagWhole
)

func seriesFlags(s *partSeries, k diskKey) byte {
	flags := byte(flagGrid | flagCounts | flagWhole)
	for j, e := range s.ends {
		if k.gran <= 0 || (e-k.phase)%k.gran != 0 {
			flags &^= flagGrid
		}
		v := s.vals[j]
		if v != float64(s.cnts[j]) || math.Signbit(v) {
			flags &^= flagCounts
		}
		if !(v >= 0 && v < 1<<53 && v == math.Trunc(v)) || math.Signbit(v) {
			flags &^= flagWhole
		}
	}
	return flags
}

func appendDiskString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// nextDiskRecord splits the record at the start of b: its payload and its
// whole length. ok is false for a truncated or corrupt record.
func nextDiskRecord(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < 8 {
		return nil, 0, false
	}
	size := binary.LittleEndian.Uint32(b)
	if size > diskMaxRecord || int64(size) > int64(len(b)-8) {
		return nil, 0, false
	}
	payload = b[8 : 8+size]
	if crc32.Checksum(payload, diskCRC) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return payload, 8 + int(size), true
}

// diskReader decodes a payload, remembering the first error.
type diskReader struct {
	b   []byte
	err error
}

func (r *diskReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *diskReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *diskReader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *diskReader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *diskReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a length whose every item takes at least min bytes, so a
// corrupt one cannot ask for more than the payload could hold.
func (r *diskReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *diskReader) fail() {
	if r.err == nil {
		r.err = errDiskRecord
	}
	r.b = nil
}

// decodeDiskKey reads a payload's key, leaving r at its partial result.
func decodeDiskKey(r *diskReader) (diskKey, error) {
	var k diskKey
	k.off = r.varint()
	k.fp = r.u64()
	k.gran = r.varint()
	k.phase = r.varint()
	k.pipe = r.str()
	return k, r.err
}

// decodeDiskPart reads the partial result that follows key k.
func decodeDiskPart(r *diskReader, k diskKey) (*blockPart, error) {
	part := &blockPart{series: make([]partSeries, r.count(2))}
	for i := range part.series {
		s := &part.series[i]
		s.ls = make(labels.Labels, r.count(2))
		for j := range s.ls {
			s.ls[j] = labels.Label{Name: r.str(), Value: r.str()}
		}
		n := r.count(2)
		s.ends, s.vals, s.cnts = make([]int64, n), make([]float64, n), make([]uint32, n)
		flags := r.byte()
		unit, base := int64(1), int64(0)
		if flags&flagGrid != 0 {
			if k.gran <= 0 {
				r.fail()
			}
			unit, base = k.gran, k.phase
		}
		prev := int64(0)
		for j := 0; j < n && r.err == nil; j++ {
			prev += r.varint()
			s.ends[j] = base + prev*unit
			c := r.uvarint()
			if c > math.MaxUint32 {
				r.fail()
			}
			s.cnts[j] = uint32(c)
			switch {
			case flags&flagCounts != 0:
				s.vals[j] = float64(c)
			case flags&flagWhole != 0:
				s.vals[j] = float64(r.uvarint())
			default:
				s.vals[j] = math.Float64frombits(r.u64())
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		s.hash = s.ls.Hash() // hashes are seeded per process
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	part.measure()
	return part, nil
}
