package log

import (
	"fmt"
	"strconv"
	"strings"
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
	line    string // a []byte line is viewed as a string: never written to
	pos     int
	key     string
	val     string
	buf     []byte
	inBuf   bool   // val views buf (unescaped), not line
	err     string // description of the last malformed pair
	epos    int    // its 1-based position
}

// inKey reports whether c may be part of a key (or of a Loki bare value):
// not space or a control byte, not '=' or '"'.
func inKey(c byte) bool { return c > ' ' && c != '=' && c != '"' }

// scan reads the pairs of d.line from d.pos on, calling fn for each
// well-formed one: a key without a value has an empty value. A malformed
// pair (only in LogfmtLoki) is counted and skipped, d.err and d.epos saying
// what and where; with stopOnBad the scan ends there. key and value view
// the line, except an unescaped quoted value, which views d.buf unless
// keep asks for a fresh copy: without keep, fn must not keep them.
//
// One loop reads every pair (a method call per pair cost about an eighth
// of a scan), with its position in a local (through the pointer it would be loaded and
// stored on every byte) stored back only around the rare helpers, and a
// Promtail bare value, which runs to the next space whatever it holds, is
// scanned with that one test. This keeps the ingest logfmt stage as fast
// as the parser it had of its own before the scanner was shared.
func (d *logfmtScanner) scan(fn func(key, value string), stopOnBad, keep bool) (malformed int) {
	line, pos := d.line, d.pos
	promtail := d.dialect == LogfmtPromtail
	for {
		for pos < len(line) && (line[pos] <= ' ' || (line[pos] == '=' || line[pos] == '"') && promtail) {
			pos++
		}
		if pos >= len(line) {
			d.pos = pos
			return malformed
		}
		start := pos
		for pos < len(line) && inKey(line[pos]) {
			pos++
		}
		key := line[start:pos]
		// Only Loki's reading checks a key's encoding, and only a key with
		// a byte above ASCII can fail it.
		checkKey := !promtail && hasNonASCII(key)
		var val string
		ok, inBuf := true, false
		switch {
		case pos >= len(line) || line[pos] <= ' ': // a key without a value
			if checkKey {
				d.pos, d.key = pos, key
				ok = d.validKey(false)
			}
		case line[pos] == '"':
			// Promtail: a bare key ending at the quote, which the next
			// round skips.
			if !promtail {
				d.pos = pos
				ok = d.malformed("unexpected '\"'")
				pos = d.pos
			}
		case pos == start: // only Loki: Promtail skipped the '='
			d.pos = pos
			ok = d.malformed("unexpected '='")
			pos = d.pos
		default: // key=
			if checkKey {
				d.pos, d.key = pos, key
				if !d.validKey(true) {
					ok, pos = false, d.pos
					break
				}
			}
			pos++
			if pos >= len(line) || line[pos] <= ' ' {
				break
			}
			if line[pos] == '"' {
				d.pos = pos
				ok = d.quoted()
				pos, val, inBuf = d.pos, d.val, d.inBuf
				break
			}
			vstart := pos
			if promtail {
				for pos < len(line) && line[pos] > ' ' {
					pos++
				}
			} else {
				for pos < len(line) && inKey(line[pos]) {
					pos++
				}
				if pos < len(line) && line[pos] > ' ' {
					d.pos = pos
					if line[pos] == '=' {
						ok = d.malformed("unexpected '='")
					} else {
						ok = d.malformed("unexpected '\"'")
					}
					pos = d.pos
					break
				}
			}
			val = line[vstart:pos]
		}
		if !ok {
			malformed++
			if stopOnBad {
				d.pos = pos
				return malformed
			}
			continue
		}
		if inBuf && keep {
			val = strings.Clone(val)
		}
		fn(key, val)
	}
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// validKey rejects a key with bytes above ASCII that is not valid UTF-8
// (or holds U+FFFD), as Loki does; with skip the rest of the pair is
// skipped too. Callers check for such bytes first: the call is the rare case.
func (d *logfmtScanner) validKey(skip bool) bool {
	if d.dialect == LogfmtPromtail || !strings.ContainsRune(d.key, utf8.RuneError) {
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
		return true
	}
	if d.dialect == LogfmtPromtail {
		d.val = raw
		if u, err := strconv.Unquote(line[start-1 : d.pos]); err == nil {
			d.val = u
		}
		return true
	}
	v, ok := unescapeLogfmt(d.buf[:0], unsafeBytes(raw))
	d.buf = v
	if !ok {
		d.err, d.epos = "invalid quoted value", d.pos+1
		return false
	}
	d.val, d.inBuf = unsafeString(v), true
	return true
}

// ScanLogfmt calls fn for each pair of line read in the given dialect (a
// key without a value has an empty value) and returns the number of
// malformed pairs it skipped. key and value are parts of line or fresh
// copies, so fn may keep them.
func ScanLogfmt(line string, dialect LogfmtDialect, fn func(key, value string)) (malformed int) {
	d := logfmtScanner{dialect: dialect, line: line}
	return d.scan(fn, false, true)
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
	need       needSet // nil extracts every label (see project.go)
	st         *parserState
	dec        *logfmtScanner
}

func (l *logfmtParser) ForStream() Stage {
	return &logfmtParser{opts: l.opts, want: l.want, wantLabels: l.wantLabels, need: l.need, st: projectedState(l.need), dec: &logfmtScanner{}}
}

// project extracts only needed keys; a logfmt with listed keys extracts
// few already and is left as it is.
func (l *logfmtParser) project(need needSet) Stage {
	if l.want != nil {
		return nil
	}
	return &logfmtParser{opts: l.opts, need: need}
}

func (l *logfmtParser) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	st, d := l.st, l.dec
	if st == nil {
		st, d = projectedState(l.need), &logfmtScanner{}
	}
	d.line, d.pos = unsafeString(line), 0
	defer func() { d.line = "" }()
	for _, l := range l.wantLabels {
		if !lbs.BaseHas(l) {
			lbs.SetParsed(l, "")
		}
	}
	bad := d.scan(func(k, v string) {
		// A projected parser looks at the key first: most keys are not
		// needed, and their values need no check.
		name := ""
		if st.need != nil {
			var ok bool
			if name, ok = st.neededName(lbs, k); !ok {
				return
			}
		}
		// Loki drops values holding U+FFFD or invalid UTF-8, which
		// Prometheus label values cannot carry.
		var val []byte
		if !strings.ContainsRune(v, utf8.RuneError) {
			val = unsafeBytes(v)
		}
		if l.want != nil {
			st.key = appendSanitized(st.key[:0], unsafeBytes(k), true)
			label, ok := l.want[unsafeString(st.key)]
			if !ok {
				return
			}
			name := label
			if lbs.BaseHas(name) {
				name += duplicateSuffix
			}
			lbs.SetParsed(name, st.intern(val))
			return
		}
		if len(val) == 0 && !l.opts.KeepEmpty {
			return
		}
		if st.need != nil {
			lbs.SetParsed(name, st.intern(val))
			return
		}
		st.key = appendSanitized(st.key[:0], unsafeBytes(k), true)
		st.setParsed(lbs, st.key, val)
	}, l.opts.Strict, false)
	if bad > 0 && l.opts.Strict {
		lbs.SetErr(ErrLogfmt, fmt.Sprintf("logfmt syntax error at pos %d : %s", d.epos, d.err))
	}
	return line, true
}
