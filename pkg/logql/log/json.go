package log

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting so that a hostile line cannot exhaust the
// stack; deeper documents are reported as parse errors.
const maxJSONDepth = 128

// jsonKind is the type of a JSON value.
type jsonKind int

const (
	jsonString jsonKind = iota
	jsonNumber
	jsonBool
	jsonNull
	jsonObject
	jsonArray
)

// jsonScanner reads one JSON document from a byte slice without building
// any tree: the parsers only need keys, scalar values and the extent of
// nested values.
type jsonScanner struct {
	data []byte
	pos  int
	buf  []byte // unescaped string scratch
}

// JSON syntax errors, worded as the JSON library Loki uses words them, since
// they reach users in __error_details__.
const (
	errJSONObject    = "Value looks like object, but can't find closing '}' symbol"
	errJSONArray     = "Value is array, but can't find closing ']' symbol"
	errJSONString    = "Value is string, but can't find closing '\"' symbol"
	errJSONEscape    = "Encountered an invalid escape sequence in a string"
	errJSONValue     = "Unknown value type"
	errJSONMalformed = "Malformed JSON error"
	errJSONDepth     = "JSON nesting too deep"
)

type jsonSyntaxError struct {
	pos int
	msg string
}

func (e *jsonSyntaxError) Error() string { return e.msg }

func (s *jsonScanner) fail(msg string) error {
	return &jsonSyntaxError{pos: s.pos, msg: msg}
}

func (s *jsonScanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// readString reads a string starting at the opening quote and returns its
// unescaped bytes (valid until the next readString).
func (s *jsonScanner) readString() ([]byte, error) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, s.fail(errJSONObject)
	}
	s.pos++
	start := s.pos
	// fast path: no escapes
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c == '"' {
			out := s.data[start:s.pos]
			s.pos++
			return out, nil
		}
		if c == '\\' {
			break
		}
		s.pos++
	}
	s.buf = append(s.buf[:0], s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch c {
		case '"':
			s.pos++
			return s.buf, nil
		case '\\':
			if s.pos+1 >= len(s.data) {
				return nil, s.fail(errJSONEscape)
			}
			e := s.data[s.pos+1]
			s.pos += 2
			switch e {
			case '"', '\\', '/':
				s.buf = append(s.buf, e)
			case 'b':
				s.buf = append(s.buf, '\b')
			case 'f':
				s.buf = append(s.buf, '\f')
			case 'n':
				s.buf = append(s.buf, '\n')
			case 'r':
				s.buf = append(s.buf, '\r')
			case 't':
				s.buf = append(s.buf, '\t')
			case 'u':
				r, n := decodeUEscape(s.data[s.pos:])
				if n == 0 {
					return nil, s.fail(errJSONEscape)
				}
				s.pos += n
				s.buf = utf8.AppendRune(s.buf, r)
			default:
				return nil, s.fail(errJSONEscape)
			}
		default:
			s.buf = append(s.buf, c)
			s.pos++
		}
	}
	return nil, s.fail(errJSONString)
}

// readScalar reads a number, true, false or null.
func (s *jsonScanner) readScalar() ([]byte, jsonKind, error) {
	start := s.pos
	if s.pos >= len(s.data) {
		return nil, 0, s.fail(errJSONMalformed)
	}
	c := s.data[s.pos]
	switch {
	case c == 't':
		return s.readWord("true", jsonBool)
	case c == 'f':
		return s.readWord("false", jsonBool)
	case c == 'n':
		return s.readWord("null", jsonNull)
	case c == '-' || isDigit(c):
		s.pos++
		for s.pos < len(s.data) {
			c := s.data[s.pos]
			if isDigit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				s.pos++
				continue
			}
			break
		}
		// Like Loki's JSON library, a number is any run of number
		// characters; it is passed on as written.
		return s.data[start:s.pos], jsonNumber, nil
	}
	return nil, 0, s.fail(errJSONValue)
}

func (s *jsonScanner) readWord(w string, k jsonKind) ([]byte, jsonKind, error) {
	if s.pos+len(w) > len(s.data) || string(s.data[s.pos:s.pos+len(w)]) != w {
		return nil, 0, s.fail(errJSONValue)
	}
	out := s.data[s.pos : s.pos+len(w)]
	s.pos += len(w)
	return out, k, nil
}

func containerErr(k jsonKind) string {
	if k == jsonArray {
		return errJSONArray
	}
	return errJSONObject
}

// validLabelValue returns s, or "" when it holds U+FFFD or invalid UTF-8,
// which Prometheus label values cannot carry (Loki empties such values).
func validLabelValue(s []byte) []byte {
	if bytes.ContainsRune(s, utf8.RuneError) {
		return s[:0]
	}
	return s
}

