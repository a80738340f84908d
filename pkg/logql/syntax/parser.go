package syntax

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// ErrParse is matched by errors.Is for every parse and validation error.
var ErrParse = errors.New("parse error")

// Position is a place in a query: Offset counts bytes from the start,
// Line and Col (1-based) count lines and characters.
type Position struct {
	Offset    int
	Line, Col int
}

// PositionRange is a span of a query, from its first character (Start) to
// just past its last (End), as Prometheus's parser reports it. The zero
// PositionRange means the span is unknown.
type PositionRange struct {
	Start, End Position
}

// IsZero reports whether the range is unknown.
func (r PositionRange) IsZero() bool { return r.Start.Line == 0 }

// ParseError is a grammar or validation error. Line and Col (1-based, in
// characters) are zero when the error has no single position, and then it
// prints as Loki does: "parse error : <msg>". Range is the offending span
// of the query (a token for a grammar error, a node for a validation
// error); when Line is set it starts at Line and Col. Range is zero only
// for an internal error.
type ParseError struct {
	Line, Col int
	Msg       string
	Range     PositionRange
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return "parse error : " + e.Msg
	}
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// Is makes errors.Is(err, ErrParse) true.
func (e *ParseError) Is(target error) bool { return target == ErrParse }

// ValidationError is a well-formed query that breaks one of Loki's rules
// (a selector that selects everything, an aggregation that cannot take
// unwrap, a literal leg of a set operator, …). It prints as Loki does,
// without a position, but Range holds the offending node's span. It
// unwraps to its ParseError, so errors.As(err, &*ParseError) and
// errors.Is(err, ErrParse) hold for it as for every other error here.
type ValidationError struct {
	ParseError
}

// Unwrap returns the embedded ParseError.
func (e *ValidationError) Unwrap() error { return &e.ParseError }

// ErrorRange returns the span of the query that a parse or validation
// error points at, and false when err carries none.
func ErrorRange(err error) (PositionRange, bool) {
	var pe *ParseError
	if errors.As(err, &pe) && !pe.Range.IsZero() {
		return pe.Range, true
	}
	return PositionRange{}, false
}

// newParseError builds an error located at byte offset start of src,
// over the text up to byte offset end.
func newParseError(src string, start, end int, msg string) *ParseError {
	r := spanFrom(src, start, end)
	return &ParseError{Line: r.Start.Line, Col: r.Start.Col, Msg: msg, Range: r}
}

// spanFrom is the span of src from byte offset start to byte offset end.
// Lines and columns are counted here, from the beginning: only an error
// needs them, so the lexer does not track them.
func spanFrom(src string, start, end int) PositionRange {
	s := Position{Line: 1, Col: 1}.forward(src, start)
	return PositionRange{Start: s, End: s.forward(src, end)}
}

// forward moves p to byte offset end of src, counting lines and
// characters (runes; an invalid byte counts as one).
func (p Position) forward(src string, end int) Position {
	for p.Offset < end && p.Offset < len(src) {
		r, size := utf8.DecodeRuneInString(src[p.Offset:])
		p.Offset += size
		if r == '\n' {
			p.Line++
			p.Col = 1
		} else {
			p.Col++
		}
	}
	return p
}

// wholeQuery is the span of all of src.
func wholeQuery(src string) PositionRange {
	return spanFrom(src, 0, len(src))
}

// maxDepth bounds nesting so a hostile query cannot exhaust the stack (a
// Go stack overflow is fatal, not recoverable).
const maxDepth = 1000

