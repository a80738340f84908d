package engine

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

func TestLiteralIndex(t *testing.T) {
	long := strings.Repeat("erro erorr rerror ", 5)
	for _, tc := range []struct {
		name, text, lit string
	}{
		{"empty literal", "abc", ""},
		{"empty text", "", "error"},
		{"one byte", "xxxxxxxxxxxxxxxxxxxxy", "y"},
		{"text shorter than a word", "an error", "error"},
		{"at the start", "error and then a long tail of text", "error"},
		{"at the very end", "a long line of text with its error", "error"},
		{"in the tail after the last word", "0123456789abcdefgherror", "error"},
		{"across a word boundary", "0123456error89abcdefghijklmnop", "error"},
		{"first and last byte agree, middle does not", "eeeeeeeerxxxxrexrorerrorr", "error"},
		{"two in one word, the first wins", "xerrorerror" + long, "error"},
		{"after near misses", long + "error" + long, "error"},
		{"absent", long, "error"},
		{"by a rare byte", "CUDA CUD out CUDA out of memory", "CUDA out of memory"},
		{"by a rare byte, absent", "CUDA out of memor", "CUDA out of memory"},
		{"by a rare byte in the middle", "duration duration=1s", "duration="},
		{"two bytes", "abababababababababaxbb", "xb"},
		{"literal of one repeated byte", "aaaaaaaaaaaaaaaaaaaaaaaaaab", "aab"},
		{"literal longer than the text", "err", "error"},
		{"high bytes and zeros", "\x00\x00\x80\xff\x01\x00é\x00\x01err\x00\x00\x00\x00\x00\x00\x00\x00", "\x01err"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLiteral([]byte(tc.lit))
			if got, want := l.index([]byte(tc.text)), strings.Index(tc.text, tc.lit); got != want {
				t.Errorf("index(%q, %q) = %d, want %d", tc.text, tc.lit, got, want)
			}
		})
	}
}

// TestLiteralIndexRandom compares index with bytes.Index on random texts
// over a small alphabet (so near misses and overlaps abound), at every
// offset of the text.
func TestLiteralIndexRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab\x00\x01\x80\xff"
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return b
	}
	for range 2000 {
		text, lit := rnd(r.IntN(80)), rnd(1+r.IntN(5))
		l := newLiteral(lit)
		for off := range len(text) + 1 {
			if got, want := l.index(text[off:]), bytes.Index(text[off:], lit); got != want {
				t.Fatalf("index(%q, %q) = %d, want %d", text[off:], lit, got, want)
			}
		}
	}
}

// BenchmarkLiteralIndex counts a literal's lines over a loggen history held
// as one text, as the line scan searches a block: the eight-lane searcher
// against bytes.Index.
func BenchmarkLiteralIndex(b *testing.B) {
	files, _ := testshared.LoggenLines(b, "16MiB", "1")
	var text []byte
	for _, f := range files {
		for _, line := range f {
			text = append(text, line...)
		}
	}
	for _, lit := range []string{"error", "duration=", "CUDA out of memory"} {
		l := newLiteral([]byte(lit))
		for _, s := range []struct {
			name  string
			index func([]byte) int
		}{
			{"lanes", l.index},
			{"bytes.Index", func(t []byte) int { return bytes.Index(t, l.lit) }},
		} {
			b.Run(lit+"/"+s.name, func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				for b.Loop() {
					for pos := 0; ; pos++ {
						k := s.index(text[pos:])
						if k < 0 {
							break
						}
						pos += k
					}
				}
			})
		}
	}
}
