// Package push reads Loki's push API JSON
// ({"streams":[{"stream":{…},"values":[["<unix ns>","<line>"],…]}]}) into the
// store's append batches, exactly as given: labels, timestamps and lines are
// kept byte for byte, and each entry's Seq is its index within its stream so
// entries with equal timestamps keep the order of the file.
//
// The decoder streams: it never holds more than one batch of entries, so a
// push file larger than memory can be loaded.
//
// NewHandler (handler.go) is Loki's POST /loki/api/v1/push in front of a
// store: JSON through this decoder, protobuf+snappy through pushpb, and
// Loki's rules (limits and their messages, duplicates stored once, the
// out-of-order window, detected_level).
package push

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// DefaultBatchEntries bounds the entries of one emitted batch, so loading a
// large file keeps memory flat while still amortising the store's commit.
const DefaultBatchEntries = 10000

// Options tune Read.
type Options struct {
	// BatchEntries is the most entries one emitted batch holds
	// (DefaultBatchEntries when 0).
	BatchEntries int
	// IgnoreMetadata drops structured metadata (the optional third element
	// of a value, an object of strings) instead of keeping it in
	// Entry.Metadata.
	IgnoreMetadata bool
	// RawLabels takes each stream's labels as given, without Loki's checks
	// (at least one label, valid names, no empty values), for a caller that
	// checks them itself and rejects streams one by one.
	RawLabels bool
}

// ErrInvalid marks every error caused by the input rather than by emit.
var ErrInvalid = errors.New("invalid push payload")

// Error says where in the input a problem is.
type Error struct {
	Offset int64  // byte offset in the input
	Where  string // e.g. streams[2].values[10]
	Msg    string
}

func (e *Error) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("push JSON at byte %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("push JSON at byte %d (%s): %s", e.Offset, e.Where, e.Msg)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Decode reads a whole payload into one batch.
func Decode(r io.Reader, opts Options) (store.AppendBatch, error) {
	var all store.AppendBatch
	idx := map[uint64][]int{}
	opts.BatchEntries = int(^uint(0) >> 1)
	err := Read(r, opts, func(b store.AppendBatch) error {
		for _, s := range b.Streams {
			pos := -1
			for _, i := range idx[s.Labels.Hash()] {
				if labels.Equal(all.Streams[i].Labels, s.Labels) {
					pos = i
				}
			}
			if pos < 0 {
				idx[s.Labels.Hash()] = append(idx[s.Labels.Hash()], len(all.Streams))
				all.Streams = append(all.Streams, store.StreamEntries{Labels: s.Labels})
				pos = len(all.Streams) - 1
			}
			all.Streams[pos].Entries = append(all.Streams[pos].Entries, s.Entries...)
		}
		return nil
	})
	return all, err
}

// Read decodes the payload from r and calls emit with batches of at most
// opts.BatchEntries entries, in input order. Entries of a stream that appears
// several times in the payload continue its Seq numbering. An error from emit
// stops reading and is returned as is.
func Read(r io.Reader, opts Options, emit func(store.AppendBatch) error) error {
	if opts.BatchEntries <= 0 {
		opts.BatchEntries = DefaultBatchEntries
	}
	d := &decoder{dec: json.NewDecoder(r), opts: opts, emit: emit, seqs: map[string]uint64{}}
	d.dec.UseNumber()
	return d.run()
}

type decoder struct {
	dec  *json.Decoder
	opts Options
	emit func(store.AppendBatch) error

	seqs    map[string]uint64 // next Seq per stream, by labels.String()
	batch   store.AppendBatch
	pending int
}

func (d *decoder) fail(where, format string, args ...any) error {
	return &Error{Offset: d.dec.InputOffset(), Where: where, Msg: fmt.Sprintf(format, args...)}
}

// token reads a token, turning syntax errors into positioned errors.
func (d *decoder) token(where string) (json.Token, error) {
	t, err := d.dec.Token()
	if err == io.EOF {
		return nil, d.fail(where, "unexpected end of input")
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &Error{Offset: se.Offset, Where: where, Msg: se.Error()}
		}
		return nil, d.fail(where, "%v", err)
	}
	return t, nil
}

func (d *decoder) expectDelim(where string, want json.Delim) error {
	t, err := d.token(where)
	if err != nil {
		return err
	}
	if got, ok := t.(json.Delim); !ok || got != want {
		return d.fail(where, "expected %q, found %s", string(want), describe(t))
	}
	return nil
}

func describe(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		return strconv.Quote(string(v))
	case string:
		return "string " + strconv.Quote(v)
	case json.Number:
		return "number " + string(v)
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", t)
}

func (d *decoder) run() error {
	if err := d.expectDelim("", '{'); err != nil {
		return err
	}
	sawStreams := false
	for d.dec.More() {
		t, err := d.token("")
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if key != "streams" {
			// Unknown top-level keys are skipped, as Loki does.
			var skip json.RawMessage
			if err := d.dec.Decode(&skip); err != nil {
				return d.fail(key, "%v", err)
			}
			continue
		}
		sawStreams = true
		if err := d.streams(); err != nil {
			return err
		}
	}
	if err := d.expectDelim("", '}'); err != nil {
		return err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return d.fail("", "unexpected data after the payload")
	}
	if !sawStreams {
		return d.fail("", `no "streams" key`)
	}
	return d.flush()
}