// ParseExpr parses a log or metric query and validates it with Loki's rules.
func ParseExpr(s string) (expr Expr, err error) {
	defer func() {
		// Our parser must not panic, but a query must never take the process
		// down if it does.
		if r := recover(); r != nil {
			expr, err = nil, &ParseError{Msg: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	// Built here, not in a constructor, so that the parser stays on the
	// stack.
	p := &parser{src: s, toks: toks}
	e, err := p.parseQuery()
	if err != nil {
		return nil, err
	}
	// A selector's rule is checked once the whole query is well formed,
	// as Loki does: a grammar error anywhere is reported first.
	if p.selErr != nil {
		return nil, p.selErr
	}
	return e, nil
}

// ParseLogSelector parses a log query: a selector with an optional pipeline.
func ParseLogSelector(s string) (LogSelectorExpr, error) {
	return parseAs[LogSelectorExpr](s, "only log queries are supported here, got a metric query")
}

// ParseSampleExpr parses a metric query.
func ParseSampleExpr(s string) (SampleExpr, error) {
	return parseAs[SampleExpr](s, "only metric queries are supported here, got a log query")
}

// ParseMatchers parses a bare stream selector such as {app="api"}, as the
// series and label endpoints take it.
func ParseMatchers(s string) ([]*labels.Matcher, error) {
	m, err := parseAs[*MatcherExpr](s, "only label matchers are supported")
	if err != nil {
		return nil, err
	}
	return m.Mts, nil
}

// parseAs parses s and requires a T; a query of another kind is wrong as
// a whole, with the message wrongKind.
func parseAs[T Expr](s, wrongKind string) (T, error) {
	var zero T
	e, err := ParseExpr(s)
	if err != nil {
		return zero, err
	}
	t, ok := e.(T)
	if !ok {
		return zero, &ValidationError{ParseError{Msg: wrongKind, Range: wholeQuery(s)}}
	}
	return t, nil
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
	// selErr reports the first selector that selects every stream.
	selErr error
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) advance() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// isIdent reports whether the next token is the keyword text. Keywords
// are case-insensitive, as in Loki; label names are not.
func (p *parser) isIdent(text string) bool {
	return isKeyword(p.peek(), text)
}

func isKeyword(t token, text string) bool {
	return t.kind == tokIdent && strings.EqualFold(t.text, text)
}

// keyword returns an identifier's text lowercased, for matching keywords.
func keyword(t token) string {
	if t.kind != tokIdent {
		return ""
	}
	return strings.ToLower(t.text)
}

// unexpected builds Loki's "syntax error: unexpected X, expecting Y".
func (p *parser) unexpected(t token, expecting string) error {
	msg := "syntax error: unexpected " + t.describe()
	if expecting != "" {
		msg += ", expecting " + expecting
	}
	return p.errAt(t, "%s", msg)
}

// errAt reports an error located at token t, spanning t.
func (p *parser) errAt(t token, format string, args ...any) error {
	return newParseError(p.src, t.pos, t.end, fmt.Sprintf(format, args...))
}

// errFrom reports an error located at token from, spanning the tokens
// from there to the last one consumed.
func (p *parser) errFrom(from int, format string, args ...any) error {
	r := p.span(from)
	return &ParseError{Line: r.Start.Line, Col: r.Start.Col, Msg: fmt.Sprintf(format, args...), Range: r}
}

// tokRange is the span of token t.
func (p *parser) tokRange(t token) PositionRange { return spanFrom(p.src, t.pos, t.end) }

// span covers the tokens from index from to the last one consumed (at
// least token from).
func (p *parser) span(from int) PositionRange {
	end := p.toks[from].end
	if p.i > from {
		end = p.toks[p.i-1].end
	}
	return spanFrom(p.src, p.toks[from].pos, end)
}

// invalid reports a validation error over r, printed as Loki does.
func (p *parser) invalid(r PositionRange, format string, args ...any) error {
	return &ValidationError{ParseError{Msg: fmt.Sprintf(format, args...), Range: r}}
}

func (p *parser) expect(k tokenKind, expecting string) (token, error) {
	t := p.peek()
	if t.kind != k {
		return t, p.unexpected(t, expecting)
	}
	return p.advance(), nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(p.peek(), "query nested too deeply (more than %d levels)", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseQuery is the grammar's root: a log query or a metric query.
func (p *parser) parseQuery() (Expr, error) {
	if p.peek().kind == tokEOF {
		return nil, p.unexpected(p.peek(), "")
	}
	var e Expr
	var err error
	if p.startsLogExpr() {
		e, err = p.parseLogExpr(false)
	} else {
		e, err = p.parseBinary(0)
	}
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.unexpected(t, "")
	}
	return e, nil
}

// startsLogExpr reports whether the next tokens are `{` after any number of
// opening parentheses: a (parenthesised) log query.
func (p *parser) startsLogExpr() bool {
	for n := 0; ; n++ {
		switch p.peekAt(n).kind {
		case tokLParen:
			continue
		case tokLBrace:
			return true
		default:
			return false
		}
	}
}

// parseLogExpr parses `{…} stages` or `( logExpr )`. With inRange, unwrap
// is allowed and the result may be followed by a range.
func (p *parser) parseLogExpr(inRange bool) (LogSelectorExpr, error) {
	var unused *UnwrapExpr
	return p.parseLogExprUnwrap(inRange, &unused)
}

func (p *parser) parseLogExprUnwrap(inRange bool, unwrap **UnwrapExpr) (LogSelectorExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.peek().kind == tokLParen {
		p.advance()
		e, err := p.parseLogExprUnwrap(inRange, unwrap)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
			return nil, err
		}
		return e, nil
	}
	sel, err := p.parseSelector()
	if err != nil {
		return nil, err
	}
	stages, uw, err := p.parseStages(inRange)
	if err != nil {
		return nil, err
	}
	*unwrap = uw
	if len(stages) == 0 {
		return sel, nil
	}
	return &PipelineExpr{Left: sel, Stages: stages}, nil
}

// parseSelector parses {name op "value", …}.
func (p *parser) parseSelector() (*MatcherExpr, error) {
	start := p.i
	if _, err := p.expect(tokLBrace, "OPEN_BRACE"); err != nil {
		return nil, err
	}
	var ms []*labels.Matcher
	for p.peek().kind != tokRBrace {
		m, err := p.parseMatcher()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		if p.peek().kind == tokComma {
			p.advance()
			continue
		}
		if p.peek().kind != tokRBrace {
			return nil, p.unexpected(p.peek(), "COMMA or CLOSE_BRACE")
		}
	}
	p.advance()
	if p.selErr == nil && !selectsSomething(ms) {
		p.selErr = p.invalid(p.span(start), "%s", errEmptyCompatible)
	}
	return &MatcherExpr{Mts: ms}, nil
}

var matchOps = map[tokenKind]labels.MatchType{
	tokEq: labels.MatchEqual, tokNeq: labels.MatchNotEqual,
	tokRe: labels.MatchRegexp, tokNre: labels.MatchNotRegexp,
}

// parseMatcher parses name op "value".
func (p *parser) parseMatcher() (*labels.Matcher, error) {
	name, err := p.expect(tokIdent, "IDENTIFIER")
	if err != nil {
		return nil, err
	}
	opTok := p.advance()
	op, ok := matchOps[opTok.kind]
	if !ok {
		return nil, p.unexpected(opTok, "EQ, NEQ, RE or NRE")
	}
	val, err := p.expect(tokString, "STRING")
	if err != nil {
		return nil, err
	}
	return p.newMatcher(op, name.text, val.text)
}

// newMatcher builds a matcher just after its operator and value string
// were consumed; an error spans them both.
func (p *parser) newMatcher(op labels.MatchType, name, value string) (*labels.Matcher, error) {
	m, err := labels.NewMatcher(op, name, value)
	if err != nil {
		return nil, p.errFrom(p.i-2, "%v", err)
	}
	return m, nil
}

// parseStages parses a pipeline's stages. When inRange, `| unwrap …` may
// end the pipeline, followed only by label filters.
func (p *parser) parseStages(inRange bool) ([]StageExpr, *UnwrapExpr, error) {
	var stages []StageExpr
	for {
		t := p.peek()
		switch t.kind {
		case tokPipeExact, tokNeq, tokPipeMatch, tokNre, tokPipePat, tokNotPat:
			f, err := p.parseLineFilter()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, f)
		case tokPipe:
			if next := p.peekAt(1); isKeyword(next, "unwrap") {
				if !inRange {
					return nil, nil, p.errAt(next, "syntax error: unexpected UNWRAP: unwrap is only allowed in a range aggregation")
				}
				p.advance()
				uw, err := p.parseUnwrap()
				if err != nil {
					return nil, nil, err
				}
				return stages, uw, nil
			}
			p.advance()
			s, err := p.parseStage()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, s)
		default:
			return stages, nil, nil
		}
	}
}

var lineFilterOps = map[tokenKind]LineFilterOp{
	tokPipeExact: LineContains, tokNeq: LineNotContains,
	tokPipeMatch: LineMatchRegexp, tokNre: LineNotMatchRegexp,
	tokPipePat: LineMatchPattern, tokNotPat: LineNotMatchPattern,
}

// parseLineFilter parses `op value [or value …]`.
func (p *parser) parseLineFilter() (*LineFilterExpr, error) {
	opTok := p.advance()
	op := lineFilterOps[opTok.kind]
	f, err := p.parseLineFilterValue(op)
	if err != nil {
		return nil, err
	}
	for p.isIdent("or") {
		// `or` belongs to the filter only when a value follows; otherwise it
		// is left for whatever comes next to reject.
		next := p.peekAt(1)
		if next.kind != tokString && !isKeyword(next, "ip") {
			break
		}
		p.advance()
		alt, err := p.parseLineFilterValue(op)
		if err != nil {
			return nil, err
		}
		f.Or = append(f.Or, alt)
	}
	return f, nil
}

func (p *parser) parseLineFilterValue(op LineFilterOp) (*LineFilterExpr, error) {
	t, at := p.peek(), p.i
	f := &LineFilterExpr{Op: op}
	switch {
	case t.kind == tokString:
		p.advance()
		f.Value = t.text
	case isKeyword(t, "ip"):
		if op != LineContains && op != LineNotContains {
			return nil, p.errAt(t, "ip() line filter only supports |= and !=, not %s", op)
		}
		v, err := p.parseIPCall()
		if err != nil {
			return nil, err
		}
		f.Value, f.IP = v, true
	default:
		return nil, p.unexpected(t, "STRING or IP")
	}
	if err := checkLineFilterValue(f); err != nil {
		return nil, p.errFrom(at, "%v", err)
	}
	return f, nil
}

// parseIPCall parses ip("…") and checks the address, range or CIDR.
func (p *parser) parseIPCall() (string, error) {
	p.advance() // ip
	if _, err := p.expect(tokLParen, "OPEN_PARENTHESIS"); err != nil {
		return "", err
	}
	s, err := p.expect(tokString, "STRING")
	if err != nil {
		return "", err
	}
	if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
		return "", err
	}
	if err := checkIPPattern(s.text); err != nil {
		return "", p.errAt(s, "%v", err)
	}
	return s.text, nil
}

