package log

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Per-stream caches of parsers are bounded so that lines with ever-new
// keys or values cannot grow memory with the data; past the bound a cache
// starts over.
const (
	maxNameCache   = 1024
	maxInternCache = 1024
	maxInternLen   = 64 // longer values are rarely repeated: not interned
)

// streamStage is implemented by stages with per-stream state (buffers,
// caches): Pipeline.ForStream gives each stream its own instance, so one
// Pipeline can serve streams on several goroutines.
type streamStage interface {
	ForStream() Stage
}

// parserState is the scratch space of a parser for one stream.
type parserState struct {
	scan   jsonScanner
	key    []byte
	names  map[string]string // sanitized key -> label name (with _extracted when a stream label)
	values map[string]string
	caps   [][]byte
	// need, when not nil, is the set of labels to extract (see
	// project.go); proj caches each raw key's label name and whether it
	// is needed.
	need needSet
	proj map[string]projName
}

type projName struct {
	name   string
	needed bool
}

func newParserState() *parserState {
	return &parserState{names: map[string]string{}, values: map[string]string{}}
}

// projectedState is newParserState for a parser extracting only need (nil
// for everything).
func projectedState(need needSet) *parserState {
	st := newParserState()
	st.need = need
	return st
}

// neededName returns the label name of a raw (unsanitized) key and whether
// the parser must extract it, without sanitizing a key it has seen before.
func (st *parserState) neededName(lbs *LabelsBuilder, raw string) (string, bool) {
	if p, ok := st.proj[raw]; ok {
		return p.name, p.needed
	}
	st.key = appendSanitized(st.key[:0], unsafeBytes(raw), true)
	var p projName
	if len(st.key) > 0 {
		p.name = st.labelName(lbs, st.key)
		p.needed = st.need.has(p.name)
	}
	if st.proj == nil || len(st.proj) >= maxNameCache {
		st.proj = map[string]projName{}
	}
	st.proj[strings.Clone(raw)] = p
	return p.name, p.needed
}

// labelName returns the label name for a sanitized key, suffixed with
// _extracted when the stream already has that label.
func (st *parserState) labelName(lbs *LabelsBuilder, key []byte) string {
	if n, ok := st.names[string(key)]; ok {
		return n
	}
	n := string(key)
	if lbs.BaseHas(n) {
		n += duplicateSuffix
	}
	if len(st.names) >= maxNameCache {
		clear(st.names)
	}
	st.names[string(key)] = n
	return n
}

// intern returns v as a string, sharing storage for short repeated values.
func (st *parserState) intern(v []byte) string {
	if len(v) > maxInternLen {
		return string(v)
	}
	if s, ok := st.values[string(v)]; ok {
		return s
	}
	s := string(v)
	if len(st.values) >= maxInternCache {
		clear(st.values)
	}
	st.values[s] = s
	return s
}

func (st *parserState) setParsed(lbs *LabelsBuilder, key, value []byte) {
	if len(key) == 0 {
		return
	}
	st.setNamed(lbs, st.labelName(lbs, key), value)
}

// setNamed sets the parsed label name when the parser extracts it.
func (st *parserState) setNamed(lbs *LabelsBuilder, name string, value []byte) {
	if st.need != nil && !st.need.has(name) {
		return
	}
	lbs.SetParsed(name, st.intern(value))
}

// SanitizeLabelName turns a parsed key into a label name as Loki does:
// surrounding spaces trimmed, every character other than an ASCII letter,
// digit or underscore replaced by "_", and a leading digit prefixed by "_".
func SanitizeLabelName(key string) string {
	return string(appendSanitized(nil, []byte(key), true))
}

func appendSanitized(dst, key []byte, isPrefix bool) []byte {
	key = bytes.TrimSpace(key)
	if len(key) == 0 {
		return dst
	}
	if isPrefix && isDigit(key[0]) {
		dst = append(dst, '_')
	}
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if c == '_' || isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
				dst = append(dst, c)
			} else {
				dst = append(dst, '_')
			}
			i++
			continue
		}
		_, size := utf8.DecodeRune(key[i:])
		dst = append(dst, '_')
		i += size
	}
	return dst
}

// IsValidLabelName reports whether s is a Prometheus label name.
func IsValidLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (i > 0 && isDigit(c)) {
			continue
		}
		return false
	}
	return true
}