func (d *decoder) streams() error {
	t, err := d.token("streams")
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if dl, ok := t.(json.Delim); !ok || dl != '[' {
		return d.fail("streams", "expected an array, found %s", describe(t))
	}
	for i := 0; d.dec.More(); i++ {
		if err := d.stream(fmt.Sprintf("streams[%d]", i)); err != nil {
			return err
		}
	}
	return d.expectDelim("streams", ']')
}

func (d *decoder) stream(where string) error {
	if err := d.expectDelim(where, '{'); err != nil {
		return err
	}
	var ls labels.Labels
	haveLabels := false
	var values []store.Entry // only values read before "stream" wait here
	valuesBeforeLabels := false
	cur := -1 // index of this stream in d.batch once labels are known
	for d.dec.More() {
		t, err := d.token(where)
		if err != nil {
			return err
		}
		key, _ := t.(string)
		switch key {
		case "stream":
			if haveLabels {
				return d.fail(where, `duplicate "stream" key`)
			}
			m := map[string]string{}
			if err := d.dec.Decode(&m); err != nil {
				return d.fail(where+".stream", "labels must be an object of strings: %v", err)
			}
			if d.opts.RawLabels {
				ls = labels.FromMap(m)
			} else if ls, err = validLabels(m); err != nil {
				return d.fail(where+".stream", "%v", err)
			}
			haveLabels = true
			if valuesBeforeLabels {
				for _, e := range values {
					if err := d.add(ls, &cur, e); err != nil {
						return err
					}
				}
				values = nil
			}
		case "values":
			if !haveLabels {
				valuesBeforeLabels = true
			}
			err := d.values(where+".values", func(e store.Entry) error {
				if !haveLabels {
					values = append(values, e)
					return nil
				}
				return d.add(ls, &cur, e)
			})
			if err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := d.dec.Decode(&skip); err != nil {
				return d.fail(where+"."+key, "%v", err)
			}
		}
	}
	if !haveLabels {
		return d.fail(where, `missing "stream" labels`)
	}
	return d.expectDelim(where, '}')
}

// validLabels applies Loki's rules: at least one label, Prometheus label
// names, no empty values (Loki drops them; we refuse rather than guess).
func validLabels(m map[string]string) (labels.Labels, error) {
	if len(m) == 0 {
		return nil, errors.New("a stream needs at least one label")
	}
	for k, v := range m {
		if !validName(k) {
			return nil, fmt.Errorf("invalid label name %q", k)
		}
		if v == "" {
			return nil, fmt.Errorf("label %q has an empty value", k)
		}
	}
	return labels.FromMap(m), nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func (d *decoder) values(where string, each func(store.Entry) error) error {
	t, err := d.token(where)
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if dl, ok := t.(json.Delim); !ok || dl != '[' {
		return d.fail(where, "expected an array, found %s", describe(t))
	}
	for i := 0; d.dec.More(); i++ {
		w := fmt.Sprintf("%s[%d]", where, i)
		var raw []json.RawMessage
		if err := d.dec.Decode(&raw); err != nil {
			return d.fail(w, `a value must be ["<unix ns>", "<line>"]: %v`, err)
		}
		if len(raw) < 2 || len(raw) > 3 {
			return d.fail(w, `a value must be ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {metadata}], found %d elements`, len(raw))
		}
		var tsStr string
		if err := json.Unmarshal(raw[0], &tsStr); err != nil {
			return d.fail(w, "the timestamp must be a string of Unix nanoseconds, found %s", raw[0])
		}
		ts, err := strconv.ParseInt(tsStr, 10, 64)
		if err != nil {
			return d.fail(w, "the timestamp %q is not Unix nanoseconds: %v", tsStr, err)
		}
		var line string
		if err := json.Unmarshal(raw[1], &line); err != nil {
			return d.fail(w, "the line must be a string, found %s", raw[1])
		}
		var md labels.Labels
		if len(raw) == 3 && !d.opts.IgnoreMetadata {
			var m map[string]string
			if err := json.Unmarshal(raw[2], &m); err != nil {
				return d.fail(w, "structured metadata must be an object of strings, found %s", raw[2])
			}
			if len(m) > 0 {
				md = labels.FromMap(m).WithoutEmpty()
			}
		}
		if err := each(store.Entry{Ts: ts, Line: line, Metadata: md}); err != nil {
			return err
		}
	}
	return d.expectDelim(where, ']')
}

func (d *decoder) add(ls labels.Labels, cur *int, e store.Entry) error {
	key := ls.String()
	e.Seq = d.seqs[key]
	d.seqs[key] = e.Seq + 1
	if *cur < 0 || *cur >= len(d.batch.Streams) {
		d.batch.Streams = append(d.batch.Streams, store.StreamEntries{Labels: ls})
		*cur = len(d.batch.Streams) - 1
	}
	d.batch.Streams[*cur].Entries = append(d.batch.Streams[*cur].Entries, e)
	d.pending++
	if d.pending >= d.opts.BatchEntries {
		if err := d.flush(); err != nil {
			return err
		}
		*cur = -1
	}
	return nil
}

func (d *decoder) flush() error {
	if d.pending == 0 {
		return nil
	}
	b := d.batch
	d.batch = store.AppendBatch{}
	d.pending = 0
	return d.emit(b)
}
