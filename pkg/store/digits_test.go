package store

import (
	"slices"
	"testing"
	"time"
)

func TestSplitDigits(t *testing.T) {
	cases := []struct {
		line, skel, digits string
	}{
		{"", "", ""},
		{"no digits", "no digits", ""},
		{"7", "\x00", "7 "},
		{"duration=4043ms rtf=1.190", "duration=\x00ms rtf=\x00.\x00", "4043 1 190 "},
		{"req-696e249f", "req-\x00e\x00f", "696 249 "},
		{"0000 leading zeros 00", "\x00 leading zeros \x00", "0000 00 "},
		{"ünïcode 12€", "ünïcode \x00€", "12 "},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			skel, digits := appendSplitDigits(nil, nil, tc.line)
			if string(skel) != tc.skel || string(digits) != tc.digits {
				t.Fatalf("split %q: skeleton %q digits %q, want %q %q", tc.line, skel, digits, tc.skel, tc.digits)
			}
			line, sp, dp, err := joinDigits(nil, skel, digits, 0, 0, len(tc.line))
			if err != nil || string(line) != tc.line || sp != len(skel) || dp != len(digits) {
				t.Fatalf("join: %q (%d, %d) %v, want %q", line, sp, dp, err, tc.line)
			}
		})
	}
}

func TestJoinDigitsRejects(t *testing.T) {
	cases := []struct {
		name, skel, digits string
		want               int
	}{
		{"skeleton short", "ab", "", 3},
		{"no digit run", "a\x00", "", 3},
		{"empty digit run", "a\x00", " ", 3},
		{"run too long", "a\x00", "123 ", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := joinDigits(nil, []byte(tc.skel), []byte(tc.digits), 0, 0, tc.want); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestSplitDigitsBlock round-trips a block with split and unsplit lines
// (those holding the marker byte), elided timestamps and none.
func TestSplitDigitsBlock(t *testing.T) {
	c, err := newCodecs(codecZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.splitDigits = true
	base := mustTs(t, "2026-11-23T20:39:00.028Z")
	var es []Entry
	for i := 0; i < 500; i++ {
		ts := base + int64(i)*int64(time.Millisecond)
		tt := time.Unix(0, ts).UTC()
		line := "ts=" + tt.Format("2006-01-02T15:04:05.000Z") + " level=info duration=" + tt.Format("05") + "ms id=" + string(rune('a'+i%26)) + "9"
		switch i % 5 {
		case 1:
			line += "\x00 marker"
		case 2:
			line = "12345"
		case 3:
			line = ""
		}
		es = append(es, Entry{Ts: ts, Seq: uint64(i), Line: line})
	}
	slices.SortStableFunc(es, compareEntries)
	for _, split := range []bool{false, true} {
		c.splitDigits = split
		_, d := encodeDecode(t, es, c, newFilterBuilder())
		if d.split != split {
			t.Fatalf("split=%v but block says %v", split, d.split)
		}
		for i, e := range es {
			if d.lines[i] != e.Line || int(d.sizes[i]) != len(e.Line) {
				t.Fatalf("split=%v entry %d: got %q, want %q", split, i, d.lines[i], e.Line)
			}
		}
	}
}
