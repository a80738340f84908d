package store

import (
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// seedBlocks are valid blocks in both codecs, the starting points for
// mutation.
func seedBlocks(tb testing.TB) [][]byte {
	var out [][]byte
	entries := []Entry{
		{Ts: 5, Seq: 1, Line: "[INFO] hello"},
		{Ts: 5, Seq: 2, Line: ""},
		{Ts: 9, Seq: 0, Line: "CUDA out of memory\n  traceback line"},
		{Ts: 1 << 40, Seq: 1 << 60, Line: "needle-0123456789abcdef"},
		{Ts: 1795466340028000000, Seq: 1<<60 + 24, Line: "ts=2026-11-23T20:39:00.028Z level=info duration=4043ms"},
	}
	for _, codec := range []uint8{codecZstd, codecS2} {
		c, err := newCodecs(codec)
		if err != nil {
			tb.Fatal(err)
		}
		c.splitDigits = false // both ways of storing lines
		b, _, err := encodeBlock(nil, entries, c, newFilterBuilder())
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b, b[:len(b)/2])
		c.splitDigits = true
		b, _, err = encodeBlock(nil, entries, c, newFilterBuilder())
		c.close()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	// A version 3 block: structured metadata on some entries.
	c, err := newCodecs(codecZstd)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.close()
	md := slices.Clone(entries)
	md[0].Metadata = labels.FromStrings("detected_level", "info", "trace_id", "0af7651916cd43dd")
	md[3].Metadata = labels.FromStrings("detected_level", "info", "trace_id", "0af7651916cd43dd")
	md[4].Metadata = labels.FromStrings("a", "")
	b, _, err := encodeBlock(nil, md, c, newFilterBuilder())
	if err != nil {
		tb.Fatal(err)
	}
	return append(out, b)
}

func FuzzDecodeBlock(f *testing.F) {
	for _, b := range seedBlocks(f) {
		f.Add(b)
	}
	c, err := newCodecs(codecZstd)
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, data, c)
		// Mutations rarely survive the checksums; fix them up so the
		// decoders behind them see hostile bytes too.
		checkDecoded(t, fixChecksums(data), c)
	})
}

func fixChecksums(in []byte) []byte {
	b := append([]byte(nil), in...)
	if len(b) < blockHeaderSize {
		return b
	}
	le := binary.LittleEndian
	le.PutUint32(b[52:], crc32.Checksum(b[:52], castagnoli))
	h := blockHeader{MetaLen: le.Uint32(b[36:]), LinesLen: le.Uint32(b[40:]), FilterLen: le.Uint32(b[44:])}
	if h.totalLen() != int64(len(b)) {
		return b
	}
	for _, sec := range [][2]int64{{h.metaOff(), h.linesOff()}, {h.linesOff(), h.filterOff()}, {h.filterOff(), h.totalLen()}} {
		body := b[sec[0] : sec[1]-4]
		le.PutUint32(b[sec[1]-4:], crc32.Checksum(body, castagnoli))
	}
	return b
}

func checkDecoded(t *testing.T, data []byte, c *codecs) {
	{
		h, d, err := decodeBlock(data, c, true)
		// The stored text of a block is laid out without rebuilding it,
		// but finds the lines section corrupt exactly when rebuilding does.
		sl, serr := decodeStored(data, c)
		if _, _, merr := decodeBlock(data, c, false); merr == nil && (err == nil) != (serr == nil) {
			t.Fatalf("rebuilding the lines: %v; laying out their stored text: %v", err, serr)
		}
		if err != nil {
			return
		}
		for i := range d.lines {
			if l, err := sl.Line(i); err != nil || string(l) != d.lines[i] {
				t.Fatalf("line %d rebuilt from its stored text: %q, %v; want %q", i, l, err, d.lines[i])
			}
		}
		// Whatever decodes must be self-consistent.
		if len(d.ts) != int(h.Count) || len(d.lines) != int(h.Count) {
			t.Fatalf("decoded %d entries, header says %d", len(d.ts), h.Count)
		}
		var sum uint64
		for i := range d.ts {
			if i > 0 && d.ts[i] < d.ts[i-1] {
				t.Fatalf("entries out of order")
			}
			if len(d.lines[i]) != int(d.sizes[i]) {
				t.Fatalf("line size mismatch")
			}
			sum += uint64(d.sizes[i])
		}
		if sum != h.RawBytes {
			t.Fatalf("sizes sum %d, header %d", sum, h.RawBytes)
		}
		if h.Metadata != (d.md != nil) || (d.md != nil && len(d.md) != int(h.Count)) {
			t.Fatalf("version 3 is %v, but %d metadata sets for %d entries", h.Metadata, len(d.md), h.Count)
		}
	}
}