// parseStage parses the stage after a `|`.
func (p *parser) parseStage() (StageExpr, error) {
	t := p.peek()
	if t.kind == tokIdent {
		switch kw := keyword(t); kw {
		case "json":
			p.advance()
			if p.peek().kind == tokIdent {
				params, err := p.parseExtractions()
				if err != nil {
					return nil, err
				}
				return &JSONExpressionParserExpr{Params: params}, nil
			}
			return &LabelParserExpr{Kind: ParserJSON}, nil
		case "logfmt":
			p.advance()
			var strict, keepEmpty bool
			for p.peek().kind == tokFlag {
				f := p.advance()
				switch strings.ToLower(f.text) {
				case "--strict":
					strict = true
				case "--keep-empty":
					keepEmpty = true
				default:
					return nil, p.errAt(f, "syntax error: unknown logfmt flag %s, expecting --strict or --keep-empty", f.text)
				}
			}
			if p.peek().kind == tokIdent {
				params, err := p.parseExtractions()
				if err != nil {
					return nil, err
				}
				return &LogfmtExpressionParserExpr{Params: params, Strict: strict, KeepEmpty: keepEmpty}, nil
			}
			return &LabelParserExpr{Kind: ParserLogfmt, Strict: strict, KeepEmpty: keepEmpty}, nil
		case "regexp", "pattern":
			p.advance()
			s, err := p.expect(tokString, "STRING")
			if err != nil {
				return nil, err
			}
			e := &LabelParserExpr{Kind: ParserKind(kw), Param: s.text}
			if err := checkParserParam(e); err != nil {
				return nil, p.errAt(s, "%v", err)
			}
			return e, nil
		case "unpack":
			p.advance()
			return &LabelParserExpr{Kind: ParserUnpack}, nil
		case "line_format":
			p.advance()
			s, err := p.expect(tokString, "STRING")
			if err != nil {
				return nil, err
			}
			return &LineFmtExpr{Value: s.text}, nil
		case "label_format":
			p.advance()
			return p.parseLabelFormat()
		case "drop", "keep":
			p.advance()
			refs, err := p.parseLabelRefs()
			if err != nil {
				return nil, err
			}
			if kw == "drop" {
				return &DropLabelsExpr{Labels: refs}, nil
			}
			return &KeepLabelsExpr{Labels: refs}, nil
		case "decolorize":
			p.advance()
			return &DecolorizeExpr{}, nil
		}
	}
	if t.kind == tokIdent || t.kind == tokLParen {
		f, err := p.parseLabelFilter()
		if err != nil {
			return nil, err
		}
		return &LabelFilterExpr{Filter: f}, nil
	}
	return nil, p.unexpected(t, "a parser, a label filter, line_format, label_format, drop, keep or decolorize")
}

