package stages

import (
	"sort"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
	logql "github.com/lokal-logs/lokal/pkg/logql/log"
)

// TestLogfmtStageAgreesWithQuery sends the same lines through a logfmt
// stage at ingest and through `| logfmt --keep-empty` at query time. Both
// use logql/log's scanner; where they still differ the case says why (the
// scanner's dialects are in logql/log's TestLogfmtDialects).
func TestLogfmtStageAgreesWithQuery(t *testing.T) {
	cases := []struct {
		line, ingest, query string
		why                 string
	}{
		{`level=info msg="tts done" text_len=330 e=`, `e=|level=info|msg=tts done|text_len=330`, `e=|level=info|msg=tts done|text_len=330`, ""},
		{`ts=2024-12-17T02:46:15Z err="CUDA: \"oom\"" seq=7`, `err=CUDA: "oom"|seq=7|ts=2024-12-17T02:46:15Z`, `err=CUDA: "oom"|seq=7|ts=2024-12-17T02:46:15Z`, ""},
		{`a=1 a=2 b`, `a=2|b=`, `a=2|b=`, ""},
		{`dotted.key=1`, `dotted.key=1`, `dotted_key=1`, "| logfmt makes keys label names; extracted names are free"},
		{`job=web`, `job=web`, `job_extracted=web`, "| logfmt renames a key that clashes with a stream label; extracted values are not labels yet"},
		{`k="unterminated`, `k=unterminated`, ``, "the scanner's Promtail and Loki dialects differ here"},
	}
	base := labels.FromStrings("job", "x")
	for _, c := range cases {
		p := newPipeline(t, `[{logfmt: {}}]`)
		var ingest []string
		for _, e := range runLines(t, p, c.line) {
			for k, v := range e.Extracted {
				ingest = append(ingest, k+"="+toString(v))
			}
		}
		sort.Strings(ingest)
		_, ls, _, _ := logql.NewPipeline(logql.NewLogfmtParser(logql.LogfmtOptions{KeepEmpty: true})).ForStream(base).Process(0, []byte(c.line))
		var query []string
		for _, l := range ls {
			if !base.Has(l.Name) {
				query = append(query, l.Name+"="+l.Value)
			}
		}
		sort.Strings(query)
		gotIngest, gotQuery := strings.Join(ingest, "|"), strings.Join(query, "|")
		if gotIngest != c.ingest || gotQuery != c.query {
			t.Errorf("%q: ingest %q, query %q; want %q, %q", c.line, gotIngest, gotQuery, c.ingest, c.query)
		}
		if (gotIngest == gotQuery) != (c.why == "") {
			t.Errorf("%q: agree=%v but the case says why=%q", c.line, gotIngest == gotQuery, c.why)
		}
	}
}

// A template or replace stage whose output would pass logql/log's
// MaxTemplateOutput (the bound line_format has) fails with a counted
// error and a warning, and leaves the value and the line alone.
func TestTemplateStageBounded(t *testing.T) {
	p := newPipeline(t, `[{regex: {expression: 'user=(?P<user>\w+)'}}, {template: {source: user, template: '{{ printf "%0300000d" 0 }}'}}, {replace: {expression: 'b(o)b', replace: '{{ printf "%0300000d" 0 }}'}}, {labels: {user: }}]`)
	got := runLines(t, p, "[INFO] user=bob x")
	if len(got) != 1 || got[0].Line != "[INFO] user=bob x" || got[0].Labels.Get("user") != "bob" {
		t.Fatalf("%+v", got)
	}
	if st := p.Stats(); st.StageErrors != 2 || len(st.Warnings) == 0 || !strings.Contains(strings.Join(st.Warnings, " "), "limit") {
		t.Errorf("stats %+v", st)
	}
}
