package engine

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template/parse"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// Hints say what Loki leaves unsaid about a query that runs but cannot mean
// what its author wants: a line_format, label_format or label filter naming
// a field that no stream has and no stage before it extracts (it reads as
// empty), and a stream selector whose label has no values, or no matching
// value, in the range. They go to Result.Warnings and never change the
// answer.

// hints returns the hints for expr evaluated over p's range. res is the
// answer: selectors are looked up in the store only when they matter (a
// stage names a field, or the answer is empty). A failing lookup gives no
// hint rather than failing the query.
func (e *Engine) hints(ctx context.Context, expr syntax.Expr, p Params, res *Result) []string {
	start, end := hintRange(expr, p)
	empty := resultEmpty(res)
	var out []string
	pipelines := 0 // index of the pipeline in Walk order, for the rewrite
	syntax.Walk(expr, func(n syntax.Expr) bool {
		switch x := n.(type) {
		case *syntax.PipelineExpr:
			out = append(out, e.selectorHints(ctx, expr, x.Left.Mts, x, pipelines, start, end, empty)...)
			pipelines++
			return false
		case *syntax.MatcherExpr:
			out = append(out, e.selectorHints(ctx, expr, x.Mts, nil, 0, start, end, empty)...)
			return false
		}
		return true
	})
	return out
}

// resultEmpty reports an answer with no entry, series or sample.
func resultEmpty(res *Result) bool {
	switch res.Type {
	case ValueStreams:
		for _, s := range res.Streams {
			if len(s.Entries) > 0 {
				return false
			}
		}
		return true
	case ValueMatrix:
		return len(res.Matrix) == 0
	case ValueVector:
		return len(res.Vector) == 0
	}
	return false
}

// LookBack is how far before its evaluation time a query reads: its
// longest log range plus that range's offset (a negative offset reads
// later, so it does not shorten the reach back).
func LookBack(expr syntax.Expr) time.Duration {
	var back time.Duration
	syntax.Walk(expr, func(n syntax.Expr) bool {
		if r, ok := n.(*syntax.LogRangeExpr); ok {
			back = max(back, r.Interval+max(r.Offset, 0))
		}
		return true
	})
	return back
}

// hintRange is the time the query reads: its range widened by the longest
// range and offset of its log ranges.
func hintRange(expr syntax.Expr, p Params) (int64, int64) {
	start, end := p.Start, p.End
	if p.Instant {
		if start.IsZero() {
			start = end
		}
		end = start
	}
	if back := LookBack(expr); back > 0 {
		return start.Add(-back).UnixNano(), end.UnixNano() + 1
	}
	return start.UnixNano(), end.UnixNano()
}

