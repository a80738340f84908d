package syntax

import "fmt"

// ParseFilteredSelector parses a stream selector followed by line filters
// only, e.g. {job="api", level=~"error|warn"} |= "timeout" != "retry", as
// Promtail's match stage takes it. Unlike ParseLogSelector it does not
// require a matcher that selects something ({app=~".*"} is accepted: a
// match stage filters entries already read, it does not select streams),
// but it needs at least one matcher. The result is a *MatcherExpr, or a
// *PipelineExpr whose stages are all *LineFilterExpr. Errors carry
// positions, as ParseExpr's do.
func ParseFilteredSelector(s string) (sel LogSelectorExpr, err error) {
	defer func() {
		if r := recover(); r != nil {
			sel, err = nil, &ParseError{Msg: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{src: s, toks: toks}
	start := p.i
	m, err := p.parseSelector()
	if err != nil {
		return nil, err
	}
	if len(m.Mts) == 0 {
		return nil, p.invalid(p.span(start), "a selector needs at least one label matcher")
	}
	var stages []StageExpr
	for {
		t := p.peek()
		if t.kind == tokEOF {
			break
		}
		if _, ok := lineFilterOps[t.kind]; !ok {
			return nil, p.unexpected(t, "a line filter (|=, !=, |~, !~, |> or !>): only line filters may follow the selector here")
		}
		f, err := p.parseLineFilter()
		if err != nil {
			return nil, err
		}
		stages = append(stages, f)
	}
	if len(stages) == 0 {
		return m, nil
	}
	return &PipelineExpr{Left: m, Stages: stages}, nil
}
