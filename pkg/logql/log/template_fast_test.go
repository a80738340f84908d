package log

import (
	"bytes"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// TestFastTemplateMatchesTextTemplate runs every template both through its
// fast form and through text/template, over label sets with present,
// missing, empty and non-numeric values, and wants the same output and the
// same error.
func TestFastTemplateMatchesTextTemplate(t *testing.T) {
	templates := []struct {
		text string
		fast bool // whether it has a fast form
	}{
		{dashboardBucketTemplate, true},
		{"{{.text_len}}", true},
		{"len={{ .text_len }} seed={{.seed}}!", true},
		{"{{.missing}}", true},
		{"plain text", true},
		{"", true},
		{`{{ "const" }}{{ 42 }}{{ -7 }}{{ 1.5 }}{{ 2.0 }}`, true},
		{"{{ add .text_len .seed 1 }}", true},
		{"{{ add }}", true},
		{"{{ sub .text_len 1 }}", true},
		{"{{ mul .text_len 2.5 }}", true},
		{"{{ div .text_len 0 }}", true},
		{"{{ div .text_len .zero }}", true},
		{"{{ mod .text_len 7 }}", true},
		{"{{ mod .seed .empty }}", true},
		{"{{ max .text_len .seed 3 }}{{ min .text_len .seed 3 }}", true},
		{`{{ printf "%05d|%s|%v" (div .text_len 10) .level (mul .seed 2) }}`, true},
		{`{{ printf "%d" .text_len }}`, true},
		{`{{ printf .level }}`, true},
		{`{{ printf (add 1 2) }}`, true},
		{`{{ .text_len | printf "%s chars" }}`, true},
		{`{{ div .text_len 100 | mul 100 | printf "%03d" }}`, true},
		{`{{ printf "%*d" 300000 1 }}`, true},
		{`{{ printf "%v" 1.5 }}{{ divf .text_len 3 }}`, false},
		{"{{ .text_len | ToUpper }}", false},
		{"{{ 0x10 }}{{ 'a' }}{{ 1e3 }}", false},
		{"{{ .a.b }}", false},
		{"{{ . }}", false},
		{"{{ $x := 1 }}{{ $x }}", false},
		{"{{ if .level }}y{{ end }}", false},
		{"{{ sub 1 }}", false},
		{"{{ __line__ }}", false},
	}
	labelSets := []map[string]string{
		{"text_len": "123", "seed": "42", "level": "info", "zero": "0"},
		{"text_len": "7", "level": "warn"},
		{"text_len": "abc", "seed": "-5"},
		{"text_len": "1.0", "seed": "99999999999999999999"},
		{},
	}
	for _, tc := range templates {
		c, err := parseTemplate("label", tc.text)
		if err != nil {
			t.Fatalf("%q: %v", tc.text, err)
		}
		if (c.fast != nil) != tc.fast {
			t.Errorf("%q: fast form %v, want %v", tc.text, c.fast != nil, tc.fast)
		}
		if c.fast == nil {
			continue
		}
		for _, ls := range labelSets {
			line := []byte("a line")
			var want bytes.Buffer
			wantErr := c.clone().execute(&want, 1, line, ls)
			vals := make([]string, len(c.fast.fields))
			for i, f := range c.fast.fields {
				vals[i] = ls[f]
			}
			var got bytes.Buffer
			got.WriteString("prefix")
			gotErr := c.clone().executeFast(&got, 1, line, vals, map[string]string{})
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Errorf("%q over %v: error %v, want %v", tc.text, ls, gotErr, wantErr)
			}
			if wantErr == nil && got.String() != "prefix"+want.String() {
				t.Errorf("%q over %v: %q, want %q", tc.text, ls, got.String(), "prefix"+want.String())
			}
		}
	}
}

// TestLabelFormatSnapshot checks that fast and text/template templates of
// one label_format stage all read the labels as they were when the
// stage's first template ran, after the renames before it.
func TestLabelFormatSnapshot(t *testing.T) {
	base := labels.FromStrings("job", "app", "level", "error", "msg", "tts done", "request_id", "r-1")
	cases := []struct {
		formats []LabelFormat
		want    string
	}{
		{[]LabelFormat{
			{Name: "x", Value: "{{.msg}}-{{.level}}"},
			{Name: "msg", Value: "{{.level}}"},
			{Name: "level", Value: "{{ .level | upper }}"},
			{Name: "y", Value: "{{.msg}}/{{.level}}"},
		}, `{job="app", level="ERROR", msg="error", request_id="r-1", x="tts done-error", y="tts done/error"}`},
		{[]LabelFormat{
			{Name: "id", Value: "request_id", Rename: true},
			{Name: "x", Value: "{{.id}}{{.request_id}}"},
			{Name: "job", Value: "level", Rename: true},
			{Name: "y", Value: "{{.job}}"},
		}, `{id="r-1", job="error", msg="tts done", x="r-1", y="app"}`},
		{[]LabelFormat{
			{Name: "bad", Value: "{{ div .msg 0 }}"},
			{Name: "ok", Value: "{{ add .request_id 1 }}"},
		}, `{__error__="TemplateFormatErr", __error_details__="template: label:1:3: executing \"label\" at <div .msg 0>: error calling div: runtime error: integer divide by zero", job="app", level="error", msg="tts done", ok="1", request_id="r-1"}`},
	}
	for _, tc := range cases {
		st, err := NewLabelsFormatter(tc.formats)
		if err != nil {
			t.Fatal(err)
		}
		if _, got, _ := run(t, base, "line", st); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.formats, got, tc.want)
		}
	}
}