// skipValue skips any value and returns its raw bytes.
func (s *jsonScanner) skipValue(depth int) ([]byte, jsonKind, error) {
	s.skipWS()
	if s.pos >= len(s.data) {
		return nil, 0, s.fail(errJSONMalformed)
	}
	start := s.pos
	switch s.data[s.pos] {
	case '"':
		if _, err := s.readString(); err != nil {
			return nil, 0, err
		}
		return s.data[start:s.pos], jsonString, nil
	case '{', '[':
		if depth >= maxJSONDepth {
			return nil, 0, s.fail(errJSONDepth)
		}
		open := s.data[s.pos]
		kind, closer := jsonObject, byte('}')
		if open == '[' {
			kind, closer = jsonArray, ']'
		}
		s.pos++
		s.skipWS()
		if s.pos < len(s.data) && s.data[s.pos] == closer {
			s.pos++
			return s.data[start:s.pos], kind, nil
		}
		for {
			if kind == jsonObject {
				s.skipWS()
				if _, err := s.readString(); err != nil {
					return nil, 0, err
				}
				s.skipWS()
				if s.pos >= len(s.data) || s.data[s.pos] != ':' {
					return nil, 0, s.fail(errJSONMalformed)
				}
				s.pos++
			}
			if _, _, err := s.skipValue(depth + 1); err != nil {
				return nil, 0, err
			}
			s.skipWS()
			if s.pos >= len(s.data) {
				return nil, 0, s.fail(containerErr(kind))
			}
			if s.data[s.pos] == ',' {
				s.pos++
				continue
			}
			if s.data[s.pos] == closer {
				s.pos++
				return s.data[start:s.pos], kind, nil
			}
			return nil, 0, s.fail(containerErr(kind))
		}
	}
	b, k, err := s.readScalar()
	return b, k, err
}

// NewJSONParser returns `| json` without parameters: every scalar field of
// the object becomes a label, nested objects flattened with "_" (names
// sanitized), arrays and nulls skipped, the first of duplicate keys kept.
func NewJSONParser() Stage { return &jsonStage{} }

type jsonStage struct {
	need needSet
	st   *parserState
}

func (j *jsonStage) ForStream() Stage { return &jsonStage{need: j.need, st: projectedState(j.need)} }

func (j *jsonStage) project(need needSet) Stage { return &jsonStage{need: need} }

func (j *jsonStage) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	st := j.st
	if st == nil {
		st = projectedState(j.need)
	}
	s := &st.scan
	s.data, s.pos = line, 0
	s.skipWS()
	if s.pos >= len(line) || line[s.pos] != '{' {
		lbs.SetErr(ErrJSON, errJSONObject)
		s.data = nil
		return line, true
	}
	st.key = st.key[:0]
	if err := j.walk(st, lbs, 0); err != nil {
		lbs.SetErr(ErrJSON, err.Error())
	}
	s.data = nil
	return line, true
}

// walk reads the object at the scanner position, with st.key holding the
// flattened prefix (sanitized, with a trailing "_" when not empty).
func (j *jsonStage) walk(st *parserState, lbs *LabelsBuilder, depth int) error {
	s := &st.scan
	if depth >= maxJSONDepth {
		return s.fail(errJSONDepth)
	}
	s.pos++ // '{'
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.skipWS()
		k, err := s.readString()
		if err != nil {
			return err
		}
		prefixLen := len(st.key)
		st.key = appendSanitized(st.key, k, prefixLen == 0)
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.fail(errJSONMalformed)
		}
		s.pos++
		s.skipWS()
		if s.pos >= len(s.data) {
			return s.fail(errJSONMalformed)
		}
		switch s.data[s.pos] {
		case '{':
			st.key = append(st.key, '_')
			if err := j.walk(st, lbs, depth+1); err != nil {
				return err
			}
		case '[':
			if _, _, err := s.skipValue(depth + 1); err != nil {
				return err
			}
		case '"':
			v, err := s.readString()
			if err != nil {
				return err
			}
			st.setParsed(lbs, st.key, validLabelValue(v))
		default:
			v, kind, err := s.readScalar()
			if err != nil {
				return err
			}
			if kind != jsonNull {
				st.setParsed(lbs, st.key, v)
			}
		}
		st.key = st.key[:prefixLen]
		s.skipWS()
		if s.pos >= len(s.data) {
			return s.fail(errJSONObject)
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.fail(errJSONObject)
		}
	}
}

// LabelExtraction is one `label="expression"` parameter of json or logfmt.
type LabelExtraction struct {
	Label string
	Expr  string
}

// source is what the parameter extracts: Expr, or the label's own name.
func (p LabelExtraction) source() string {
	if p.Expr == "" {
		return p.Label
	}
	return p.Expr
}