// NewRegexpParser returns `| regexp "re"`: each named group of a matching
// line becomes a label (empty when the group did not participate); lines
// that do not match get no labels and are kept.
func NewRegexpParser(expr string) (Stage, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid regexp parser expression %q: %w", expr, err)
	}
	names := re.SubexpNames()
	seen := map[string]bool{}
	named := 0
	for _, n := range names {
		if n == "" {
			continue
		}
		if !IsValidLabelName(n) {
			return nil, fmt.Errorf("invalid regexp parser expression %q: invalid extracted label name %q", expr, n)
		}
		if seen[n] {
			return nil, fmt.Errorf("invalid regexp parser expression %q: duplicate extracted label name %q", expr, n)
		}
		seen[n] = true
		named++
	}
	if named == 0 {
		return nil, fmt.Errorf("invalid regexp parser expression %q: at least one named capture must be supplied", expr)
	}
	return &regexpParser{re: re, names: names}, nil
}

type regexpParser struct {
	re    *regexp.Regexp
	names []string
	need  needSet
	st    *parserState
}

func (r *regexpParser) ForStream() Stage {
	return &regexpParser{re: r.re, names: r.names, need: r.need, st: projectedState(r.need)}
}

func (r *regexpParser) project(need needSet) Stage {
	return &regexpParser{re: r.re, names: r.names, need: need}
}

func (r *regexpParser) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	st := r.st
	if st == nil {
		st = projectedState(r.need)
	}
	m := r.re.FindSubmatch(line)
	for i, v := range m {
		if i == 0 || r.names[i] == "" {
			continue
		}
		st.setNamed(lbs, st.labelName(lbs, []byte(r.names[i])), v)
	}
	return line, true
}

// NewPatternParser returns `| pattern "<ip> - <_> ..."`: named captures
// become labels. The pattern needs at least one named capture and no two
// captures in a row.
func NewPatternParser(pattern string) (Stage, error) {
	m, err := parsePattern(pattern, true)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", pattern, err)
	}
	return &patternParser{m: m}, nil
}

type patternParser struct {
	m    *patternMatcher
	need needSet
	st   *parserState
}

func (p *patternParser) ForStream() Stage {
	return &patternParser{m: p.m, need: p.need, st: projectedState(p.need)}
}

func (p *patternParser) project(need needSet) Stage {
	return &patternParser{m: p.m, need: need}
}

func (p *patternParser) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	st := p.st
	if st == nil {
		st = projectedState(p.need)
	}
	if cap(st.caps) < len(p.m.names) {
		st.caps = make([][]byte, len(p.m.names))
	}
	caps := st.caps[:len(p.m.names)]
	if !p.m.match(line, caps) {
		return line, true
	}
	for i, c := range caps {
		if c == nil {
			continue
		}
		st.setNamed(lbs, st.labelName(lbs, []byte(p.m.names[i])), c)
	}
	return line, true
}

// NewUnpackParser returns `| unpack`: string fields of a JSON object become
// labels and the special field _entry replaces the line (Promtail's pack).
func NewUnpackParser() Stage { return &unpackParser{} }

type unpackParser struct {
	st *parserState
}

func (u *unpackParser) ForStream() Stage { return &unpackParser{st: newParserState()} }

// errUnpackNotObject is Loki's wording for a line that is not an object.
const errUnpackNotObject = "expecting json object(6), but it is not"

func (u *unpackParser) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	if len(line) == 0 {
		return line, true
	}
	if line[0] != '{' {
		lbs.SetErr(ErrJSON, errUnpackNotObject)
		return line, true
	}
	st := u.st
	if st == nil {
		st = newParserState()
	}
	s := &st.scan
	s.data, s.pos = line, 0
	defer func() { s.data = nil }()
	// Validate first: a broken line gets only the error, no labels.
	if _, _, err := s.skipValue(0); err != nil {
		lbs.SetErr(ErrJSON, err.Error())
		return line, true
	}
	// Labels are taken only from a packed line, one with an _entry string.
	type kv struct{ k, v []byte }
	var pairs []kv
	var entry []byte
	packed := false
	s.pos = 1
	for {
		s.skipWS()
		if s.pos >= len(line) || line[s.pos] == '}' {
			break
		}
		k, _ := s.readString()
		key := append([]byte(nil), k...)
		s.skipWS()
		s.pos++ // ':'
		s.skipWS()
		if line[s.pos] == '"' {
			v, _ := s.readString()
			if string(key) == "_entry" {
				entry = append(entry[:0], v...)
				packed = true
			} else {
				pairs = append(pairs, kv{key, append([]byte(nil), v...)})
			}
		} else {
			_, _, _ = s.skipValue(1)
		}
		s.skipWS()
		if s.pos < len(line) && line[s.pos] == ',' {
			s.pos++
		}
	}
	if !packed {
		return line, true
	}
	for _, p := range pairs {
		// The _extracted check looks at the key as written, before
		// sanitizing, as Loki's does.
		name := string(appendSanitized(nil, p.k, true))
		if lbs.BaseHas(string(p.k)) {
			name += duplicateSuffix
		}
		if name == "" {
			continue
		}
		lbs.SetParsed(name, st.intern(validLabelValue(p.v)))
	}
	return entry, true
}