// parseExtractions parses `name="expr", name, …` after json or logfmt.
func (p *parser) parseExtractions() ([]LabelExtraction, error) {
	var out []LabelExtraction
	for {
		name, err := p.expect(tokIdent, "IDENTIFIER")
		if err != nil {
			return nil, err
		}
		x := LabelExtraction{Name: name.text, Expr: name.text, Bare: true}
		if p.peek().kind == tokEq {
			p.advance()
			s, err := p.expect(tokString, "STRING")
			if err != nil {
				return nil, err
			}
			x.Expr, x.Bare = s.text, false
		}
		out = append(out, x)
		if p.peek().kind != tokComma {
			return out, nil
		}
		p.advance()
	}
}

// parseLabelFormat parses `dst=src, dst="template", …`.
func (p *parser) parseLabelFormat() (*LabelFmtExpr, error) {
	e := &LabelFmtExpr{}
	seen := map[string]bool{}
	for {
		name, err := p.expect(tokIdent, "IDENTIFIER")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokEq, "EQ"); err != nil {
			return nil, err
		}
		v := p.advance()
		var f LabelFmt
		switch v.kind {
		case tokIdent:
			f = LabelFmt{Name: name.text, Value: v.text, Rename: true}
		case tokString:
			f = LabelFmt{Name: name.text, Value: v.text}
		default:
			return nil, p.unexpected(v, "IDENTIFIER or STRING")
		}
		if seen[name.text] {
			return nil, p.errAt(name, "multiple label name '%s' not allowed in a single format operation", name.text) // Loki's wording
		}
		seen[name.text] = true
		e.Formats = append(e.Formats, f)
		if p.peek().kind != tokComma {
			return e, nil
		}
		p.advance()
	}
}

// parseLabelRefs parses `name, name="v", …` after drop or keep.
func (p *parser) parseLabelRefs() ([]LabelRef, error) {
	var out []LabelRef
	for {
		name, err := p.expect(tokIdent, "IDENTIFIER")
		if err != nil {
			return nil, err
		}
		r := LabelRef{Name: name.text}
		if op, ok := matchOps[p.peek().kind]; ok {
			p.advance()
			s, err := p.expect(tokString, "STRING")
			if err != nil {
				return nil, err
			}
			m, err := p.newMatcher(op, name.text, s.text)
			if err != nil {
				return nil, err
			}
			r.Matcher = m
		}
		out = append(out, r)
		if p.peek().kind != tokComma {
			return out, nil
		}
		p.advance()
	}
}

