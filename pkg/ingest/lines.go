package ingest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"
)

// DefaultMaxLineBytes is Loki's default max_line_size (256 KB): a longer line
// would be rejected by Loki, so it is cut here and marked instead.
const DefaultMaxLineBytes = 256 << 10

// minReadBuffer is the smallest read buffer: large reads are what make
// catch-up fast, and the buffer must hold a whole line of maxLine bytes.
const minReadBuffer = 1 << 20

// rawLine is one line cut from a file, before any pipeline stage.
type rawLine struct {
	// Off is the byte offset of the line's first byte; End the offset just
	// past its newline (the position to resume from once it is stored).
	Off, End int64
	// Line is the text without "\n" or "\r\n", invalid UTF-8 bytes replaced
	// with U+FFFD; it aliases the reader's buffer until the next call.
	Line []byte
	// Text is Line as a string, sharing memory with the other lines read
	// at the same time; it stays valid after the call.
	Text string
	// Truncated counts bytes cut off an over-long line (0 for most lines).
	Truncated int64
	// InvalidUTF8 is true when bytes were replaced.
	InvalidUTF8 bool
}

// lineReader cuts a byte stream into lines with large sequential reads. It
// never holds more than one buffer: a line longer than maxLine keeps its
// first maxLine bytes and the rest is only counted.
type lineReader struct {
	r       io.Reader
	buf     []byte // nil while idle: see release
	bufSize int
	// pool recycles buffers: a file waiting at its end gives its buffer
	// back, so a thousand quiet files do not hold a gigabyte.
	pool    *sync.Pool
	start   int   // first unconsumed byte in buf
	end     int   // end of valid data in buf
	off     int64 // file offset of buf[start]
	maxLine int
	eof     bool // the last read returned io.EOF (more may come later)

	// While an over-long line is being skipped, longHead holds its kept
	// prefix, longOff its start and longSkipped the bytes dropped so far.
	inLong      bool
	longHead    []byte
	longOff     int64
	longSkipped int64

	fixBuf []byte // scratch for U+FFFD replacement

	// uncached is the file offset before which the pages read through this
	// reader were handed back to the kernel (see dropReadPages).
	uncached int64
}

func newLineReader(r io.Reader, off int64, maxLine int) *lineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	size := minReadBuffer
	if 2*maxLine > size {
		size = 2 * maxLine
	}
	return &lineReader{r: r, bufSize: size, off: off, maxLine: maxLine, uncached: off}
}

// readEnd is the file offset of the next byte the reader will read: every
// byte before it has been copied into the buffer (or consumed).
func (lr *lineReader) readEnd() int64 { return lr.off + int64(lr.buffered()) }

// uncacheRange says which part of the file the kernel may drop from its
// page cache now, once at least every bytes were read since the last
// drop, or whatever is left when final; ok is false when there is nothing
// (or too little) to drop. The range ends at readEnd (final: the end of
// its page) and starts at the 2 MiB boundary below lr.uncached, all of it
// read already: the kernel caches a file in folios of up to 2 MiB and
// drops only those wholly inside the range, so a folio across the
// previous drop's end goes with this one. Starting at lr.uncached left a
// fifth of a 1 GiB corpus cached.
func (lr *lineReader) uncacheRange(every int64, final bool) (from, to int64, ok bool) {
	to = lr.readEnd()
	if to <= lr.uncached || (to-lr.uncached < every && !final) {
		return 0, 0, false
	}
	const page, folio = 4096, 2 << 20
	if final {
		to = (to + page - 1) &^ (page - 1)
	}
	return lr.uncached &^ (folio - 1), to, true
}

// pendingStart is the offset from which a restart must read again: the start
// of a line not yet complete (an over-long one or the final, unterminated one).
func (lr *lineReader) pendingStart() int64 {
	if lr.inLong {
		return lr.longOff
	}
	return lr.off
}

// buffered reports unconsumed bytes (an unterminated last line).
func (lr *lineReader) buffered() int { return lr.end - lr.start }

// fill reads once into the free part of the buffer. It returns the bytes
// read; io.EOF is reported through lr.eof, other errors are returned.
func (lr *lineReader) fill() (int, error) {
	if lr.buf == nil {
		lr.buf = lr.getBuffer()
		lr.start, lr.end = 0, 0
	}
	if lr.start > 0 && lr.start == lr.end {
		lr.start, lr.end = 0, 0
	}
	if lr.end == len(lr.buf) && lr.start > 0 {
		n := copy(lr.buf, lr.buf[lr.start:lr.end])
		lr.start, lr.end = 0, n
	}
	if lr.end == len(lr.buf) {
		return 0, nil // full of one unterminated line: scan will cut it
	}
	n, err := lr.r.Read(lr.buf[lr.end:])
	lr.end += n
	lr.eof = false
	if err != nil {
		if errors.Is(err, io.EOF) {
			lr.eof = true
			return n, nil
		}
		return n, err
	}
	return n, nil
}

