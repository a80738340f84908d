package log

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// LogfmtDialect says how a logfmt scan reads what lies outside the plain
// grammar (key, key=value, key="quoted value"). Both readings share one
// scanner, so a line made only of such pairs, without backslashes, gives
// the same pairs in both (FuzzLogfmtDialects); everything else that
// differs is listed here and shown in TestLogfmtDialects.
type LogfmtDialect uint8

const (
	// LogfmtLoki is the reading of `| logfmt`, Loki's: a pair with a stray
	// '=' or '"' (in the key or in a bare value), an unterminated or badly
	// escaped quoted value, or a key that is not valid UTF-8 is malformed
	// and skipped up to the next space (--strict stops there). Quoted
	// values use JSON escapes (\/ and \uXXXX surrogate pairs included).
	LogfmtLoki LogfmtDialect = iota
	// LogfmtPromtail is the reading of the ingest logfmt stage, which
	// accepts any input: '=' and '"' where a key would start are skipped,
	// a '"' ends a key (a bare key), a bare value runs to the next space
	// whatever it holds, an unterminated quoted value runs to the end of
	// the line, quoted values use Go escapes (kept raw when they do not
	// unquote), and keys are taken byte for byte.
	LogfmtPromtail
)

// logfmtScanner walks key=value pairs of a logfmt line. Keys are runs of
// bytes above space other than '=' and '"'; values are bare (no '=' or '"')
// or double-quoted.
type logfmtScanner struct {
	dialect LogfmtDialect
	line    []byte
	pos     int
	key     []byte
	val     []byte
	buf     []byte
	inBuf   bool   // val is in buf (unescaped), not in line
	err     string // description of the last malformed pair
	epos    int    // its 1-based position
}

// next reads the next pair. more is false at the end of the line; ok is
// false when the pair is malformed (the scanner has skipped past it).
// LogfmtPromtail never reports a malformed pair.
func (d *logfmtScanner) next() (more, ok bool) {
	line := d.line
	for d.pos < len(line) && (line[d.pos] <= ' ' || (line[d.pos] == '=' || line[d.pos] == '"') && d.dialect == LogfmtPromtail) {
		d.pos++
	}
	if d.pos >= len(line) {
		return false, false
	}
	start := d.pos
	d.key, d.val, d.inBuf = nil, nil, false
	multibyte := false
	for d.pos < len(line) {
		c := line[d.pos]
		if c == '=' {
			break
		}
		if c == '"' {
			if d.dialect == LogfmtPromtail {
				d.key = line[start:d.pos]
				return true, true
			}
			return true, d.malformed("unexpected '\"'")
		}
		if c <= ' ' {
			d.key = line[start:d.pos]
			return true, d.validKey(multibyte, false)
		}
		if c >= utf8.RuneSelf {
			multibyte = true
		}
		d.pos++
	}
	if d.pos >= len(line) {
		d.key = line[start:]
		return true, d.validKey(multibyte, false)
	}
	if d.pos == start { // only Loki: Promtail skipped the '='
		return true, d.malformed("unexpected '='")
	}
	d.key = line[start:d.pos]
	if !d.validKey(multibyte, true) {
		return true, false
	}
	d.pos++ // '='
	if d.pos >= len(line) || line[d.pos] <= ' ' {
		return true, true
	}
	if line[d.pos] == '"' {
		return true, d.quoted()
	}
	vstart := d.pos
	for d.pos < len(line) {
		c := line[d.pos]
		if c <= ' ' {
			break
		}
		if (c == '=' || c == '"') && d.dialect != LogfmtPromtail {
			if c == '=' {
				return true, d.malformed("unexpected '='")
			}
			return true, d.malformed("unexpected '\"'")
		}
		d.pos++
	}
	d.val = line[vstart:d.pos]
	return true, true
}

// validKey rejects keys that are not valid UTF-8 (or hold U+FFFD), as Loki
// does; with skip the rest of the pair is skipped too.
func (d *logfmtScanner) validKey(multibyte, skip bool) bool {
	if !multibyte || d.dialect == LogfmtPromtail || !bytes.ContainsRune(d.key, utf8.RuneError) {
		return true
	}
	if skip {
		return d.malformed("invalid key")
	}
	d.err, d.epos = "invalid key", d.pos+1
	return false
}

// malformed records an error at the current position and skips to the next
// space, so a lenient parse resumes with the following pair.
func (d *logfmtScanner) malformed(msg string) bool {
	d.err, d.epos = msg, d.pos+1
	for d.pos < len(d.line) && d.line[d.pos] > ' ' {
		d.pos++
	}
	return false
}

func (d *logfmtScanner) quoted() bool {
	line := d.line
	d.pos++ // opening quote
	start := d.pos
	escaped := false
	for d.pos < len(line) {
		c := line[d.pos]
		if c == '\\' {
			escaped = true
			d.pos += 2
			continue
		}
		if c == '"' {
			break
		}
		d.pos++
	}
	if d.pos >= len(line) {
		d.pos = len(line)
		if d.dialect == LogfmtPromtail {
			d.val = line[start:]
			return true
		}
		d.err, d.epos = "unterminated quoted value", len(line)+1
		return false
	}
	raw := line[start:d.pos]
	d.pos++ // closing quote
	if !escaped {
		d.val = raw
		if d.val == nil {
			d.val = line[start:start]
		}
		return true
	}
	if d.dialect == LogfmtPromtail {
		d.val = raw
		if u, err := strconv.Unquote(unsafeString(line[start-1 : d.pos])); err == nil {
			d.val = unsafeBytes(u) // a fresh string: never written to
		}
		return true
	}
	v, ok := unescapeLogfmt(d.buf[:0], raw)
	d.buf = v
	if !ok {
		d.err, d.epos = "invalid quoted value", d.pos+1
		return false
	}
	d.val, d.inBuf = v, true
	return true
}

