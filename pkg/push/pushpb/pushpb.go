// Package pushpb encodes and decodes Loki's push request protobuf
// (package logproto: PushRequest, StreamAdapter, EntryAdapter,
// LabelPairAdapter) by hand, and the snappy block framing Loki's push
// endpoint expects around it.
//
// The wire format, from Loki's documented push.proto:
//
//	message PushRequest      { repeated StreamAdapter streams = 1; }
//	message StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//	message EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
//	                           repeated LabelPairAdapter structuredMetadata = 3; }
//	message LabelPairAdapter { string name = 1; string value = 2; }
//	message Timestamp        { int64 seconds = 1; int32 nanos = 2; }
//
// Marshal writes fields in field-number order and leaves out proto3 zero
// values, except an entry's timestamp, which is always written (Loki's
// generated code declares it non-nullable), so the bytes equal those of
// Loki's own clients.
package pushpb

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/encoding/protowire"
)

// PushRequest is logproto.PushRequest.
type PushRequest struct {
	Streams []Stream
}

// Stream is logproto.StreamAdapter: Labels is the stream's selector in
// Prometheus form ({a="b", c="d"}).
type Stream struct {
	Labels  string
	Entries []Entry
	Hash    uint64
}

// Entry is logproto.EntryAdapter.
type Entry struct {
	Timestamp          time.Time
	Line               string
	StructuredMetadata []LabelPair
}

// LabelPair is logproto.LabelPairAdapter.
type LabelPair struct {
	Name, Value string
}

// Field numbers of the messages above.
const (
	fieldRequestStreams = 1

	fieldStreamLabels  = 1
	fieldStreamEntries = 2
	fieldStreamHash    = 3

	fieldEntryTimestamp = 1
	fieldEntryLine      = 2
	fieldEntryMetadata  = 3

	fieldPairName  = 1
	fieldPairValue = 2

	fieldTimestampSeconds = 1
	fieldTimestampNanos   = 2
)

// Marshal encodes r.
func (r *PushRequest) Marshal() ([]byte, error) {
	return r.MarshalAppend(make([]byte, 0, r.Size())), nil
}

// Size is the length of r's encoding.
func (r *PushRequest) Size() int {
	n := 0
	for i := range r.Streams {
		n += sizeField(fieldRequestStreams, r.Streams[i].size())
	}
	return n
}

// MarshalAppend appends r's encoding to b.
func (r *PushRequest) MarshalAppend(b []byte) []byte {
	for i := range r.Streams {
		s := &r.Streams[i]
		b = protowire.AppendTag(b, fieldRequestStreams, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(s.size()))
		b = s.appendTo(b)
	}
	return b
}

