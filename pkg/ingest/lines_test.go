package ingest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

type cut struct {
	Line      string
	Off, End  int64
	Truncated int64
	Invalid   bool
}

// readAll cuts input the way a tailer would: fill, scan, and at the end
// flush the unterminated tail when final is true.
func readAll(r io.Reader, maxLine int, final bool) []cut {
	lr := newLineReader(r, 0, maxLine)
	var out []cut
	emit := func(rl rawLine) {
		if rl.Text != string(rl.Line) {
			panic(fmt.Sprintf("Text %q differs from Line %q", rl.Text, rl.Line))
		}
		out = append(out, cut{string(rl.Line), rl.Off, rl.End, rl.Truncated, rl.InvalidUTF8})
	}
	for {
		n, err := lr.fill()
		lr.scan(emit)
		if err != nil || (n == 0 && lr.eof) {
			break
		}
	}
	if final {
		lr.flushPartial(emit)
	}
	return out
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 3000)
	tests := []struct {
		name  string
		in    string
		final bool
		want  []cut
	}{
		{"plain", "a\nbb\n", false, []cut{{"a", 0, 2, 0, false}, {"bb", 2, 5, 0, false}}},
		{"CRLF", "a\r\nbb\r\n", false, []cut{{"a", 0, 3, 0, false}, {"bb", 3, 7, 0, false}}},
		{"empty lines kept", "\n\nx\n", false, []cut{{"", 0, 1, 0, false}, {"", 1, 2, 0, false}, {"x", 2, 4, 0, false}}},
		{"partial last line waits", "a\nhalf", false, []cut{{"a", 0, 2, 0, false}}},
		{"partial last line flushed when final", "a\nhalf\r", true, []cut{{"a", 0, 2, 0, false}, {"half", 2, 7, 0, false}}},
		{"invalid UTF-8 replaced per byte", "ok \xff\xfe end\n", false, []cut{{"ok \uFFFD\uFFFD end", 0, 10, 0, true}}},
		{"valid multibyte untouched", "héllo 日本\n", false, []cut{{"héllo 日本", 0, 14, 0, false}}},
		{"long line cut and marked", long + "\nnext\n", false, []cut{
			{long[:1024] + truncationMarker(3000-1024), 0, 3001, 3000 - 1024, false}, {"next", 3001, 3006, 0, false}}},
		{"long CRLF line does not count the CR", long + "\r\nnext\n", false, []cut{
			{long[:1024] + truncationMarker(3000-1024), 0, 3002, 3000 - 1024, false}, {"next", 3002, 3007, 0, false}}},
		{"long line cut on a rune boundary", strings.Repeat("é", 1000) + "\n", false, []cut{
			{strings.Repeat("é", 512) + truncationMarker(1000*2-1024), 0, 2001, 1000*2 - 1024, false}}},
		{"long unterminated line waits for its newline", long, false, nil},
		{"long unterminated line flushed when final", long, true, []cut{{long[:1024] + truncationMarker(3000-1024), 0, 3000, 3000 - 1024, false}}},
	}
	for _, tc := range tests {
		for _, mode := range []string{"whole", "one byte at a time"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.in)
				if mode != "whole" {
					r = iotest.OneByteReader(r)
				}
				got := readAll(r, 1024, tc.final)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got  %+v\nwant %+v", got, tc.want)
				}
			})
		}
	}
}

