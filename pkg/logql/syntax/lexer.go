package syntax

import (
	"fmt"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// tokenKind classifies a token. Keywords are lexed as identifiers; the
// parser gives them meaning by position, which lets `{by="x"}` work.
type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokString
	tokNumber
	tokDuration
	tokBytes
	tokFlag // --strict, --keep-empty

	tokLBrace   // {
	tokRBrace   // }
	tokLParen   // (
	tokRParen   // )
	tokLBracket // [
	tokRBracket // ]
	tokComma    // ,

	tokEq        // =
	tokNeq       // !=
	tokRe        // =~
	tokNre       // !~
	tokPipe      // |
	tokPipeExact // |=
	tokPipeMatch // |~
	tokPipePat   // |>
	tokNotPat    // !>
	tokCmpEq     // ==
	tokGt        // >
	tokGte       // >=
	tokLt        // <
	tokLte       // <=
	tokAdd       // +
	tokSub       // -
	tokMul       // *
	tokDiv       // /
	tokMod       // %
	tokPow       // ^
)

// tokenNames follow Loki's grammar so error messages read like Loki's.
var tokenNames = [...]string{
	tokEOF: "$end", tokIdent: "IDENTIFIER", tokString: "STRING", tokNumber: "NUMBER",
	tokDuration: "DURATION", tokBytes: "BYTES", tokFlag: "PARSER_FLAG",
	tokLBrace: "OPEN_BRACE", tokRBrace: "CLOSE_BRACE", tokLParen: "OPEN_PARENTHESIS",
	tokRParen: "CLOSE_PARENTHESIS", tokLBracket: "OPEN_BRACKET", tokRBracket: "CLOSE_BRACKET",
	tokComma: "COMMA", tokEq: "EQ", tokNeq: "NEQ", tokRe: "RE", tokNre: "NRE", tokPipe: "PIPE",
	tokPipeExact: "PIPE_EXACT", tokPipeMatch: "PIPE_MATCH", tokPipePat: "PIPE_PATTERN",
	tokNotPat: "NPA", tokCmpEq: "CMP_EQ", tokGt: "GT", tokGte: "GTE", tokLt: "LT", tokLte: "LTE",
	tokAdd: "ADD", tokSub: "SUB", tokMul: "MUL", tokDiv: "DIV", tokMod: "MOD", tokPow: "POW",
}

// keywordNames are identifiers Loki lexes as their own tokens; naming them
// in errors ("unexpected BY") matches Loki's messages.
var keywordNames = map[string]string{
	"by": "BY", "without": "WITHOUT", "bool": "BOOL", "on": "ON", "ignoring": "IGNORING",
	"group_left": "GROUP_LEFT", "group_right": "GROUP_RIGHT", "offset": "OFFSET",
	"or": "OR", "and": "AND", "unless": "UNLESS", "unwrap": "UNWRAP",
	"json": "JSON", "logfmt": "LOGFMT", "regexp": "REGEXP", "pattern": "PATTERN",
	"unpack": "UNPACK", "line_format": "LINE_FMT", "label_format": "LABEL_FMT",
	"drop": "DROP", "keep": "KEEP", "decolorize": "DECOLORIZE", "ip": "IP",
	"label_replace": "LABEL_REPLACE", "vector": "VECTOR",
}

type token struct {
	kind tokenKind
	text string // identifier, unquoted string, number text, flag name
	pos  int    // byte offset of the first character
	end  int    // byte offset just past the last character
	num  float64
	dur  time.Duration
	size uint64
}

func (t token) describe() string {
	if t.kind == tokIdent {
		lower := strings.ToLower(t.text)
		if k, ok := keywordNames[lower]; ok {
			return k
		}
		if isRangeOp(lower) || isVectorOp(lower) {
			return strings.ToUpper(lower)
		}
	}
	if int(t.kind) < len(tokenNames) {
		return tokenNames[t.kind]
	}
	return fmt.Sprintf("token(%d)", t.kind)
}