// sizeField is the size of a length-delimited field of n bytes.
func sizeField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return sizeField(num, len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (s *Stream) size() int {
	n := sizeString(fieldStreamLabels, s.Labels)
	for i := range s.Entries {
		n += sizeField(fieldStreamEntries, s.Entries[i].size())
	}
	if s.Hash != 0 {
		n += protowire.SizeTag(fieldStreamHash) + protowire.SizeVarint(s.Hash)
	}
	return n
}

func (s *Stream) appendTo(b []byte) []byte {
	b = appendString(b, fieldStreamLabels, s.Labels)
	for i := range s.Entries {
		e := &s.Entries[i]
		b = protowire.AppendTag(b, fieldStreamEntries, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(e.size()))
		b = e.appendTo(b)
	}
	if s.Hash != 0 {
		b = protowire.AppendTag(b, fieldStreamHash, protowire.VarintType)
		b = protowire.AppendVarint(b, s.Hash)
	}
	return b
}

func timestampParts(t time.Time) (secs int64, nanos int32) {
	return t.Unix(), int32(t.Nanosecond())
}

func timestampSize(t time.Time) int {
	secs, nanos := timestampParts(t)
	n := 0
	if secs != 0 {
		n += protowire.SizeTag(fieldTimestampSeconds) + protowire.SizeVarint(uint64(secs))
	}
	if nanos != 0 {
		n += protowire.SizeTag(fieldTimestampNanos) + protowire.SizeVarint(uint64(nanos))
	}
	return n
}

func (e *Entry) size() int {
	n := sizeField(fieldEntryTimestamp, timestampSize(e.Timestamp))
	n += sizeString(fieldEntryLine, e.Line)
	for i := range e.StructuredMetadata {
		n += sizeField(fieldEntryMetadata, e.StructuredMetadata[i].size())
	}
	return n
}

func (e *Entry) appendTo(b []byte) []byte {
	b = protowire.AppendTag(b, fieldEntryTimestamp, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(timestampSize(e.Timestamp)))
	secs, nanos := timestampParts(e.Timestamp)
	if secs != 0 {
		b = protowire.AppendTag(b, fieldTimestampSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(secs))
	}
	if nanos != 0 {
		b = protowire.AppendTag(b, fieldTimestampNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(nanos))
	}
	b = appendString(b, fieldEntryLine, e.Line)
	for i := range e.StructuredMetadata {
		p := &e.StructuredMetadata[i]
		b = protowire.AppendTag(b, fieldEntryMetadata, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(p.size()))
		b = appendString(b, fieldPairName, p.Name)
		b = appendString(b, fieldPairValue, p.Value)
	}
	return b
}

func (p *LabelPair) size() int {
	return sizeString(fieldPairName, p.Name) + sizeString(fieldPairValue, p.Value)
}

// ErrInvalid marks every error Unmarshal returns: the input is not a valid
// push request.
var ErrInvalid = errors.New("invalid push protobuf")

// Error says where in the input a problem is.
type Error struct {
	Offset int    // byte offset in the input
	Where  string // e.g. streams[2].entries[10].timestamp
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("push protobuf at byte %d (%s): %s", e.Offset, e.Where, e.Msg)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unmarshal decodes b into r, replacing what r held. Unknown fields are
// skipped, as protobuf requires. Lines and structured metadata share one copy
// of b's bytes (one allocation instead of one per string); each stream's
// Labels is a copy of its own, so keeping a stream's labels does not keep the
// whole request alive. r does not alias b.
func Unmarshal(b []byte, r *PushRequest) error {
	*r = PushRequest{}
	d := decoder{buf: b, str: string(b)}
	return d.request(r)
}

type decoder struct {
	buf []byte
	str string // the same bytes as buf, as the backing of decoded strings
}

// where builds a location lazily: only errors need it.
type where func() string

func (d *decoder) fail(off int, w where, format string, args ...any) error {
	return &Error{Offset: off, Where: w(), Msg: fmt.Sprintf(format, args...)}
}

// field reads one tag at off within [off, end) and returns the field number,
// its type and the offset after the tag.
func (d *decoder) tag(off, end int, w where) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(d.buf[off:end])
	if n < 0 {
		return 0, 0, 0, d.fail(off, w, "bad field tag: %v", protowire.ParseError(n))
	}
	return num, typ, off + n, nil
}

// bytes reads a length-delimited value at off and returns its bounds.
func (d *decoder) bytes(off, end int, w where) (int, int, error) {
	l, n := protowire.ConsumeVarint(d.buf[off:end])
	if n < 0 {
		return 0, 0, d.fail(off, w, "bad length: %v", protowire.ParseError(n))
	}
	start := off + n
	if l > uint64(end-start) {
		return 0, 0, d.fail(off, w, "length %d runs past the end of its message (%d bytes left)", l, end-start)
	}
	return start, start + int(l), nil
}

func (d *decoder) varint(off, end int, w where) (uint64, int, error) {
	v, n := protowire.ConsumeVarint(d.buf[off:end])
	if n < 0 {
		return 0, 0, d.fail(off, w, "bad varint: %v", protowire.ParseError(n))
	}
	return v, off + n, nil
}

// skip passes over a field of an unknown number.
func (d *decoder) skip(num protowire.Number, typ protowire.Type, off, end int, w where) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, d.buf[off:end])
	if n < 0 {
		return 0, d.fail(off, w, "bad field %d: %v", num, protowire.ParseError(n))
	}
	return off + n, nil
}