// seedManifests are a valid manifest and a torn one.
func seedManifests() [][]byte {
	ops := []op{
		{kind: opNextIDs, next: [2]uint64{3, 4}},
		{kind: opStream, id: 1, lbls: labels.FromStrings("job", "x")},
		{kind: opSegment, id: 1, day: 20000, size: 1000},
		{kind: opAddBlock, stream: 1, seg: 1, off: 0, hdr: blockHeader{Codec: codecZstd, Count: 1, MinTs: 1, MaxTs: 1, RawBytes: 3, MetaLen: 10, LinesLen: 10, FilterLen: 66, MetaRawLen: 3}},
		{kind: opCursor, key: "f", present: true, val: []byte("12")},
		{kind: opDelBlock, seg: 1, off: 0},
		{kind: opDropDay, day: 20000},
	}
	good := append([]byte(manifestMagic), frameRecord(encodeOps(ops))...)
	return [][]byte{good, good[:len(good)-3]}
}

func FuzzReadManifest(f *testing.F) {
	for _, b := range seedManifests() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = loadManifest("MANIFEST", data)
	})
}

// TestFuzzSeeds keeps testdata/fuzz in step with the encoders; -update
// rewrites it.
func TestFuzzSeeds(t *testing.T) {
	for name, seeds := range map[string][][]byte{"FuzzDecodeBlock": seedBlocks(t), "FuzzReadManifest": seedManifests()} {
		checkSeeds(t, name, seeds)
	}
}

// TestVersion2BlocksUnchanged reads the seed blocks written before block
// version 3 existed: they still decode, and blocks without metadata are
// still written byte for byte as they were.
func TestVersion2BlocksUnchanged(t *testing.T) {
	seeds := seedBlocks(t)
	c, err := newCodecs(codecZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i, whole := range []bool{true, false, true, true, false, true} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecodeBlock", fmt.Sprintf("seed-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		_, quoted, _ := strings.Cut(strings.TrimSpace(string(raw)), "[]byte(")
		old, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("seed-%d: %v", i, err)
		}
		if old != string(seeds[i]) {
			t.Errorf("seed-%d: the encoder no longer writes the version 2 block it wrote", i)
		}
		if !whole {
			continue
		}
		h, d, err := decodeBlock([]byte(old), c, true)
		if err != nil || h.Metadata || d.md != nil || len(d.lines) != 5 || d.lines[2] != "CUDA out of memory\n  traceback line" {
			t.Errorf("seed-%d: %+v %v", i, h, err)
		}
	}
	h, d, err := decodeBlock(seeds[len(seeds)-1], c, true)
	if err != nil || !h.Metadata || len(d.md) != 5 || d.md[0].Get("trace_id") != "0af7651916cd43dd" || d.md[1] != nil || !labels.Equal(d.md[4], labels.FromStrings("a", "")) {
		t.Fatalf("version 3 seed: %+v %v %v", h, d.md, err)
	}
	if &d.md[0][0] != &d.md[3][0] {
		t.Error("equal metadata sets of a block are not shared")
	}
}

func checkSeeds(t *testing.T, name string, seeds [][]byte) {
	dir := filepath.Join("testdata", "fuzz", name)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) < len(seeds) {
		t.Fatalf("seed corpus missing (%v); run go test -run TestFuzzSeeds -update", err)
	}
}
