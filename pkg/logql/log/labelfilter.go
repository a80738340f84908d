package log

import (
	"fmt"
	"strconv"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// CmpOp is the comparison of a numeric, duration or bytes label filter.
type CmpOp int

const (
	CmpEq CmpOp = iota // == or =
	CmpNe              // !=
	CmpGt              // >
	CmpGe              // >=
	CmpLt              // <
	CmpLe              // <=
)

func (op CmpOp) String() string {
	switch op {
	case CmpEq:
		return "=="
	case CmpNe:
		return "!="
	case CmpGt:
		return ">"
	case CmpGe:
		return ">="
	case CmpLt:
		return "<"
	case CmpLe:
		return "<="
	}
	return fmt.Sprintf("CmpOp(%d)", int(op))
}

func compare[T int64 | uint64 | float64](op CmpOp, a, b T) bool {
	switch op {
	case CmpEq:
		return a == b
	case CmpNe:
		return a != b
	case CmpGt:
		return a > b
	case CmpGe:
		return a >= b
	case CmpLt:
		return a < b
	case CmpLe:
		return a <= b
	}
	return false
}

// NewStringLabelFilter returns `| name op "value"` for =, !=, =~, !~ with
// label-matcher semantics (anchored regexps, a missing label is ""). It is
// the only label filter that can test __error__.
func NewStringLabelFilter(m *labels.Matcher) Stage {
	return stringLabelFilter{m: m}
}

type stringLabelFilter struct{ m *labels.Matcher }

func (f stringLabelFilter) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	v, _ := lbs.Get(f.m.Name)
	return line, f.m.Matches(v)
}

// typedFilter is the shared behaviour of numeric, duration and bytes
// filters, as in Loki: a line that already carries __error__ passes
// untouched; a missing label drops the line; a value that does not convert
// keeps the line with __error__=LabelFilterErr and the conversion error in
// __error_details__.
type typedFilter struct {
	name string
	op   CmpOp
	test func(op CmpOp, v string) (bool, error)
}

func (f typedFilter) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	if lbs.HasErr() {
		return line, true
	}
	v, ok := lbs.Get(f.name)
	if !ok {
		return line, false
	}
	keep, err := f.test(f.op, v)
	if err != nil {
		lbs.SetErr(ErrLabelFilter, err.Error())
		return line, true
	}
	return line, keep
}

// NewNumericLabelFilter returns `| name op number`.
func NewNumericLabelFilter(name string, op CmpOp, value float64) Stage {
	return typedFilter{name: name, op: op, test: func(op CmpOp, v string) (bool, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false, err
		}
		return compare(op, f, value), nil
	}}
}

// NewDurationLabelFilter returns `| name op 10s`; label values are parsed as
// Go durations ("10040ms", "1h30m").
func NewDurationLabelFilter(name string, op CmpOp, value time.Duration) Stage {
	return typedFilter{name: name, op: op, test: func(op CmpOp, v string) (bool, error) {
		d, err := time.ParseDuration(v)
		if err != nil {
			return false, err
		}
		return compare(op, int64(d), int64(value)), nil
	}}
}

// NewBytesLabelFilter returns `| name op 20MB`; label values are parsed as
// humanized byte sizes ("1976KB", "19.8GiB").
func NewBytesLabelFilter(name string, op CmpOp, value uint64) Stage {
	return typedFilter{name: name, op: op, test: func(op CmpOp, v string) (bool, error) {
		b, err := ParseBytes(v)
		if err != nil {
			return false, err
		}
		return compare(op, b, value), nil
	}}
}

// NewIPLabelFilter returns `| name = ip("pattern")` (or != when negate).
// As in Loki an invalid pattern does not fail the query: every line gets
// __error__=LabelFilterErr. A missing label drops the line.
func NewIPLabelFilter(name, pattern string, negate bool) Stage {
	m, err := parseIPPattern(pattern)
	return ipLabelFilter{name: name, m: m, err: err, negate: negate}
}

type ipLabelFilter struct {
	name   string
	m      *ipMatcher
	err    error
	negate bool
}

func (f ipLabelFilter) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	if f.err != nil {
		lbs.SetErr(ErrLabelFilter, f.err.Error())
		return line, true
	}
	v, ok := lbs.Get(f.name)
	if !ok {
		return line, false
	}
	match := f.m.matchAnywhere(unsafeBytes(v))
	if f.negate {
		return line, !match
	}
	return line, match
}

// NewAndLabelFilter keeps lines both filters keep (`and`, `,`, space, `|`).
func NewAndLabelFilter(left, right Stage) Stage {
	return binaryLabelFilter{left: left, right: right, and: true}
}

// NewOrLabelFilter keeps lines either filter keeps; the right side is not
// evaluated when the left keeps the line.
func NewOrLabelFilter(left, right Stage) Stage {
	return binaryLabelFilter{left: left, right: right}
}

type binaryLabelFilter struct {
	left, right Stage
	and         bool
}