// FuzzLineReader checks the reader against a plain split: every input byte
// belongs to exactly one line, offsets chain, and short valid lines come
// back unchanged.
func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"a\nb\n", "x\r\n\r\n", "\xff\xfe\n", "no newline", strings.Repeat("y", 3000) + "\nz\n",
		strings.Repeat("y", 3000) + "\r", strings.Repeat("é", 700) + "\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxLine = 1024
		got := readAll(bytes.NewReader(in), maxLine, true)
		var off int64
		for _, c := range got {
			if c.Off != off {
				t.Fatalf("line %q starts at %d, want %d", c.Line, c.Off, off)
			}
			if c.End <= c.Off && len(in) > 0 {
				t.Fatalf("line %q is empty in the file (%d..%d)", c.Line, c.Off, c.End)
			}
			if !utf8.ValidString(c.Line) {
				t.Fatalf("line %q is not valid UTF-8", c.Line)
			}
			raw := in[c.Off:c.End]
			raw = bytes.TrimSuffix(raw, []byte("\n"))
			raw = bytes.TrimSuffix(raw, []byte("\r"))
			if c.Truncated == 0 && utf8.Valid(raw) && c.Line != string(raw) {
				t.Fatalf("line %q, file has %q", c.Line, raw)
			}
			off = c.End
		}
		if off != int64(len(in)) {
			t.Fatalf("lines cover %d of %d bytes", off, len(in))
		}
	})
}

func TestGlob(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a.log", "b.txt", "x/c.log", "x/y/d.log", "x/y/z/e.log", "w/f.log", "x/y/debug.log"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "x"), filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"*.log", []string{"a.log"}},
		{"*", []string{"a.log", "b.txt"}},
		{"**/*.log", []string{"a.log", "w/f.log", "x/c.log", "x/y/d.log", "x/y/debug.log", "x/y/z/e.log"}},
		{"x/**/*.log", []string{"x/c.log", "x/y/d.log", "x/y/debug.log", "x/y/z/e.log"}},
		{"x/**/z/*.log", []string{"x/y/z/e.log"}},
		{"{w,x}/*.log", []string{"w/f.log", "x/c.log"}},
		{"x/y/[de]*.log", []string{"x/y/d.log", "x/y/debug.log"}},
		{"loop/*.log", []string{"loop/c.log"}}, // a symlink named literally is followed
		{"nothing/*.log", nil},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			g, err := compileGlob(filepath.Join(dir, tc.pattern))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range g.Glob(func(d string, err error) { t.Errorf("%s: %v", d, err) }) {
				rel, _ := filepath.Rel(dir, p)
				got = append(got, rel)
				if !g.Match(p) {
					t.Errorf("Glob returned %s, which Match rejects", p)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGlobBadPatterns(t *testing.T) {
	for _, p := range []string{"", "relative/*.log", "/a/**x/*.log", "/a/[/b", "/a/{b,c", "/a/b}"} {
		if _, err := compileGlob(p); err == nil {
			t.Errorf("compileGlob(%q) accepted a bad pattern", p)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/l/**/debug*.log", "/l/debug.log", true},
		{"/l/**/debug*.log", "/l/a/b/debug-1.log", true},
		{"/l/**/debug*.log", "/l/a/b/app.log", false},
		{"/l/*.log", "/l/a/x.log", false},
		{"/l/**", "/l/a/x.log", true},
		{"/l/{a,b}/*.log", "/l/b/x.log", true},
	}
	for _, tc := range tests {
		g, err := compileGlob(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Match(tc.path); got != tc.want {
			t.Errorf("Match(%s, %s) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

// BenchmarkLineReader cuts 8 MiB of log lines: typical ASCII lines, lines
// with invalid UTF-8 (replacement path), and over-long lines.
func BenchmarkLineReader(b *testing.B) {
	inputs := map[string]string{
		"ascii":    strings.Repeat("2026-01-02 03:04:05,123 - cosyvoice - INFO - synthesis done rtf=0.31 seq=1\n", 1<<17),
		"invalid":  strings.Repeat("2026-01-02 03:04:05,123 - cosyvoice - INFO - caf\xe9 \xff done\n", 1<<17),
		"longline": strings.Repeat(strings.Repeat("x", 300<<10)+"\n", 28),
	}
	for _, name := range []string{"ascii", "invalid", "longline"} {
		in := inputs[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				lr := newLineReader(strings.NewReader(in), 0, DefaultMaxLineBytes)
				n := 0
				emit := func(rl rawLine) { n += len(rl.Text) }
				for {
					got, err := lr.fill()
					lr.scan(emit)
					if err != nil || (got == 0 && lr.eof) {
						break
					}
				}
				if n == 0 {
					b.Fatal("no lines")
				}
			}
		})
	}
}
