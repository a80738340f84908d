package syntax

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
)

// errEmptyCompatible is Loki's message, verbatim: users search for it.
const errEmptyCompatible = `queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will`

// selectsSomething enforces Loki's rule that a selector have at least one
// matcher that does not match the empty string (so {a!=""} passes), so a
// query can never mean "every stream". The parser reports errEmptyCompatible
// over the selector that breaks it.
func selectsSomething(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches("") {
			return true
		}
	}
	return false
}

// checkRangeAggregation applies Loki's rules on which functions take
// unwrap, a parameter or a grouping.
func checkRangeAggregation(e *RangeAggregationExpr) error {
	if e.Grouping != nil {
		switch e.Operation {
		case OpRangeTypeAvg, OpRangeTypeStddev, OpRangeTypeStdvar, OpRangeTypeQuantile,
			OpRangeTypeMax, OpRangeTypeMin, OpRangeTypeFirst, OpRangeTypeLast:
		default:
			return fmt.Errorf("grouping not allowed for %s aggregation", e.Operation)
		}
	}
	if e.Operation == OpRangeTypeQuantile && e.Params == nil {
		return errors.New("quantile_over_time requires a parameter")
	}
	if e.Left.Unwrap != nil {
		switch e.Operation {
		case OpRangeTypeAvg, OpRangeTypeSum, OpRangeTypeMax, OpRangeTypeMin, OpRangeTypeStddev,
			OpRangeTypeStdvar, OpRangeTypeQuantile, OpRangeTypeRate, OpRangeTypeRateCounter,
			OpRangeTypeAbsent, OpRangeTypeFirst, OpRangeTypeLast:
			return nil
		}
		return fmt.Errorf("invalid aggregation %s with unwrap", e.Operation)
	}
	switch e.Operation {
	case OpRangeTypeBytes, OpRangeTypeBytesRate, OpRangeTypeCount, OpRangeTypeRate, OpRangeTypeAbsent:
		return nil
	}
	return fmt.Errorf("invalid aggregation %s without unwrap", e.Operation)
}

// checkBinOp applies Loki's one typing rule for binary operators: a set
// operator (and, or, unless) takes no literal leg. Comparisons between
// literals need no bool: Loki folds them to 0 or 1.
func checkBinOp(e *BinOpExpr) error {
	if !isSetBinOp(e.Op) {
		return nil
	}
	if l, ok := e.LHS.(*LiteralExpr); ok {
		return fmt.Errorf("unexpected literal for left leg of logical/set binary operation (%s): %f", e.Op, l.Val)
	}
	if r, ok := e.RHS.(*LiteralExpr); ok {
		return fmt.Errorf("unexpected literal for right leg of logical/set binary operation (%s): %f", e.Op, r.Val)
	}
	return nil
}

// foldLiterals reduces an operator between two literals to a literal, as
// Loki does while parsing: comparisons give 1 or 0 (with or without bool),
// and division or modulo by zero gives NaN.
func foldLiterals(e *BinOpExpr) SampleExpr {
	l, lok := e.LHS.(*LiteralExpr)
	r, rok := e.RHS.(*LiteralExpr)
	if !lok || !rok {
		return e
	}
	return &LiteralExpr{Val: ScalarBinOp(e.Op, l.Val, r.Val)}
}

// ScalarBinOp applies a binary operator to two numbers with Loki's
// semantics: x/0 and x%0 are NaN, comparisons are 1 or 0.
func ScalarBinOp(op string, l, r float64) float64 {
	b := func(c bool) float64 {
		if c {
			return 1
		}
		return 0
	}
	switch op {
	case OpTypeAdd:
		return l + r
	case OpTypeSub:
		return l - r
	case OpTypeMul:
		return l * r
	case OpTypeDiv:
		if r == 0 {
			return math.NaN()
		}
		return l / r
	case OpTypeMod:
		if r == 0 {
			return math.NaN()
		}
		return math.Mod(l, r)
	case OpTypePow:
		return math.Pow(l, r)
	case OpTypeCmpEQ:
		return b(l == r)
	case OpTypeNEQ:
		return b(l != r)
	case OpTypeGT:
		return b(l > r)
	case OpTypeGTE:
		return b(l >= r)
	case OpTypeLT:
		return b(l < r)
	case OpTypeLTE:
		return b(l <= r)
	}
	return math.NaN()
}

// checkLineFilterValue rejects a line filter that can never be evaluated.
func checkLineFilterValue(f *LineFilterExpr) error {
	switch f.Op {
	case LineMatchRegexp, LineNotMatchRegexp:
		if _, err := regexp.Compile(f.Value); err != nil {
			return fmt.Errorf("invalid regular expression %q in line filter: %s", f.Value, regexpReason(err))
		}
	case LineMatchPattern, LineNotMatchPattern:
		if _, err := ParsePattern(f.Value, false); err != nil {
			return err
		}
	}
	return nil
}

func regexpReason(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return se.Code.String() + ": `" + se.Expr + "`"
	}
	return err.Error()
}

// checkParserParam validates a regexp or pattern parser's expression.
func checkParserParam(e *LabelParserExpr) error {
	switch e.Kind {
	case ParserRegexp:
		re, err := regexp.Compile(e.Param)
		if err != nil {
			return fmt.Errorf("invalid regular expression %q in regexp parser: %s", e.Param, regexpReason(err))
		}
		named := 0
		for _, n := range re.SubexpNames() {
			if n == "" {
				continue
			}
			if !isLabelName(n) {
				return fmt.Errorf("invalid extracted label name '%s'", n)
			}
			named++
		}
		if named == 0 {
			return errors.New("at least one named capture must be supplied")
		}
	case ParserPattern:
		if _, err := ParsePattern(e.Param, true); err != nil {
			return err
		}
	}
	return nil
}

// PatternPart is one piece of a parsed pattern: literal text, or a capture
// (Capture is its name; "_" captures nothing).
type PatternPart = log.PatternPart

// ParsePattern splits a pattern expression such as `<ip> - <_> "<method>"`
// into literals and captures, with the log package's rules: a capture is
// `<name>` with an identifier or `_`, any other `<` is literal text, two
// captures may not be adjacent, names are unique, and the pattern parser
// (extractor) needs at least one named capture.
func ParsePattern(s string, extractor bool) ([]PatternPart, error) {
	if s == "" {
		return nil, errors.New("invalid pattern: empty pattern")
	}
	parts, err := log.ParsePattern(s, extractor)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", s, err)
	}
	return parts, nil
}

// checkIPPattern accepts what ip() takes: an address, a CIDR or a range
// `a-b` of one family.
func checkIPPattern(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, errA := netip.ParseAddr(lo)
		b, errB := netip.ParseAddr(hi)
		if errA == nil && errB == nil && a.Is4() == b.Is4() && a.Compare(b) <= 0 && a.Zone() == "" && b.Zone() == "" {
			return nil
		}
	}
	return fmt.Errorf("invalid ip pattern %q: expecting an address, a CIDR or a range a-b", s)
}
