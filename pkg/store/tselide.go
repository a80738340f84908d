package store

import (
	"strings"
	"time"
)

// Timestamp elision. Most log lines repeat their own entry time in text
// ("2026-11-23T20:39:00.028Z", "2026-11-23 20:39:00,123"), and those digits
// are about a fifth of what zstd leaves of a block: they change on every
// line, so they barely compress. When formatting the entry's Ts in UTC with
// one of the layouts below reproduces a piece of the line byte for byte, the
// block stores the line without that piece and the meta section records
// where it was and which layout rebuilds it. Decoding re-renders it from Ts,
// so the round trip is exact; the encoder checks every elision by rendering
// it and comparing before it drops a byte.
//
// A layout is a small bit set:
//
//	bit 0     separator between date and time: 0 'T', 1 ' '
//	bits 1-4  fraction digits, 0 (none) to 9
//	bit 5     fraction separator: 0 '.', 1 ','
//	bit 6     a 'Z' follows
//
// The meta section stores per entry uvarint(0) for "nothing elided" or
// uvarint(1 + (offset<<tsLayoutBits | layout)).
const (
	tsLayoutBits = 7
	tsLayoutMask = 1<<tsLayoutBits - 1

	tsSepSpace   = 1 << 0
	tsFracShift  = 1
	tsFracMask   = 0xf << tsFracShift
	tsFracComma  = 1 << 5
	tsZulu       = 1 << 6
	tsMaxFracDig = 9

	// tsSearchWindow bounds how far into a line the encoder looks for the
	// timestamp: loggers put it at or near the start, and a bounded search
	// keeps the cost per line small for very long lines.
	tsSearchWindow = 256
	// tsMaxTries bounds how many occurrences of the date one line is
	// checked at, for lines that repeat the date (a request log quoting
	// other times).
	tsMaxTries = 4
)

// tsRenderLen is the length of the text a valid layout renders.
func tsRenderLen(layout uint32) int {
	n := 19 // 2006-01-02T15:04:05
	if d := int(layout&tsFracMask) >> tsFracShift; d > 0 {
		n += 1 + d
	}
	if layout&tsZulu != 0 {
		n++
	}
	return n
}

// tsLayoutValid rejects fraction digit counts a decoder must never render.
func tsLayoutValid(layout uint32) bool {
	return layout <= tsLayoutMask && int(layout&tsFracMask)>>tsFracShift <= tsMaxFracDig
}

// appendTs renders ts in UTC with layout. ok is false for years that do not
// have four digits, which no layout can express.
func appendTs(dst []byte, ts int64, layout uint32) ([]byte, bool) {
	t := time.Unix(0, ts).UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return dst, false
	}
	hh, mm, ss := t.Clock()
	dst = append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10))
	if layout&tsSepSpace != 0 {
		dst = append(dst, ' ')
	} else {
		dst = append(dst, 'T')
	}
	dst = append(dst,
		byte('0'+hh/10), byte('0'+hh%10), ':',
		byte('0'+mm/10), byte('0'+mm%10), ':',
		byte('0'+ss/10), byte('0'+ss%10))
	if d := int(layout&tsFracMask) >> tsFracShift; d > 0 {
		if layout&tsFracComma != 0 {
			dst = append(dst, ',')
		} else {
			dst = append(dst, '.')
		}
		ns := t.Nanosecond()
		var digits [9]byte
		for i := 8; i >= 0; i-- {
			digits[i] = byte('0' + ns%10)
			ns /= 10
		}
		dst = append(dst, digits[:d]...)
	}
	if layout&tsZulu != 0 {
		dst = append(dst, 'Z')
	}
	return dst, true
}

// tsElider caches the rendering of the current second, since
// consecutive entries of a block mostly share it.
type tsElider struct {
	sec     int64
	valid   bool
	nanos   int
	prefix  []byte // "YYYY-MM-DDThh:mm:ss" of sec, when valid
	scratch []byte
}

// find returns where in line a rendering of ts starts and with which
// layout; ok is false when no piece of the line is one.
func (e *tsElider) find(line string, ts int64) (off int, layout uint32, ok bool) {
	if len(line) < 19 {
		return 0, 0, false
	}
	sec, nanos := ts/1e9, int(ts%1e9)
	if nanos < 0 {
		sec, nanos = sec-1, nanos+1e9
	}
	if e.prefix == nil || sec != e.sec {
		e.sec = sec
		var good bool
		e.prefix, good = appendTs(e.prefix[:0], sec*1e9, 0)
		e.valid = good
	}
	if !e.valid {
		return 0, 0, false
	}
	e.nanos = nanos
	win := line[:min(len(line), tsSearchWindow)]
	date := bytesToString(e.prefix[:10])
	base := 0
	for try := 0; try < tsMaxTries; try++ {
		i := strings.Index(win[base:], date)
		if i < 0 {
			return 0, 0, false
		}
		p := base + i
		if l, good := e.matchAt(line, p); good {
			return p, l, true
		}
		base = p + 1
	}
	return 0, 0, false
}

// matchAt says which layout, if any, renders ts exactly as the line's text
// at p, whose first ten bytes are the date already.
func (e *tsElider) matchAt(line string, p int) (uint32, bool) {
	if len(line)-p < 19 || line[p+11:p+19] != bytesToString(e.prefix[11:19]) {
		return 0, false
	}
	var layout uint32
	switch line[p+10] {
	case 'T':
	case ' ':
		layout |= tsSepSpace
	default:
		return 0, false
	}
	q := p + 19
	if q+1 < len(line) && (line[q] == '.' || line[q] == ',') {
		// Count the fraction's digits and check they are Ts's exactly:
		// a fraction Ts cannot reproduce stays in the stored line.
		k, v := 0, 0
		for q+1+k < len(line) && k <= tsMaxFracDig && line[q+1+k] >= '0' && line[q+1+k] <= '9' {
			v = v*10 + int(line[q+1+k]-'0')
			k++
		}
		if k >= 1 && k <= tsMaxFracDig {
			for range tsMaxFracDig - k {
				v *= 10
			}
			if v == e.nanos {
				layout |= uint32(k) << tsFracShift
				if line[q] == ',' {
					layout |= tsFracComma
				}
				q += 1 + k
			}
		}
	}
	if q < len(line) && line[q] == 'Z' {
		layout |= tsZulu
	}
	// The guarantee: render and compare before anything is dropped.
	var good bool
	e.scratch, good = appendTs(e.scratch[:0], e.sec*1e9+int64(e.nanos), layout)
	if !good || len(e.scratch) > len(line)-p || line[p:p+len(e.scratch)] != bytesToString(e.scratch) {
		return 0, false
	}
	return layout, true
}
