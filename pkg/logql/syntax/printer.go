package syntax

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// The printer writes canonical LogQL: one space around binary operators and
// between pipeline stages, strings double-quoted with Go escapes, durations
// in Prometheus units, and parentheses only where the tree needs them. Its
// output must parse back to an equal tree; the round-trip test holds it to
// that.

func (e *MatcherExpr) String() string {
	var b strings.Builder
	writeMatchers(&b, e.Mts)
	return b.String()
}

// writeList writes xs with write, sep between them.
func writeList[T any](b *strings.Builder, xs []T, sep string, write func(*strings.Builder, T)) {
	for i, x := range xs {
		if i > 0 {
			b.WriteString(sep)
		}
		write(b, x)
	}
}

// writeEachAfterSpace writes each of xs after a space: the stages of a
// pipeline, the filters after an unwrap.
func writeEachAfterSpace[T interface{ String() string }](b *strings.Builder, xs []T) {
	for _, x := range xs {
		b.WriteByte(' ')
		b.WriteString(x.String())
	}
}

func writeMatchers(b *strings.Builder, ms []*labels.Matcher) {
	b.WriteByte('{')
	writeList(b, ms, ", ", writeMatcher)
	b.WriteByte('}')
}

func writeMatcher(b *strings.Builder, m *labels.Matcher) {
	b.WriteString(m.Name)
	b.WriteString(m.Type.String())
	b.WriteString(strconv.Quote(m.Value))
}

func (e *PipelineExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Left.String())
	writeEachAfterSpace(&b, e.Stages)
	return b.String()
}

func (e *LineFilterExpr) String() string {
	var b strings.Builder
	b.WriteString(string(e.Op))
	b.WriteByte(' ')
	writeLineFilterValue(&b, e)
	for _, o := range e.Or {
		b.WriteString(" or ")
		writeLineFilterValue(&b, o)
	}
	return b.String()
}

func writeLineFilterValue(b *strings.Builder, e *LineFilterExpr) {
	if e.IP {
		b.WriteString("ip(")
		b.WriteString(strconv.Quote(e.Value))
		b.WriteByte(')')
		return
	}
	b.WriteString(strconv.Quote(e.Value))
}

func (e *LabelParserExpr) String() string {
	var b strings.Builder
	b.WriteString("| ")
	b.WriteString(string(e.Kind))
	if e.Strict {
		b.WriteString(" --strict")
	}
	if e.KeepEmpty {
		b.WriteString(" --keep-empty")
	}
	if e.Kind == ParserRegexp || e.Kind == ParserPattern {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.Param))
	}
	return b.String()
}

func writeExtractions(b *strings.Builder, ps []LabelExtraction) {
	writeList(b, ps, ",", func(b *strings.Builder, p LabelExtraction) {
		b.WriteByte(' ')
		b.WriteString(p.Name)
		if !p.Bare {
			b.WriteByte('=')
			b.WriteString(strconv.Quote(p.Expr))
		}
	})
}

func (e *JSONExpressionParserExpr) String() string {
	var b strings.Builder
	b.WriteString("| json")
	writeExtractions(&b, e.Params)
	return b.String()
}

func (e *LogfmtExpressionParserExpr) String() string {
	var b strings.Builder
	b.WriteString("| logfmt")
	if e.Strict {
		b.WriteString(" --strict")
	}
	if e.KeepEmpty {
		b.WriteString(" --keep-empty")
	}
	writeExtractions(&b, e.Params)
	return b.String()
}

func (e *LabelFilterExpr) String() string {
	return "| " + e.Filter.String()
}

func (f *BinaryLabelFilter) String() string {
	var b strings.Builder
	// and binds tighter than or; both are left-associative, so a right
	// child of the same kind needs parentheses to keep the tree's shape.
	writeLabelFilterChild(&b, f.Left, f.And, false)
	if f.And {
		b.WriteString(" and ")
	} else {
		b.WriteString(" or ")
	}
	writeLabelFilterChild(&b, f.Right, f.And, true)
	return b.String()
}

func writeLabelFilterChild(b *strings.Builder, c LabelFilter, parentAnd, right bool) {
	bin, ok := c.(*BinaryLabelFilter)
	paren := ok && ((parentAnd && !bin.And) || (right && bin.And == parentAnd))
	if paren {
		b.WriteByte('(')
	}
	b.WriteString(c.String())
	if paren {
		b.WriteByte(')')
	}
}

