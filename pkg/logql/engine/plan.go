package engine

import (
	"fmt"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// selector is a compiled log selector: what to ask the store and what to
// run on every line it returns.
type selector struct {
	matchers []*labels.Matcher
	pipeline *log.Pipeline
	hint     *store.LineFilterHint
	// lineFilters are the filters every wanted line, as stored, must pass
	// (those before any stage rewrites the line); filterKey prints them.
	lineFilters []log.Filter
	filterKey   string
}

func (e *Engine) compileSelector(sel syntax.LogSelectorExpr) (*selector, error) {
	out := &selector{matchers: sel.Matchers()}
	var stages []syntax.StageExpr
	if p, ok := sel.(*syntax.PipelineExpr); ok {
		stages = p.Stages
	}
	var built []log.Stage
	var groups [][]string
	// Filters apply to the line as the store holds it only until a stage
	// rewrites the line; after that their literals say nothing about the
	// stored text and cannot prune blocks.
	lineIntact := true
	for _, st := range stages {
		s, err := buildStage(st)
		if err != nil {
			return nil, err
		}
		if log.RewritesLine(s) {
			// line_format, decolorize and unpack all replace the line.
			lineIntact = false
		}
		if _, ok := st.(*syntax.LineFilterExpr); ok && lineIntact {
			if f, ok := log.FilterOf(s); ok {
				groups = append(groups, log.RequiredLiterals(f)...)
				out.lineFilters = append(out.lineFilters, f)
				out.filterKey += " " + st.String()
			}
		}
		built = append(built, s)
	}
	// A label filter after a parser decides on a few labels: the parsers
	// first extract only those, and only lines that pass are parsed in full.
	out.pipeline = log.NewPipeline(built...)
	if !e.noProject {
		out.pipeline = out.pipeline.Prefiltered()
	}
	if len(groups) > 0 {
		out.hint = &store.LineFilterHint{Groups: groups}
	}
	return out, nil
}

// lineFilter builds one line filter with its `or` alternatives (see
// syntax.LineFilterExpr.Filter); a bad one is the client's error.
func lineFilter(x *syntax.LineFilterExpr) (log.Filter, error) {
	f, err := x.Filter()
	if err != nil {
		return nil, queryErr(ErrBadQuery, "%s", err.Error())
	}
	return f, nil
}

// unusedParsersDropped is the selector a range aggregation reads, less the
// parsers whose labels nothing can see. Under a sum without grouping
// (pushed down into x.Grouping as an empty grouping) with no unwrap and no
// stage that reads labels, Loki's queriers skip the parsers altogether
// (their parse hints ask for no label), so a line a parser would fail on
// counts like any other instead of failing the query with a pipeline
// error: sum(count_over_time({job="a"} | json [5m])) over lines some not
// JSON is an answer in Loki. Only parsers that leave the line as it is go;
// unpack rewrites it and stays.
func unusedParsersDropped(x *syntax.RangeAggregationExpr) syntax.LogSelectorExpr {
	lr := x.Left
	p, ok := lr.Left.(*syntax.PipelineExpr)
	if !ok || lr.Unwrap != nil || x.Grouping == nil || x.Grouping.Without || len(x.Grouping.Groups) > 0 {
		return lr.Left
	}
	kept := make([]syntax.StageExpr, 0, len(p.Stages))
	for _, st := range p.Stages {
		switch y := st.(type) {
		case *syntax.LineFilterExpr:
			kept = append(kept, st)
		case *syntax.LabelParserExpr:
			if y.Kind == syntax.ParserUnpack {
				return lr.Left
			}
		case *syntax.JSONExpressionParserExpr, *syntax.LogfmtExpressionParserExpr:
		default:
			return lr.Left
		}
	}
	switch len(kept) {
	case len(p.Stages):
		return lr.Left
	case 0:
		return p.Left
	}
	return &syntax.PipelineExpr{Left: p.Left, Stages: kept}
}

// sampleExtractor builds what a range aggregation counts or unwraps.
func sampleExtractor(x *syntax.RangeAggregationExpr, p *log.Pipeline) (*log.SampleExtractor, error) {
	u := x.Left.Unwrap
	if u == nil {
		switch x.Operation {
		case syntax.OpRangeTypeCount, syntax.OpRangeTypeRate, syntax.OpRangeTypeAbsent:
			return log.NewLineSampleExtractor(log.LineCount, p), nil
		case syntax.OpRangeTypeBytes, syntax.OpRangeTypeBytesRate:
			return log.NewLineSampleExtractor(log.LineBytes, p), nil
		}
		return nil, queryErr(ErrBadQuery, "parse error : invalid aggregation %s without unwrap", x.Operation)
	}
	var conv log.Conversion
	switch u.Operation {
	case syntax.UnwrapNone:
		conv = log.ConvNone
	case syntax.UnwrapDuration:
		conv = log.ConvDuration
	case syntax.UnwrapDurationSeconds:
		conv = log.ConvDurationSeconds
	case syntax.UnwrapBytes:
		conv = log.ConvBytes
	default:
		return nil, queryErr(ErrBadQuery, "unknown unwrap conversion %q", u.Operation)
	}
	switch x.Operation {
	case syntax.OpRangeTypeCount, syntax.OpRangeTypeBytes, syntax.OpRangeTypeBytesRate, syntax.OpRangeTypeAbsent:
		return nil, queryErr(ErrBadQuery, "parse error : invalid aggregation %s with unwrap", x.Operation)
	}
	var post []log.Stage
	for _, f := range u.PostFilters {
		s, err := buildStage(f)
		if err != nil {
			return nil, err
		}
		post = append(post, s)
	}
	// A line without the unwrapped label (or with it empty) gives no
	// sample rather than a conversion error (Loki since v2.6); the log
	// package's extractor implements that.
	return log.NewLabelSampleExtractor(u.Identifier, conv, p, post...), nil
}

// projected is ex with its parsers extracting only the labels x observes:
// under `by (g)` (its own or a sum's pushed down) every sample's labels are
// cut to g, so the others need not be extracted (a sample with an error
// keeps all its labels, and the log package extracts it in full). Without
// grouping, or with `without`, every label is observed.
func projected(x *syntax.RangeAggregationExpr, ex *log.SampleExtractor) *log.SampleExtractor {
	if x.Grouping == nil || x.Grouping.Without {
		return ex
	}
	return ex.ProjectLabels(x.Grouping.Groups)
}

// buildStage maps one AST stage to its log stage.
func buildStage(st syntax.StageExpr) (log.Stage, error) {
	switch x := st.(type) {
	case *syntax.LineFilterExpr:
		f, err := lineFilter(x)
		if err != nil {
			return nil, err
		}
		return log.NewFilterStage(f), nil
	}
	return buildOtherStage(st)
}

func buildOtherStage(st syntax.StageExpr) (log.Stage, error) {
	bad := func(what string, err error) error {
		return queryErr(ErrBadQuery, "%s: %v", what, err)
	}
	switch x := st.(type) {
	case *syntax.LabelParserExpr:
		switch x.Kind {
		case syntax.ParserJSON:
			return log.NewJSONParser(), nil
		case syntax.ParserLogfmt:
			return log.NewLogfmtParser(log.LogfmtOptions{Strict: x.Strict, KeepEmpty: x.KeepEmpty}), nil
		case syntax.ParserRegexp:
			s, err := log.NewRegexpParser(x.Param)
			if err != nil {
				return nil, bad("invalid regexp parser", err)
			}
			return s, nil
		case syntax.ParserPattern:
			s, err := log.NewPatternParser(x.Param)
			if err != nil {
				return nil, bad("invalid pattern parser", err)
			}
			return s, nil
		case syntax.ParserUnpack:
			return log.NewUnpackParser(), nil
		}
		return nil, queryErr(ErrBadQuery, "unknown parser %q", x.Kind)
	case *syntax.JSONExpressionParserExpr:
		s, err := log.NewJSONExpressionParser(extractions(x.Params))
		if err != nil {
			return nil, bad("invalid json parser", err)
		}
		return s, nil
	case *syntax.LogfmtExpressionParserExpr:
		s, err := log.NewLogfmtExpressionParser(log.LogfmtOptions{Strict: x.Strict, KeepEmpty: x.KeepEmpty}, extractions(x.Params))
		if err != nil {
			return nil, bad("invalid logfmt parser", err)
		}
		return s, nil
	case *syntax.LabelFilterExpr:
		return labelFilter(x.Filter)
	case *syntax.LineFmtExpr:
		s, err := log.NewLineFormatter(x.Value)
		if err != nil {
			// The log package words it as Loki does ("invalid line template: …").
			return nil, queryErr(ErrBadQuery, "%v", err)
		}
		return s, nil
	case *syntax.LabelFmtExpr:
		fs := make([]log.LabelFormat, len(x.Formats))
		for i, f := range x.Formats {
			fs[i] = log.LabelFormat{Name: f.Name, Value: f.Value, Rename: f.Rename}
		}
		s, err := log.NewLabelsFormatter(fs)
		if err != nil {
			return nil, queryErr(ErrBadQuery, "%v", err)
		}
		return s, nil
	case *syntax.DropLabelsExpr:
		names, ms := labelRefs(x.Labels)
		return log.NewDropStage(names, ms), nil
	case *syntax.KeepLabelsExpr:
		names, ms := labelRefs(x.Labels)
		return log.NewKeepStage(names, ms), nil
	case *syntax.DecolorizeExpr:
		return log.NewDecolorizeStage(), nil
	}
	return nil, queryErr(ErrBadQuery, "unsupported pipeline stage %s", fmt.Sprint(st))
}

func extractions(ps []syntax.LabelExtraction) []log.LabelExtraction {
	out := make([]log.LabelExtraction, len(ps))
	for i, p := range ps {
		out[i] = log.LabelExtraction{Label: p.Name, Expr: p.Expr}
	}
	return out
}

func labelRefs(refs []syntax.LabelRef) ([]string, []*labels.Matcher) {
	var names []string
	var ms []*labels.Matcher
	for _, r := range refs {
		if r.Matcher != nil {
			ms = append(ms, r.Matcher)
		} else {
			names = append(names, r.Name)
		}
	}
	return names, ms
}

func cmpOp(op syntax.ComparisonOp) (log.CmpOp, error) {
	switch op {
	case syntax.CmpEq:
		return log.CmpEq, nil
	case syntax.CmpNeq:
		return log.CmpNe, nil
	case syntax.CmpGt:
		return log.CmpGt, nil
	case syntax.CmpGte:
		return log.CmpGe, nil
	case syntax.CmpLt:
		return log.CmpLt, nil
	case syntax.CmpLte:
		return log.CmpLe, nil
	}
	return 0, queryErr(ErrBadQuery, "unknown comparison operator %q", op)
}

func labelFilter(f syntax.LabelFilter) (log.Stage, error) {
	switch x := f.(type) {
	case *syntax.BinaryLabelFilter:
		l, err := labelFilter(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := labelFilter(x.Right)
		if err != nil {
			return nil, err
		}
		if x.And {
			return log.NewAndLabelFilter(l, r), nil
		}
		return log.NewOrLabelFilter(l, r), nil
	case *syntax.StringLabelFilter:
		return log.NewStringLabelFilter(x.Matcher), nil
	case *syntax.NumericLabelFilter:
		op, err := cmpOp(x.Op)
		if err != nil {
			return nil, err
		}
		return log.NewNumericLabelFilter(x.Name, op, x.Value), nil
	case *syntax.DurationLabelFilter:
		op, err := cmpOp(x.Op)
		if err != nil {
			return nil, err
		}
		return log.NewDurationLabelFilter(x.Name, op, x.Value), nil
	case *syntax.BytesLabelFilter:
		op, err := cmpOp(x.Op)
		if err != nil {
			return nil, err
		}
		// Loki compares with the literal as its frontend prints it.
		return log.NewBytesLabelFilter(x.Name, op, log.QueriedBytes(x.Value)), nil
	case *syntax.IPLabelFilter:
		return log.NewIPLabelFilter(x.Name, x.Pattern, x.Negate), nil
	}
	return nil, queryErr(ErrBadQuery, "unsupported label filter %v", f)
}