// selectorHints checks one stream selector, and its pipeline when pl is
// not nil (the idx-th pipeline of root in Walk order).
func (e *Engine) selectorHints(ctx context.Context, root syntax.Expr, ms []*labels.Matcher, pl *syntax.PipelineExpr, idx int, start, end int64, empty bool) []string {
	var uses []fieldUse
	if pl != nil {
		uses = fieldUses(pl.Stages)
	}
	if len(uses) == 0 && !empty {
		return nil
	}
	streams, err := e.r.Streams(ctx, ms, start, end)
	if err != nil {
		return nil
	}
	if len(streams) == 0 {
		return e.emptySelectorHints(ctx, ms, start, end)
	}
	have := map[string]bool{}
	for _, ls := range streams {
		for _, l := range ls {
			have[l.Name] = true
		}
	}
	var out []string
	for _, u := range uses {
		var missing []string
		for _, f := range u.fields {
			if !have[f] && !slices.Contains(missing, f) {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			out = append(out, missingFieldHint(root, idx, u, missing))
		}
	}
	return out
}

// emptySelectorHints explains a selector that selects no stream: a label
// with no values in the range, or none the matcher accepts.
func (e *Engine) emptySelectorHints(ctx context.Context, ms []*labels.Matcher, start, end int64) []string {
	var out []string
	sel := (&syntax.MatcherExpr{Mts: ms}).String()
	for _, m := range ms {
		if m.Matches("") {
			continue // also true of streams without the label
		}
		vals, err := e.r.LabelValues(ctx, m.Name, nil, start, end)
		if err != nil {
			return nil
		}
		if len(vals) == 0 {
			names, err := e.r.LabelNames(ctx, start, end)
			if err != nil {
				return nil
			}
			out = append(out, fmt.Sprintf("no stream has a `%s` label between %s and %s, so %s selects nothing; labels there: %s",
				m.Name, fmtNs(start), fmtNs(end), sel, listOr(names, "none")))
			continue
		}
		if !slices.ContainsFunc(vals, m.Matches) {
			out = append(out, fmt.Sprintf("`%s` has no value matching %s between %s and %s, so %s selects nothing; its values there: %s",
				m.Name, (&syntax.MatcherExpr{Mts: []*labels.Matcher{m}}).String(), fmtNs(start), fmtNs(end), sel, listOr(vals, "none")))
		}
	}
	return out
}

func fmtNs(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }

// listOr lists at most 12 names, or says none.
func listOr(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	names = slices.Clone(names)
	sort.Strings(names)
	if len(names) > 12 {
		return strings.Join(names[:12], ", ") + fmt.Sprintf(" and %d more", len(names)-12)
	}
	return strings.Join(names, ", ")
}

// fieldUse is a stage that reads fields: the stage's index in its pipeline,
// how to name it in a hint, and the fields no stage before it extracts.
type fieldUse struct {
	stage  int
	what   string
	fields []string
}

// fieldUses returns the stages of a pipeline that read fields which no
// stage before them extracts; whether the stream has them is for the
// caller to say. After a parser that extracts whatever the line holds
// (json, logfmt, unpack without parameters) any field may exist, so
// nothing after it is returned. Names starting with "__" (__error__) are
// Loki's own and never reported.
func fieldUses(stages []syntax.StageExpr) []fieldUse {
	made := map[string]bool{}
	var out []fieldUse
	add := func(i int, what string, names []string) {
		var fields []string
		for _, n := range names {
			if n != "" && !strings.HasPrefix(n, "__") && !made[n] && !slices.Contains(fields, n) {
				fields = append(fields, n)
			}
		}
		if len(fields) > 0 {
			out = append(out, fieldUse{stage: i, what: what, fields: fields})
		}
	}
	for i, st := range stages {
		switch x := st.(type) {
		case *syntax.LabelParserExpr:
			switch x.Kind {
			case syntax.ParserRegexp:
				re, err := regexp.Compile(x.Param)
				if err != nil {
					return out
				}
				for _, n := range re.SubexpNames() {
					made[n] = true
				}
			case syntax.ParserPattern:
				for _, m := range patternName.FindAllStringSubmatch(x.Param, -1) {
					made[m[1]] = true
				}
			default: // json, logfmt, unpack: any field
				return out
			}
		case *syntax.JSONExpressionParserExpr:
			for _, p := range x.Params {
				made[p.Name] = true
			}
		case *syntax.LogfmtExpressionParserExpr:
			for _, p := range x.Params {
				made[p.Name] = true
			}
		case *syntax.LabelFilterExpr:
			add(i, "`"+x.String()+"`", filterNames(x.Filter, nil))
		case *syntax.LineFmtExpr:
			add(i, "line_format", templateFields(x.Value))
		case *syntax.LabelFmtExpr:
			var names []string
			for _, f := range x.Formats {
				if f.Rename {
					names = append(names, f.Value)
				} else {
					names = append(names, templateFields(f.Value)...)
				}
			}
			add(i, "label_format", names)
			for _, f := range x.Formats {
				made[f.Name] = true
			}
		}
	}
	return out
}

// patternName finds a pattern parser's named captures (<_> names none).
var patternName = regexp.MustCompile(`<([A-Za-z][A-Za-z0-9_]*|_[A-Za-z0-9_]+)>`)

// filterNames lists the labels a label filter compares.
func filterNames(f syntax.LabelFilter, out []string) []string {
	switch x := f.(type) {
	case *syntax.BinaryLabelFilter:
		return filterNames(x.Right, filterNames(x.Left, out))
	case *syntax.StringLabelFilter:
		return append(out, x.Matcher.Name)
	case *syntax.NumericLabelFilter:
		return append(out, x.Name)
	case *syntax.DurationLabelFilter:
		return append(out, x.Name)
	case *syntax.BytesLabelFilter:
		return append(out, x.Name)
	case *syntax.IPLabelFilter:
		return append(out, x.Name)
	}
	return out
}

// templateFields lists the fields a template reads from its data ({{.x}},
// {{ if .x }}, {{ $.x }}), but not those inside with and range, where the
// dot is something else. A template that does not parse gives none: the
// query reports it.
func templateFields(text string) []string {
	t := parse.New("hint")
	t.Mode = parse.SkipFuncCheck
	if _, err := t.Parse(text, "", "", map[string]*parse.Tree{}); err != nil || t.Root == nil {
		return nil
	}
	var out []string
	var walk func(n parse.Node, inDot bool)
	var walkBranch func(b *parse.BranchNode, inDot, inBody bool)
	walk = func(n parse.Node, inDot bool) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c, inDot)
			}
		case *parse.ActionNode:
			walk(x.Pipe, inDot)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c, inDot)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a, inDot)
			}
		case *parse.ChainNode:
			walk(x.Node, inDot)
		case *parse.FieldNode:
			if inDot && len(x.Ident) > 0 {
				out = append(out, x.Ident[0])
			}
		case *parse.VariableNode:
			if len(x.Ident) > 1 && x.Ident[0] == "$" {
				out = append(out, x.Ident[1])
			}
		case *parse.IfNode:
			walkBranch(&x.BranchNode, inDot, inDot)
		case *parse.WithNode: // the dot is the pipeline's value inside
			walkBranch(&x.BranchNode, inDot, false)
		case *parse.RangeNode:
			walkBranch(&x.BranchNode, inDot, false)
		}
	}
	walkBranch = func(b *parse.BranchNode, inDot, inBody bool) {
		walk(b.Pipe, inDot)
		walk(b.ElseList, inDot)
		walk(b.List, inBody)
	}
	walk(t.Root, true)
	return out
}

