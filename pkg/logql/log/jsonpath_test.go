package log

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// pathString prints a parsed path as "a/[0]/b", or "error" on an error.
func pathString(p []JSONPathElem, err error) string {
	if err != nil {
		return "error"
	}
	var parts []string
	for _, e := range p {
		if e.IsIdx {
			parts = append(parts, "["+strconv.Itoa(e.Index)+"]")
		} else {
			parts = append(parts, e.Field)
		}
	}
	return strings.Join(parts, "/")
}

// TestJSONPathDialects parses the same paths in Loki's syntax (`| json`)
// and Promtail's (the ingest json stage) and shows where and why they
// differ. The Promtail column holds the cases the json stage's paths were
// always tested with.
func TestJSONPathDialects(t *testing.T) {
	cases := []struct {
		path, loki, promtail string
		why                  string // empty when both agree
	}{
		{"level", "level", "level", ""},
		{"queue.depth", "queue/depth", "queue/depth", ""},
		{"items[0].name", "items/[0]/name", "items/[0]/name", ""},
		{"a.b-c", "a/b-c", "a/b-c", ""},
		{"[1]", "[1]", "[1]", ""},
		{"", "error", "error", ""},
		{"a.", "error", "error", ""},
		{".a", "error", "error", ""},
		{"a..b", "error", "error", ""},
		{"a[*]", "error", "error", ""},
		{"a[?x==1]", "error", "error", ""},
		{"a[0", "error", "error", ""},
		{"a.[0]", "error", "error", ""},
		{`"k8s.pod".name`, `"k8s/pod"/name`, "k8s.pod/name", `Promtail quotes a key between dots ("a.b"); Loki takes the quotes as part of the field`},
		{`["k8s.pod"].name`, "k8s.pod/name", "error", `Loki quotes a key in brackets (["a.b"])`},
		{`"a`, `"a`, "error", "Loki takes a lone quote as part of the field"},
		{"a[-1]", "error", "a/[-1]", "Promtail (JMESPath) counts negative indexes from the end"},
		{"a b", "a b", "error", "a Loki field is any run of bytes but '.' and '['; Promtail keys are identifiers"},
		{"a | b", "a | b", "error", "Promtail refuses JMESPath pipes by name; for Loki it is a field name"},
		{"length(a)", "length(a)", "error", "Promtail refuses JMESPath functions by name"},
	}
	for _, c := range cases {
		checkDialects(t, fmt.Sprintf("path %q", c.path), pathString(ParseJSONPath(c.path)), c.loki, pathString(ParsePromtailJSONPath(c.path)), c.promtail, c.why)
	}
}

// lokiJSONValue is `| json v="path"`'s result on line: the value, or
// "<absent>" / "<error>".
func lokiJSONValue(t *testing.T, line, path string) string {
	st, err := NewJSONExpressionParser([]LabelExtraction{{Label: "v", Expr: path}})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	_, ls, _, _ := NewPipeline(st).ForStream(fuzzBase).Process(0, []byte(line))
	switch {
	case ls.Has(ErrorLabel):
		return "<error>"
	case !ls.Has("v"):
		return "<absent>"
	}
	return ls.Get("v")
}

// promtailJSONValue is the ingest json stage's result on line.
func promtailJSONValue(t *testing.T, line, path string) string {
	p, err := ParsePromtailJSONPath(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	doc, err := DecodePromtailJSON(line)
	if err != nil {
		return "<error>"
	}
	v, ok := EvalJSONPath(doc, p)
	if !ok {
		return "<absent>"
	}
	return v
}

// TestJSONValueDialects extracts the same paths from the same lines the
// way `| json a="path"` does and the way the ingest json stage does.
func TestJSONValueDialects(t *testing.T) {
	cases := []struct {
		line, path, loki, promtail string
		why                        string
	}{
		{`{"a":{"b":"x"}}`, "a.b", "x", "x", ""},
		{`{"n":1.50e3,"t":true}`, "n", "1.50e3", "1.50e3", ""},
		{`{"n":1.50e3,"t":true}`, "t", "true", "true", ""},
		{`{"s":"\u00e9\n"}`, "s", "é\n", "é\n", ""},
		{`{"a":[1,{"b":2}]}`, "a[1].b", "2", "2", ""},
		{`{"a":null}`, "a", "", "<absent>", "Loki gives null as an empty label; Promtail treats it as missing"},
		{`{"a":1}`, "b", "", "<absent>", "Loki creates the label of a missing path, empty"},
		{`{"o":{"z":1, "a":"<"}}`, "o", `{"z":1, "a":"<"}`, `{"a":"\u003c","z":1}`, "Loki passes objects as written; Promtail re-encodes them (keys sorted, compact, HTML-escaped)"},
		{`{"a":"x","b":`, "a", "x", "<error>", "Loki scans lazily and finds a before the error; Promtail decodes the whole document first"},
		{`{"a":"x"} trailing`, "a", "x", "x", ""},
		{`{"a":1,"a":2}`, "a", "1", "2", "Loki takes the first of duplicate keys, encoding/json the last"},
		{`plain`, "a", "<error>", "<error>", ""},
	}
	for _, c := range cases {
		checkDialects(t, fmt.Sprintf("%s in %s", c.path, c.line), lokiJSONValue(t, c.line, c.path), c.loki, promtailJSONValue(t, c.line, c.path), c.promtail, c.why)
	}
}

// FuzzJSONPathDialects parses one path in both syntaxes: neither panics,
// an accepted path is never empty, and a path Promtail accepts that has no
// quoted key and no sign in an index means the same in Loki's syntax.
func FuzzJSONPathDialects(f *testing.F) {
	for _, s := range []string{"a.b[0]", `"x.y".z`, `["x.y"].z`, "a[*]", "a[-1]", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lp, lerr := ParseJSONPath(s)
		pp, perr := ParsePromtailJSONPath(s)
		if lerr == nil && len(lp) == 0 || perr == nil && len(pp) == 0 {
			t.Fatalf("%q: empty path without error", s)
		}
		if perr == nil && !strings.ContainsAny(s, `"+-`) {
			if l, p := pathString(lp, lerr), pathString(pp, perr); l != p {
				t.Fatalf("%q: Loki %q, Promtail %q", s, l, p)
			}
		}
	})
}
