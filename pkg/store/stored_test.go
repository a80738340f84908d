package store

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// decodeStored decodes a whole block as ScanStored does: meta, then the
// lines section decompressed and laid out, not rebuilt.
func decodeStored(b []byte, c *codecs) (*StoredLines, error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != h.totalLen() {
		return nil, corruptf("block is %d bytes, header says %d", len(b), h.totalLen())
	}
	meta, err := checkSection(b[h.metaOff():h.linesOff()], "meta")
	if err != nil {
		return nil, err
	}
	lines, err := checkSection(b[h.linesOff():h.filterOff()], "lines")
	if err != nil {
		return nil, err
	}
	sd := &storedData{}
	d := &sd.d
	if _, err := decodeMeta(&h, meta, c, nil, d); err != nil {
		return nil, err
	}
	if err := decompressLines(&h, lines, c, d); err != nil {
		return nil, err
	}
	if err := sd.layoutStored(); err != nil {
		return nil, err
	}
	return &StoredLines{Text: d.raw[:d.skelLen], Sizes: sd.sizes, Cuts: sd.cuts, Lens: d.sizes, Ts: d.ts, sd: sd}, nil
}

// storedHas is the search StoredLines asks for, written plainly: line i
// holds lit when its stored text does on one side of its cut.
func storedHas(sl *StoredLines, start, i int, lit []byte) bool {
	seg := sl.Text[start : start+int(sl.Sizes[i])]
	if c := int(sl.Cuts[i]); c > 0 {
		return bytes.Contains(seg[:c], lit) || bytes.Contains(seg[c:], lit)
	}
	return bytes.Contains(seg, lit)
}

// checkStored checks a block of es both ways: every line rebuilt from its
// stored text, and for each literal StoredMatchExact accepts, the same
// lines found in the stored text as in the lines.
func checkStored(t *testing.T, es []Entry, c *codecs, lits [][]byte) {
	t.Helper()
	b, _, err := encodeBlock(nil, es, c, newFilterBuilder())
	if err != nil {
		t.Fatal(err)
	}
	sl, err := decodeStored(b, c)
	if err != nil {
		t.Fatalf("stored: %v", err)
	}
	for i, e := range es {
		got, err := sl.Line(i)
		if err != nil || string(got) != e.Line || int(sl.Lens[i]) != len(e.Line) || sl.Ts[i] != e.Ts {
			t.Fatalf("line %d: %q (%d bytes), %v; want %q", i, got, sl.Lens[i], err, e.Line)
		}
	}
	for _, lit := range lits {
		if !StoredMatchExact(lit) {
			continue
		}
		start := 0
		for i, e := range es {
			if got, want := storedHas(sl, start, i, lit), strings.Contains(e.Line, string(lit)); got != want {
				t.Fatalf("literal %q, line %d %q (stored %q, cut %d): stored text says %v, line %v",
					lit, i, e.Line, sl.Text[start:start+int(sl.Sizes[i])], sl.Cuts[i], got, want)
			}
			start += int(sl.Sizes[i])
		}
	}
}

func TestStoredMatchExact(t *testing.T) {
	for _, tc := range []struct {
		lit  string
		want bool
	}{
		{"error", true},
		{"CUDA out of memory", true},
		{"level=error ", true},
		{"T", false}, {"-", false}, {":", false}, {" ", false}, {".", false}, {",", false},
		{"Tx", true}, {" x", true}, {"::", true},
		{"Z", false}, {"Zebra", false}, {"aZ", true},
		{"e1", false}, {"0", false}, {"a\x00", false},
		{"", false},
	} {
		if got := StoredMatchExact([]byte(tc.lit)); got != tc.want {
			t.Errorf("StoredMatchExact(%q) = %v, want %v", tc.lit, got, tc.want)
		}
	}
}

// randomEntries makes n lines of words, digits, timestamp-like bytes and
// marker bytes, most holding their own timestamp in one of the layouts
// somewhere (at the start, inside a word, between digits, at the end).
func randomEntries(r *rand.Rand, n int) []Entry {
	pieces := []string{"error", "err", "or", "Z", "T", "-", ":", ".", ",", " ", "x", "ZZ", "Terror", "e", "r", "\x00", "12", "7", "0", "2026", "level=", "msg=\"", "\""}
	base := time.Date(2026, 11, 23, 20, 39, 0, 0, time.UTC).UnixNano()
	es := make([]Entry, n)
	for i := range es {
		ts := base + int64(i)*int64(time.Millisecond)*37 + r.Int64N(1000)*int64(time.Microsecond)
		var sb strings.Builder
		for range r.IntN(12) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		line := sb.String()
		if r.IntN(5) != 0 {
			rendered, _ := appendTs(nil, ts, uint32(r.IntN(tsLayoutMask+1))&^tsFracMask|uint32(r.IntN(tsMaxFracDig+1))<<tsFracShift)
			at := r.IntN(len(line) + 1)
			if r.IntN(3) == 0 {
				at = 0
			}
			line = line[:at] + string(rendered) + line[at:]
		}
		es[i] = Entry{Ts: ts, Seq: uint64(i), Line: line}
	}
	return es
}

