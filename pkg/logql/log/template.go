package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxTemplateRegexps bounds the per-stream cache of regular expressions
// compiled by template functions (regexReplaceAll, count).
const maxTemplateRegexps = 64

// templateState is what the per-line functions __line__ and __timestamp__
// read, plus caches; each stream's formatter has its own.
type templateState struct {
	line    []byte
	ts      int64
	regexps map[string]*regexp.Regexp
	// limit is the most bytes the running execution may produce, in all
	// and from any one function (see MaxTemplateOutput); work and steps
	// count what it did so far (see maxTemplateWork, maxTemplateSteps).
	limit int
	work  uint64
	steps int
}

// MaxTemplateOutput bounds what one line_format or label_format template
// may produce beyond the length of the line it formats, and what any one
// template function may return beyond it. Loki's default line size limit
// (max_line_size) is 256 KiB, so no line Loki accepts needs a template to
// make more; without a bound, `{{ repeat 1000000000000 "x" }}` asks the
// allocator for a terabyte and kills the process (a Go out-of-memory is
// fatal, never a panic). Going over it is a TemplateFormatErr on that line,
// as every template execution error is in Loki. Functions check the size
// of their result before building it.
const MaxTemplateOutput = 256 << 10

// errTemplateOutput is what an over-limit function or template reports.
type errTemplateOutput struct {
	what string
	size uint64 // 0 when only the whole output is known to be too big
}

func (e errTemplateOutput) Error() string {
	if e.size > 0 {
		return fmt.Sprintf("%s would produce %d bytes, over the template output limit (%d KiB beyond the line's length)", e.what, e.size, MaxTemplateOutput>>10)
	}
	return fmt.Sprintf("%s is over the template output limit (%d KiB beyond the line's length)", e.what, MaxTemplateOutput>>10)
}

// check fails when a result of size bytes (sizes computed in uint64 so
// that a product cannot wrap) would exceed the execution's limit.
func (s *templateState) check(what string, size uint64) error {
	if size > uint64(s.limit) {
		return errTemplateOutput{what: what, size: size}
	}
	return nil
}

// mulSize multiplies sizes, saturating instead of wrapping.
func mulSize(a, b uint64) uint64 {
	if a != 0 && b > math.MaxUint64/a {
		return math.MaxUint64
	}
	return a * b
}

