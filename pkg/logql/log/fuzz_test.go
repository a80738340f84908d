package log

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lokal-logs/lokal/pkg/labels"
)

var fuzzBase = labels.FromStrings("job", "app", "level", "info")

// checkResult asserts what any parser result must satisfy: sorted unique
// valid label names and an untouched input line.
func checkResult(t *testing.T, in, orig []byte, out []byte, ls labels.Labels) {
	t.Helper()
	if !bytes.Equal(in, orig) {
		t.Fatalf("parser modified its input: %q -> %q", orig, in)
	}
	for i, l := range ls {
		if !IsValidLabelName(l.Name) {
			t.Fatalf("invalid label name %q in %s", l.Name, ls)
		}
		if i > 0 && ls[i-1].Name >= l.Name {
			t.Fatalf("labels not sorted/unique: %s", ls)
		}
	}
	_ = out
}

func FuzzLogfmt(f *testing.F) {
	for _, s := range []string{
		`at=info method=GET path=/ host=grafana.net fwd="124.133.124.161" service=8ms status=200`,
		`level=error msg="tts failed" err="CUDA error: \"x\"" duration=102ms`,
		`2024-12-17 05:43:55 DEBUG Generating audio: text_len=399, seed=26988, seq=20877`,
		`=value foo=bar=buzz fo"o=bar`, `a="unterminated`, `k="\u00e9\ud83d\ude00" x=\xff`, ``, `a= b c==`,
	} {
		f.Add(s, false, false)
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, line string, strict, keepEmpty bool) {
		sp := NewPipeline(NewLogfmtParser(LogfmtOptions{Strict: strict, KeepEmpty: keepEmpty})).ForStream(fuzzBase)
		in := []byte(line)
		out, ls, _, ok := sp.Process(0, in)
		if !ok || !bytes.Equal(out, []byte(line)) {
			t.Fatalf("logfmt dropped or rewrote the line")
		}
		checkResult(t, in, []byte(line), out, ls)
		if !strict && ls.Has(ErrorLabel) {
			t.Fatalf("lenient logfmt set an error: %s", ls)
		}
		// every key a lenient parse keeps is also kept with --keep-empty
		if !strict && !keepEmpty {
			sp2 := NewPipeline(NewLogfmtParser(LogfmtOptions{KeepEmpty: true})).ForStream(fuzzBase)
			_, ls2, _, _ := sp2.Process(0, []byte(line))
			for _, l := range ls {
				if !ls2.Has(l.Name) {
					t.Fatalf("label %s=%q missing with --keep-empty: %s", l.Name, l.Value, ls2)
				}
			}
		}
	})
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"b","n":1.5,"t":true,"z":null}`, `{"a.b":{"c":"d"},"e":["x",{"y":1}]}`,
		`{"esc":"a\"b\\c\u00e9\n\ud83d\ude00"}`, `{"a":"1","a":"2"}`, `{"a":`, `[1,2]`, `not json`, `{}`,
		`{"level":"error","msg":"x","queue":{"depth":30,"name":"tts"}}`, `{"x":-1e-5,"y":01}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		in := []byte(line)
		sp := NewPipeline(NewJSONParser()).ForStream(fuzzBase)
		out, ls, _, ok := sp.Process(0, in)
		if !ok {
			t.Fatal("json dropped a line")
		}
		checkResult(t, in, []byte(line), out, ls)
		var doc map[string]any
		valid := json.Unmarshal([]byte(line), &doc) == nil && doc != nil
		// encoding/json replaces invalid UTF-8 by U+FFFD; the parser keeps bytes
		comparable := utf8.ValidString(line)
		if valid && ls.Has(ErrorLabel) {
			t.Fatalf("valid JSON object %q gave %s", line, ls)
		}
		if valid && comparable {
			// top-level string fields with plain names come out verbatim
			for k, v := range doc {
				s, isStr := v.(string)
				if !isStr || !IsValidLabelName(k) || fuzzBase.Has(k) || bytes.Count(in, []byte(`"`+k+`"`)) != 1 || strings.ContainsRune(s, utf8.RuneError) {
					continue
				}
				if got := ls.Get(k); got != s {
					t.Fatalf("field %s=%q came out as %q (%s)", k, s, got, ls)
				}
			}
		}
		// unpack and the expression parser must not panic either
		up := NewPipeline(NewUnpackParser()).ForStream(fuzzBase)
		if _, _, _, ok := up.Process(0, in); !ok {
			t.Fatal("unpack dropped a line")
		}
		ex, err := NewJSONExpressionParser([]LabelExtraction{{Label: "a", Expr: "a.b[0]"}, {Label: "c", Expr: `["c"]`}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok := NewPipeline(ex).ForStream(fuzzBase).Process(0, in); !ok {
			t.Fatal("json expression parser dropped a line")
		}
	})
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{`<ip> - - <_> "<method> <uri> <_>" <status> <size>`, `0.191.12.2 - - [10/Jun/2021] "GET /api HTTP/1.1" 200 2`},
		{`<_> msg="<method> <path> (<status>) <latency>"`, `level=debug msg="POST /push (204) 16ms"`},
		{`GET <path>`, `GET /x`}, {`<a> <b>`, `x`}, {`<<a>>`, `<1>`}, {`<_>`, ``}, {`a<b>c`, `acac`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, line string) {
		m, err := parsePattern(pattern, false)
		if err != nil {
			return
		}
		in := []byte(line)
		caps := make([][]byte, len(m.names))
		full := m.test(in)
		extracted := m.match(in, caps)
		if !bytes.Equal(in, []byte(line)) {
			t.Fatal("pattern modified its input")
		}
		if full && !extracted && m.nodes[0].capture != "" {
			t.Fatalf("%q matches %q but extracts nothing", pattern, line)
		}
		// With only named captures and an anchored start, a match is the
		// line cut into pieces: literals and captures concatenate back to it.
		if full && extracted && len(m.names) == countCaptures(m) {
			var b []byte
			n := 0
			for _, node := range m.nodes {
				if node.capture == "" {
					b = append(b, node.literal...)
					continue
				}
				b = append(b, caps[n]...)
				n++
			}
			if !bytes.Equal(b, in) {
				t.Fatalf("%q on %q: pieces %q rebuild %q", pattern, line, caps, b)
			}
		}
		if st, err := NewPatternParser(pattern); err == nil {
			sp := NewPipeline(st).ForStream(fuzzBase)
			out, ls, _, _ := sp.Process(0, in)
			checkResult(t, in, []byte(line), out, ls)
		}
	})
}

func countCaptures(m *patternMatcher) int {
	n := 0
	for _, node := range m.nodes {
		if node.capture != "" {
			n++
		}
	}
	return n
}

func FuzzIPCandidate(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "01.2.3.4", "256.1.1.1", "1.2.3", "::1", "2001:db8::1", "05:37:46", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1..2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := netip.ParseAddr(s)
		got, ok := parseCandidate([]byte(s))
		// candidates only hold address characters; others are never passed
		for _, c := range []byte(s) {
			if !ipv6Char(c) {
				return
			}
		}
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("%q: parseCandidate %v %v, netip %v %v", s, got, ok, want, err)
		}
	})
}
