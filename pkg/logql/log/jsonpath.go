package log

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A JSON path is spelled two ways, both parsed here into the same
// []JSONPathElem:
//
//   - Loki's (`| json a="b.c[0]"`, ParseJSONPath): a field is any run of
//     bytes other than '.' and '[', a quoted field is written ["a.b"], an
//     index is [N] with N >= 0.
//   - Promtail's (the json stage's expressions, ParsePromtailJSONPath): the
//     JMESPath subset of identifiers ([A-Za-z_][A-Za-z0-9_-]*), "quoted
//     keys" between dots, and [N] indexes that may be negative (from the
//     end); the JMESPath features Lokal does not evaluate are refused by
//     name.
//
// The values differ too (TestJSONValueDialects): `| json` scans the line
// lazily (syntax errors past the value are not seen), gives "" for null and
// for a missing path, objects as their raw text, and the first of duplicate
// keys; the ingest stage decodes the whole document first
// (DecodePromtailJSON: an invalid one extracts nothing), treats null as
// missing, re-encodes objects and arrays compactly with sorted keys
// (EvalJSONPath), and keeps the last of duplicate keys.

// JSONPathElem is one step of a json extraction expression: a field name or
// an array index.
type JSONPathElem struct {
	Field string
	Index int
	IsIdx bool
}

// ParseJSONPath parses a path in Loki's syntax, the json extraction
// expression of `| json a="..."`, such as `request.headers["User-Agent"]`
// or `servers[0]`.
func ParseJSONPath(expr string) ([]JSONPathElem, error) {
	var out []JSONPathElem
	i := 0
	readIdent := func() string {
		start := i
		for i < len(expr) && expr[i] != '.' && expr[i] != '[' {
			i++
		}
		return expr[start:i]
	}
	if expr == "" {
		return nil, errors.New("empty json expression")
	}
	if expr[0] != '[' {
		name := readIdent()
		if name == "" {
			return nil, fmt.Errorf("invalid json expression %q", expr)
		}
		out = append(out, JSONPathElem{Field: name})
	}
	for i < len(expr) {
		switch expr[i] {
		case '.':
			i++
			name := readIdent()
			if name == "" {
				return nil, fmt.Errorf("invalid json expression %q: empty field at offset %d", expr, i)
			}
			out = append(out, JSONPathElem{Field: name})
		case '[':
			i++
			if i < len(expr) && expr[i] == '"' {
				j := quotedEnd(expr, i)
				if j < 0 {
					return nil, fmt.Errorf("invalid json expression %q: unterminated string", expr)
				}
				name, err := strconv.Unquote(expr[i : j+1])
				if err != nil {
					return nil, fmt.Errorf("invalid json expression %q: %w", expr, err)
				}
				i = j + 1
				if i >= len(expr) || expr[i] != ']' {
					return nil, fmt.Errorf("invalid json expression %q: expected ']'", expr)
				}
				i++
				out = append(out, JSONPathElem{Field: name})
				continue
			}
			j := i
			for j < len(expr) && isDigit(expr[j]) {
				j++
			}
			if j == i || j >= len(expr) || expr[j] != ']' {
				return nil, fmt.Errorf("invalid json expression %q: expected an index or a quoted field at offset %d", expr, i)
			}
			n, err := strconv.Atoi(expr[i:j])
			if err != nil {
				return nil, fmt.Errorf("invalid json expression %q: %w", expr, err)
			}
			out = append(out, JSONPathElem{Index: n, IsIdx: true})
			i = j + 1
		default:
			return nil, fmt.Errorf("invalid json expression %q: unexpected %q at offset %d", expr, expr[i], i)
		}
	}
	return out, nil
}

// ParsePromtailJSONPath parses a path in Promtail's syntax, a json stage
// expression such as queue.depth, items[0].name, "k8s.pod".name or a[-1].
func ParsePromtailJSONPath(s string) ([]JSONPathElem, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty JSON path")
	}
	var p []JSONPathElem
	i := 0
	needKey := true // at the start and after a dot
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			if !needKey {
				return nil, fmt.Errorf("JSON path %q: expected . or [ at offset %d", s, i)
			}
			j := quotedEnd(s, i)
			if j < 0 {
				return nil, fmt.Errorf("JSON path %q: unterminated quoted key", s)
			}
			key, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("JSON path %q: bad quoted key %s", s, s[i:j+1])
			}
			p = append(p, JSONPathElem{Field: key})
			i = j + 1
			needKey = false
		case isJMESIdentByte(c, true):
			if !needKey {
				return nil, fmt.Errorf("JSON path %q: expected . or [ at offset %d", s, i)
			}
			j := i
			for j < len(s) && isJMESIdentByte(s[j], j > i) {
				j++
			}
			p = append(p, JSONPathElem{Field: s[i:j]})
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
			p = append(p, JSONPathElem{Index: n, IsIdx: true})
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

func isJMESIdentByte(c byte, notFirst bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (notFirst && (c >= '0' && c <= '9' || c == '-'))
}

// quotedEnd returns the index of the quote closing the string that opens
// at s[i], skipping backslash escapes, or -1.
func quotedEnd(s string, i int) int {
	j := i + 1
	for j < len(s) && s[j] != '"' {
		if s[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(s) {
		return -1
	}
	return j
}

// DecodePromtailJSON decodes the first JSON value of s the way the ingest
// json stage reads a line (numbers kept as written); an error means the
// stage extracts nothing.
func DecodePromtailJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// EvalJSONPath evaluates a path over a document from DecodePromtailJSON
// (negative indexes count from the end); scalars come back as strings,
// objects and arrays as compact JSON text with sorted keys, null as absent.
func EvalJSONPath(doc any, path []JSONPathElem) (string, bool) {
	cur := doc
	for _, step := range path {
		if step.IsIdx {
			arr, ok := cur.([]any)
			if !ok {
				return "", false
			}
			i := step.Index
			if i < 0 {
				i += len(arr)
			}
			if i < 0 || i >= len(arr) {
				return "", false
			}
			cur = arr[i]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = obj[step.Field]; !ok {
			return "", false
		}
	}
	switch x := cur.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return fmt.Sprint(cur), true
	}
	return string(b), true
}