// scan emits every complete line in the buffer. A line without a newline
// is left for the next fill, unless it already exceeds maxLine, in which
// case its head is kept and the rest counted until its newline arrives.
func (lr *lineReader) scan(emit func(rawLine)) {
	// One string for the whole window: every line of it is a substring, so
	// a million short lines cost one allocation, not a million.
	var chunk string
	base := lr.start
	if i := bytes.LastIndexByte(lr.buf[lr.start:lr.end], '\n'); i >= 0 && !lr.inLong {
		chunk = string(lr.buf[lr.start : lr.start+i+1])
	}
	for lr.start < lr.end {
		window := lr.buf[lr.start:lr.end]
		if lr.inLong {
			i := bytes.IndexByte(window, '\n')
			if i < 0 {
				n := len(window)
				if window[n-1] == '\r' {
					n-- // may be half of a CRLF: decide when the next byte comes
				}
				lr.longSkipped += int64(n)
				lr.off += int64(n)
				lr.start += n
				return
			}
			skipped := i
			if i > 0 && window[i-1] == '\r' {
				skipped-- // CRLF: the '\r' is part of the line ending, not of the text
			}
			lr.longSkipped += int64(skipped)
			lr.off += int64(i + 1)
			lr.start += i + 1
			lr.emitLong(emit, lr.off)
			continue
		}
		i := bytes.IndexByte(window, '\n')
		if i < 0 {
			if len(window) > lr.maxLine {
				lr.beginLong(window, len(window))
			}
			return
		}
		line := window[:i]
		if i > 0 && line[i-1] == '\r' {
			line = line[:i-1]
		}
		if len(line) > lr.maxLine {
			lr.beginLong(line, i+1)
			lr.emitLong(emit, lr.off)
			continue
		}
		end := lr.off + int64(i+1)
		text := ""
		if a := lr.start - base; chunk != "" && a+len(line) <= len(chunk) {
			text = chunk[a : a+len(line)]
		}
		lr.emitText(emit, line, text, lr.off, end, 0)
		lr.off = end
		lr.start += i + 1
	}
}

// beginLong keeps the first maxLine bytes of text (which starts a line),
// counts the rest as skipped and consumes the next `consumed` bytes.
func (lr *lineReader) beginLong(text []byte, consumed int) {
	keep := lr.maxLine
	// Cut on a rune boundary so the kept head stays valid text.
	for keep > 0 && keep < len(text) && !utf8.RuneStart(text[keep]) {
		keep--
	}
	lr.inLong = true
	lr.longHead = append(lr.longHead[:0], text[:keep]...)
	lr.longOff = lr.off
	lr.longSkipped = int64(len(text) - keep)
	lr.off += int64(consumed)
	lr.start += consumed
}

func (lr *lineReader) emitLong(emit func(rawLine), end int64) {
	lr.inLong = false
	lr.emitLine(emit, lr.longHead, lr.longOff, end, lr.longSkipped)
	lr.longHead = lr.longHead[:0]
	lr.longSkipped = 0
}

// flushPartial emits the unterminated tail (and any over-long line in
// progress) as a final line: used only when the file can no longer grow.
func (lr *lineReader) flushPartial(emit func(rawLine)) {
	if lr.inLong {
		// A held-back '\r' ends the file: it belongs to no text.
		lr.off += int64(lr.end - lr.start)
		lr.start = lr.end
		lr.emitLong(emit, lr.off)
		return
	}
	if lr.start == lr.end {
		return
	}
	line := lr.buf[lr.start:lr.end]
	end := lr.off + int64(len(line))
	if line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	lr.emitLine(emit, line, lr.off, end, 0)
	lr.off = end
	lr.start = lr.end
}

func (lr *lineReader) emitLine(emit func(rawLine), line []byte, off, end, truncated int64) {
	lr.emitText(emit, line, "", off, end, truncated)
}

// emitText emits line; text, when not empty, is the same bytes as a string
// and becomes the entry's text if no byte needs replacing.
func (lr *lineReader) emitText(emit func(rawLine), line []byte, text string, off, end, truncated int64) {
	rl := rawLine{Off: off, End: end, Line: line, Truncated: truncated}
	if !utf8.Valid(line) {
		lr.fixBuf = replaceInvalidUTF8(lr.fixBuf[:0], line)
		rl.Line = lr.fixBuf
		rl.InvalidUTF8 = true
	}
	if truncated > 0 {
		rl.Line = append(rl.Line[:len(rl.Line):len(rl.Line)], truncationMarker(truncated)...)
	}
	if text != "" && !rl.InvalidUTF8 && truncated == 0 {
		rl.Text = text
	} else {
		rl.Text = string(rl.Line)
	}
	emit(rl)
}

// truncationMarker is appended to a cut line so a reader sees that the line
// goes on, and by how much.
func truncationMarker(n int64) string {
	return " …[truncated " + strconv.FormatInt(n, 10) + " bytes]"
}

// replaceInvalidUTF8 replaces every invalid byte with U+FFFD, one per byte,
// as Loki does on push: the rest of the line stays byte-exact.
func replaceInvalidUTF8(dst, src []byte) []byte {
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if r == utf8.RuneError && size <= 1 {
			dst = append(dst, "\uFFFD"...)
			src = src[1:]
			continue
		}
		dst = append(dst, src[:size]...)
		src = src[size:]
	}
	return dst
}

func (lr *lineReader) getBuffer() []byte {
	if lr.pool != nil {
		if b, ok := lr.pool.Get().(*[]byte); ok && len(*b) == lr.bufSize {
			return *b
		}
	}
	return make([]byte, lr.bufSize)
}

// release returns the read buffer when nothing is buffered in it.
func (lr *lineReader) release() {
	if lr.buf == nil || lr.start != lr.end {
		return
	}
	b := lr.buf
	lr.buf = nil
	lr.start, lr.end = 0, 0
	if lr.pool != nil {
		lr.pool.Put(&b)
	}
}