// missingFieldHint words the hint for fields that are not labels where a
// stage reads them, with the query rewritten to extract them first: one
// | regexp per field, taking its value up to a comma or space, so
// run.sh's "text_len=12, seed=42" gives 12 and 42 (| logfmt would keep
// "12,").
func missingFieldHint(root syntax.Expr, idx int, u fieldUse, fields []string) string {
	quoted := make([]string, len(fields))
	for i, f := range fields {
		quoted[i] = "`" + f + "`"
	}
	var b strings.Builder
	it, reads := "it", "it reads"
	if len(fields) == 1 {
		fmt.Fprintf(&b, "%s is not a label here", quoted[0])
	} else {
		it, reads = "them", "they read"
		fmt.Fprintf(&b, "%s and %s are not labels here", strings.Join(quoted[:len(quoted)-1], ", "), quoted[len(quoted)-1])
	}
	fmt.Fprintf(&b, " (no stream has %s and no stage before %s extracts %s, so %s as empty); add `| logfmt` or `| regexp` before %s", it, u.what, it, reads, u.what)
	if q := rewriteWithRegexps(root, idx, u.stage, fields); q != "" {
		fmt.Fprintf(&b, ", e.g. %s", q)
	}
	return b.String()
}

// rewriteWithRegexps returns root with a | regexp stage per field inserted
// before stage st of its idx-th pipeline, or "" if that fails. It works on
// a copy parsed from root's text, so root, which callers may share, is
// never changed.
func rewriteWithRegexps(root syntax.Expr, idx, st int, fields []string) string {
	cp, err := syntax.ParseExpr(root.String())
	if err != nil {
		return ""
	}
	var pl *syntax.PipelineExpr
	n := 0
	syntax.Walk(cp, func(e syntax.Expr) bool {
		if x, ok := e.(*syntax.PipelineExpr); ok {
			if n == idx {
				pl = x
			}
			n++
			return false
		}
		return true
	})
	if pl == nil || st > len(pl.Stages) {
		return ""
	}
	add := make([]syntax.StageExpr, 0, len(fields))
	for _, f := range fields {
		add = append(add, &syntax.LabelParserExpr{Kind: syntax.ParserRegexp, Param: regexp.QuoteMeta(f) + "=(?P<" + f + ">[^, ]+)"})
	}
	pl.Stages = slices.Insert(slices.Clone(pl.Stages), st, add...)
	q := cp.String()
	if _, err := syntax.ParseExpr(q); err != nil {
		return "" // a field name a regexp group cannot take
	}
	return q
}