// lex splits the whole input into tokens. Lexing up front keeps the parser
// free to look ahead.
func lex(src string) ([]token, error) {
	var toks []token
	l := lexer{src: src}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		t.end = l.off
		toks = append(toks, t)
		if t.kind == tokEOF {
			return toks, nil
		}
	}
}

// lexer keeps only a byte offset: lines and columns are counted when an
// error needs them.
type lexer struct {
	src string
	off int
}

// errSpan reports an error over the bytes from start to end.
func (l *lexer) errSpan(start, end int, format string, args ...any) error {
	return newParseError(l.src, start, end, fmt.Sprintf(format, args...))
}

// advance moves past n bytes.
func (l *lexer) advance(n int) { l.off += n }

func (l *lexer) skipSpaceAndComments() {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.advance(1)
		case c == '#':
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.advance(1)
			}
		default:
			return
		}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// twoCharOps are checked before single characters.
var twoCharOps = map[string]tokenKind{
	"!=": tokNeq, "=~": tokRe, "!~": tokNre, "!>": tokNotPat,
	"|=": tokPipeExact, "|~": tokPipeMatch, "|>": tokPipePat,
	"==": tokCmpEq, ">=": tokGte, "<=": tokLte,
}

var oneCharOps = map[byte]tokenKind{
	'{': tokLBrace, '}': tokRBrace, '(': tokLParen, ')': tokRParen,
	'[': tokLBracket, ']': tokRBracket, ',': tokComma, '=': tokEq, '|': tokPipe,
	'>': tokGt, '<': tokLt, '+': tokAdd, '-': tokSub, '*': tokMul, '/': tokDiv,
	'%': tokMod, '^': tokPow,
}

func (l *lexer) next() (token, error) {
	l.skipSpaceAndComments()
	t := token{pos: l.off}
	if l.off >= len(l.src) {
		t.kind = tokEOF
		return t, nil
	}
	c := l.src[l.off]
	switch {
	case isIdentStart(c):
		start := l.off
		for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
			l.advance(1)
		}
		t.kind, t.text = tokIdent, l.src[start:l.off]
		return t, nil
	case c == '"' || c == '`':
		s, err := l.lexString()
		if err != nil {
			return t, err
		}
		t.kind, t.text = tokString, s
		return t, nil
	case isDigit(c) || (c == '.' && l.off+1 < len(l.src) && isDigit(l.src[l.off+1])):
		return l.lexNumber(t)
	case c == '-' && strings.HasPrefix(l.src[l.off:], "--") && l.off+2 < len(l.src) && isIdentStart(l.src[l.off+2]):
		start := l.off
		l.advance(2)
		for l.off < len(l.src) && (isIdentChar(l.src[l.off]) || l.src[l.off] == '-') {
			l.advance(1)
		}
		t.kind, t.text = tokFlag, l.src[start:l.off]
		return t, nil
	}
	if l.off+1 < len(l.src) {
		if k, ok := twoCharOps[l.src[l.off:l.off+2]]; ok {
			l.advance(2)
			t.kind = k
			return t, nil
		}
	}
	if k, ok := oneCharOps[c]; ok {
		l.advance(1)
		t.kind = k
		return t, nil
	}
	r, size := utf8.DecodeRuneInString(l.src[l.off:])
	return t, l.errSpan(t.pos, l.off+size, "syntax error: unexpected character %q", r)
}

// lexString reads a double-quoted string with Go escapes, or a backtick raw
// string, and returns its value.
func (l *lexer) lexString() (string, error) {
	start := l.off
	quote := l.src[l.off]
	i := l.off + 1
	for i < len(l.src) {
		switch l.src[i] {
		case '\\':
			if quote == '"' {
				i += 2
				continue
			}
		case '\n':
			if quote == '"' {
				return "", l.errSpan(start, i, "literal not terminated")
			}
		case quote:
			raw := l.src[l.off : i+1]
			if !utf8.ValidString(raw) {
				return "", l.errSpan(start, i+1, "invalid UTF-8 rune")
			}
			l.advance(i + 1 - l.off)
			if quote == '`' {
				return raw[1 : len(raw)-1], nil
			}
			s, err := strconv.Unquote(raw)
			if err != nil {
				return "", l.errSpan(start, i+1, "invalid string literal %s: %v", raw, err)
			}
			return s, nil
		}
		i++
	}
	return "", l.errSpan(start, len(l.src), "literal not terminated")
}