// parseLabelFilter parses a label filter expression: `or` binds looser
// than `and`. A comma or plain juxtaposition also means and, but binds as
// Loki's grammar makes it (see parseLabelFilterUnit).
func (p *parser) parseLabelFilter() (LabelFilter, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	left, err := p.parseLabelFilterAnd()
	if err != nil {
		return nil, err
	}
	for p.isIdent("or") {
		p.advance()
		right, err := p.parseLabelFilterAnd()
		if err != nil {
			return nil, err
		}
		left = &BinaryLabelFilter{Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) parseLabelFilterAnd() (LabelFilter, error) {
	left, err := p.parseLabelFilterUnit()
	if err != nil {
		return nil, err
	}
	for p.isIdent("and") {
		p.advance()
		right, err := p.parseLabelFilterUnit()
		if err != nil {
			return nil, err
		}
		left = &BinaryLabelFilter{And: true, Left: left, Right: right}
	}
	return left, nil
}

// parseLabelFilterUnit parses one filter. When a comma or another filter
// follows it directly, the filter is and-ed with everything after it: in
// Loki's grammar the comma and juxtaposition carry no precedence, so its
// parser always shifts, and `a, b or c` means a and (b or c) while
// `a and b or c` means (a and b) or c.
func (p *parser) parseLabelFilterUnit() (LabelFilter, error) {
	f, err := p.parseLabelFilterPrimary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	switch {
	case t.kind == tokComma:
		p.advance()
	case t.kind == tokLParen,
		t.kind == tokIdent && !isKeyword(t, "or") && !isKeyword(t, "and") && isComparison(p.peekAt(1).kind):
	default:
		return f, nil
	}
	rest, err := p.parseLabelFilter()
	if err != nil {
		return nil, err
	}
	return &BinaryLabelFilter{And: true, Left: f, Right: rest}, nil
}

func isComparison(k tokenKind) bool {
	switch k {
	case tokEq, tokNeq, tokRe, tokNre, tokCmpEq, tokGt, tokGte, tokLt, tokLte:
		return true
	}
	return false
}

var cmpOps = map[tokenKind]ComparisonOp{
	tokEq: CmpEq, tokCmpEq: CmpEq, tokNeq: CmpNeq,
	tokGt: CmpGt, tokGte: CmpGte, tokLt: CmpLt, tokLte: CmpLte,
}

// parseLabelFilterPrimary parses `( filter )` or one comparison.
func (p *parser) parseLabelFilterPrimary() (LabelFilter, error) {
	t := p.peek()
	if t.kind == tokLParen {
		p.advance()
		f, err := p.parseLabelFilter()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
			return nil, err
		}
		return f, nil
	}
	name, err := p.expect(tokIdent, "IDENTIFIER or OPEN_PARENTHESIS")
	if err != nil {
		return nil, err
	}
	opTok := p.advance()
	if !isComparison(opTok.kind) {
		return nil, p.unexpected(opTok, "EQ, NEQ, RE, NRE, CMP_EQ, GT, GTE, LT or LTE")
	}
	v := p.peek()
	switch {
	case v.kind == tokString:
		p.advance()
		var mt labels.MatchType
		switch opTok.kind {
		case tokEq, tokCmpEq:
			mt = labels.MatchEqual
		case tokNeq:
			mt = labels.MatchNotEqual
		case tokRe:
			mt = labels.MatchRegexp
		case tokNre:
			mt = labels.MatchNotRegexp
		default:
			return nil, p.unexpected(v, "NUMBER, DURATION or BYTES")
		}
		m, err := p.newMatcher(mt, name.text, v.text)
		if err != nil {
			return nil, err
		}
		return &StringLabelFilter{Matcher: m}, nil
	case isKeyword(v, "ip"):
		if opTok.kind != tokEq && opTok.kind != tokNeq {
			return nil, p.errAt(opTok, "ip() label filter only supports = and !=")
		}
		pat, err := p.parseIPCall()
		if err != nil {
			return nil, err
		}
		return &IPLabelFilter{Name: name.text, Negate: opTok.kind == tokNeq, Pattern: pat}, nil
	}
	op, ok := cmpOps[opTok.kind]
	if !ok {
		return nil, p.unexpected(v, "STRING")
	}
	if v.kind == tokSub && p.peekAt(1).kind == tokDuration {
		p.advance()
		d := p.advance()
		return &DurationLabelFilter{Name: name.text, Op: op, Value: -d.dur}, nil
	}
	switch v.kind {
	case tokDuration:
		p.advance()
		return &DurationLabelFilter{Name: name.text, Op: op, Value: v.dur}, nil
	case tokBytes:
		p.advance()
		return &BytesLabelFilter{Name: name.text, Op: op, Value: v.size}, nil
	case tokNumber, tokSub, tokAdd:
		f, err := p.parseSignedNumber()
		if err != nil {
			return nil, err
		}
		return &NumericLabelFilter{Name: name.text, Op: op, Value: f}, nil
	}
	return nil, p.unexpected(v, "STRING, NUMBER, DURATION, BYTES or IP")
}

// parseSignedNumber parses [+|-] NUMBER.
func (p *parser) parseSignedNumber() (float64, error) {
	sign := 1.0
	switch p.peek().kind {
	case tokSub:
		p.advance()
		sign = -1
	case tokAdd:
		p.advance()
	}
	if f, ok := p.specialNumber(); ok {
		return sign * f, nil
	}
	n, err := p.expect(tokNumber, "NUMBER")
	if err != nil {
		return 0, err
	}
	return sign * n.num, nil
}

// specialNumber reads NaN or Inf (any case). Loki's lexer has no such
// numbers, but a folded literal such as 0/0 must print and parse back.
func (p *parser) specialNumber() (float64, bool) {
	switch keyword(p.peek()) {
	case "nan":
		p.advance()
		return math.NaN(), true
	case "inf":
		p.advance()
		return math.Inf(1), true
	}
	return 0, false
}

var unwrapConversions = map[string]bool{
	UnwrapDuration: true, UnwrapDurationSeconds: true, UnwrapBytes: true,
}

// parseUnwrap parses `unwrap [conv(]label[)]` and following label filters.
func (p *parser) parseUnwrap() (*UnwrapExpr, error) {
	p.advance() // unwrap
	id, err := p.expect(tokIdent, "IDENTIFIER")
	if err != nil {
		return nil, err
	}
	u := &UnwrapExpr{Identifier: id.text}
	if conv := keyword(id); unwrapConversions[conv] && p.peek().kind == tokLParen {
		p.advance()
		inner, err := p.expect(tokIdent, "IDENTIFIER")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
			return nil, err
		}
		u.Operation, u.Identifier = conv, inner.text
	}
	for p.peek().kind == tokPipe {
		next := p.peekAt(1)
		if next.kind != tokIdent && next.kind != tokLParen {
			return nil, p.unexpected(next, "a label filter after unwrap")
		}
		if isStageKeyword(keyword(next)) {
			return nil, p.errAt(next, "syntax error: unexpected %s: only label filters may follow unwrap", next.describe())
		}
		p.advance()
		f, err := p.parseLabelFilter()
		if err != nil {
			return nil, err
		}
		u.PostFilters = append(u.PostFilters, &LabelFilterExpr{Filter: f})
	}
	return u, nil
}

