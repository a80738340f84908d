package log

import (
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
		"ToLower":    strings.ToLower,
		"ToUpper":    strings.ToUpper,
		"Replace":    strings.Replace,
		"Trim":       strings.Trim,
		"TrimLeft":   strings.TrimLeft,
		"TrimRight":  strings.TrimRight,
		"TrimPrefix": strings.TrimPrefix,
		"TrimSuffix": strings.TrimSuffix,
		"TrimSpace":  strings.TrimSpace,

		// strings
		"lower":      strings.ToLower,
		"upper":      strings.ToUpper,
		"title":      titleCase,
		"trunc":      trunc,
		"substr":     substr,
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix":  func(p, s string) bool { return strings.HasPrefix(s, p) },
		"hasSuffix":  func(p, s string) bool { return strings.HasSuffix(s, p) },
		"indent":     indent,
		"nindent":    func(n int, s string) string { return "\n" + indent(n, s) },
		"replace":    func(old, repl, s string) string { return strings.ReplaceAll(s, old, repl) },
		"repeat":     func(n int, s string) string { return strings.Repeat(s, max(n, 0)) },
		"trim":       strings.TrimSpace,
		"trimAll":    func(cut, s string) string { return strings.Trim(s, cut) },
		"trimPrefix": func(p, s string) string { return strings.TrimPrefix(s, p) },
		"trimSuffix": func(p, s string) string { return strings.TrimSuffix(s, p) },
		"alignLeft":  alignLeft,
		"alignRight": alignRight,
		"default":    dfault,
		"urlencode":  url.QueryEscape,
		"urldecode":  url.QueryUnescape,
		"b64enc":     func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"b64dec":     b64dec,
		"sha256":     func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"fromJson":   fromJSON,

		// regular expressions
		"regexReplaceAll": func(expr, s, repl string) (string, error) {
			re, err := st.regexp(expr)
			if err != nil {
				return "", err
			}
			return re.ReplaceAllString(s, repl), nil
		},
		"regexReplaceAllLiteral": func(expr, s, repl string) (string, error) {
			re, err := st.regexp(expr)
			if err != nil {
				return "", err
			}
			return re.ReplaceAllLiteralString(s, repl), nil
		},
		"count": func(expr, s string) (int, error) {
			re, err := st.regexp(expr)
			if err != nil {
				return 0, err
			}
			return len(re.FindAllStringIndex(s, -1)), nil
		},

		// numbers
		"int":     func(v any) int { return int(toInt64(v)) },
		"float64": toFloat64,
		"add": func(vs ...any) int64 {
			var s int64
			for _, v := range vs {
				s += toInt64(v)
			}
			return s
		},
		"sub": func(a, b any) int64 { return toInt64(a) - toInt64(b) },
		"mul": func(a any, vs ...any) int64 {
			p := toInt64(a)
			for _, v := range vs {
				p *= toInt64(v)
			}
			return p
		},
		"div": func(a, b any) (int64, error) {
			d := toInt64(b)
			if d == 0 {
				// the text a Go division panic gives, as Loki reports it
				return 0, errors.New("runtime error: integer divide by zero")
			}
			return toInt64(a) / d, nil
		},
		"mod": func(a, b any) (int64, error) {
			d := toInt64(b)
			if d == 0 {
				return 0, errors.New("runtime error: integer divide by zero")
			}
			return toInt64(a) % d, nil
		},
		"max": func(a any, vs ...any) int64 {
			m := toInt64(a)
			for _, v := range vs {
				m = max(m, toInt64(v))
			}
			return m
		},
		"min": func(a any, vs ...any) int64 {
			m := toInt64(a)
			for _, v := range vs {
				m = min(m, toInt64(v))
			}
			return m
		},
		"addf": func(vs ...any) float64 { return decimalFold(0, vs, (*big.Rat).Add) },
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

// durationSeconds is the template twin of unwrap's duration_seconds().
func durationSeconds(s string) (float64, error) { return convert(ConvDurationSeconds, s) }

// titleCase upper-cases the first letter of every word.
func titleCase(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		sep := isWordSeparator(prev)
		prev = r
		if sep {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

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
	r := []rune(s)
	if n < 0 && len(r)+n > 0 {
		return string(r[len(r)+n:])
	}
	if n >= 0 && len(r) > n {
		return string(r[:n])
	}
	return s
}

// substr cuts characters [start, end); a negative start means from the
// beginning, a negative end (or one past the end) means to the end.
func substr(start, end int, s string) string {
	r := []rune(s)
	end = min(end, len(r))
	start = min(start, len(r))
	switch {
	case start < 0 && end < 0:
		return ""
	case start < 0:
		return string(r[:end])
	case end < 0:
		return string(r[start:])
	case start > end:
		return ""
	}
	return string(r[start:end])
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", max(n, 0))
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// alignLeft pads or cuts s to n characters, keeping its start.
func alignLeft(n int, s string) string {
	if n < 0 || n == utf8.RuneCountInString(s) {
		return s
	}
	c := utf8.RuneCountInString(s)
	if c < n {
		return s + strings.Repeat(" ", n-c)
	}
	r := []rune(s)
	return string(r[:n])
}

// alignRight pads or cuts s to n characters, keeping its end.
func alignRight(n int, s string) string {
	if n < 0 || n == utf8.RuneCountInString(s) {
		return s
	}
	c := utf8.RuneCountInString(s)
	if c < n {
		return strings.Repeat(" ", n-c) + s
	}
	r := []rune(s)
	return string(r[len(r)-n:])
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
		s := x
		if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
			s = s[:i]
		}
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return 0
		}
		return n
	case bool:
		if x {
			return 1
		}
		return 0
	case time.Duration:
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
	t, err := safeParse(template.New(name).Option("missingkey=zero").Funcs(templateFuncs(st)), text)
	if err != nil {
		return nil, err
	}
	return &compiledTemplate{tmpl: t, st: st}, nil
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
		return &compiledTemplate{tmpl: c.tmpl, st: c.st}
	}
	t.Funcs(templateFuncs(st))
	return &compiledTemplate{tmpl: t, st: st}
}

// execute runs the template for one line into buf.
func (c *compiledTemplate) execute(buf *strings.Builder, ts int64, line []byte, data map[string]string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("template panic: %v", r)
		}
	}()
	c.st.line, c.st.ts = line, ts
	defer func() { c.st.line = nil }()
	return c.tmpl.Execute(buf, data)
}