func (b binaryLabelFilter) ForStream() Stage {
	return binaryLabelFilter{left: stageForStream(b.left), right: stageForStream(b.right), and: b.and}
}

func stageForStream(s Stage) Stage {
	if ss, ok := s.(streamStage); ok {
		return ss.ForStream()
	}
	return s
}

func (b binaryLabelFilter) Process(ts int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	line, lok := b.left.Process(ts, line, lbs)
	if b.and && !lok {
		return line, false
	}
	if !b.and && lok {
		return line, true
	}
	return b.right.Process(ts, line, lbs)
}

// NewDropStage returns `| drop a, b, c="v"`: named labels are removed, and
// labels given with a matcher are removed when their value matches. It can
// remove __error__ and __error_details__.
func NewDropStage(names []string, matchers []*labels.Matcher) Stage {
	return dropStage{names: names, matchers: matchers}
}

type dropStage struct {
	names    []string
	matchers []*labels.Matcher
}

func (d dropStage) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	lbs.Del(d.names...)
	for _, m := range d.matchers {
		if v, ok := lbs.Get(m.Name); ok && m.Matches(v) {
			lbs.Del(m.Name)
		}
	}
	return line, true
}

// NewKeepStage returns `| keep a, b, c="v"`: only the named labels, and
// labels given with a matcher whose value matches, remain. __error__ and
// __error_details__ are never removed by keep.
func NewKeepStage(names []string, matchers []*labels.Matcher) Stage {
	return &keepStage{names: names, matchers: matchers}
}

type keepStage struct {
	names    []string
	matchers []*labels.Matcher
	owned    bool // a per-stream instance, which may keep scratch
	scratch  []string
}

func (k *keepStage) ForStream() Stage {
	return &keepStage{names: k.names, matchers: k.matchers, owned: true}
}

func (k *keepStage) keeps(name, value string) bool {
	if name == ErrorLabel || name == ErrorDetailsLabel {
		return true
	}
	for _, n := range k.names {
		if n == name {
			return true
		}
	}
	for _, m := range k.matchers {
		if m.Name == name && m.Matches(value) {
			return true
		}
	}
	return false
}

func (k *keepStage) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	var drop []string
	if k.owned {
		drop = k.scratch[:0]
	}
	lbs.Range(func(name, value string) {
		if !k.keeps(name, value) {
			drop = append(drop, name)
		}
	})
	lbs.Del(drop...)
	if k.owned {
		k.scratch = drop
	}
	return line, true
}

// NewDecolorizeStage returns `| decolorize`: ANSI escape sequences (colours,
// cursor movement, OSC titles) are removed from the line.
func NewDecolorizeStage() Stage { return &decolorizeStage{} }

type decolorizeStage struct {
	buf   []byte
	owned bool
}

func (d *decolorizeStage) ForStream() Stage { return &decolorizeStage{owned: true} }

func (d *decolorizeStage) Process(_ int64, line []byte, _ *LabelsBuilder) ([]byte, bool) {
	if indexESC(line) < 0 {
		return line, true
	}
	var buf []byte
	if d.owned {
		buf = d.buf[:0]
	}
	buf = stripANSI(buf, line)
	if d.owned {
		d.buf = buf
	}
	return buf, true
}

func indexESC(b []byte) int {
	for i, c := range b {
		if c == 0x1b || (c == 0xc2 && i+1 < len(b) && b[i+1] == 0x9b) {
			return i
		}
	}
	return -1
}

// stripANSI appends line without escape sequences to dst. Recognised: CSI
// (ESC [ or U+009B, parameter and intermediate bytes, a final byte), OSC
// (ESC ] ... terminated by BEL or ESC \), and two-byte ESC sequences.
func stripANSI(dst, line []byte) []byte {
	for i := 0; i < len(line); {
		c := line[i]
		csi := -1
		switch {
		case c == 0x1b && i+1 < len(line) && line[i+1] == '[':
			csi = i + 2
		case c == 0xc2 && i+1 < len(line) && line[i+1] == 0x9b:
			csi = i + 2
		case c == 0x1b && i+1 < len(line) && line[i+1] == ']':
			j := i + 2
			for j < len(line) {
				if line[j] == 0x07 {
					j++
					break
				}
				if line[j] == 0x1b && j+1 < len(line) && line[j+1] == '\\' {
					j += 2
					break
				}
				j++
			}
			i = j
			continue
		case c == 0x1b && i+1 < len(line) && line[i+1] >= 0x40 && line[i+1] <= 0x5f:
			i += 2
			continue
		case c == 0x1b:
			i++
			continue
		}
		if csi < 0 {
			dst = append(dst, c)
			i++
			continue
		}
		j := csi
		for j < len(line) && line[j] >= 0x30 && line[j] <= 0x3f {
			j++
		}
		for j < len(line) && line[j] >= 0x20 && line[j] <= 0x2f {
			j++
		}
		if j < len(line) && line[j] >= 0x40 && line[j] <= 0x7e {
			j++
		}
		i = j
	}
	return dst
}