// lenField checks that the field at off is length-delimited and returns the
// bounds of its value, which starts at next.
func (d *decoder) lenField(num protowire.Number, typ protowire.Type, off, next, end int, w where) (int, int, error) {
	if err := d.expect(off, w, num, typ, protowire.BytesType); err != nil {
		return 0, 0, err
	}
	return d.bytes(next, end, w)
}

// expect checks that a known field has the wire type its definition gives.
func (d *decoder) expect(off int, w where, num protowire.Number, got, want protowire.Type) error {
	if got != want {
		return d.fail(off, w, "field %d has wire type %d, want %d", num, got, want)
	}
	return nil
}

func (d *decoder) request(r *PushRequest) error {
	end := len(d.buf)
	top := func() string { return "request" }
	for off := 0; off < end; {
		num, typ, next, err := d.tag(off, end, top)
		if err != nil {
			return err
		}
		if num != fieldRequestStreams {
			if off, err = d.skip(num, typ, next, end, top); err != nil {
				return err
			}
			continue
		}
		i := len(r.Streams)
		w := func() string { return fmt.Sprintf("streams[%d]", i) }
		start, stop, err := d.lenField(num, typ, off, next, end, w)
		if err != nil {
			return err
		}
		r.Streams = append(r.Streams, Stream{})
		if err := d.stream(start, stop, &r.Streams[i], w); err != nil {
			return err
		}
		off = stop
	}
	return nil
}

// countEntries counts the entries fields of the stream message in
// [off, end), stopping quietly at anything malformed (the real pass
// reports it), so Entries is allocated once.
func (d *decoder) countEntries(off, end int) int {
	n := 0
	for off < end {
		num, typ, k := protowire.ConsumeTag(d.buf[off:end])
		if k < 0 {
			break
		}
		off += k
		if num == fieldStreamEntries && typ == protowire.BytesType {
			n++
		}
		k = protowire.ConsumeFieldValue(num, typ, d.buf[off:end])
		if k < 0 {
			break
		}
		off += k
	}
	return n
}

