package engine

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// literal finds one literal across a block's whole text eight positions at
// a time: a word of text at i and one at i+len-1 are compared with the
// literal's first and last bytes in every lane at once, and only the
// positions where both agree (about one in a hundred for common letters)
// are compared whole. bytes.Index instead stops at every occurrence of the
// first byte, which for a literal such as "error" is every few bytes of a
// log line.
//
// A literal with a rare byte (an upper-case letter, a byte outside ASCII
// or a control byte, as in "CUDA out of memory") is searched by that byte
// instead: bytes.IndexByte skips the long stretches without it much faster
// than eight lanes at a time.
type literal struct {
	lit         []byte
	first, last uint64 // the first and last byte in every lane
	rare        int    // the offset of the literal's rarest byte, or -1
}

const (
	lanesLow  = 0x0101010101010101
	lanesHigh = 0x8080808080808080
)

func newLiteral(lit []byte) literal {
	l := literal{lit: lit, rare: -1}
	if len(lit) > 0 {
		l.first = lanesLow * uint64(lit[0])
		l.last = lanesLow * uint64(lit[len(lit)-1])
	}
	best := rareMax
	for i, c := range lit {
		if r := byteRank(c); r <= best {
			l.rare, best = i, r
			if r == 0 {
				break
			}
		}
	}
	return l
}

// byteRank orders bytes by how often they appear in log lines, the rarest
// 0; bytes ranked above rareMax are too frequent to search one at a time.
func byteRank(c byte) int {
	switch {
	case c >= 0x80 || c < ' ' && c != '\t':
		return 0
	case 'A' <= c && c <= 'Z':
		return 1
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == ' ', c == '\t':
		return 3
	default:
		return 2
	}
}

const rareMax = 2

// zeroLanes sets the high bit of every zero byte of x. A lane above a zero
// lane may be set too (the borrow runs on), never a zero lane left out, so
// the set lanes are candidates to check, the lowest one first.
func zeroLanes(x uint64) uint64 { return (x - lanesLow) &^ x & lanesHigh }

// index is bytes.Index(text, l.lit): the position of the literal's first
// occurrence in text, or -1.
func (l *literal) index(text []byte) int {
	n := len(l.lit)
	if n < 2 {
		return bytes.Index(text, l.lit)
	}
	if l.rare >= 0 {
		return l.indexRare(text)
	}
	i := 0
	// Sixteen positions a round while they last, then eight.
	for ; i+n-1+16 <= len(text); i += 16 {
		w, x := text[i:i+16], text[i+n-1:i+n-1+16]
		m0 := zeroLanes(binary.LittleEndian.Uint64(w)^l.first) &
			zeroLanes(binary.LittleEndian.Uint64(x)^l.last)
		m1 := zeroLanes(binary.LittleEndian.Uint64(w[8:])^l.first) &
			zeroLanes(binary.LittleEndian.Uint64(x[8:])^l.last)
		if m0|m1 == 0 {
			continue
		}
		if k := l.check(text, i, m0); k >= 0 {
			return k
		}
		if k := l.check(text, i+8, m1); k >= 0 {
			return k
		}
	}
	for ; i+n-1+8 <= len(text); i += 8 {
		m := zeroLanes(binary.LittleEndian.Uint64(text[i:])^l.first) &
			zeroLanes(binary.LittleEndian.Uint64(text[i+n-1:])^l.last)
		for m != 0 {
			k := i + bits.TrailingZeros64(m)>>3
			if bytes.Equal(text[k:k+n], l.lit) {
				return k
			}
			m &= m - 1
		}
	}
	if k := bytes.Index(text[i:], l.lit); k >= 0 {
		return i + k
	}
	return -1
}

// indexRare is index by the literal's rarest byte: each of its occurrences
// in text is a candidate, compared whole.
func (l *literal) indexRare(text []byte) int {
	n, r := len(l.lit), l.rare
	c := l.lit[r]
	// The rare byte of a match lies in text[r : len(text)-(n-1-r)].
	for i, end := r, len(text)-(n-1-r); i < end; {
		j := bytes.IndexByte(text[i:end], c)
		if j < 0 {
			return -1
		}
		k := i + j - r
		if bytes.Equal(text[k:k+n], l.lit) {
			return k
		}
		i += j + 1
	}
	return -1
}

// check compares the literal whole at each candidate lane of m, the word
// at i, and returns the first match, or -1.
func (l *literal) check(text []byte, i int, m uint64) int {
	n := len(l.lit)
	for ; m != 0; m &= m - 1 {
		k := i + bits.TrailingZeros64(m)>>3
		if bytes.Equal(text[k:k+n], l.lit) {
			return k
		}
	}
	return -1
}