func isStageKeyword(s string) bool {
	switch s {
	case "json", "logfmt", "regexp", "pattern", "unpack", "line_format", "label_format",
		"drop", "keep", "decolorize", "unwrap":
		return true
	}
	return false
}

func isRangeOp(s string) bool {
	switch s {
	case OpRangeTypeCount, OpRangeTypeRate, OpRangeTypeRateCounter, OpRangeTypeBytes,
		OpRangeTypeBytesRate, OpRangeTypeAbsent, OpRangeTypeSum, OpRangeTypeAvg,
		OpRangeTypeMin, OpRangeTypeMax, OpRangeTypeFirst, OpRangeTypeLast,
		OpRangeTypeStddev, OpRangeTypeStdvar, OpRangeTypeQuantile:
		return true
	}
	return false
}

func isVectorOp(s string) bool {
	switch s {
	case OpTypeSum, OpTypeAvg, OpTypeMin, OpTypeMax, OpTypeCount, OpTypeStddev,
		OpTypeStdvar, OpTypeTopK, OpTypeBottomK, OpTypeSort, OpTypeSortDesc:
		return true
	}
	return false
}

// binOp returns the binary operator at the cursor, if any.
func (p *parser) binOp() (string, bool) {
	t := p.peek()
	switch t.kind {
	case tokAdd:
		return OpTypeAdd, true
	case tokSub:
		return OpTypeSub, true
	case tokMul:
		return OpTypeMul, true
	case tokDiv:
		return OpTypeDiv, true
	case tokMod:
		return OpTypeMod, true
	case tokPow:
		return OpTypePow, true
	case tokCmpEq:
		return OpTypeCmpEQ, true
	case tokNeq:
		return OpTypeNEQ, true
	case tokGt:
		return OpTypeGT, true
	case tokGte:
		return OpTypeGTE, true
	case tokLt:
		return OpTypeLT, true
	case tokLte:
		return OpTypeLTE, true
	case tokIdent:
		switch kw := keyword(t); kw {
		case OpTypeOr, OpTypeAnd, OpTypeUnless:
			return kw, true
		}
	}
	return "", false
}

func isSetBinOp(op string) bool {
	return op == OpTypeOr || op == OpTypeAnd || op == OpTypeUnless
}

// parseBinary parses operators binding at least as tightly as minPrec, by
// precedence climbing.
func (p *parser) parseBinary(minPrec int) (SampleExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	start := p.i
	lhs, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.binOp()
		if !ok {
			return lhs, nil
		}
		prec := binOpPrecedence(op)
		if prec < minPrec {
			return lhs, nil
		}
		p.advance()
		opts, err := p.parseBinOpModifiers()
		if err != nil {
			return nil, err
		}
		next := prec + 1
		if op == OpTypePow {
			next = prec // right-associative
		}
		if p.startsLogExpr() {
			return nil, p.unexpected(p.peek(), "a metric expression")
		}
		rhs, err := p.parseBinary(next)
		if err != nil {
			return nil, err
		}
		e := &BinOpExpr{Op: op, LHS: lhs, RHS: rhs, Opts: opts}
		if err := checkBinOp(e); err != nil {
			return nil, p.invalid(p.span(start), "%v", err)
		}
		lhs = foldLiterals(e)
	}
}

// parseBinOpModifiers parses `bool`, `on (…)`/`ignoring (…)` and
// `group_left (…)`/`group_right (…)`.
func (p *parser) parseBinOpModifiers() (*BinOpOptions, error) {
	var opts BinOpOptions
	written := false
	// Loki's grammar takes bool and group_left/right on every operator;
	// bool only changes comparisons and cardinality only arithmetic and
	// comparisons.
	if p.isIdent("bool") {
		p.advance()
		opts.ReturnBool, written = true, true
	}
	if p.isIdent("on") || p.isIdent("ignoring") {
		on := isKeyword(p.advance(), "on")
		names, err := p.parseLabelList()
		if err != nil {
			return nil, err
		}
		vm := &VectorMatching{On: on, MatchingLabels: names}
		if p.isIdent("group_left") || p.isIdent("group_right") {
			g := p.advance()
			vm.Card = CardManyToOne
			if isKeyword(g, "group_right") {
				vm.Card = CardOneToMany
			}
			// `group_left (sum(x))` has no label list: the parenthesis opens
			// the right operand. A label list holds only names, each
			// followed by a comma or the closing parenthesis.
			if p.peek().kind == tokLParen && p.startsLabelList() {
				inc, err := p.parseLabelList()
				if err != nil {
					return nil, err
				}
				if len(inc) > 0 {
					vm.Include = inc
				}
			}
		}
		opts.VectorMatching, written = vm, true
	}
	if !written {
		return nil, nil
	}
	return &opts, nil
}

// startsLabelList reports whether the parenthesis at the cursor opens a
// label list rather than an expression.
func (p *parser) startsLabelList() bool {
	first := p.peekAt(1)
	if first.kind == tokRParen {
		return true
	}
	after := p.peekAt(2).kind
	return first.kind == tokIdent && (after == tokComma || after == tokRParen)
}