func (f *StringLabelFilter) String() string {
	var b strings.Builder
	writeMatcher(&b, f.Matcher)
	return b.String()
}

func (f *NumericLabelFilter) String() string {
	return f.Name + " " + string(f.Op) + " " + formatFloat(f.Value)
}

func (f *DurationLabelFilter) String() string {
	return f.Name + " " + string(f.Op) + " " + FormatDuration(f.Value)
}

func (f *BytesLabelFilter) String() string {
	return f.Name + " " + string(f.Op) + " " + FormatBytes(f.Value)
}

func (f *IPLabelFilter) String() string {
	op := " = "
	if f.Negate {
		op = " != "
	}
	return f.Name + op + "ip(" + strconv.Quote(f.Pattern) + ")"
}

func (e *LineFmtExpr) String() string {
	return "| line_format " + strconv.Quote(e.Value)
}

func (e *LabelFmtExpr) String() string {
	var b strings.Builder
	b.WriteString("| label_format ")
	writeList(&b, e.Formats, ", ", func(b *strings.Builder, f LabelFmt) {
		b.WriteString(f.Name)
		b.WriteByte('=')
		if f.Rename {
			b.WriteString(f.Value)
		} else {
			b.WriteString(strconv.Quote(f.Value))
		}
	})
	return b.String()
}

func (e *DropLabelsExpr) String() string { return labelRefsStage("| drop", e.Labels) }

func (e *KeepLabelsExpr) String() string { return labelRefsStage("| keep", e.Labels) }

// labelRefsStage prints a drop or keep stage: its keyword, then its labels.
func labelRefsStage(keyword string, rs []LabelRef) string {
	var b strings.Builder
	b.WriteString(keyword)
	writeList(&b, rs, ",", func(b *strings.Builder, r LabelRef) {
		b.WriteByte(' ')
		if r.Matcher != nil {
			writeMatcher(b, r.Matcher)
		} else {
			b.WriteString(r.Name)
		}
	})
	return b.String()
}

func (*DecolorizeExpr) String() string { return "| decolorize" }

func (e *UnwrapExpr) String() string {
	var b strings.Builder
	b.WriteString("| unwrap ")
	if e.Operation != UnwrapNone {
		b.WriteString(e.Operation)
		b.WriteByte('(')
		b.WriteString(e.Identifier)
		b.WriteByte(')')
	} else {
		b.WriteString(e.Identifier)
	}
	writeEachAfterSpace(&b, e.PostFilters)
	return b.String()
}

func (e *LogRangeExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Left.String())
	if e.Unwrap != nil {
		b.WriteByte(' ')
		b.WriteString(e.Unwrap.String())
	}
	writeRangeSuffix(&b, e)
	return b.String()
}

// writeRangeSuffix writes a log range's " [interval]" and " offset d".
func writeRangeSuffix(b *strings.Builder, e *LogRangeExpr) {
	b.WriteString(" [")
	b.WriteString(FormatDuration(e.Interval))
	b.WriteByte(']')
	if e.Offset != 0 {
		b.WriteString(" offset ")
		b.WriteString(FormatDuration(e.Offset))
	}
}

func (g *Grouping) String() string {
	var b strings.Builder
	if g.Without {
		b.WriteString("without (")
	} else {
		b.WriteString("by (")
	}
	b.WriteString(strings.Join(g.Groups, ", "))
	b.WriteByte(')')
	return b.String()
}

func (e *RangeAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Operation)
	b.WriteByte('(')
	if e.Params != nil {
		b.WriteString(formatFloat(*e.Params))
		b.WriteString(", ")
	}
	b.WriteString(e.Left.String())
	b.WriteByte(')')
	if e.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(e.Grouping.String())
	}
	return b.String()
}

func (e *VectorAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Operation)
	if e.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(e.Grouping.String())
		b.WriteByte(' ')
	}
	b.WriteByte('(')
	if e.Operation == OpTypeTopK || e.Operation == OpTypeBottomK {
		b.WriteString(strconv.Itoa(e.Params))
		b.WriteString(", ")
	}
	b.WriteString(e.Left.String())
	b.WriteByte(')')
	return b.String()
}

// binOpPrecedence orders binary operators as PromQL and LogQL do; higher
// binds tighter.
func binOpPrecedence(op string) int {
	switch op {
	case OpTypeOr:
		return 1
	case OpTypeAnd, OpTypeUnless:
		return 2
	case OpTypeCmpEQ, OpTypeNEQ, OpTypeGT, OpTypeGTE, OpTypeLT, OpTypeLTE:
		return 3
	case OpTypeAdd, OpTypeSub:
		return 4
	case OpTypeMul, OpTypeDiv, OpTypeMod:
		return 5
	case OpTypePow:
		return 6
	}
	return 0
}