// lexNumber reads a number, a duration (5m, 1h30m, 1.5s, 100µs) or a byte
// size (20MB, 1.5KiB): a run of digits, letters and dots, plus an
// exponent's sign.
func (l *lexer) lexNumber(t token) (token, error) {
	start := l.off
	i := l.off
	for i < len(l.src) {
		c := l.src[i]
		if isIdentChar(c) || c == '.' {
			i++
			continue
		}
		// The sign of an exponent: 1e-3, 2.5E+06.
		if (c == '+' || c == '-') && i > start && (l.src[i-1] == 'e' || l.src[i-1] == 'E') &&
			i+1 < len(l.src) && isDigit(l.src[i+1]) && isPlainNumber(l.src[start:i-1]) {
			i++
			continue
		}
		// µ in microseconds.
		if r, size := utf8.DecodeRuneInString(l.src[i:]); r == 'µ' || r == 'μ' {
			i += size
			continue
		}
		break
	}
	text := l.src[start:i]
	l.advance(i - start)
	t.text = text
	if isPlainNumber(mantissa(text)) {
		if f, err := parseNumber(text); err == nil {
			t.kind, t.num = tokNumber, f
			return t, nil
		}
	}
	if d, err := ParseDuration(text); err == nil {
		t.kind, t.dur = tokDuration, d
		return t, nil
	}
	if n, err := ParseBytes(text); err == nil {
		t.kind, t.size = tokBytes, n
		return t, nil
	}
	return t, l.errSpan(t.pos, l.off, "syntax error: invalid number, duration or byte size %q", text)
}

// mantissa strips a decimal exponent so isPlainNumber can check the rest.
func mantissa(s string) string {
	if i := strings.IndexAny(s, "eE"); i > 0 {
		exp := s[i+1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if exp != "" && strings.Trim(exp, "0123456789") == "" {
			return s[:i]
		}
	}
	return s
}

// isPlainNumber reports whether s is digits with at most one dot.
func isPlainNumber(s string) bool {
	if s == "" || s == "." {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch {
		case isDigit(s[i]):
		case s[i] == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return true
}

func parseNumber(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsInf(f, 0) {
		return 0, fmt.Errorf("number %s out of range", s)
	}
	return f, nil
}

var durationUnitValues = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
	"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
}

// ParseDuration reads a duration the way Loki's lexer does: Go's notation
// (1.5s, 300ms, 2h45m, 100µs) and Prometheus's (1d, 2w, 1y) combined.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q", orig)
	}
	if s == "0" {
		return 0, nil
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
			i++
		}
		if !isPlainNumber(s[:i]) {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		s = s[i:]
		j := 0
		for j < len(s) && !isDigit(s[j]) && s[j] != '.' {
			j++
		}
		unit, ok := durationUnitValues[s[:j]]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q", orig, s[:j])
		}
		s = s[j:]
		total += n * float64(unit)
		if total > math.MaxInt64 {
			return 0, fmt.Errorf("invalid duration %q: out of range", orig)
		}
	}
	return time.Duration(math.Round(total)), nil
}

// ParseBytes reads a byte-size literal as Loki's lexer does (go-humanize
// semantics, case insensitive): 20MB is 20·10⁶, 1.5KiB is 1536, 42B is 42.
// A literal needs a unit and a plain number (no commas or spaces, which
// the log package's ParseBytes tolerates in label values); the units and
// arithmetic are the log package's, so queries and values agree.
func ParseBytes(s string) (uint64, error) {
	i := 0
	for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
		i++
	}
	if !isPlainNumber(s[:i]) || i == len(s) || strings.ContainsAny(s[i:], " \t,") {
		return 0, fmt.Errorf("invalid byte size %q", s)
	}
	n, err := log.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("invalid byte size %q: %w", s, err)
	}
	return n, nil
}