// checkExtractedLabels rejects parameters whose labels are not valid label
// names or are given twice.
func checkExtractedLabels(params []LabelExtraction) error {
	seen := map[string]bool{}
	for _, p := range params {
		if !IsValidLabelName(p.Label) {
			return fmt.Errorf("invalid extracted label name %q", p.Label)
		}
		if seen[p.Label] {
			return fmt.Errorf("duplicate extracted label %q", p.Label)
		}
		seen[p.Label] = true
	}
	return nil
}

type jsonExpr struct {
	label string
	path  []JSONPathElem
}

// NewJSONExpressionParser returns `| json a="b.c", d="e[0]"`: only the
// listed paths are extracted. A path that does not exist gives an empty
// label; objects and arrays are extracted as their JSON text.
func NewJSONExpressionParser(params []LabelExtraction) (Stage, error) {
	if len(params) == 0 {
		return NewJSONParser(), nil
	}
	if err := checkExtractedLabels(params); err != nil {
		return nil, err
	}
	exprs := make([]jsonExpr, 0, len(params))
	for _, p := range params {
		path, err := ParseJSONPath(p.source())
		if err != nil {
			return nil, err
		}
		exprs = append(exprs, jsonExpr{label: p.Label, path: path})
	}
	return &jsonExprStage{exprs: exprs}, nil
}

type jsonExprStage struct {
	exprs []jsonExpr
	st    *parserState
}

func (j *jsonExprStage) ForStream() Stage {
	return &jsonExprStage{exprs: j.exprs, st: newParserState()}
}

func (j *jsonExprStage) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	if len(line) == 0 {
		return line, true
	}
	// Like Loki, only the first byte is checked up front; syntax errors met
	// while looking up a path are reported as they come.
	if c := line[0]; c != '"' && c != '{' && c != '[' {
		lbs.SetErr(ErrJSON, "")
		return line, true
	}
	st := j.st
	if st == nil {
		st = newParserState()
	}
	s := &st.scan
	defer func() { s.data = nil }()
	for _, e := range j.exprs {
		v, kind, found, err := jsonLookup(s, line, e.path)
		if err != nil {
			lbs.SetErr(ErrJSON, err.Error())
			continue
		}
		if !found {
			// Loki checks the label's own name here, so a stream label of
			// that name suppresses the empty value.
			if !lbs.Has(e.label) {
				lbs.SetParsed(e.label, "")
			}
			continue
		}
		name := e.label
		if lbs.BaseHas(name) {
			name += duplicateSuffix
		}
		switch kind {
		case jsonNull:
			lbs.SetParsed(name, "")
		case jsonString:
			s.data, s.pos = v, 0
			str, err := s.readString()
			if err != nil {
				str = nil
			}
			lbs.SetParsed(name, st.intern(validLabelValue(str)))
		default:
			lbs.SetParsed(name, string(v))
		}
	}
	return line, true
}

// jsonLookup finds the value at path. found is false when the path does not
// exist; err reports a syntax error met on the way.
func jsonLookup(s *jsonScanner, doc []byte, path []JSONPathElem) (raw []byte, kind jsonKind, found bool, err error) {
	s.data, s.pos = doc, 0
	for _, el := range path {
		s.skipWS()
		if s.pos >= len(s.data) {
			return nil, 0, false, nil
		}
		if el.IsIdx {
			if s.data[s.pos] != '[' {
				return nil, 0, false, nil
			}
			s.pos++
			s.skipWS()
			if s.pos < len(s.data) && s.data[s.pos] == ']' {
				return nil, 0, false, nil
			}
			for i := 0; i < el.Index; i++ {
				if _, _, err := s.skipValue(0); err != nil {
					return nil, 0, false, err
				}
				s.skipWS()
				if s.pos >= len(s.data) {
					return nil, 0, false, s.fail(errJSONArray)
				}
				if s.data[s.pos] == ']' {
					return nil, 0, false, nil
				}
				if s.data[s.pos] != ',' {
					return nil, 0, false, s.fail(errJSONArray)
				}
				s.pos++
			}
			continue
		}
		if s.data[s.pos] != '{' {
			return nil, 0, false, nil
		}
		s.pos++
		for {
			s.skipWS()
			if s.pos >= len(s.data) {
				return nil, 0, false, s.fail(errJSONObject)
			}
			if s.data[s.pos] == '}' {
				return nil, 0, false, nil
			}
			k, err := s.readString()
			if err != nil {
				return nil, 0, false, err
			}
			match := string(k) == el.Field
			s.skipWS()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				return nil, 0, false, s.fail(errJSONMalformed)
			}
			s.pos++
			if match {
				break
			}
			if _, _, err := s.skipValue(0); err != nil {
				return nil, 0, false, err
			}
			s.skipWS()
			if s.pos < len(s.data) && s.data[s.pos] == ',' {
				s.pos++
			}
		}
	}
	v, k, err := s.skipValue(0)
	if err != nil {
		return nil, 0, false, err
	}
	return v, k, true, nil
}
