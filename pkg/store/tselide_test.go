package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustTs(tb testing.TB, s string) int64 {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t.UnixNano()
}

func TestTsElideFind(t *testing.T) {
	ts := "2026-11-23T20:39:00.028Z"
	cases := []struct {
		name   string
		line   string
		ts     string
		off    int
		elided string // "" when nothing may be elided
	}{
		{"logfmt ms", "ts=2026-11-23T20:39:00.028Z level=info msg=x", ts, 3, "2026-11-23T20:39:00.028Z"},
		{"bracket level seconds", "[ERROR] 2026-11-23T20:39:00Z Inference failed", "2026-11-23T20:39:00Z", 8, "2026-11-23T20:39:00Z"},
		{"python comma", "2026-11-23 20:39:00,028 - app - INFO - hi", ts, 0, "2026-11-23 20:39:00,028"},
		{"space seconds", "2026-11-23 20:39:00 INFO Generating", "2026-11-23T20:39:00Z", 0, "2026-11-23 20:39:00"},
		{"loguru dot", "2026-11-23 20:39:00.028 | INFO | m:f:1 - x", ts, 0, "2026-11-23 20:39:00.028"},
		{"nanos", "t 2026-11-23T20:39:00.123456789Z", "2026-11-23T20:39:00.123456789Z", 2, "2026-11-23T20:39:00.123456789Z"},
		{"micros no Z", "2026-11-23T20:39:00.123456 x", "2026-11-23T20:39:00.123456Z", 0, "2026-11-23T20:39:00.123456"},
		// The fraction disagrees with Ts: only the seconds are elided and
		// the fraction stays in the stored line.
		{"fraction differs", "2026-11-23T20:39:00.999Z x", ts, 0, "2026-11-23T20:39:00"},
		{"at end", "[SYSTEM] Starting at 2026-11-23T20:39:00Z", "2026-11-23T20:39:00Z", 21, "2026-11-23T20:39:00Z"},
		{"second occurrence", "2026-11-23T20:38:59Z then 2026-11-23T20:39:00Z", "2026-11-23T20:39:00Z", 26, "2026-11-23T20:39:00Z"},
		{"other second", "2026-11-23T20:39:01Z x", ts, 0, ""},
		{"other day", "2026-11-24T20:39:00Z x", ts, 0, ""},
		{"bad separator", "2026-11-23_20:39:00 x", ts, 0, ""},
		{"no timestamp", "INFO:     127.0.0.1:54446 - \"POST /inference HTTP/1.1\" 200 OK", ts, 0, ""},
		{"short", "2026-11-23", ts, 0, ""},
		{"too many digits", "2026-11-23T20:39:00.0280000000Z", ts, 0, "2026-11-23T20:39:00"},
		{"beyond window", strings.Repeat("x", tsSearchWindow) + "2026-11-23T20:39:00Z", "2026-11-23T20:39:00Z", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e tsElider
			off, layout, ok := e.find(tc.line, mustTs(t, tc.ts))
			if tc.elided == "" {
				if ok {
					t.Fatalf("elided %q at %d, want nothing", tc.line[off:off+tsRenderLen(layout)], off)
				}
				return
			}
			if !ok {
				t.Fatalf("nothing elided, want %q", tc.elided)
			}
			got := tc.line[off : off+tsRenderLen(layout)]
			if off != tc.off || got != tc.elided {
				t.Fatalf("elided %q at %d, want %q at %d", got, off, tc.elided, tc.off)
			}
		})
	}
}

// TestTsElideRoundTrip encodes blocks whose lines carry their times in
// many shapes (and some that almost do) and checks every line comes back.
func TestTsElideRoundTrip(t *testing.T) {
	base := mustTs(t, "2026-11-23T23:59:59.5Z")
	var entries []Entry
	for i := 0; i < 2000; i++ {
		ts := base + int64(i)*int64(7*time.Millisecond+13)
		tt := time.Unix(0, ts).UTC()
		var line string
		switch i % 7 {
		case 0:
			line = "ts=" + tt.Format("2006-01-02T15:04:05.000Z") + " level=info msg=ok"
		case 1:
			line = "[INFO] " + tt.Format(time.RFC3339) + " done"
		case 2:
			line = tt.Format("2006-01-02 15:04:05,000") + " - x - INFO - y"
		case 3:
			line = tt.Format(time.RFC3339Nano)
		case 4:
			line = "no time here"
		case 5:
			line = tt.Add(time.Second).Format(time.RFC3339) + " wrong second"
		case 6:
			line = tt.Format("2006-01-02 15:04:05.000000") + " é\xff"
		}
		entries = append(entries, Entry{Ts: ts, Seq: uint64(i), Line: line})
	}
	entries = append(entries,
		Entry{Ts: mustTs(t, "0001-01-01T00:00:00Z"), Seq: 1, Line: "0001-01-01T00:00:00Z early"},
		Entry{Ts: -1, Seq: 2, Line: "1969-12-31T23:59:59.999999999Z before the epoch"},
	)
	c, err := newCodecs(codecZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, compareEntries)
	h, d := encodeDecode(t, sorted, c, newFilterBuilder())
	elided := 0
	for i, e := range sorted {
		if d.lines[i] != e.Line || d.ts[i] != e.Ts || int(d.sizes[i]) != len(e.Line) {
			t.Fatalf("entry %d: got %q (size %d), want %q", i, d.lines[i], d.sizes[i], e.Line)
		}
		if d.elide[i] != 0 {
			elided++
		}
	}
	// Cases 0, 1, 2, 3, 6 and the two edge entries carry their own time.
	if want := 2000/7*5 + 2; elided < want {
		t.Fatalf("%d lines elided, want at least %d", elided, want)
	}
	if h.RawBytes != uint64(rawSize(sorted)) {
		t.Fatalf("raw bytes %d, want %d", h.RawBytes, rawSize(sorted))
	}
}