func (s *templateState) regexp(expr string) (*regexp.Regexp, error) {
	if re, ok := s.regexps[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	if s.regexps == nil || len(s.regexps) >= maxTemplateRegexps {
		s.regexps = map[string]*regexp.Regexp{}
	}
	s.regexps[expr] = re
	return re, nil
}

// templateFuncs is LogQL's template function set (Loki's own functions and
// the Sprig subset it exposes), bound to one formatter's state. Dates are
// formatted and parsed in UTC, which is what a Loki server in a container
// (TZ unset) does with its "local" zone.
func templateFuncs(st *templateState) template.FuncMap {
	return template.FuncMap{
		"__line__":      func() string { return string(st.line) },
		"__timestamp__": func() time.Time { return time.Unix(0, st.ts).UTC() },

		// Loki's older Go-named functions.
		"ToLower":    func(s string) (string, error) { return st.mapCase("ToLower", s, unicode.ToLower) },
		"ToUpper":    func(s string) (string, error) { return st.mapCase("ToUpper", s, unicode.ToUpper) },
		"Replace":    st.replaceN,
		"Trim":       strings.Trim,
		"TrimLeft":   strings.TrimLeft,
		"TrimRight":  strings.TrimRight,
		"TrimPrefix": strings.TrimPrefix,
		"TrimSuffix": strings.TrimSuffix,
		"TrimSpace":  strings.TrimSpace,

		// strings
		"lower":      func(s string) (string, error) { return st.mapCase("lower", s, unicode.ToLower) },
		"upper":      func(s string) (string, error) { return st.mapCase("upper", s, unicode.ToUpper) },
		"title":      st.titleCase,
		"trunc":      trunc,
		"substr":     substr,
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix":  func(p, s string) bool { return strings.HasPrefix(s, p) },
		"hasSuffix":  func(p, s string) bool { return strings.HasSuffix(s, p) },
		"indent":     func(n int, s string) (string, error) { return st.indent("indent", "", n, s) },
		"nindent":    func(n int, s string) (string, error) { return st.indent("nindent", "\n", n, s) },
		"replace":    func(old, repl, s string) (string, error) { return st.replaceN(s, old, repl, -1) },
		"repeat":     st.repeat,
		"trim":       strings.TrimSpace,
		"trimAll":    func(cut, s string) string { return strings.Trim(s, cut) },
		"trimPrefix": func(p, s string) string { return strings.TrimPrefix(s, p) },
		"trimSuffix": func(p, s string) string { return strings.TrimSuffix(s, p) },
		"alignLeft":  func(n int, s string) (string, error) { return st.align("alignLeft", n, s, false) },
		"alignRight": func(n int, s string) (string, error) { return st.align("alignRight", n, s, true) },
		"default":    dfault,
		"urlencode":  st.urlencode,
		"urldecode":  url.QueryUnescape,
		"b64enc": func(s string) (string, error) {
			if err := st.check("b64enc", uint64(base64.StdEncoding.EncodedLen(len(s)))); err != nil {
				return "", err
			}
			return base64.StdEncoding.EncodeToString([]byte(s)), nil
		},
		"b64dec":   b64dec,
		"sha256":   func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"fromJson": fromJSON,

		// regular expressions
		"regexReplaceAll": func(expr, s, repl string) (string, error) {
			return st.regexReplace("regexReplaceAll", expr, s, repl, false)
		},
		"regexReplaceAllLiteral": func(expr, s, repl string) (string, error) {
			return st.regexReplace("regexReplaceAllLiteral", expr, s, repl, true)
		},
		"count": func(expr, s string) (int, error) {
			re, err := st.regexp(expr)
			if err != nil {
				return 0, err
			}
			n, _ := matchStats(re, s)
			return int(n), nil
		},

		// text/template's own printing and escaping builtins, with the
		// same output but bounded.
		"print":    func(args ...any) (string, error) { return st.sprint("print", fmt.Sprint, args) },
		"println":  func(args ...any) (string, error) { return st.sprint("println", fmt.Sprintln, args) },
		"printf":   st.printf,
		"html":     func(args ...any) (string, error) { return st.escape("html", template.HTMLEscape, args) },
		"js":       func(args ...any) (string, error) { return st.escape("js", template.JSEscape, args) },
		"urlquery": func(args ...any) (string, error) { return st.urlquery(args) },
		// __step__ is called by the parser's rewrite at the top of every
		// range body and template (see guardTree); it bounds iterations.
		stepFunc: st.step,

		// numbers
		"int":     func(v any) int { return int(toInt64(v)) },
		"float64": toFloat64,
		"add":     tplAdd,
		"sub":     tplSub,
		"mul":     tplMul,
		"div":     tplDiv,
		"mod":     tplMod,
		"max":     tplMax,
		"min":     tplMin,
		"addf":    func(vs ...any) float64 { return decimalFold(0, vs, (*big.Rat).Add) },
		"subf": func(a any, vs ...any) float64 {
			return decimalFold(0, append([]any{a}, vs...), (*big.Rat).Sub)
		},
		"mulf": func(a any, vs ...any) float64 {
			return decimalFold(1, append([]any{a}, vs...), (*big.Rat).Mul)
		},
		"divf": divf,
		"maxf": func(a any, vs ...any) float64 {
			m := toFloat64(a)
			for _, v := range vs {
				m = math.Max(m, toFloat64(v))
			}
			return m
		},
		"minf": func(a any, vs ...any) float64 {
			m := toFloat64(a)
			for _, v := range vs {
				m = math.Min(m, toFloat64(v))
			}
			return m
		},
		"ceil":             func(v any) float64 { return math.Ceil(toFloat64(v)) },
		"floor":            func(v any) float64 { return math.Floor(toFloat64(v)) },
		"round":            round,
		"bytes":            func(s string) (float64, error) { n, err := ParseBytes(s); return float64(n), err },
		"duration":         durationSeconds,
		"duration_seconds": durationSeconds,

		// dates
		"now":             func() time.Time { return time.Now().UTC() },
		"date":            formatDate,
		"toDate":          func(layout, s string) time.Time { t, _ := time.ParseInLocation(layout, s, time.UTC); return t },
		"toDateInZone":    toDateInZone,
		"unixEpoch":       func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) },
		"unixEpochMillis": func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) },
		"unixEpochNanos":  func(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) },
		"unixToTime":      unixToTime,
	}
}