// ScanLogfmt calls fn for each pair of line read in the given dialect (a
// key without a value has an empty value) and returns the number of
// malformed pairs it skipped. key and value are parts of line or fresh
// copies, so fn may keep them.
func ScanLogfmt(line string, dialect LogfmtDialect, fn func(key, value string)) (malformed int) {
	d := logfmtScanner{dialect: dialect, line: unsafeBytes(line)}
	for {
		more, ok := d.next()
		if !more {
			return malformed
		}
		if !ok {
			malformed++
			continue
		}
		val := unsafeString(d.val)
		if d.inBuf {
			val = string(d.val)
		}
		fn(unsafeString(d.key), val)
	}
}

// unescapeLogfmt decodes a quoted value with escapes the way JSON strings
// are decoded: raw control characters and unknown escapes are invalid.
func unescapeLogfmt(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' {
			return dst, false
		}
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return dst, false
		}
		switch s[i] {
		case '"', '\\', '/':
			dst = append(dst, s[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := decodeUEscape(s[i+1:])
			if n == 0 {
				return dst, false
			}
			i += n
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, true
}

// decodeUEscape decodes the hex digits of a \uXXXX escape at the start of
// s, joined with a following \uXXXX low surrogate as JSON does (a lone
// surrogate is U+FFFD). n is how many bytes it used (4 or 10), 0 when s
// does not start with four hex digits.
func decodeUEscape(s []byte) (r rune, n int) {
	r, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if !utf16.IsSurrogate(r) {
		return r, 4
	}
	if len(s) >= 10 && s[4] == '\\' && s[5] == 'u' {
		if r2, ok := hex4(s[6:]); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return dec, 10
			}
		}
	}
	return utf8.RuneError, 4
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// LogfmtOptions are the flags of `| logfmt`.
type LogfmtOptions struct {
	// Strict stops at the first malformed pair and sets
	// __error__=LogfmtParserErr; otherwise malformed pairs are skipped.
	Strict bool
	// KeepEmpty keeps keys without a value as labels with an empty value.
	KeepEmpty bool
}

// NewLogfmtParser returns `| logfmt [--strict] [--keep-empty]`: every
// key=value pair becomes a label (sanitized name, _extracted on a clash
// with a stream label, the last value of a duplicate key kept).
func NewLogfmtParser(opts LogfmtOptions) Stage {
	return &logfmtParser{opts: opts}
}

// NewLogfmtExpressionParser returns `| logfmt a, b="c"`: only the listed
// keys are extracted (label=key; an empty key means the label's own name).
// As in Loki every listed label exists afterwards, empty when its key is
// missing from the line (unless it is a stream label, which stays), and a
// key without a value gives an empty label. --keep-empty changes nothing
// here.
func NewLogfmtExpressionParser(opts LogfmtOptions, params []LabelExtraction) (Stage, error) {
	if len(params) == 0 {
		return NewLogfmtParser(opts), nil
	}
	if err := checkExtractedLabels(params); err != nil {
		return nil, err
	}
	want := map[string]string{}
	var labelsInOrder []string
	for _, p := range params {
		labelsInOrder = append(labelsInOrder, p.Label)
		key := p.source()
		if _, dup := want[key]; dup {
			return nil, fmt.Errorf("logfmt key %q is extracted twice", key)
		}
		want[key] = p.Label
	}
	return &logfmtParser{opts: opts, want: want, wantLabels: labelsInOrder}, nil
}

type logfmtParser struct {
	opts       LogfmtOptions
	want       map[string]string // key -> label; nil extracts everything
	wantLabels []string
	st         *parserState
	dec        *logfmtScanner
}

func (l *logfmtParser) ForStream() Stage {
	return &logfmtParser{opts: l.opts, want: l.want, wantLabels: l.wantLabels, st: newParserState(), dec: &logfmtScanner{}}
}

func (l *logfmtParser) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	st, d := l.st, l.dec
	if st == nil {
		st, d = newParserState(), &logfmtScanner{}
	}
	d.line, d.pos = line, 0
	defer func() { d.line = nil }()
	for _, l := range l.wantLabels {
		if !lbs.BaseHas(l) {
			lbs.SetParsed(l, "")
		}
	}
	for {
		more, ok := d.next()
		if !more {
			break
		}
		if !ok {
			if l.opts.Strict {
				lbs.SetErr(ErrLogfmt, fmt.Sprintf("logfmt syntax error at pos %d : %s", d.epos, d.err))
				return line, true
			}
			continue
		}
		// Loki drops values holding U+FFFD or invalid UTF-8, which
		// Prometheus label values cannot carry.
		if bytes.ContainsRune(d.val, utf8.RuneError) {
			d.val = nil
		}
		if l.want != nil {
			st.key = appendSanitized(st.key[:0], d.key, true)
			label, ok := l.want[unsafeString(st.key)]
			if !ok {
				continue
			}
			name := label
			if lbs.BaseHas(name) {
				name += duplicateSuffix
			}
			lbs.SetParsed(name, st.intern(d.val))
			continue
		}
		if len(d.val) == 0 && !l.opts.KeepEmpty {
			continue
		}
		st.key = appendSanitized(st.key[:0], d.key, true)
		st.setParsed(lbs, st.key, d.val)
	}
	return line, true
}
