package config

import (
	"fmt"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// Selector is a match stage's selector: a LogQL stream selector plus
// optional line filters, e.g. {job="cosyvoice3", level=~"error|critical"} |= "CUDA".
type Selector struct {
	Matchers []*labels.Matcher
	// LineFilters are the selector's line filters (|=, !=, |~, !~, |>, !>,
	// with `or` and ip()), as the query engine runs them.
	LineFilters []log.Filter
}

// Matches reports whether an entry with these labels and line is selected.
func (s *Selector) Matches(ls labels.Labels, line string) bool {
	if !labels.MatchLabels(ls, s.Matchers...) {
		return false
	}
	for _, f := range s.LineFilters {
		if !log.MatchString(f, line) {
			return false
		}
	}
	return true
}

// ParseSelector parses the selector of a match stage with LogQL's parser
// (syntax.ParseFilteredSelector). Parsers and other LogQL pipeline stages
// are rejected: Promtail's match selects, it does not transform. Unlike a
// query, a selector that matches every stream ({app=~".*"}) is allowed.
// Errors give the position in the selector.
func ParseSelector(s string) (*Selector, error) {
	e, err := syntax.ParseFilteredSelector(s)
	if err != nil {
		if !strings.HasPrefix(strings.TrimSpace(s), "{") {
			// The commonest slip: the braces left out.
			return nil, fmt.Errorf("selector %q: must start with {: %w", s, err)
		}
		return nil, fmt.Errorf("selector %q: %w", s, err)
	}
	sel := &Selector{Matchers: e.Matchers()}
	if p, ok := e.(*syntax.PipelineExpr); ok {
		for _, st := range p.Stages {
			// ParseFilteredSelector admits line filters only.
			f, err := st.(*syntax.LineFilterExpr).Filter()
			if err != nil {
				return nil, fmt.Errorf("selector %q: %w", s, err)
			}
			sel.LineFilters = append(sel.LineFilters, f)
		}
	}
	return sel, nil
}
