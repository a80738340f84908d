package syntax

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