// TestStoredMatchesLines: on random lines with timestamps and digits in
// every position, for random literals (pieces of the lines, with and
// without digits, timestamp bytes and markers), a literal StoredMatchExact
// accepts is in a line's stored text exactly when it is in the line.
func TestStoredMatchesLines(t *testing.T) {
	c, err := newCodecs(codecZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	r := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for range 200 {
		es := randomEntries(r, 1+r.IntN(60))
		var lits [][]byte
		for range 40 {
			l := es[r.IntN(len(es))].Line
			a := r.IntN(len(l) + 1)
			lit := []byte(l[a:min(len(l), a+1+r.IntN(8))])
			if StoredMatchExact(lit) {
				accepted++
			}
			lits = append(lits, lit)
		}
		lits = append(lits, []byte("error"), []byte("r e"), []byte("x\"l"), []byte("Terror"), []byte(":x"), []byte("x-"), []byte(" Terr"))
		for _, split := range []bool{true, false} {
			c.splitDigits = split
			checkStored(t, es, c, lits)
		}
	}
	if accepted < 1000 {
		t.Fatalf("only %d random literals were searchable in stored text: the test checks too little", accepted)
	}
}

// FuzzStoredMatch: lines of any bytes holding their timestamp at any
// offset in any layout, and any literal.
func FuzzStoredMatch(f *testing.F) {
	f.Add([]byte("a\nlevel=error 12 x"), []byte("error"), uint8(3), uint8(0))
	f.Add([]byte("x\x00y\n\n123"), []byte("x-"), uint8(64), uint8(1))
	f.Add([]byte("ab\nerror"), []byte("ab"), uint8(0), uint8(1))
	c, err := newCodecs(codecZstd)
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	base := time.Date(2026, 11, 23, 20, 39, 0, 123456789, time.UTC).UnixNano()
	f.Fuzz(func(t *testing.T, data, lit []byte, layout, at uint8) {
		var es []Entry
		for i, l := range bytes.Split(data, []byte("\n")) {
			ts := base + int64(i)*int64(time.Millisecond)
			rendered, _ := appendTs(nil, ts, uint32(layout)&tsLayoutMask&^tsFracMask|uint32(layout%10)<<tsFracShift)
			k := min(int(at), len(l))
			es = append(es, Entry{Ts: ts, Seq: uint64(i), Line: string(l[:k]) + string(rendered) + string(l[k:])})
			if len(es) == 200 {
				break
			}
		}
		es = slices.DeleteFunc(es, func(e Entry) bool { return len(e.Line) > 4096 })
		if len(es) == 0 {
			return
		}
		for _, split := range []bool{true, false} {
			c.splitDigits = split
			checkStored(t, es, c, [][]byte{lit})
		}
	})
}

// TestStoredCorruptionAgrees damages the decompressed lines section of
// valid blocks (bytes turned into markers, separators, digits or letters,
// the boundary between skeletons and digit runs moved) and checks that
// laying out the stored text finds it corrupt exactly when rebuilding the
// lines does, and otherwise rebuilds the same lines.
func TestStoredCorruptionAgrees(t *testing.T) {
	c, err := newCodecs(codecZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	r := rand.New(rand.NewPCG(3, 4))
	var agreedBad, agreedGood int
	for range 40 {
		es := randomEntries(r, 1+r.IntN(30))
		b, h, err := encodeBlock(nil, es, c, newFilterBuilder())
		if err != nil {
			t.Fatal(err)
		}
		sl, err := decodeStored(b, c)
		if err != nil {
			t.Fatal(err)
		}
		good := sl.sd.d
		for range 50 {
			raw := slices.Clone(good.raw)
			for range 1 + r.IntN(3) {
				if len(raw) > 0 {
					raw[r.IntN(len(raw))] = "\x00 5a"[r.IntN(4)]
				}
			}
			skelLen := good.skelLen
			if r.IntN(4) == 0 {
				skelLen = min(len(raw), max(0, skelLen+r.IntN(5)-2))
			}
			comp := c.compress(nil, raw)
			fresh := func() blockData {
				return blockData{ts: good.ts, sizes: good.sizes, elide: good.elide, elided: good.elided, split: good.split,
					skelLen: skelLen, digitsLen: len(raw) - skelLen}
			}
			d := fresh()
			rerr := decodeLines(&h, comp, c, &d)
			sd := &storedData{d: fresh()}
			serr := decompressLines(&h, comp, c, &sd.d)
			if serr == nil {
				serr = sd.layoutStored()
			}
			if (rerr == nil) != (serr == nil) {
				t.Fatalf("rebuilding: %v; laying out: %v", rerr, serr)
			}
			if rerr != nil {
				agreedBad++
				continue
			}
			agreedGood++
			sl := &StoredLines{Text: sd.d.raw[:sd.d.skelLen], Sizes: sd.sizes, Cuts: sd.cuts, Lens: sd.d.sizes, Ts: sd.d.ts, sd: sd}
			for i := range d.lines {
				if l, err := sl.Line(i); err != nil || string(l) != d.lines[i] {
					t.Fatalf("line %d: %q, %v; rebuilt %q", i, l, err, d.lines[i])
				}
			}
		}
	}
	if agreedBad < 100 || agreedGood < 100 {
		t.Fatalf("%d damaged sections found corrupt, %d not: too few of either to compare", agreedBad, agreedGood)
	}
}