func (d *decoder) stream(off, end int, s *Stream, sw where) error {
	if n := d.countEntries(off, end); n > 0 {
		s.Entries = make([]Entry, 0, n)
	}
	for off < end {
		num, typ, next, err := d.tag(off, end, sw)
		if err != nil {
			return err
		}
		switch num {
		case fieldStreamLabels:
			w := func() string { return sw() + ".labels" }
			start, stop, err := d.lenField(num, typ, off, next, end, w)
			if err != nil {
				return err
			}
			s.Labels = string(d.buf[start:stop])
			off = stop
		case fieldStreamEntries:
			i := len(s.Entries)
			w := func() string { return fmt.Sprintf("%s.entries[%d]", sw(), i) }
			start, stop, err := d.lenField(num, typ, off, next, end, w)
			if err != nil {
				return err
			}
			s.Entries = append(s.Entries, Entry{})
			if err := d.entry(start, stop, &s.Entries[i], w); err != nil {
				return err
			}
			off = stop
		case fieldStreamHash:
			w := func() string { return sw() + ".hash" }
			if err := d.expect(off, w, num, typ, protowire.VarintType); err != nil {
				return err
			}
			if s.Hash, off, err = d.varint(next, end, w); err != nil {
				return err
			}
		default:
			if off, err = d.skip(num, typ, next, end, sw); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) entry(off, end int, e *Entry, ew where) error {
	for off < end {
		num, typ, next, err := d.tag(off, end, ew)
		if err != nil {
			return err
		}
		switch num {
		case fieldEntryTimestamp:
			w := func() string { return ew() + ".timestamp" }
			start, stop, err := d.lenField(num, typ, off, next, end, w)
			if err != nil {
				return err
			}
			if e.Timestamp, err = d.timestamp(start, stop, w); err != nil {
				return err
			}
			off = stop
		case fieldEntryLine:
			w := func() string { return ew() + ".line" }
			start, stop, err := d.lenField(num, typ, off, next, end, w)
			if err != nil {
				return err
			}
			e.Line = d.str[start:stop]
			off = stop
		case fieldEntryMetadata:
			i := len(e.StructuredMetadata)
			w := func() string { return fmt.Sprintf("%s.structuredMetadata[%d]", ew(), i) }
			start, stop, err := d.lenField(num, typ, off, next, end, w)
			if err != nil {
				return err
			}
			e.StructuredMetadata = append(e.StructuredMetadata, LabelPair{})
			if err := d.pair(start, stop, &e.StructuredMetadata[i], w); err != nil {
				return err
			}
			off = stop
		default:
			if off, err = d.skip(num, typ, next, end, ew); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) pair(off, end int, p *LabelPair, pw where) error {
	for off < end {
		num, typ, next, err := d.tag(off, end, pw)
		if err != nil {
			return err
		}
		var dst *string
		switch num {
		case fieldPairName:
			dst = &p.Name
		case fieldPairValue:
			dst = &p.Value
		default:
			if off, err = d.skip(num, typ, next, end, pw); err != nil {
				return err
			}
			continue
		}
		start, stop, err := d.lenField(num, typ, off, next, end, pw)
		if err != nil {
			return err
		}
		*dst = d.str[start:stop]
		off = stop
	}
	return nil
}

// timestamp decodes a google.protobuf.Timestamp, which must be valid: nanos
// within [0, 1e9).
func (d *decoder) timestamp(off, end int, w where) (time.Time, error) {
	var secs int64
	var nanos int64
	for off < end {
		num, typ, next, err := d.tag(off, end, w)
		if err != nil {
			return time.Time{}, err
		}
		switch num {
		case fieldTimestampSeconds, fieldTimestampNanos:
			if err := d.expect(off, w, num, typ, protowire.VarintType); err != nil {
				return time.Time{}, err
			}
			v, after, err := d.varint(next, end, w)
			if err != nil {
				return time.Time{}, err
			}
			if num == fieldTimestampSeconds {
				secs = int64(v)
			} else {
				// An int32 is sign-extended to 64 bits on the wire.
				if int64(v) < math.MinInt32 || int64(v) > math.MaxInt32 {
					return time.Time{}, d.fail(off, w, "nanos %d out of int32 range", int64(v))
				}
				nanos = int64(v)
			}
			off = after
		default:
			if off, err = d.skip(num, typ, next, end, w); err != nil {
				return time.Time{}, err
			}
		}
	}
	if nanos < 0 || nanos >= 1e9 {
		return time.Time{}, d.fail(off, w, "nanos %d outside [0, 999999999]", nanos)
	}
	return time.Unix(secs, nanos).UTC(), nil
}

// EncodeSnappy compresses src as one snappy block (the framing
// Loki's push endpoint reads with Content-Type application/x-protobuf),
// using dst if it is large enough.
func EncodeSnappy(dst, src []byte) []byte {
	return s2.EncodeSnappy(dst, src)
}

// DecodedLen is the length a snappy block decodes to, read from its header,
// so a caller can refuse an oversized body before decoding it.
func DecodedLen(src []byte) (int, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return 0, fmt.Errorf("snappy header: %w", err)
	}
	return n, nil
}

// DecodeSnappy decodes one snappy block, using dst if it is large enough.
func DecodeSnappy(dst, src []byte) ([]byte, error) {
	out, err := s2.Decode(dst, src)
	if err != nil {
		return nil, fmt.Errorf("snappy decode: %w", err)
	}
	return out, nil
}