// The integer functions (Sprig's): arguments convert with toInt64.

func tplAdd(vs ...any) int64 {
	var s int64
	for _, v := range vs {
		s += toInt64(v)
	}
	return s
}

func tplSub(a, b any) int64 { return toInt64(a) - toInt64(b) }

func tplMul(a any, vs ...any) int64 {
	p := toInt64(a)
	for _, v := range vs {
		p *= toInt64(v)
	}
	return p
}

// errIntDivide is the text a Go division panic gives, as Loki reports it.
var errIntDivide = errors.New("runtime error: integer divide by zero")

func tplDiv(a, b any) (int64, error) {
	d := toInt64(b)
	if d == 0 {
		return 0, errIntDivide
	}
	return toInt64(a) / d, nil
}

func tplMod(a, b any) (int64, error) {
	d := toInt64(b)
	if d == 0 {
		return 0, errIntDivide
	}
	return toInt64(a) % d, nil
}

func tplMax(a any, vs ...any) int64 {
	m := toInt64(a)
	for _, v := range vs {
		m = max(m, toInt64(v))
	}
	return m
}

func tplMin(a any, vs ...any) int64 {
	m := toInt64(a)
	for _, v := range vs {
		m = min(m, toInt64(v))
	}
	return m
}

// durationSeconds is the template twin of unwrap's duration_seconds().
func durationSeconds(s string) (float64, error) { return convert(ConvDurationSeconds, s) }

func isWordSeparator(r rune) bool {
	if r <= 0x7F {
		switch {
		case '0' <= r && r <= '9', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', r == '_':
			return false
		}
		return true
	}
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return false
	}
	return unicode.IsSpace(r)
}

// trunc keeps the first n characters, or the last -n when n is negative.
func trunc(n int, s string) string {
	c := utf8.RuneCountInString(s)
	if n < 0 && c+n > 0 {
		return validRunes(s[runeOffset(s, c+n):])
	}
	if n >= 0 && c > n {
		return validRunes(s[:runeOffset(s, n)])
	}
	return s
}

// substr cuts characters [start, end); a negative start means from the
// beginning, a negative end (or one past the end) means to the end.
func substr(start, end int, s string) string {
	c := utf8.RuneCountInString(s)
	end = min(end, c)
	start = min(start, c)
	switch {
	case start < 0 && end < 0:
		return ""
	case start < 0:
		return validRunes(s[:runeOffset(s, end)])
	case end < 0:
		return validRunes(s[runeOffset(s, start):])
	case start > end:
		return ""
	}
	return validRunes(s[runeOffset(s, start):runeOffset(s, end)])
}

// dfault returns d when the value is missing or empty.
func dfault(d any, given ...any) any {
	if len(given) == 0 || isEmptyValue(given[0]) {
		return d
	}
	return given[0]
}

func isEmptyValue(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// b64dec decodes standard base64; like Sprig it returns the error text
// instead of failing the template.
func b64dec(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// fromJSON decodes a JSON document; invalid input gives an empty string.
func fromJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return ""
	}
	return v
}

// toInt64 converts like the Sprig functions do: numbers truncate, strings
// parse as integers (a ".0" fraction allowed), anything else is 0.
func toInt64(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 0
	case string:
		return stringToInt64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	case time.Duration:
		return int64(x)
	case int64: // the common cases, without reflection
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return int64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return int64(rv.Float())
	}
	return 0
}

