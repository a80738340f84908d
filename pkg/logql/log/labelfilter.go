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
// filters, as in Loki 3: a missing label drops the line; a value that does
// not convert keeps the line with __error__=LabelFilterErr and the
// conversion error in __error_details__, unless the line already carries an
// error, which is kept as the more useful one.
type typedFilter struct {
	name string
	op   CmpOp
	test func(op CmpOp, v string) (bool, error)
}

func (f typedFilter) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	v, ok := lbs.Get(f.name)
	if !ok {
		return line, false
	}
	keep, err := f.test(f.op, v)
	if err != nil {
		if !lbs.HasErr() {
			lbs.SetErr(ErrLabelFilter, err.Error())
		}
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
// The label's value is scanned for addresses like a line. As in Loki, a
// line that already carries __error__ passes and a missing label drops the
// line. The parser rejects invalid patterns; should one get here anyway,
// every line gets __error__=LabelFilterErr rather than a silent answer.
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
	if lbs.HasErr() {
		return line, true
	}
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