func TestOpenRejectsFormat1(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(manifestMagicV1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func() error{
		func() error { s, err := Open(dir, Options{}); closeIf(s); return err },
		func() error { s, err := OpenReadOnly(dir, Options{}); closeIf(s); return err },
	} {
		err := open()
		if err == nil || !strings.Contains(err.Error(), "format 1") {
			t.Fatalf("open of a format 1 store: %v, want an error naming format 1", err)
		}
	}
}

func closeIf(s *Store) {
	if s != nil {
		s.Close()
	}
}

// FuzzTsElide checks the round trip of arbitrary lines whose times may or
// may not be written in them.
func FuzzTsElide(f *testing.F) {
	f.Add("ts=2026-11-23T20:39:00.028Z level=info", int64(1795466340028000000), false)
	f.Add("x 2026-11-23 20:39:00,028 y", int64(1795466340028000000), true)
	f.Add("2026-11-23T20:39:00Z", int64(1795466340000000000), false)
	f.Add("", int64(0), false)
	c, err := newCodecs(codecZstd)
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	fb := newFilterBuilder()
	f.Add("x=12 y=0034\x00 z=9", int64(1795466340028000000), true)
	f.Fuzz(func(t *testing.T, line string, ts int64, prefixTime bool) {
		c.splitDigits = ts%2 == 0 // both ways of storing lines
		if prefixTime {
			// Make a match likely: write the time itself into the line.
			line = time.Unix(0, ts).UTC().Format(time.RFC3339Nano) + line
		}
		es := []Entry{{Ts: ts, Seq: 1, Line: line}, {Ts: ts, Seq: 2, Line: line + line}}
		_, d := encodeDecode(t, es, c, fb)
		for i, e := range es {
			if d.lines[i] != e.Line {
				t.Fatalf("entry %d: got %q, want %q", i, d.lines[i], e.Line)
			}
		}
	})
}

// TestMetaTimeUnit round-trips blocks whose time differences suit
// different units, including a few that the chosen unit does not divide
// and differences near the int64 limits.
func TestMetaTimeUnit(t *testing.T) {
	c, err := newCodecs(codecZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := map[string]func(i int) int64{
		"seconds":        func(i int) int64 { return int64(i/3) * 1e9 },
		"milliseconds":   func(i int) int64 { return int64(i) * 7e6 },
		"ms with ns odd": func(i int) int64 { return int64(i)*1e6 + int64(i%40/39)*int64(rng.IntN(1e6)) },
		"nanoseconds":    func(i int) int64 { return int64(i)*1000 + int64(rng.IntN(1000)) },
		"extremes": func(i int) int64 {
			switch i {
			case 0:
				return math.MinInt64
			case 1:
				return -1
			case 2:
				return 0
			}
			return math.MaxInt64 - int64(200-i)*1e9
		},
	}
	for name, tsOf := range cases {
		t.Run(name, func(t *testing.T) {
			var es []Entry
			for i := 0; i < 200; i++ {
				es = append(es, Entry{Ts: tsOf(i), Seq: uint64(i * 10), Line: fmt.Sprintf("line %d", i)})
			}
			slices.SortStableFunc(es, compareEntries)
			_, d := encodeDecode(t, es, c, newFilterBuilder())
			for i, e := range es {
				if d.ts[i] != e.Ts || d.seq[i] != e.Seq || d.lines[i] != e.Line {
					t.Fatalf("entry %d: got (%d, %d, %q), want %+v", i, d.ts[i], d.seq[i], d.lines[i], e)
				}
			}
		})
	}
}

// encodeDecode encodes es (sorted) into a block and decodes it with its lines;
// it returns the encoder's header and the decoded block.
func encodeDecode(t testing.TB, es []Entry, c *codecs, fb *filterBuilder) (blockHeader, *blockData) {
	t.Helper()
	b, h, err := encodeBlock(nil, es, c, fb)
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := decodeBlock(b, c, true)
	if err != nil {
		t.Fatal(err)
	}
	return h, d
}
