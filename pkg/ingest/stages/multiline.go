package stages

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	logql "github.com/lokal-logs/lokal/pkg/logql/log"
)

// joiner holds lines until it knows where an entry ends: with the
// configured multiline stage (ml) or the default traceback joiner (tb).
// It is a struct, not an interface, because an Entry handed to an interface
// method escapes to the heap, and this runs for every line.
type joiner struct {
	ml *multiline
	tb *tracebackJoiner
}

// push takes a line read at readTs (zero: unknown).
func (j *joiner) push(e Entry, readTs time.Time, out func(Entry)) {
	if j.ml != nil {
		j.ml.push(e, readTs, out)
		return
	}
	j.tb.push(e, readTs, out)
}

func (j *joiner) flush(now time.Time, out func(Entry)) {
	if j.ml != nil {
		j.ml.flush(now, out)
		return
	}
	j.tb.flush(now, out)
}

// held returns the block being joined and its wait.
func (j *joiner) held() (*block, time.Duration) {
	if j.ml != nil {
		return &j.ml.cur, j.ml.wait
	}
	return &j.tb.cur, j.tb.wait
}

func (j *joiner) pending() (int64, bool) {
	if j.ml != nil {
		return j.ml.pending()
	}
	return j.tb.pending()
}

// block is an entry being joined.
type block struct {
	active bool
	first  Entry
	b      strings.Builder
	lines  int
	bytes  int
	since  time.Time // read time of the last line, or when a flush first saw it
}

func (b *block) start(e Entry, readTs time.Time) {
	b.active, b.first, b.lines, b.bytes, b.since = true, e, 1, len(e.Line), readTs
	b.b.Reset()
}

func (b *block) add(line string, readTs time.Time) {
	if b.lines == 1 {
		b.b.Grow(len(b.first.Line) + len(line) + 64)
		b.b.WriteString(b.first.Line)
	}
	b.b.WriteByte('\n')
	b.b.WriteString(line)
	b.lines++
	b.bytes += 1 + len(line)
	b.since = readTs
}

func (b *block) take() Entry {
	e := b.first
	if b.lines > 1 {
		e.Line = b.b.String()
		b.b = strings.Builder{}
	}
	b.active = false
	b.first = Entry{}
	return e
}

// due reports whether the block should be emitted by a flush at now.
func (b *block) due(now time.Time, wait time.Duration) bool {
	if !b.active {
		return false
	}
	if now.IsZero() {
		return true
	}
	if b.since.IsZero() {
		b.since = now // no read time: start the clock at the first flush
		return false
	}
	return now.Sub(b.since) >= wait
}

// multiline is Promtail's multiline stage: an entry starts at a line
// matching firstline (ANSI colour codes ignored) and takes the lines after it
// up to max_lines; a line before any first line starts an entry of its own.
type multiline struct {
	re       *regexp.Regexp
	wait     time.Duration
	maxLines int
	cur      block
}

func newMultiline(c *config.MultilineStage) (*multiline, error) {
	re, err := regexp.Compile(c.FirstLine)
	if err != nil {
		return nil, fmt.Errorf("firstline: invalid regular expression: %w", err)
	}
	m := &multiline{re: re, wait: c.MaxWaitTime.D(), maxLines: c.MaxLines}
	if m.wait <= 0 {
		m.wait = config.DefaultMultilineMaxWait
	}
	if m.maxLines <= 0 {
		m.maxLines = config.DefaultMultilineMaxLines
	}
	return m, nil
}

func (m *multiline) push(e Entry, readTs time.Time, out func(Entry)) {
	if m.re.MatchString(logql.StripANSI(e.Line)) || !m.cur.active {
		if m.cur.active {
			out(m.cur.take())
		}
		m.cur.start(e, readTs)
	} else {
		m.cur.add(e.Line, readTs)
	}
	if m.cur.lines >= m.maxLines || m.cur.bytes >= maxJoinedBytes {
		out(m.cur.take())
	}
}

func (m *multiline) flush(now time.Time, out func(Entry)) {
	if m.cur.due(now, m.wait) {
		out(m.cur.take())
	}
}

func (m *multiline) pending() (int64, bool) {
	return m.cur.first.Offset, m.cur.active
}

