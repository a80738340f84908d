package log

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Filter decides whether a line is kept. Filters never modify the line.
type Filter interface {
	Match(line []byte) bool
}

// LineFilterOp is a line filter operator.
type LineFilterOp int

const (
	OpContains    LineFilterOp = iota // |=
	OpNotContains                     // !=
	OpRegexp                          // |~
	OpNotRegexp                       // !~
	OpPattern                         // |>
	OpNotPattern                      // !>
)

func (op LineFilterOp) String() string {
	switch op {
	case OpContains:
		return "|="
	case OpNotContains:
		return "!="
	case OpRegexp:
		return "|~"
	case OpNotRegexp:
		return "!~"
	case OpPattern:
		return "|>"
	case OpNotPattern:
		return "!>"
	}
	return fmt.Sprintf("LineFilterOp(%d)", int(op))
}

// Negated reports whether op keeps lines that do not match.
func (op LineFilterOp) Negated() bool {
	return op == OpNotContains || op == OpNotRegexp || op == OpNotPattern
}

// NewLineFilter builds the filter for one `op "value"`. Regular expressions
// are RE2, unanchored, compiled as written (so `.` does not match a newline
// unless the expression says (?s)), and are simplified to literal searches
// where that gives exactly the same answers.
//
// LogQL's `or` (`|= "a" or "b"`) maps to NewOrFilter of the positive
// filters; for negated operators Loki reads `!= "a" or "b"` as "contains
// neither", i.e. NewAndFilter of the negated filters.
func NewLineFilter(op LineFilterOp, value string) (Filter, error) {
	var f Filter
	switch op {
	case OpContains, OpNotContains:
		f = newContains(value)
	case OpRegexp, OpNotRegexp:
		rf, err := newRegexpFilter(value)
		if err != nil {
			return nil, err
		}
		f = rf
	case OpPattern, OpNotPattern:
		m, err := parsePattern(value, false)
		if err != nil {
			return nil, fmt.Errorf("invalid pattern %q: %w", value, err)
		}
		f = patternFilter{m: m}
	default:
		return nil, fmt.Errorf("unknown line filter operator %d", int(op))
	}
	if op.Negated() {
		return NotFilter{F: f}, nil
	}
	return f, nil
}

// NewFilterStage wraps a filter as a pipeline stage.
func NewFilterStage(f Filter) Stage {
	return filterStage{f: f}
}

type filterStage struct{ f Filter }

func (s filterStage) Process(_ int64, line []byte, _ *LabelsBuilder) ([]byte, bool) {
	return line, s.f.Match(line)
}

// FilterOf returns the filter of a stage made by NewFilterStage.
func FilterOf(s Stage) (Filter, bool) {
	fs, ok := s.(filterStage)
	if !ok {
		return nil, false
	}
	return fs.f, true
}

// MatchString runs f on a line held as a string, without copying it:
// filters neither keep nor modify the line they are given.
func MatchString(f Filter, line string) bool { return f.Match(unsafeBytes(line)) }

// TrueFilter keeps every line (`|= ""`).
type TrueFilter struct{}

// Match returns true.
func (TrueFilter) Match([]byte) bool { return true }

// NotFilter negates a filter.
type NotFilter struct{ F Filter }

// Match reports whether F does not match.
func (n NotFilter) Match(line []byte) bool { return !n.F.Match(line) }

// AndFilter keeps lines every filter keeps.
type AndFilter []Filter

// NewAndFilter chains filters; nil filters are skipped.
func NewAndFilter(fs ...Filter) Filter {
	out := make(AndFilter, 0, len(fs))
	for _, f := range fs {
		if f == nil {
			continue
		}
		if _, ok := f.(TrueFilter); ok {
			continue
		}
		out = append(out, f)
	}
	switch len(out) {
	case 0:
		return TrueFilter{}
	case 1:
		return out[0]
	}
	return out
}

// Match reports whether every filter matches.
func (a AndFilter) Match(line []byte) bool {
	for _, f := range a {
		if !f.Match(line) {
			return false
		}
	}
	return true
}

// OrFilter keeps lines any filter keeps.
type OrFilter []Filter

// NewOrFilter builds an alternative; positive literal filters merge into one
// multi-literal search.
func NewOrFilter(fs ...Filter) Filter {
	out := make(OrFilter, 0, len(fs))
	var lits [][]byte
	for _, f := range fs {
		switch f := f.(type) {
		case nil:
			continue
		case TrueFilter:
			return TrueFilter{}
		case containsFilter:
			lits = append(lits, f.lit)
			continue
		case multiContains:
			lits = append(lits, f...)
			continue
		}
		out = append(out, f)
	}
	switch len(lits) {
	case 0:
	case 1:
		out = append(out, containsFilter{lit: lits[0]})
	default:
		out = append(out, multiContains(lits))
	}
	if len(out) == 1 {
		return out[0]
	}
	return out
}

