package log

import (
	"bytes"
	"errors"
	"fmt"
)

// patternNode is one piece of a pattern: a literal, or a capture (named or
// the unnamed `<_>`).
type patternNode struct {
	literal []byte
	capture string // "" for a literal; "_" for <_>
}

// patternMatcher is a parsed pattern expression such as
// `<ip> - - <_> "<method> <uri> <_>" <status>`.
type patternMatcher struct {
	nodes []patternNode
	names []string // named captures in order
}

var (
	errPatternNoCapture = errors.New("at least one capture is required")
)

// isCaptureName reports whether s is a valid capture name.
func isCaptureName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// parsePattern parses a pattern. A `<...>` that is not a valid capture name
// is literal text. requireNamed is the parser's rule (the line filter also
// accepts patterns of unnamed captures only).
func parsePattern(p string, requireNamed bool) (*patternMatcher, error) {
	m := &patternMatcher{}
	var lit []byte
	seen := map[string]bool{}
	for i := 0; i < len(p); {
		if p[i] == '<' {
			if end := indexByteFrom(p, '>', i+1); end > 0 && isCaptureName(p[i+1:end]) {
				name := p[i+1 : end]
				if len(lit) > 0 {
					m.nodes = append(m.nodes, patternNode{literal: lit})
					lit = nil
				}
				if n := len(m.nodes); n > 0 && m.nodes[n-1].capture != "" {
					return nil, fmt.Errorf("found consecutive capture '<%s><%s>': invalid expression", m.nodes[n-1].capture, name)
				}
				if name != "_" {
					if seen[name] {
						return nil, fmt.Errorf("duplicate capture name (%s): invalid expression", name)
					}
					seen[name] = true
					m.names = append(m.names, name)
				}
				m.nodes = append(m.nodes, patternNode{capture: name})
				i = end + 1
				continue
			}
		}
		lit = append(lit, p[i])
		i++
	}
	if len(lit) > 0 {
		m.nodes = append(m.nodes, patternNode{literal: lit})
	}
	if len(m.nodes) == 0 {
		return nil, errors.New("empty pattern")
	}
	if requireNamed && len(m.names) == 0 {
		return nil, errPatternNoCapture
	}
	return m, nil
}

func indexByteFrom(s string, c byte, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// test reports whether the line matches the pattern (the |> filter), with
// Loki's rules: each literal is found at its first occurrence after the
// previous one; a capture may not be empty (a literal found right where
// the previous one ended, other than the first, fails); a pattern ending in
// a literal must end the line and one ending in a capture needs text left
// for it. Unlike the parser, a leading literal is not anchored here.
func (m *patternMatcher) test(line []byte) bool {
	if len(line) == 0 {
		return false
	}
	off := 0
	for i, n := range m.nodes {
		if n.capture != "" {
			continue
		}
		j := bytes.Index(line[off:], n.literal)
		if j < 0 || (i != 0 && j == 0) {
			return false
		}
		off += j + len(n.literal)
	}
	endsOnCapture := m.nodes[len(m.nodes)-1].capture != ""
	return endsOnCapture == (off != len(line))
}

// match extracts the captures of the pattern parser into dst (one slice per
// named capture, nil when not reached). Like Loki's parser it is lenient:
// when a literal is missing, the capture before it takes the rest of the
// line and extraction stops; a leading literal must still be a prefix. It
// reports false when nothing could be extracted.
func (m *patternMatcher) match(line []byte, dst [][]byte) bool {
	for i := range dst {
		dst[i] = nil
	}
	if len(line) == 0 {
		return false
	}
	nodes := m.nodes
	if nodes[0].capture == "" {
		if !bytes.HasPrefix(line, nodes[0].literal) {
			return false
		}
		line = line[len(nodes[0].literal):]
		nodes = nodes[1:]
	}
	n := 0
	for len(nodes) > 0 {
		name := nodes[0].capture
		if len(nodes) == 1 {
			if name != "_" {
				dst[n] = line
			}
			return true
		}
		lit := nodes[1].literal
		nodes = nodes[2:]
		i := bytes.Index(line, lit)
		if i < 0 {
			if name != "_" {
				dst[n] = line
			}
			return true
		}
		if name != "_" {
			dst[n] = line[:i]
			n++
		}
		line = line[i+len(lit):]
	}
	return true
}

// requiredLiterals lists the pattern's literals: a matching line holds each.
func (m *patternMatcher) requiredLiterals() [][]string {
	var out [][]string
	for _, n := range m.nodes {
		if n.capture == "" && len(n.literal) > 0 {
			out = append(out, []string{string(n.literal)})
		}
	}
	return out
}

// PatternPart is one piece of a parsed pattern: literal text, or a capture
// (Capture is its name; "_" captures nothing).
type PatternPart struct {
	Literal string
	Capture string
}

// ParsePattern checks a pattern expression with the rules the pattern
// parser (requireNamed) or the |> and !> filters apply, and returns its
// pieces; the query parser validates and prints patterns with it, so both
// read a pattern the same way.
func ParsePattern(p string, requireNamed bool) ([]PatternPart, error) {
	m, err := parsePattern(p, requireNamed)
	if err != nil {
		return nil, err
	}
	parts := make([]PatternPart, len(m.nodes))
	for i, n := range m.nodes {
		parts[i] = PatternPart{Literal: string(n.literal), Capture: n.capture}
	}
	return parts, nil
}
