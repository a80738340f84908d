package log

import (
	"fmt"
	"strings"
	"testing"
)

// lineFormat is line_format's output for text on line, or "<error>" when
// it does not parse or the line gets a template error.
func lineFormat(text, line string) string {
	st, err := NewLineFormatter(text)
	if err != nil {
		return "<error>"
	}
	out, ls, _, _ := NewPipeline(st).ForStream(fuzzBase).Process(0, []byte(line))
	if ls.Has(ErrorLabel) {
		return "<error>"
	}
	return string(out)
}

// promtailTemplate is an ingest template stage's output for text, with
// .Entry set to line, or "<error>".
func promtailTemplate(text, line string) string {
	t, err := ParsePromtailTemplate("template", text)
	if err != nil {
		return "<error>"
	}
	out, err := t.Execute(map[string]any{"Entry": line}, len(line))
	if err != nil {
		return "<error>"
	}
	return out
}

// TestTemplateDialects runs the same templates as line_format (Loki) and
// as an ingest template stage (Promtail): the functions both have are one
// implementation and agree; the rest says why not.
func TestTemplateDialects(t *testing.T) {
	cases := []struct {
		text, loki, promtail string
		why                  string
	}{
		{`{{ ToUpper "abç" }}-{{ ToLower "ÀB" }}`, "ABÇ-àb", "ABÇ-àb", ""},
		{`{{ Replace "aaa" "a" "b" 2 }}`, "bba", "bba", ""},
		{`{{ Trim "xxaxx" "x" }}{{ TrimLeft "xa" "x" }}{{ TrimRight "ax" "x" }}{{ TrimPrefix "pa" "p" }}{{ TrimSuffix "as" "s" }}{{ TrimSpace " a " }}`, "aaaaaa", "aaaaaa", ""},
		{`{{ regexReplaceAll "(a+)" "xaa" "[$1]" }} {{ regexReplaceAllLiteral "a" "xa" "$1" }}`, "x[aa] x$1", "x[aa] x$1", ""},
		{`{{ printf "%d-%s" 3 "x" }}`, "3-x", "3-x", ""},
		{`{{ printf "%0300000d" 0 }}`, "<error>", "<error>", ""}, // both bounded by MaxTemplateOutput
		{`{{ regexReplaceAll "(" "x" "y" }}`, "<error>", "<error>", ""},
		{`{{ Hash "bob" "salt" }}`, "<error>", "71b1e1e20f61876b03d602cdffc964a6027ef50c52cd2c57a0bf18c531a4073b", "Hash (sha3) is Promtail's only"},
		{`{{ Sha2Hash "bob" "salt" }}`, "<error>", "07a2341cc0c47680c9c518fc4c5b003d2ab75b2d45d15f933224621584f69b6a", "Sha2Hash is Promtail's only"},
		{`{{ upper "a" }}`, "A", "<error>", "the Sprig functions are line_format's only"},
		{`{{ __line__ }}`, "the line", "<error>", "line_format reads the line with __line__, a template stage with .Entry"},
		{`{{ .Entry }}`, "", "the line", "line_format's data is the labels"},
	}
	for _, c := range cases {
		checkDialects(t, fmt.Sprintf("template %q", c.text), lineFormat(c.text, "the line"), c.loki, promtailTemplate(c.text, "the line"), c.promtail, c.why)
	}
	// every shared name exists in line_format's set (the Promtail set
	// takes it from there), and the Promtail set has nothing else but
	// Hash and Sha2Hash
	st := &templateState{}
	loki, promtail := templateFuncs(st), promtailTemplateFuncs(st)
	for _, name := range promtailSharedFuncs {
		if loki[name] == nil || promtail[name] == nil {
			t.Errorf("%s missing from a set", name)
		}
	}
	if len(promtail) != len(promtailSharedFuncs)+2 {
		t.Errorf("Promtail's set has %d functions, want %d", len(promtail), len(promtailSharedFuncs)+2)
	}
}

// FuzzTemplateDialects parses and runs one template both ways: neither
// panics, and a template the ingest stages accept that calls neither Hash
// nor Sha2Hash is accepted by line_format too.
func FuzzTemplateDialects(f *testing.F) {
	for _, s := range []string{`{{ ToUpper .Entry }}`, `{{ Hash "a" "b" }}`, `{{ range $i, $c := .Entry }}{{ $c }}{{ end }}`, `{{ upper "a" }}`, `{{ printf "%0300000d" 0 }}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		_, perr := ParsePromtailTemplate("template", text)
		_, lerr := NewLineFormatter(text)
		if perr == nil && lerr != nil && !strings.Contains(text, "Hash") {
			t.Fatalf("%q: the ingest stages accept it, line_format says %v", text, lerr)
		}
		_ = lineFormat(text, "the line")
		_ = promtailTemplate(text, "the line")
	})
}