// Match reports whether any filter matches.
func (o OrFilter) Match(line []byte) bool {
	for _, f := range o {
		if f.Match(line) {
			return true
		}
	}
	return false
}

// containsFilter is |= "literal": a case-sensitive substring search.
type containsFilter struct{ lit []byte }

func newContains(s string) Filter {
	if s == "" {
		return TrueFilter{}
	}
	return containsFilter{lit: []byte(s)}
}

func (c containsFilter) Match(line []byte) bool { return bytes.Contains(line, c.lit) }

// multiContains matches when any literal is a substring.
type multiContains [][]byte

func (m multiContains) Match(line []byte) bool {
	for _, l := range m {
		if bytes.Contains(line, l) {
			return true
		}
	}
	return false
}

// foldContains is a case-insensitive substring search for an ASCII literal,
// the fast path of (?i)literal. Go's (?i) folds with Unicode simple folding,
// under which k also matches U+212A (Kelvin) and s matches U+017F (long s):
// for literals holding those letters, a line with non-ASCII bytes that the
// ASCII search rejects is re-checked by the real regexp.
type foldContains struct {
	lower    [][]byte // any of them, lowercased ASCII
	fallback *regexp.Regexp
}

func (f foldContains) Match(line []byte) bool {
	for _, l := range f.lower {
		if indexFoldASCII(line, l) >= 0 {
			return true
		}
	}
	if f.fallback != nil && !isASCII(line) {
		return f.fallback.Match(line)
	}
	return false
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// indexFoldASCII finds lower (already lowercased, ASCII) in s ignoring ASCII case.
func indexFoldASCII(s, lower []byte) int {
	n := len(lower)
	if n == 0 {
		return 0
	}
	c0 := lower[0]
	c1 := c0
	if 'a' <= c0 && c0 <= 'z' {
		c1 = c0 - ('a' - 'A')
	}
	for i := 0; i+n <= len(s); {
		// next occurrence of the first byte in either case
		j := bytes.IndexByte(s[i:len(s)-n+1], c0)
		if c1 != c0 {
			limit := len(s) - n + 1
			if j >= 0 {
				limit = i + j
			}
			if k := bytes.IndexByte(s[i:limit], c1); k >= 0 {
				j = k
			}
		}
		if j < 0 {
			return -1
		}
		p := i + j
		if equalFoldASCII(s[p+1:p+n], lower[1:]) {
			return p
		}
		i = p + 1
	}
	return -1
}

func equalFoldASCII(s, lower []byte) bool {
	for i := range lower {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// regexpFilter is |~ with a regular expression that has no literal shortcut.
type regexpFilter struct {
	re *regexp.Regexp
	// required literal groups derived from the expression (for hints).
	required [][]string
}

func (r regexpFilter) Match(line []byte) bool { return r.re.Match(line) }

// Limits of regular-expression simplification: beyond them the expression
// is left to the regexp engine, whose cost no longer grows with more
// literals, while a literal search would.
const (
	maxLiteralAlternatives = 32
	maxClassExpansion      = 8
)

func newRegexpFilter(expr string) (Filter, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	parsed, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	core := reduceForMatch(parsed)
	if lits, ok := literalSet(core); ok {
		for _, l := range lits {
			if l == "" {
				return TrueFilter{}, nil
			}
		}
		if len(lits) == 1 {
			return containsFilter{lit: []byte(lits[0])}, nil
		}
		m := make(multiContains, len(lits))
		for i, l := range lits {
			m[i] = []byte(l)
		}
		return m, nil
	}
	if lits, ok := foldLiteralSet(core); ok {
		f := foldContains{}
		for _, l := range lits {
			if l == "" {
				return TrueFilter{}, nil
			}
			f.lower = append(f.lower, []byte(l))
			if strings.ContainsAny(l, "ks") {
				f.fallback = re
			}
		}
		return f, nil
	}
	// The reduced expression decides the same lines and is often far
	// cheaper: Go's matcher is linear in the line, but its cost per byte
	// grows with the program, and captures block the parser's own
	// simplification, so ((a*)*)*b runs ten times slower than a*b (and
	// b is a plain substring search).
	if reduced, err := regexp.Compile(core.String()); err == nil {
		re = reduced
	}
	return regexpFilter{re: re, required: requiredGroups(core)}, nil
}

// reduceForMatch rewrites a parsed expression into one that matches
// exactly the same lines somewhere (a filter never needs where, nor the
// submatches): captures become plain groups, the parser's simplification
// then folds nested repetitions ((a*)* is a*), and leading and trailing
// parts that can match the empty string anywhere (x*, x?, x{0,n}, .*)
// are dropped, since a match of the rest is a match of the whole.
func reduceForMatch(re *syntax.Regexp) *syntax.Regexp {
	return stripOptionalEnds(stripCaptures(re).Simplify())
}

func stripCaptures(re *syntax.Regexp) *syntax.Regexp {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	for i, sub := range re.Sub {
		re.Sub[i] = stripCaptures(sub)
	}
	return re
}

// matchesEmptyAnywhere reports whether re can match the empty string at
// any position, whatever surrounds it.
func matchesEmptyAnywhere(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpRepeat:
		return re.Min == 0
	}
	return false
}

// stripOptionalEnds removes what matchesEmptyAnywhere from both ends of
// an unanchored expression.
func stripOptionalEnds(re *syntax.Regexp) *syntax.Regexp {
	if matchesEmptyAnywhere(re) {
		return &syntax.Regexp{Op: syntax.OpEmptyMatch}
	}
	if re.Op != syntax.OpConcat {
		return re
	}
	subs := re.Sub
	for len(subs) > 0 && matchesEmptyAnywhere(subs[0]) {
		subs = subs[1:]
	}
	for len(subs) > 0 && matchesEmptyAnywhere(subs[len(subs)-1]) {
		subs = subs[:len(subs)-1]
	}
	switch len(subs) {
	case 0:
		return &syntax.Regexp{Op: syntax.OpEmptyMatch}
	case 1:
		return subs[0]
	}
	return &syntax.Regexp{Op: syntax.OpConcat, Sub: subs, Flags: re.Flags}
}

// literalSet expands re into the finite set of strings it matches, when it
// matches only a few case-sensitive literals. Then an unanchored match is
// exactly "the line contains one of them".
func literalSet(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 && hasCase(re.Rune) {
			return nil, false
		}
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				// U+FFFD also matches invalid bytes in the regexp engine.
				return nil, false
			}
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi-lo+1 > maxClassExpansion || len(out)+int(hi-lo+1) > maxClassExpansion {
				return nil, false
			}
			for r := lo; r <= hi; r++ {
				if r == utf8.RuneError || r > utf8.MaxRune || (r >= 0xD800 && r <= 0xDFFF) {
					return nil, false
				}
				out = append(out, string(r))
			}
		}
		if len(out) == 0 {
			return nil, false
		}
		return out, true
	case syntax.OpCapture:
		return literalSet(re.Sub[0])
	case syntax.OpQuest:
		s, ok := literalSet(re.Sub[0])
		if !ok {
			return nil, false
		}
		return append(s, ""), true
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			s, ok := literalSet(sub)
			if !ok || len(out)+len(s) > maxLiteralAlternatives {
				return nil, false
			}
			out = append(out, s...)
		}
		return out, true
	case syntax.OpConcat:
		out := []string{""}
		for _, sub := range re.Sub {
			s, ok := literalSet(sub)
			if !ok || len(out)*len(s) > maxLiteralAlternatives {
				return nil, false
			}
			next := make([]string, 0, len(out)*len(s))
			for _, a := range out {
				for _, b := range s {
					next = append(next, a+b)
				}
			}
			out = next
		}
		return out, true
	}
	return nil, false
}

