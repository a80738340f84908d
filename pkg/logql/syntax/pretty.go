package syntax

import (
	"strconv"
	"strings"
)

// Prettify lays a query out for reading, as Loki's format_query endpoint
// and Grafana's "format query" button do: an expression that fits in
// PrettyLineWidth columns stays on one line; a longer one is split, each
// level of nesting indented by two more spaces:
//
//   - a pipeline puts its selector first and each stage on a line of its
//     own (consecutive line filters share one line);
//   - a range aggregation puts its argument(s) between "op(" and ")";
//   - a vector aggregation puts its argument between "op by (…) (" and ")";
//   - a binary operation puts the operator (with bool, on/ignoring and
//     group_left/right) on its own line between its indented operands.
//
// Its output parses back to the tree String prints; String stays the
// canonical single-line form.
func Prettify(e Expr) string {
	var b strings.Builder
	writePretty(&b, e, 0)
	return b.String()
}

// PrettyLineWidth is the widest line Prettify keeps whole.
const PrettyLineWidth = 100

func indent(b *strings.Builder, level int) {
	for i := 0; i < level; i++ {
		b.WriteString("  ")
	}
}

// fits reports whether s, at level, fits on one line.
func fits(s string, level int) bool {
	return 2*level+len(s) <= PrettyLineWidth && !strings.Contains(s, "\n")
}

func writePretty(b *strings.Builder, e Expr, level int) {
	s := e.String()
	if fits(s, level) {
		indent(b, level)
		b.WriteString(s)
		return
	}
	switch e := e.(type) {
	case *PipelineExpr:
		writePrettyPipeline(b, e, level)
	case *LogRangeExpr:
		writePrettyLogRange(b, e, level)
	case *RangeAggregationExpr:
		writePrettyRangeAggregation(b, e, level)
	case *VectorAggregationExpr:
		writePrettyVectorAggregation(b, e, level)
	case *BinOpExpr:
		writePrettyBinOp(b, e, level)
	case *LabelReplaceExpr:
		writePrettyLabelReplace(b, e, level)
	default:
		// Selectors, single stages and literals have no inner layout.
		indent(b, level)
		b.WriteString(s)
	}
}

func writePrettyPipeline(b *strings.Builder, e *PipelineExpr, level int) {
	indent(b, level)
	b.WriteString(e.Left.String())
	for i, st := range e.Stages {
		_, filter := st.(*LineFilterExpr)
		prevFilter := false
		if i > 0 {
			_, prevFilter = e.Stages[i-1].(*LineFilterExpr)
		}
		if filter && prevFilter {
			b.WriteByte(' ')
		} else {
			b.WriteByte('\n')
			indent(b, level+1)
		}
		b.WriteString(st.String())
	}
}

// writePrettyLogRange splits the selector's pipeline even where it alone
// would fit, so that an unwrap continues it as one more stage.
func writePrettyLogRange(b *strings.Builder, e *LogRangeExpr, level int) {
	if p, ok := e.Left.(*PipelineExpr); ok {
		writePrettyPipeline(b, p, level)
	} else {
		indent(b, level)
		b.WriteString(e.Left.String())
	}
	if e.Unwrap != nil {
		b.WriteByte('\n')
		indent(b, level+1)
		b.WriteString(e.Unwrap.String())
	}
	writeRangeSuffix(b, e)
}

// writeCall writes "head(" , each argument on its own indented line
// (comma-separated), then ")" at level. Arguments are Exprs or, for plain
// parameters, already-printed strings.
func writeCall(b *strings.Builder, head string, level int, args ...any) {
	indent(b, level)
	b.WriteString(head)
	b.WriteString("(\n")
	for i, a := range args {
		if i > 0 {
			b.WriteString(",\n")
		}
		switch a := a.(type) {
		case Expr:
			writePretty(b, a, level+1)
		case string:
			indent(b, level+1)
			b.WriteString(a)
		}
	}
	b.WriteByte('\n')
	indent(b, level)
	b.WriteByte(')')
}

func writePrettyRangeAggregation(b *strings.Builder, e *RangeAggregationExpr, level int) {
	args := []any{}
	if e.Params != nil {
		args = append(args, formatFloat(*e.Params))
	}
	writeCall(b, e.Operation, level, append(args, e.Left)...)
	if e.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(e.Grouping.String())
	}
}

func writePrettyVectorAggregation(b *strings.Builder, e *VectorAggregationExpr, level int) {
	head := e.Operation
	if e.Grouping != nil {
		head += " " + e.Grouping.String() + " "
	}
	args := []any{}
	if e.Operation == OpTypeTopK || e.Operation == OpTypeBottomK {
		args = append(args, strconv.Itoa(e.Params))
	}
	writeCall(b, head, level, append(args, e.Left)...)
}

func writePrettyBinOp(b *strings.Builder, e *BinOpExpr, level int) {
	p := binOpPrecedence(e.Op)
	rightAssoc := e.Op == OpTypePow
	writePrettyBinOpSide(b, e.LHS, p, rightAssoc, level+1)
	b.WriteByte('\n')
	indent(b, level)
	b.WriteString(e.Op)
	b.WriteString(binOpModifiers(e.Opts))
	b.WriteByte('\n')
	writePrettyBinOpSide(b, e.RHS, p, !rightAssoc, level+1)
}

// writePrettyBinOpSide is writeBinOpSide's layout: a parenthesised side
// puts "(" and ")" on lines of their own around its indented operation.
func writePrettyBinOpSide(b *strings.Builder, side SampleExpr, parent int, parenOnEqual bool, level int) {
	if !binOpSideNeedsParens(side, parent, parenOnEqual) {
		writePretty(b, side, level)
		return
	}
	if s := "(" + side.String() + ")"; fits(s, level) {
		indent(b, level)
		b.WriteString(s)
		return
	}
	indent(b, level)
	b.WriteString("(\n")
	writePretty(b, side, level+1)
	b.WriteByte('\n')
	indent(b, level)
	b.WriteByte(')')
}

func writePrettyLabelReplace(b *strings.Builder, e *LabelReplaceExpr, level int) {
	writeCall(b, "label_replace", level, e.Left,
		strconv.Quote(e.Dst), strconv.Quote(e.Replacement), strconv.Quote(e.Src), strconv.Quote(e.Regex))
}
