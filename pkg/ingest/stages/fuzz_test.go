package stages

import (
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	logql "github.com/lokal-logs/lokal/pkg/logql/log"
)

// FuzzJSONStage: any line through a json stage never panics, and extracted
// values come only from valid JSON.
func FuzzJSONStage(f *testing.F) {
	for _, s := range testshared.FuzzLines {
		f.Add(s)
	}
	f.Add(`{"items":[{"name":"x"}],"a.b":{"c":null}}`)
	stages := []config.Stage{
		{JSON: &config.JSONStage{Expressions: map[string]string{"lvl": "level", "d": "queue.depth", "n": "items[0].name", "q": `"a.b".c`}}},
		{Labels: map[string]string{"lvl": "", "d": ""}},
	}
	f.Fuzz(func(t *testing.T, line string) {
		p, err := New(stages, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p.Process(Entry{Line: line}, func(e Entry) {})
		p.Flush(time.Time{}, func(e Entry) {
			if len(e.Extracted) > 0 {
				if _, err := logql.DecodePromtailJSON(line); err != nil {
					t.Fatalf("values extracted from invalid JSON %q", line)
				}
			}
		})
	})
}

// FuzzPipelineLines: the default pipeline neither loses nor invents lines:
// the emitted entries, split on "\n", are the input lines in order.
func FuzzPipelineLines(f *testing.F) {
	f.Add("[ERROR] x\nTraceback (most recent call last):\n  File \"a\"\nKeyError: 1\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\nValueError\n[INFO] y")
	f.Add("a\n\n\nb\r\n  c")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := New(nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		in := strings.Split(text, "\n")
		var out []string
		var lastOff int64 = -1
		emit := func(e Entry) {
			if e.Offset <= lastOff {
				t.Fatalf("offsets out of order: %d after %d", e.Offset, lastOff)
			}
			lastOff = e.Offset
			out = append(out, strings.Split(e.Line, "\n")...)
		}
		var off int64
		for _, l := range in {
			p.Process(Entry{Line: l, Offset: off}, emit)
			off += int64(len(l)) + 1
		}
		p.Flush(time.Time{}, emit)
		for i := range in {
			in[i] = strings.TrimSuffix(in[i], "\r")
		}
		if strings.Join(in, "\n") != strings.Join(out, "\n") {
			t.Fatalf("lines changed:\nin  %q\nout %q", in, out)
		}
	})
}

// FuzzStagePipeline: a pipeline using most stages never panics and, with
// nothing dropping, keeps every line: joined entries split back into the
// input lines in order.
func FuzzStagePipeline(f *testing.F) {
	f.Add("[ERROR] user=bob x\n  more\n[INFO] level=info user=amy\n{\"a\":{\"b\":[1]}}")
	f.Add("\x1b[31m[WARN]\x1b[0m a=\"q\\\"\" \n\n\xff")
	cfg := parseStages(f, `[{multiline: {firstline: '^\[', max_lines: 5}}, {regex: {expression: '^\[(?P<lvl>\w+)\]'}}, {logfmt: {mapping: {user: }}}, {json: {expressions: {b: 'a.b[0]'}}}, {labels: {lvl: , user: , b: }}, {match: {selector: '{lvl="ERROR"} |~ "x"', stages: [{static_labels: {err: "1"}}, {template: {source: user, template: '{{ ToUpper .Value }}'}}]}}, {labeldrop: [b]}, {timestamp: {source: user, format: RFC3339}}]`)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := New(cfg, Options{MaxLabelValues: 3})
		if err != nil {
			t.Fatal(err)
		}
		in := strings.Split(text, "\n")
		var out []string
		emit := func(e Entry) { out = append(out, strings.Split(e.Line, "\n")...) }
		for i, l := range in {
			p.Process(Entry{Line: l, Offset: int64(i)}, emit)
		}
		p.Flush(time.Time{}, emit)
		for i := range in {
			in[i] = strings.TrimSuffix(in[i], "\r")
		}
		if strings.Join(in, "\n") != strings.Join(out, "\n") {
			t.Fatalf("lines changed:\nin  %q\nout %q", in, out)
		}
	})
}