// hasCase reports whether any rune has other case forms.
func hasCase(rs []rune) bool {
	for _, r := range rs {
		if folded := unicode.SimpleFold(r); folded != r {
			return true
		}
	}
	return false
}

// foldLiteralSet expands a case-insensitive expression such as (?i)cuda or
// (?i)(timeout|fail) into the lowercased ASCII literals it matches (ignoring
// case). Case-sensitive parts are allowed only when they hold no letters,
// and character classes only when they are the case forms of one letter,
// which is what the parser makes of factored (?i) alternatives.
func foldLiteralSet(re *syntax.Regexp) ([]string, bool) {
	lits, fold, ok := foldExpand(re)
	return lits, ok && fold
}

// foldExpand does the work of foldLiteralSet; fold reports whether any part
// was case-insensitive (a wholly case-sensitive set is literalSet's job).
func foldExpand(re *syntax.Regexp) (lits []string, fold, ok bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, false, true
	case syntax.OpLiteral:
		b := make([]byte, 0, len(re.Rune))
		for _, r := range re.Rune {
			if r >= utf8.RuneSelf {
				return nil, false, false
			}
			c := byte(r)
			if re.Flags&syntax.FoldCase == 0 && lowerASCII(c) != upperASCII(c) {
				return nil, false, false
			}
			b = append(b, lowerASCII(c))
		}
		return []string{string(b)}, re.Flags&syntax.FoldCase != 0, true
	case syntax.OpCharClass:
		cs, ok := caseClassLetters(re.Rune)
		if !ok {
			return nil, false, false
		}
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = string(c)
		}
		return out, true, true
	case syntax.OpCapture:
		return foldExpand(re.Sub[0])
	case syntax.OpQuest:
		s, f, ok := foldExpand(re.Sub[0])
		if !ok {
			return nil, false, false
		}
		return append(s, ""), f, true
	case syntax.OpAlternate:
		var out []string
		anyFold := false
		for _, sub := range re.Sub {
			s, f, ok := foldExpand(sub)
			if !ok || len(out)+len(s) > maxLiteralAlternatives {
				return nil, false, false
			}
			out = append(out, s...)
			anyFold = anyFold || f
		}
		return out, anyFold, true
	case syntax.OpConcat:
		out := []string{""}
		anyFold := false
		for _, sub := range re.Sub {
			s, f, ok := foldExpand(sub)
			if !ok || len(out)*len(s) > maxLiteralAlternatives {
				return nil, false, false
			}
			next := make([]string, 0, len(out)*len(s))
			for _, a := range out {
				for _, b := range s {
					next = append(next, a+b)
				}
			}
			out = next
			anyFold = anyFold || f
		}
		return out, anyFold, true
	}
	return nil, false, false
}