// stringToInt64 is toInt64 of a string: an integer in Go's syntax, a
// ".0" fraction allowed, else 0.
func stringToInt64(s string) int64 {
	if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0
	}
	return n
}

// toFloat64 converts numbers and numeric strings; anything else is 0.
func toFloat64(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0
		}
		return f
	case bool:
		if x {
			return 1
		}
		return 0
	case float64: // the common cases, without reflection
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	return 0
}

// toRat takes a number at its shortest decimal representation, so that
// addf 0.1 0.2 gives 0.3 as in decimal arithmetic (what Sprig uses).
func toRat(v any) *big.Rat {
	f := toFloat64(v)
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	if !ok { // NaN or Inf
		return nil
	}
	return r
}

func decimalFold(init int64, vs []any, op func(z, x, y *big.Rat) *big.Rat) float64 {
	if len(vs) == 0 {
		return float64(init)
	}
	acc := toRat(vs[0])
	if acc == nil {
		return math.NaN()
	}
	for _, v := range vs[1:] {
		r := toRat(v)
		if r == nil {
			return math.NaN()
		}
		op(acc, acc, r)
	}
	f, _ := acc.Float64()
	return f
}

// divf divides in decimal, rounding the quotient to 16 decimal places.
func divf(a any, vs ...any) (float64, error) {
	acc := toRat(a)
	if acc == nil {
		return math.NaN(), nil
	}
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(16), nil)
	for _, v := range vs {
		r := toRat(v)
		if r == nil {
			return math.NaN(), nil
		}
		if r.Sign() == 0 {
			return 0, errors.New("decimal division by 0")
		}
		q := new(big.Rat).Quo(acc, r)
		// round half away from zero at 16 decimals
		n := new(big.Rat).Mul(q, new(big.Rat).SetInt(scale))
		num, den := n.Num(), n.Denom()
		quo, rem := new(big.Int).QuoRem(num, den, new(big.Int))
		if new(big.Int).Mul(new(big.Int).Abs(rem), big.NewInt(2)).Cmp(den) >= 0 {
			if num.Sign() < 0 {
				quo.Sub(quo, big.NewInt(1))
			} else {
				quo.Add(quo, big.NewInt(1))
			}
		}
		acc = new(big.Rat).SetFrac(quo, scale)
	}
	f, _ := acc.Float64()
	return f, nil
}

// round rounds to p decimals; the digit past them rounds up from roundOn
// (default .5).
func round(a any, p int, roundOn ...float64) float64 {
	on := .5
	if len(roundOn) > 0 {
		on = roundOn[0]
	}
	v := toFloat64(a)
	pow := math.Pow(10, float64(p))
	digit := pow * v
	_, frac := math.Modf(digit)
	if frac >= on {
		return math.Ceil(digit) / pow
	}
	return math.Floor(digit) / pow
}

// formatDate formats a time (or Unix seconds) in UTC.
func formatDate(layout string, date any) string {
	var t time.Time
	switch d := date.(type) {
	case time.Time:
		t = d
	case *time.Time:
		if d != nil {
			t = *d
		}
	case int64:
		t = time.Unix(d, 0)
	case int:
		t = time.Unix(int64(d), 0)
	case int32:
		t = time.Unix(int64(d), 0)
	default:
		t = time.Now()
	}
	return t.UTC().Format(layout)
}

// toDateInZone parses s in the named zone; an unknown zone means UTC.
func toDateInZone(layout, zone, s string) time.Time {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
	}
	t, _ := time.ParseInLocation(layout, s, loc)
	return t
}

// unixToTime reads an epoch in days, seconds, milliseconds, microseconds or
// nanoseconds, told apart by the number of digits.
func unixToTime(epoch string) (time.Time, error) {
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("unable to parse time '%s': %w", epoch, err)
	}
	switch len(epoch) {
	case 5:
		return time.Unix(n*86400, 0).UTC(), nil
	case 10:
		return time.Unix(n, 0).UTC(), nil
	case 13:
		return time.UnixMilli(n).UTC(), nil
	case 16:
		return time.UnixMicro(n).UTC(), nil
	case 19:
		return time.Unix(0, n).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("unable to parse time '%s'", epoch)
}