// tracebackJoiner keeps a Python traceback with the log line before it:
//
//	[ERROR] ... Inference failed: CUDA out of memory ...
//	Traceback (most recent call last):
//	  File "...", line 210, in tts
//	    tts_mel, _ = ...
//	torch.OutOfMemoryError: CUDA out of memory. ...
//
// including chained tracebacks ("During handling of the above exception,
// another exception occurred:" between blank lines). Every line is held
// until the next one shows whether it continues it, or until a flush.
type tracebackJoiner struct {
	wait     time.Duration
	cur      block
	inTB     bool    // the held entry contains a traceback
	afterExc bool    // ... and its exception line has been seen
	blanks   []Entry // blank lines after an exception line, not yet placed
}

const (
	tracebackStart = "Traceback (most recent call last):"
	groupStart     = "Exception Group Traceback (most recent call last):"
	chainCause     = "The above exception was the direct cause of the following exception:"
	chainDuring    = "During handling of the above exception, another exception occurred:"
)

func (t *tracebackJoiner) push(e Entry, readTs time.Time, out func(Entry)) {
	line := e.Line
	cont := false
	switch {
	case !t.cur.active:
	case isTracebackStart(line):
		cont = true
		t.inTB, t.afterExc = true, false
	case !t.inTB:
	case t.afterExc:
		switch {
		case isBlank(line):
			t.hold(e, readTs)
			return
		case len(t.blanks) == 0 && isIndented(line):
			cont = true // a multi-line exception message
		case len(t.blanks) > 0 && (strings.HasPrefix(line, chainDuring) || strings.HasPrefix(line, chainCause)):
			cont = true
			t.afterExc = false
		}
	default: // in a traceback, before its exception line
		switch {
		case isBlank(line):
			// loguru's tracebacks have blank lines between frames; chained
			// ones between the chain message and the next traceback
			t.hold(e, readTs)
			return
		case isIndented(line) || strings.HasPrefix(line, "> "):
			cont = true // frames; "> File" marks loguru's failing frame
		case isExceptionLine(line):
			cont = true
			t.afterExc = true
		}
	}
	if cont && t.cur.lines+len(t.blanks) < maxTracebackLines && t.cur.bytes+len(line) < maxJoinedBytes {
		for _, b := range t.blanks {
			t.cur.add(b.Line, readTs)
		}
		t.blanks = t.blanks[:0]
		t.cur.add(line, readTs)
		return
	}
	t.emit(out)
	t.cur.start(e, readTs)
	t.inTB = isTracebackStart(line)
	t.afterExc = false
}

// hold keeps a blank line aside until the next line shows whether the
// traceback goes on.
func (t *tracebackJoiner) hold(e Entry, readTs time.Time) {
	t.blanks = append(t.blanks, e)
	t.cur.since = readTs
}

func isTracebackStart(line string) bool {
	if strings.HasPrefix(line, tracebackStart) {
		return true
	}
	// Python 3.11 exception groups: "  + Exception Group Traceback (most ..."
	return len(line) > 2 && (line[0] == ' ' || line[0] == '+') && strings.HasPrefix(strings.TrimLeft(line, " +|"), groupStart)
}

func isIndented(s string) bool { return s != "" && (s[0] == ' ' || s[0] == '\t') }

// emit sends the held entry and any blank lines that did not join it.
func (t *tracebackJoiner) emit(out func(Entry)) {
	if t.cur.active {
		out(t.cur.take())
	}
	for _, b := range t.blanks {
		out(b)
	}
	t.blanks = t.blanks[:0]
	t.inTB, t.afterExc = false, false
}

func (t *tracebackJoiner) flush(now time.Time, out func(Entry)) {
	if t.cur.due(now, t.wait) {
		t.emit(out)
	}
}

func (t *tracebackJoiner) pending() (int64, bool) {
	return t.cur.first.Offset, t.cur.active
}

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}

// isExceptionLine recognises a traceback's last line: a dotted identifier
// (not a level word) followed by ':' or the end, e.g.
// "torch.OutOfMemoryError: CUDA out of memory" or "KeyboardInterrupt".
func isExceptionLine(s string) bool {
	if s == "" || !exceptionNameByte(s[0], true) {
		return false
	}
	i := 0
	for i < len(s) && i < 200 && exceptionNameByte(s[i], false) {
		i++
	}
	if i < len(s) && s[i] != ':' {
		return false
	}
	return !logql.IsLevelWord(s[:i])
}

// exceptionNameByte reports whether c can stand in a dotted exception name:
// a letter or '_', and after the first byte also a digit or '.'.
func exceptionNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9', c == '.':
		return !first
	}
	return false
}