// caseClassLetters recognises a character class that is a union of whole
// case-fold orbits of ASCII characters (under Unicode simple folding, so k
// comes with K and U+212A), which is what the parser makes of factored (?i)
// alternatives, and returns those characters in lower case.
func caseClassLetters(ranges []rune) ([]byte, bool) {
	var rs []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		if int(ranges[i+1]-ranges[i])+len(rs) >= 3*maxClassExpansion {
			return nil, false
		}
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			rs = append(rs, r)
		}
	}
	in := make(map[rune]bool, len(rs))
	for _, r := range rs {
		in[r] = true
	}
	var out []byte
	covered := map[rune]bool{}
	for _, r := range rs {
		if r >= utf8.RuneSelf || covered[r] {
			continue
		}
		// every case form of an ASCII character must be in the class
		for f := unicode.SimpleFold(r); ; f = unicode.SimpleFold(f) {
			if !in[f] {
				return nil, false
			}
			covered[f] = true
			if f == r {
				break
			}
		}
		out = append(out, lowerASCII(byte(r)))
	}
	for _, r := range rs {
		if !covered[r] {
			return nil, false
		}
	}
	if len(out) == 0 || len(out) > maxClassExpansion {
		return nil, false
	}
	return out, true
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// requiredGroups derives literal groups a matching line must contain:
// every literal-expandable factor of a concatenation is one group.
func requiredGroups(re *syntax.Regexp) [][]string {
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	if lits, ok := literalSet(re); ok {
		return literalGroup(lits)
	}
	switch re.Op {
	case syntax.OpConcat:
		var out [][]string
		for _, sub := range re.Sub {
			out = append(out, requiredGroups(sub)...)
		}
		return out
	case syntax.OpPlus, syntax.OpRepeat:
		if re.Op == syntax.OpRepeat && re.Min < 1 {
			return nil
		}
		return requiredGroups(re.Sub[0])
	case syntax.OpAlternate:
		// each branch must contribute: take one group per branch.
		var group []string
		for _, sub := range re.Sub {
			g := requiredGroups(sub)
			if len(g) == 0 {
				return nil
			}
			group = append(group, g[0]...)
		}
		return literalGroup(group)
	}
	return nil
}

// literalGroup makes one hint group, or none when a literal is empty (an
// empty literal is in every line, so the group constrains nothing).
func literalGroup(lits []string) [][]string {
	if len(lits) == 0 {
		return nil
	}
	for _, l := range lits {
		if l == "" {
			return nil
		}
	}
	return [][]string{lits}
}

// RequiredLiterals returns groups of literals that every line the filter
// keeps must contain: each group is satisfied when the line contains at
// least one of its literals (case-sensitively). It returns nil when nothing
// can be required (negated filters, case-insensitive searches, ip(), `.*`).
// The store uses the groups to skip blocks; the filter still decides.
func RequiredLiterals(f Filter) [][]string {
	switch f := f.(type) {
	case containsFilter:
		return [][]string{{string(f.lit)}}
	case multiContains:
		g := make([]string, len(f))
		for i, l := range f {
			g[i] = string(l)
		}
		return [][]string{g}
	case regexpFilter:
		return f.required
	case patternFilter:
		return f.m.requiredLiterals()
	case AndFilter:
		var out [][]string
		for _, sub := range f {
			out = append(out, RequiredLiterals(sub)...)
		}
		return out
	case OrFilter:
		var group []string
		for _, sub := range f {
			g := RequiredLiterals(sub)
			if len(g) == 0 {
				return nil
			}
			group = append(group, g[0]...)
		}
		return literalGroup(group)
	}
	return nil
}

// patternFilter is |> "pattern": the whole line must match the pattern.
type patternFilter struct{ m *patternMatcher }

func (p patternFilter) Match(line []byte) bool { return p.m.test(line) }