// parseLabelList parses `( a, b, … )`, allowing a trailing comma. It
// returns a non-nil slice so `by ()` differs from no grouping.
func (p *parser) parseLabelList() ([]string, error) {
	if _, err := p.expect(tokLParen, "OPEN_PARENTHESIS"); err != nil {
		return nil, err
	}
	names := []string{}
	for p.peek().kind != tokRParen {
		n, err := p.expect(tokIdent, "IDENTIFIER")
		if err != nil {
			return nil, err
		}
		names = append(names, n.text)
		if p.peek().kind == tokComma {
			p.advance()
			continue
		}
		if p.peek().kind != tokRParen {
			return nil, p.unexpected(p.peek(), "COMMA or CLOSE_PARENTHESIS")
		}
	}
	p.advance()
	return names, nil
}

// parseUnary parses a signed number literal or a primary expression. Like
// Loki, a sign applies only to a number.
func (p *parser) parseUnary() (SampleExpr, error) {
	t := p.peek()
	if t.kind == tokSub || t.kind == tokAdd {
		if next := p.peekAt(1); next.kind != tokNumber && keyword(next) != "nan" && keyword(next) != "inf" {
			return nil, p.unexpected(next, "NUMBER")
		}
		f, err := p.parseSignedNumber()
		if err != nil {
			return nil, err
		}
		return &LiteralExpr{Val: f}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (SampleExpr, error) {
	t := p.peek()
	switch t.kind {
	case tokNumber:
		p.advance()
		return &LiteralExpr{Val: t.num}, nil
	case tokLParen:
		if p.startsLogExpr() {
			return nil, p.unexpected(p.peekAt(1), "a metric expression")
		}
		p.advance()
		e, err := p.parseBinary(0)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
			return nil, err
		}
		return e, nil
	case tokIdent:
		switch kw := keyword(t); {
		case kw == "nan" || kw == "inf":
			f, _ := p.specialNumber()
			return &LiteralExpr{Val: f}, nil
		case isRangeOp(kw):
			return p.parseRangeAggregation()
		case isVectorOp(kw):
			return p.parseVectorAggregation()
		case kw == "label_replace":
			return p.parseLabelReplace()
		case kw == "vector":
			p.advance()
			if _, err := p.expect(tokLParen, "OPEN_PARENTHESIS"); err != nil {
				return nil, err
			}
			f, err := p.parseSignedNumber()
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
				return nil, err
			}
			return &VectorExpr{Val: f}, nil
		}
	}
	return nil, p.unexpected(t, "")
}

// parseGrouping parses `by (…)` or `without (…)` when present.
func (p *parser) parseGrouping() (*Grouping, error) {
	if !p.isIdent("by") && !p.isIdent("without") {
		return nil, nil
	}
	without := isKeyword(p.advance(), "without")
	names, err := p.parseLabelList()
	if err != nil {
		return nil, err
	}
	return &Grouping{Groups: names, Without: without}, nil
}

// parseRangeAggregation parses `op([φ,] logRange) [by|without (…)]`.
func (p *parser) parseRangeAggregation() (SampleExpr, error) {
	start := p.i
	opTok := p.advance()
	e := &RangeAggregationExpr{Operation: keyword(opTok)}
	if _, err := p.expect(tokLParen, "OPEN_PARENTHESIS"); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tokNumber || t.kind == tokSub || t.kind == tokAdd {
		param := p.i
		f, err := p.parseSignedNumber()
		if err != nil {
			return nil, err
		}
		paramRange := p.span(param)
		if _, err := p.expect(tokComma, "COMMA"); err != nil {
			return nil, err
		}
		if e.Operation != OpRangeTypeQuantile {
			return nil, p.invalid(paramRange, "parameter %s not supported for operation %s", formatFloat(f), e.Operation)
		}
		e.Params = &f
	} else if e.Operation == OpRangeTypeQuantile {
		return nil, p.invalid(p.tokRange(opTok), "parameter required for operation %s", e.Operation)
	}
	lr, err := p.parseLogRange()
	if err != nil {
		return nil, err
	}
	e.Left = lr
	if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
		return nil, err
	}
	g, err := p.parseGrouping()
	if err != nil {
		return nil, err
	}
	e.Grouping = g
	if err := checkRangeAggregation(e); err != nil {
		return nil, p.invalid(p.span(start), "%v", err)
	}
	return e, nil
}

// parseLogRange parses a log query with a range: the range may follow the
// pipeline (`{…} | json [5m]`) or the selector (`{…}[5m] | json`), and the
// whole log query may be parenthesised.
func (p *parser) parseLogRange() (*LogRangeExpr, error) {
	if p.peek().kind == tokLParen && p.parenHoldsRange() {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		p.advance()
		lr, err := p.parseLogRange()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
			return nil, err
		}
		return lr, nil
	}
	if !p.startsLogExpr() {
		return nil, p.unexpected(p.peek(), "OPEN_BRACE")
	}
	var uw *UnwrapExpr
	left, err := p.parseLogExprUnwrap(true, &uw)
	if err != nil {
		return nil, err
	}
	lr := &LogRangeExpr{Left: left, Unwrap: uw}
	if _, err := p.expect(tokLBracket, "RANGE"); err != nil {
		return nil, err
	}
	d, err := p.expect(tokDuration, "DURATION")
	if err != nil {
		return nil, err
	}
	if d.dur <= 0 {
		return nil, p.errAt(d, "range must be greater than zero")
	}
	lr.Interval = d.dur
	if _, err := p.expect(tokRBracket, "CLOSE_BRACKET"); err != nil {
		return nil, err
	}
	if p.isIdent("offset") {
		p.advance()
		neg := p.peek().kind == tokSub
		if neg {
			p.advance()
		}
		o, err := p.expect(tokDuration, "DURATION")
		if err != nil {
			return nil, err
		}
		lr.Offset = o.dur
		if neg {
			lr.Offset = -o.dur
		}
	}
	// Stages after the range belong to the selector written before it.
	if k := p.peek().kind; k == tokPipe || lineFilterOps[k] != "" {
		if uw != nil {
			return nil, p.unexpected(p.peek(), "CLOSE_PARENTHESIS")
		}
		stages, uw2, err := p.parseStages(true)
		if err != nil {
			return nil, err
		}
		lr.Unwrap = uw2
		if len(stages) > 0 {
			switch l := left.(type) {
			case *MatcherExpr:
				lr.Left = &PipelineExpr{Left: l, Stages: stages}
			case *PipelineExpr:
				lr.Left = &PipelineExpr{Left: l.Left, Stages: append(l.Stages, stages...)}
			}
		}
	}
	return lr, nil
}

