package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// Selector is a match stage's selector: a LogQL stream selector plus
// optional line filters, e.g. {job="cosyvoice3", level=~"error|critical"} |= "CUDA".
type Selector struct {
	Matchers    []*labels.Matcher
	LineFilters []LineFilter
}

// LineFilter is one |=, !=, |~ or !~ filter on the line.
type LineFilter struct {
	Op    string // "|=", "!=", "|~", "!~"
	Value string
	Re    *regexp.Regexp // for |~ and !~
}

// Matches reports whether the line passes the filter.
func (f LineFilter) Matches(line string) bool {
	switch f.Op {
	case "|=":
		return strings.Contains(line, f.Value)
	case "!=":
		return !strings.Contains(line, f.Value)
	case "|~":
		return f.Re.MatchString(line)
	default:
		return !f.Re.MatchString(line)
	}
}

// Matches reports whether an entry with these labels and line is selected.
func (s *Selector) Matches(ls labels.Labels, line string) bool {
	if !labels.MatchLabels(ls, s.Matchers...) {
		return false
	}
	for _, f := range s.LineFilters {
		if !f.Matches(line) {
			return false
		}
	}
	return true
}

// ParseSelector parses the selector of a match stage. Parsers and other
// LogQL pipeline stages are rejected: Promtail's match selects, it does not
// transform.
func ParseSelector(s string) (*Selector, error) {
	sc := selScanner{s: s}
	sc.skip()
	if !sc.eat("{") {
		return nil, fmt.Errorf("selector %q: must start with {", s)
	}
	sel := &Selector{}
	sc.skip()
	for !sc.eat("}") {
		if len(sel.Matchers) > 0 {
			if !sc.eat(",") {
				return nil, fmt.Errorf("selector %q: expected , or } at offset %d", s, sc.i)
			}
			sc.skip()
		}
		name := sc.ident()
		if name == "" {
			return nil, fmt.Errorf("selector %q: expected a label name at offset %d", s, sc.i)
		}
		sc.skip()
		var t labels.MatchType
		switch {
		case sc.eat("=~"):
			t = labels.MatchRegexp
		case sc.eat("!~"):
			t = labels.MatchNotRegexp
		case sc.eat("!="):
			t = labels.MatchNotEqual
		case sc.eat("="):
			t = labels.MatchEqual
		default:
			return nil, fmt.Errorf("selector %q: expected =, !=, =~ or !~ after %s", s, name)
		}
		sc.skip()
		v, err := sc.str()
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		m, err := labels.NewMatcher(t, name, v)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		sel.Matchers = append(sel.Matchers, m)
		sc.skip()
		if sc.i >= len(s) {
			return nil, fmt.Errorf("selector %q: missing }", s)
		}
	}
	if len(sel.Matchers) == 0 {
		return nil, fmt.Errorf("selector %q: needs at least one label matcher", s)
	}
	for {
		sc.skip()
		if sc.i >= len(s) {
			break
		}
		var op string
		for _, o := range []string{"|=", "!=", "|~", "!~"} {
			if sc.eat(o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, fmt.Errorf("selector %q: only line filters (|=, !=, |~, !~) may follow the braces, found %q", s, s[sc.i:])
		}
		sc.skip()
		v, err := sc.str()
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		f := LineFilter{Op: op, Value: v}
		if op == "|~" || op == "!~" {
			if f.Re, err = regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("selector %q: invalid regular expression %q: %w", s, v, err)
			}
		}
		sel.LineFilters = append(sel.LineFilters, f)
	}
	return sel, nil
}

type selScanner struct {
	s string
	i int
}

func (c *selScanner) skip() {
	for c.i < len(c.s) && (c.s[c.i] == ' ' || c.s[c.i] == '\t' || c.s[c.i] == '\n' || c.s[c.i] == '\r') {
		c.i++
	}
}

func (c *selScanner) eat(tok string) bool {
	if strings.HasPrefix(c.s[c.i:], tok) {
		c.i += len(tok)
		return true
	}
	return false
}

func (c *selScanner) ident() string {
	j := c.i
	for j < len(c.s) && (c.s[j] == '_' || (c.s[j] >= 'a' && c.s[j] <= 'z') || (c.s[j] >= 'A' && c.s[j] <= 'Z') || (j > c.i && c.s[j] >= '0' && c.s[j] <= '9')) {
		j++
	}
	id := c.s[c.i:j]
	c.i = j
	return id
}

func (c *selScanner) str() (string, error) {
	if c.i >= len(c.s) {
		return "", fmt.Errorf("expected a quoted string at the end")
	}
	q := c.s[c.i]
	if q != '"' && q != '`' {
		return "", fmt.Errorf("expected a quoted string at offset %d", c.i)
	}
	j := c.i + 1
	for j < len(c.s) && c.s[j] != q {
		if q == '"' && c.s[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(c.s) {
		return "", fmt.Errorf("unterminated string at offset %d", c.i)
	}
	raw := c.s[c.i : j+1]
	c.i = j + 1
	if q == '`' {
		return raw[1 : len(raw)-1], nil
	}
	v, err := strconv.Unquote(raw)
	if err != nil {
		return "", fmt.Errorf("bad string %s: %v", raw, err)
	}
	return v, nil
}