func (e *BinOpExpr) String() string {
	var b strings.Builder
	p := binOpPrecedence(e.Op)
	rightAssoc := e.Op == OpTypePow
	writeBinOpSide(&b, e.LHS, p, rightAssoc)
	b.WriteByte(' ')
	b.WriteString(e.Op)
	b.WriteString(binOpModifiers(e.Opts))
	b.WriteByte(' ')
	writeBinOpSide(&b, e.RHS, p, !rightAssoc)
	return b.String()
}

// binOpModifiers prints what follows a binary operator: " bool",
// " on (…)"/" ignoring (…)", " group_left (…)"/" group_right (…)".
func binOpModifiers(opts *BinOpOptions) string {
	if opts == nil {
		return ""
	}
	var b strings.Builder
	if opts.ReturnBool {
		b.WriteString(" bool")
	}
	if vm := opts.VectorMatching; vm != nil {
		if vm.On {
			b.WriteString(" on (")
		} else {
			b.WriteString(" ignoring (")
		}
		b.WriteString(strings.Join(vm.MatchingLabels, ", "))
		b.WriteByte(')')
		switch vm.Card {
		case CardManyToOne:
			b.WriteString(" group_left")
		case CardOneToMany:
			b.WriteString(" group_right")
		}
		if vm.Card != CardOneToOne && len(vm.Include) > 0 {
			b.WriteString(" (")
			b.WriteString(strings.Join(vm.Include, ", "))
			b.WriteByte(')')
		}
	}
	return b.String()
}

// binOpSideNeedsParens reports whether a side of a parent operation of
// precedence parent needs parentheses: a child operator that binds
// looser, or equally on the side its associativity does not group.
func binOpSideNeedsParens(side SampleExpr, parent int, parenOnEqual bool) bool {
	child, ok := side.(*BinOpExpr)
	if !ok {
		return false
	}
	cp := binOpPrecedence(child.Op)
	return cp < parent || (cp == parent && parenOnEqual)
}

// writeBinOpSide parenthesises a child operator that binds looser than its
// parent, or equally on the side its associativity does not group.
func writeBinOpSide(b *strings.Builder, side SampleExpr, parent int, parenOnEqual bool) {
	paren := binOpSideNeedsParens(side, parent, parenOnEqual)
	if paren {
		b.WriteByte('(')
	}
	b.WriteString(side.String())
	if paren {
		b.WriteByte(')')
	}
}

func (e *LiteralExpr) String() string { return formatFloat(e.Val) }

func (e *VectorExpr) String() string { return "vector(" + formatFloat(e.Val) + ")" }

func (e *LabelReplaceExpr) String() string {
	var b strings.Builder
	b.WriteString("label_replace(")
	b.WriteString(e.Left.String())
	for _, s := range []string{e.Dst, e.Replacement, e.Src, e.Regex} {
		b.WriteString(", ")
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(')')
	return b.String()
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// durationUnits are Prometheus's duration units, largest first.
var durationUnits = []struct {
	suffix string
	d      time.Duration
}{
	{"y", 365 * 24 * time.Hour},
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
}

// FormatDuration prints d in Prometheus units (`1h30m`, `1d`, `500ms`). A
// duration finer than a millisecond falls back to Go's notation (`1.5µs`),
// which the parser also reads.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 && d != math.MinInt64 {
		return "-" + FormatDuration(-d)
	}
	if d < 0 || d%time.Millisecond != 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range durationUnits {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.suffix)
			d -= n * u.d
		}
	}
	return b.String()
}

// byteUnits are the units FormatBytes may print, largest first.
var byteUnits = []struct {
	suffix string
	n      uint64
}{
	{"EiB", 1 << 60}, {"EB", 1e18},
	{"PiB", 1 << 50}, {"PB", 1e15},
	{"TiB", 1 << 40}, {"TB", 1e12},
	{"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6},
	{"KiB", 1 << 10}, {"KB", 1e3},
}

// FormatBytes prints n exactly, in the largest unit that divides it.
func FormatBytes(n uint64) string {
	if n == 0 {
		return "0B"
	}
	for _, u := range byteUnits {
		if n%u.n == 0 {
			return strconv.FormatUint(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}
