package config

import (
	"fmt"
	"strconv"
	"strings"
)

// JSONPathStep is one step of a JSON path: an object key or an array index.
type JSONPathStep struct {
	Key     string
	Index   int
	IsIndex bool
}

// JSONPath is the JMESPath subset Promtail users write in json stages:
// identifiers, "quoted keys", dots and [N] indexes (negative counts from the
// end), e.g. queue.depth, items[0].name, "k8s.pod".name.
type JSONPath []JSONPathStep

// ParseJSONPath parses a path and rejects, by name, the JMESPath features
// Lokal does not evaluate (wildcards, filters, pipes, functions).
func ParseJSONPath(s string) (JSONPath, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty JSON path")
	}
	var p JSONPath
	i := 0
	needKey := true // at the start and after a dot
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			if !needKey {
				return nil, fmt.Errorf("JSON path %q: expected . or [ at offset %d", s, i)
			}
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("JSON path %q: unterminated quoted key", s)
			}
			key, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("JSON path %q: bad quoted key %s", s, s[i:j+1])
			}
			p = append(p, JSONPathStep{Key: key})
			i = j + 1
			needKey = false
		case isIdentByte(c, true):
			if !needKey {
				return nil, fmt.Errorf("JSON path %q: expected . or [ at offset %d", s, i)
			}
			j := i
			for j < len(s) && isIdentByte(s[j], j > i) {
				j++
			}
			p = append(p, JSONPathStep{Key: s[i:j]})
			i = j
			needKey = false
		case c == '.':
			if needKey {
				return nil, fmt.Errorf("JSON path %q: unexpected . at offset %d", s, i)
			}
			needKey = true
			i++
		case c == '[':
			if needKey && len(p) > 0 {
				return nil, fmt.Errorf("JSON path %q: unexpected [ after . at offset %d", s, i)
			}
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("JSON path %q: unterminated [", s)
			}
			inner := s[i+1 : i+j]
			n, err := strconv.Atoi(inner)
			if err != nil {
				return nil, fmt.Errorf("JSON path %q: [%s] is not supported: Lokal evaluates keys, dots and [N] indexes only (no wildcards, slices or filters)", s, inner)
			}
			p = append(p, JSONPathStep{Index: n, IsIndex: true})
			i += j + 1
			needKey = false
		default:
			return nil, fmt.Errorf("JSON path %q: %q at offset %d is not supported: Lokal evaluates keys, dots and [N] indexes only (no pipes, functions, wildcards or filters)", s, string(c), i)
		}
	}
	if needKey {
		return nil, fmt.Errorf("JSON path %q: ends with a dot", s)
	}
	return p, nil
}

func isIdentByte(c byte, notFirst bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (notFirst && (c >= '0' && c <= '9' || c == '-'))
}