// compiledTemplate is a parsed line_format/label_format template with the
// state its functions read. Each stream gets its own clone.
type compiledTemplate struct {
	tmpl *template.Template
	st   *templateState
	// fast is the template's reflection-free form, nil when it has none
	// (see compileFast); it is immutable and shared by the clones.
	fast *fastTemplate
}

// maxTemplateLen bounds template text: a template is user input parsed on
// every query, and nothing legitimate comes near it.
const maxTemplateLen = 64 << 10

// parseTemplate parses a template named as Loki names them ("line" for
// line_format, "label" for label_format), so execution errors read the same.
func parseTemplate(name, text string) (*compiledTemplate, error) {
	if len(text) > maxTemplateLen {
		return nil, fmt.Errorf("template too long: %d bytes (limit %d)", len(text), maxTemplateLen)
	}
	st := &templateState{}
	t, err := parseGuarded(template.New(name).Option("missingkey=zero").Funcs(templateFuncs(st)), text)
	if err != nil {
		return nil, err
	}
	var trees []*parse.Tree
	for _, tt := range t.Templates() {
		trees = append(trees, tt.Tree)
	}
	return &compiledTemplate{tmpl: t, st: st, fast: compileFast(trees)}, nil
}

// parseGuarded parses text into t, a panic of the parser being an error,
// and guards the result's loops and calls (guardTree).
func parseGuarded(t *template.Template, text string) (*template.Template, error) {
	t, err := safeParse(t, text)
	if err != nil {
		return nil, err
	}
	var trees []*parse.Tree
	for _, tt := range t.Templates() {
		trees = append(trees, tt.Tree)
	}
	guardTree(trees)
	return t, nil
}

func safeParse(t *template.Template, text string) (out *template.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("template parser panic: %v", r)
		}
	}()
	return t.Parse(text)
}

// clone gives an independent template bound to fresh state.
func (c *compiledTemplate) clone() *compiledTemplate {
	st := &templateState{}
	t, err := c.tmpl.Clone()
	if err != nil {
		// Clone fails only after execution started on c.tmpl, which the
		// shared (never executed) original never does; fall back to it.
		return &compiledTemplate{tmpl: c.tmpl, st: c.st, fast: c.fast}
	}
	t.Funcs(templateFuncs(st))
	return &compiledTemplate{tmpl: t, st: st, fast: c.fast}
}

// execute runs the template for one line into buf.
func (c *compiledTemplate) execute(buf *bytes.Buffer, ts int64, line []byte, data map[string]string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("template panic: %v", r)
		}
	}()
	c.st.line, c.st.ts = line, ts
	c.st.begin(len(line))
	defer func() { c.st.line = nil }()
	return c.tmpl.Execute(limitWriter{b: buf, max: c.st.limit}, data)
}

// executeFast runs a template that has a fast form for one line into buf,
// vals being the values of c.fast.fields. A line the fast form cannot
// evaluate runs through text/template, with data (cleared first) holding
// just those fields: the only labels such a template reads.
func (c *compiledTemplate) executeFast(buf *bytes.Buffer, ts int64, line []byte, vals []string, data map[string]string) error {
	start := buf.Len()
	c.st.begin(len(line))
	if c.fast.execute(buf, c.st, vals) == nil {
		return nil
	}
	buf.Truncate(start)
	clear(data)
	for i, name := range c.fast.fields {
		data[name] = vals[i]
	}
	return c.execute(buf, ts, line, data)
}

// fastValues appends to vals the values of the labels fields names (""
// for a missing one, as missingkey=zero gives).
func fastValues(vals []string, fields []string, lbs *LabelsBuilder) []string {
	vals = vals[:0]
	for _, name := range fields {
		v, _ := lbs.Get(name)
		vals = append(vals, v)
	}
	return vals
}
