package store

import (
	"strings"
	"testing"
)

func TestFilterNeverMissesASubstring(t *testing.T) {
	lines := []string{"[ERROR] CUDA out of memory", "ts=1 level=info msg=\"tts done\"", "ÄÖÜ unicode größe", "ab", ""}
	var es []Entry
	for _, l := range lines {
		es = append(es, Entry{Line: l})
	}
	f, err := parseFilter(newFilterBuilder().build(nil, es))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		lit  string
		want bool // false: must be ruled out (only checked for absent literals the test knows are absent)
	}{
		{"rror", true},
		{"error", true}, // case folded
		{"CUDA OUT", true},
		{"größe", true},
		{"ab", true},           // too short to prune
		{"needle-0123", false}, // absent
		{"memory leak", false}, // absent
		{"tts done\"", true},   // spans punctuation
		{"msg=\"tts", true},    // quotes
		{"level=debug", false}, // absent
		{"", true},
	}
	for _, tc := range cases {
		if got := f.mayContain(tc.lit); got != tc.want {
			t.Errorf("mayContain(%q) = %v, want %v", tc.lit, got, tc.want)
		}
	}
}

// FuzzFilter checks the token filter against strings.Contains: it may say
// "maybe" wrongly, never "no" wrongly.
func FuzzFilter(f *testing.F) {
	f.Add("[INFO] hello world\nTraceback", "world")
	f.Add("Error: CUDA out of memory", "cuda OUT")
	f.Add("\xff\xfe abc", "\xfe a")
	f.Fuzz(func(t *testing.T, text, lit string) {
		var es []Entry
		for _, l := range strings.Split(text, "|") {
			es = append(es, Entry{Line: l})
		}
		fl, err := parseFilter(newFilterBuilder().build(nil, es))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if strings.Contains(strings.ToLower(e.Line), strings.ToLower(lit)) && isASCIIFold(lit) && !fl.mayContain(lit) {
				t.Fatalf("filter rules out %q, which line %q contains", lit, e.Line)
			}
			if strings.Contains(e.Line, lit) && !fl.mayContain(lit) {
				t.Fatalf("filter rules out %q, which line %q contains", lit, e.Line)
			}
		}
	})
}

// isASCIIFold reports whether lowercasing lit only touches ASCII letters,
// the folding the filter does.
func isASCIIFold(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestDayOf(t *testing.T) {
	cases := []struct {
		ts  int64
		day int64
		dir string
	}{
		{0, 0, "1970-01-01"},
		{nsPerDay - 1, 0, "1970-01-01"},
		{nsPerDay, 1, "1970-01-02"},
		{-1, -1, "1969-12-31"},
		{day0, 20780, "2026-11-23"},
		{-1 << 63, -106752, "1677-09-21"},
	}
	for _, tc := range cases {
		if d := dayOf(tc.ts); d != tc.day || dayDir(d) != tc.dir {
			t.Errorf("dayOf(%d) = %d %s, want %d %s", tc.ts, d, dayDir(d), tc.day, tc.dir)
		}
	}
}

func TestCutBlocks(t *testing.T) {
	line := strings.Repeat("x", 1000)
	mk := func(n int) []Entry {
		es := make([]Entry, n)
		for i := range es {
			es[i] = Entry{Ts: int64(i), Line: line}
		}
		return es
	}
	cases := []struct {
		n      int
		blocks int
	}{
		{1, 1},
		{1000, 1},
		{1100, 2}, // 1.1 MB: two balanced blocks, not 1 MiB + a sliver
		{3000, 3},
	}
	for _, tc := range cases {
		got := cutBlocks(mk(tc.n), blockTargetRaw)
		total := 0
		for _, b := range got {
			total += len(b)
			if tc.blocks > 1 && rawSize(b) < blockTargetRaw/3 {
				t.Errorf("n=%d: a sliver block of %d bytes", tc.n, rawSize(b))
			}
		}
		if len(got) != tc.blocks || total != tc.n {
			t.Errorf("n=%d: %d blocks holding %d entries, want %d blocks", tc.n, len(got), total, tc.blocks)
		}
	}
}
