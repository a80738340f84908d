package syntax

import (
	"slices"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"5m", 5 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"1d", 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"1y", 365 * 24 * time.Hour, false},
		{"500ms", 500 * time.Millisecond, false},
		{"1.5s", 1500 * time.Millisecond, false},
		{"100us", 100 * time.Microsecond, false},
		{"100µs", 100 * time.Microsecond, false},
		{"10ns", 10, false},
		{"0", 0, false},
		{"1d12h", 36 * time.Hour, false},
		{"", 0, true},
		{"5", 0, true},
		{"5x", 0, true},
		{"m", 0, true},
		{"1..5s", 0, true},
		{"99999999999y", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"20MB", 20_000_000, false},
		{"1.5KiB", 1536, false},
		{"42B", 42, false},
		{"42b", 42, false},
		{"1kb", 1000, false},
		{"1KB", 1000, false},
		{"1KiB", 1024, false},
		{"2GiB", 2 << 30, false},
		{"3M", 3_000_000, false},
		{"1TB", 1e12, false},
		{"1EiB", 1 << 60, false},
		{"20", 0, true},
		{"20XB", 0, true},
		{"100EB", 0, true},
		{"1,024KB", 0, true}, // label values may carry commas, literals may not
		{"1 KB", 0, true},
		{"KB", 0, true},
		{"1.2.3KB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseBytes(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{5 * time.Minute, "5m"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1d"},
		{8 * 24 * time.Hour, "1w1d"},
		{366 * 24 * time.Hour, "1y1d"},
		{1500 * time.Millisecond, "1s500ms"},
		{1500 * time.Microsecond, "1.5ms"},
		{-time.Second, "-1s"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in > 0 {
			if back, err := ParseDuration(tt.want); err != nil || back != tt.in {
				t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tt.in, back, err)
			}
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0B"},
		{42, "42B"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{20_000_000, "20MB"},
		{3 << 30, "3GiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := ParseBytes(tt.want); err != nil || back != tt.in {
			t.Errorf("ParseBytes(FormatBytes(%d)) = %v, %v", tt.in, back, err)
		}
	}
}

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in        string
		extractor bool
		want      []PatternPart
		err       bool
	}{
		{`<ip> - <_> "<method>"`, true, []PatternPart{{Capture: "ip"}, {Literal: " - "}, {Capture: "_"}, {Literal: ` "`}, {Capture: "method"}, {Literal: `"`}}, false},
		{`<_>Generating audio<_>`, false, []PatternPart{{Capture: "_"}, {Literal: "Generating audio"}, {Capture: "_"}}, false},
		{`a < b <c d> <1x> <>`, false, []PatternPart{{Literal: "a < b <c d> <1x> <>"}}, false},
		{`plain text`, false, []PatternPart{{Literal: "plain text"}}, false},
		{`plain text`, true, nil, true},
		{`<a> <a>`, true, nil, true},
		{`<a><_>`, true, nil, true},
		{`<a> x`, false, []PatternPart{{Capture: "a"}, {Literal: " x"}}, false},
		{``, false, nil, true},
	}
	for _, tt := range tests {
		got, err := ParsePattern(tt.in, tt.extractor)
		if (err != nil) != tt.err {
			t.Errorf("ParsePattern(%q, %v) error = %v, want error %v", tt.in, tt.extractor, err, tt.err)
			continue
		}
		if !tt.err && !slices.Equal(got, tt.want) {
			t.Errorf("ParsePattern(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestLexPositions(t *testing.T) {
	src := "{a=\"日本\"}\n  |= `x\ny` # c\n| json"
	toks, err := lex(src)
	if err != nil {
		t.Fatal(err)
	}
	type pos struct {
		kind      tokenKind
		line, col int
	}
	want := []pos{
		{tokLBrace, 1, 1}, {tokIdent, 1, 2}, {tokEq, 1, 3}, {tokString, 1, 4}, {tokRBrace, 1, 8},
		{tokPipeExact, 2, 3}, {tokString, 2, 6}, {tokPipe, 4, 1}, {tokIdent, 4, 3}, {tokEOF, 4, 7},
	}
	if len(toks) != len(want) {
		t.Fatalf("got %d tokens, want %d: %+v", len(toks), len(want), toks)
	}
	for i, w := range want {
		at := spanFrom(src, toks[i].pos, toks[i].end).Start
		if toks[i].kind != w.kind || at.Line != w.line || at.Col != w.col {
			t.Errorf("token %d = %s at %d:%d, want %s at %d:%d", i, toks[i].describe(), at.Line, at.Col,
				tokenNames[w.kind], w.line, w.col)
		}
	}
}