// parenHoldsRange reports whether the parenthesis at the cursor encloses a
// whole log range, `({…} | … [5m])`, rather than just a log query,
// `({…} | …)[5m]`: only the former has a `[` before its closing parenthesis.
func (p *parser) parenHoldsRange() bool {
	depth := 0
	for _, t := range p.toks[p.i:] {
		switch t.kind {
		case tokLParen:
			depth++
		case tokRParen:
			depth--
			if depth == 0 {
				return false
			}
		case tokLBracket:
			return true
		case tokEOF:
			return false
		}
	}
	return false
}

// parseVectorAggregation parses `op [grouping] ([k,] expr) [grouping]`.
func (p *parser) parseVectorAggregation() (SampleExpr, error) {
	start := p.i
	opTok := p.advance()
	e := &VectorAggregationExpr{Operation: keyword(opTok)}
	g, err := p.parseGrouping()
	if err != nil {
		return nil, err
	}
	e.Grouping = g
	if _, err := p.expect(tokLParen, "OPEN_PARENTHESIS"); err != nil {
		return nil, err
	}
	// Any aggregation may be written with a parameter; only topk and
	// bottomk take one, a positive integer (Loki's messages).
	if t := p.peek(); t.kind == tokNumber && p.peekAt(1).kind == tokComma {
		p.advance()
		p.advance()
		if e.Operation != OpTypeTopK && e.Operation != OpTypeBottomK {
			return nil, p.invalid(p.tokRange(t), "unsupported parameter for operation %s(%s,", e.Operation, t.text)
		}
		k, err := strconv.Atoi(t.text)
		if err != nil {
			return nil, p.invalid(p.tokRange(t), "invalid parameter %s(%s,", e.Operation, t.text)
		}
		if k <= 0 {
			return nil, p.invalid(p.tokRange(t), "invalid parameter (must be greater than 0) %s(%s", e.Operation, t.text)
		}
		e.Params = k
	} else if e.Operation == OpTypeTopK || e.Operation == OpTypeBottomK {
		return nil, p.invalid(p.tokRange(opTok), "parameter required for operation %s", e.Operation)
	}
	if p.startsLogExpr() {
		return nil, p.unexpected(p.peek(), "a metric expression")
	}
	left, err := p.parseBinary(0)
	if err != nil {
		return nil, err
	}
	e.Left = left
	if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
		return nil, err
	}
	if t := p.peek(); p.isIdent("by") || p.isIdent("without") {
		if e.Grouping != nil {
			return nil, p.errAt(t, "syntax error: unexpected %s: grouping given twice", t.describe())
		}
		g, err := p.parseGrouping()
		if err != nil {
			return nil, err
		}
		e.Grouping = g
	}
	if (e.Operation == OpTypeSort || e.Operation == OpTypeSortDesc) && e.Grouping != nil && len(e.Grouping.Groups) > 0 {
		return nil, p.invalid(p.span(start), "sort and sort_desc doesn't allow grouping by")
	}
	return e, nil
}

// parseLabelReplace parses label_replace(expr, "dst", "repl", "src", "regex").
func (p *parser) parseLabelReplace() (SampleExpr, error) {
	p.advance()
	if _, err := p.expect(tokLParen, "OPEN_PARENTHESIS"); err != nil {
		return nil, err
	}
	if p.startsLogExpr() {
		return nil, p.unexpected(p.peek(), "a metric expression")
	}
	left, err := p.parseBinary(0)
	if err != nil {
		return nil, err
	}
	var args [4]token
	for i := range args {
		if _, err := p.expect(tokComma, "COMMA"); err != nil {
			return nil, err
		}
		s, err := p.expect(tokString, "STRING")
		if err != nil {
			return nil, err
		}
		args[i] = s
	}
	if _, err := p.expect(tokRParen, "CLOSE_PARENTHESIS"); err != nil {
		return nil, err
	}
	e := &LabelReplaceExpr{Left: left, Dst: args[0].text, Replacement: args[1].text, Src: args[2].text, Regex: args[3].text}
	if !isLabelName(e.Dst) {
		return nil, p.errAt(args[0], "invalid destination label name in label_replace(): %s", e.Dst)
	}
	if e.Src != "" && !isLabelName(e.Src) {
		return nil, p.errAt(args[2], "invalid source label name in label_replace(): %s", e.Src)
	}
	// Loki anchors the regex as ^(?:re)$; the engine must compile it the
	// same way.
	if _, err := regexp.Compile("^(?:" + e.Regex + ")$"); err != nil {
		return nil, p.invalid(p.tokRange(args[3]), "invalid regex in label_replace: %v", err)
	}
	return e, nil
}

func isLabelName(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}
