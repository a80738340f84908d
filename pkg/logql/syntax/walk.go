package syntax

import "github.com/lokal-logs/lokal/pkg/labels"

// Walk calls fn for e and, while fn returns true, for each of its
// descendants in source order: selectors, stages, unwrap filters and
// operands. The alternatives of a line filter (`|= "a" or "b"`) belong to
// their filter and are not visited on their own.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch x := e.(type) {
	case *PipelineExpr:
		Walk(x.Left, fn)
		for _, s := range x.Stages {
			Walk(s, fn)
		}
	case *LogRangeExpr:
		Walk(x.Left, fn)
		if x.Unwrap != nil {
			Walk(x.Unwrap, fn)
		}
	case *UnwrapExpr:
		for _, f := range x.PostFilters {
			Walk(f, fn)
		}
	case *RangeAggregationExpr:
		Walk(x.Left, fn)
	case *VectorAggregationExpr:
		Walk(x.Left, fn)
	case *BinOpExpr:
		Walk(x.LHS, fn)
		Walk(x.RHS, fn)
	case *LabelReplaceExpr:
		Walk(x.Left, fn)
	}
}

// Selectors returns the matchers of every stream selector in e, in source
// order: one for a log query, one per selector of a metric or binary query,
// none for a query such as vector(1).
func Selectors(e Expr) [][]*labels.Matcher {
	var out [][]*labels.Matcher
	Walk(e, func(n Expr) bool {
		if m, ok := n.(*MatcherExpr); ok {
			out = append(out, m.Mts)
		}
		return true
	})
	return out
}
