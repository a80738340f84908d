package log

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// run processes one line through fresh per-stream stages and returns the
// line, the result labels as Loki prints them, and whether it was kept.
func run(t *testing.T, base labels.Labels, line string, stages ...Stage) (string, string, bool) {
	t.Helper()
	sp := NewPipeline(stages...).ForStream(base)
	out, ls, h, ok := sp.ProcessString(1734414342123000000, line)
	if !ok {
		return "", "", false
	}
	if h != ls.Hash() {
		t.Fatalf("hash %d does not match labels %s", h, ls)
	}
	// The shared (not per-stream) stages must give the same answer.
	b := NewLabelsBuilder(base)
	l2 := []byte(line)
	ok2 := true
	for i, s := range stages {
		b.enterStage(i + 1)
		l2, ok2 = s.Process(1734414342123000000, l2, b)
		if !ok2 {
			break
		}
	}
	if !ok2 || string(l2) != out || b.Labels().String() != ls.String() {
		t.Fatalf("shared stages differ: %q %s %v vs %q %s", l2, b.Labels(), ok2, out, ls)
	}
	return out, ls.String(), true
}

var stream = labels.FromStrings("job", "app", "level", "info")

func TestJSONParser(t *testing.T) {
	cases := []struct {
		line, want string
	}{
		{`{"a":"b","n":1.5,"t":true,"z":null}`, `{a="b", job="app", level="info", n="1.5", t="true"}`},
		{`{"a.b":{"c":"d"},"e":"f"}`, `{a_b_c="d", e="f", job="app", level="info"}`},
		{`{"level":"error","msg":"x"}`, `{job="app", level="info", level_extracted="error", msg="x"}`},
		{`{"servers":["a","b"],"p":"x"}`, `{job="app", level="info", p="x"}`},
		{`{"esc":"a\"b\\c\u00e9\n"}`, `{esc="a\"b\\cé\n", job="app", level="info"}`},
		{`{"User-Agent":"curl","1x":"y"}`, `{User_Agent="curl", _1x="y", job="app", level="info"}`},
		{`{"a":"1","a":"2"}`, `{a="2", job="app", level="info"}`},
		{`{"empty":""}`, `{empty="", job="app", level="info"}`},
		{`{"nested":{"deep":{"x":1}},"arr":[{"y":2}]}`, `{job="app", level="info", nested_deep_x="1"}`},
		{`{}`, `{job="app", level="info"}`},
		{`not json`, `{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", job="app", level="info"}`},
		{`{"a":"b"`, `{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", a="b", job="app", level="info"}`},
		{"{\"a\":\"\xff\",\"b\":\"\\ufffd\",\"c\":\"ok\"}", `{a="", b="", c="ok", job="app", level="info"}`},
		{`{"a":"x\q"}`, `{__error__="JSONParserErr", __error_details__="Encountered an invalid escape sequence in a string", job="app", level="info"}`},
	}
	for _, tc := range cases {
		_, got, ok := run(t, stream, tc.line, NewJSONParser())
		if !ok || got != tc.want {
			t.Errorf("json %s:\n got %s\nwant %s", tc.line, got, tc.want)
		}
	}
}

func TestJSONExpressionParser(t *testing.T) {
	doc := `{"protocol":"HTTP/2.0","servers":["129.0.1.1","10.2.1.3"],"request":{"time":"6.032","headers":{"User-Agent":"curl/7.68.0"}},"response":{"status":401},"level":"warn"}`
	cases := []struct {
		params []LabelExtraction
		want   string
	}{
		{[]LabelExtraction{{Label: "first_server", Expr: "servers[0]"}, {Label: "ua", Expr: `request.headers["User-Agent"]`}},
			`{first_server="129.0.1.1", job="app", level="info", ua="curl/7.68.0"}`},
		{[]LabelExtraction{{Label: "server_list", Expr: "servers"}, {Label: "headers", Expr: "request.headers"}},
			`{headers="{\"User-Agent\":\"curl/7.68.0\"}", job="app", level="info", server_list="[\"129.0.1.1\",\"10.2.1.3\"]"}`},
		{[]LabelExtraction{{Label: "servers"}}, `{job="app", level="info", servers="[\"129.0.1.1\",\"10.2.1.3\"]"}`},
		{[]LabelExtraction{{Label: "status", Expr: "response.status"}, {Label: "missing", Expr: "nope.x"}},
			`{job="app", level="info", missing="", status="401"}`},
		{[]LabelExtraction{{Label: "level"}}, `{job="app", level="info", level_extracted="warn"}`},
		{[]LabelExtraction{{Label: "s", Expr: `["servers"][1]`}}, `{job="app", level="info", s="10.2.1.3"}`},
	}
	for _, tc := range cases {
		s, err := NewJSONExpressionParser(tc.params)
		if err != nil {
			t.Fatal(err)
		}
		_, got, _ := run(t, stream, doc, s)
		if got != tc.want {
			t.Errorf("json %v:\n got %s\nwant %s", tc.params, got, tc.want)
		}
	}
	s, _ := NewJSONExpressionParser([]LabelExtraction{{Label: "a"}, {Label: "b"}})
	if _, got, _ := run(t, stream, `{"a":"x","b":`, s); got != `{__error__="JSONParserErr", __error_details__="Malformed JSON error", a="x", job="app", level="info"}` {
		t.Errorf("broken json with params: %s", got)
	}
	if _, got, _ := run(t, stream, `plain text`, s); got != `{__error__="JSONParserErr", job="app", level="info"}` {
		t.Errorf("non-json with params: %s", got)
	}
	if _, got, _ := run(t, stream, ``, s); got != `{job="app", level="info"}` {
		t.Errorf("empty line with params: %s", got)
	}
	for _, bad := range []string{"a..b", "a[", "a[x]", `a["x`, "a[0"} {
		if _, err := NewJSONExpressionParser([]LabelExtraction{{Label: "l", Expr: bad}}); err == nil {
			t.Errorf("json expression %q: want an error", bad)
		}
	}
	if _, err := NewJSONExpressionParser([]LabelExtraction{{Label: "a"}, {Label: "a", Expr: "b"}}); err == nil {
		t.Error("duplicate label: want an error")
	}
}

func TestLogfmtParser(t *testing.T) {
	cases := []struct {
		opts       LogfmtOptions
		line, want string
	}{
		{LogfmtOptions{}, `at=info method=GET path=/ fwd="124.133.124.161" service=8ms`,
			`{at="info", fwd="124.133.124.161", job="app", level="info", method="GET", path="/", service="8ms"}`},
		{LogfmtOptions{}, `level=error msg="tts failed" err="CUDA \"x\""`,
			`{err="CUDA \"x\"", job="app", level="info", level_extracted="error", msg="tts failed"}`},
		{LogfmtOptions{}, `[INFO] 2024-12-17T05:37:46Z Inference finished: mode=cross text_len=103`,
			`{job="app", level="info", mode="cross", text_len="103"}`},
		{LogfmtOptions{KeepEmpty: true}, `2024-12-17 05:43:55 DEBUG Generating audio: text_len=399, seed=26988`,
			`{DEBUG="", Generating="", _05_43_55="", _2024_12_17="", audio_="", job="app", level="info", seed="26988", text_len="399,"}`},
		{LogfmtOptions{}, `a=1 a=2 b=`, `{a="2", job="app", level="info"}`},
		{LogfmtOptions{KeepEmpty: true}, `b= c`, `{b="", c="", job="app", level="info"}`},
		{LogfmtOptions{}, `=value foo=bar=buzz fo"o=bar ok=yes`, `{job="app", level="info", ok="yes"}`},
		{LogfmtOptions{Strict: true}, `ok=yes =value later=x`,
			`{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 8 : unexpected '='", job="app", level="info", ok="yes"}`},
		{LogfmtOptions{Strict: true}, `a="unterminated`,
			`{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 16 : unterminated quoted value", job="app", level="info"}`},
		{LogfmtOptions{}, `k="tab\there" u="\u00e9"`, `{job="app", k="tab\there", level="info", u="é"}`},
		{LogfmtOptions{}, ``, `{job="app", level="info"}`},
		{LogfmtOptions{}, "a=1 \xff=2 \xfe b=3", `{a="1", b="3", job="app", level="info"}`},
		{LogfmtOptions{Strict: true}, "a=1 \xff=2 b=3",
			`{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 6 : invalid key", a="1", job="app", level="info"}`},
		{LogfmtOptions{Strict: true}, `a="x\qy" b=3`,
			`{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 9 : invalid quoted value", job="app", level="info"}`},
		{LogfmtOptions{}, `a="x"b=2`, `{a="x", b="2", job="app", level="info"}`},
	}
	for _, tc := range cases {
		_, got, ok := run(t, stream, tc.line, NewLogfmtParser(tc.opts))
		if !ok || got != tc.want {
			t.Errorf("logfmt %+v %s:\n got %s\nwant %s", tc.opts, tc.line, got, tc.want)
		}
	}
	s, err := NewLogfmtExpressionParser(LogfmtOptions{}, []LabelExtraction{{Label: "host"}, {Label: "fwd_ip", Expr: "fwd"}, {Label: "solo"}, {Label: "level"}})
	if err != nil {
		t.Fatal(err)
	}
	_, got, _ := run(t, stream, `at=info host=grafana.net fwd="124.133.124.161" solo level=warn`, s)
	if want := `{fwd_ip="124.133.124.161", host="grafana.net", job="app", level="info", level_extracted="warn", solo=""}`; got != want {
		t.Errorf("logfmt params:\n got %s\nwant %s", got, want)
	}
	// listed labels exist even when the line lacks their keys
	_, got, _ = run(t, stream, `at=info`, s)
	if want := `{fwd_ip="", host="", job="app", level="info", solo=""}`; got != want {
		t.Errorf("logfmt params, keys missing:\n got %s\nwant %s", got, want)
	}
	// values that are not valid UTF-8 are dropped, as Loki does
	_, got, _ = run(t, stream, "a=\xff b=ok c=\xef\xbf\xbd", NewLogfmtParser(LogfmtOptions{}))
	if want := `{b="ok", job="app", level="info"}`; got != want {
		t.Errorf("logfmt invalid UTF-8:\n got %s\nwant %s", got, want)
	}
}

func TestRegexpAndPatternParsers(t *testing.T) {
	re, err := NewRegexpParser(`(?P<method>\w+) (?P<path>[\w|/]+) \((?P<status>\d+?)\) (?P<duration>.*)`)
	if err != nil {
		t.Fatal(err)
	}
	_, got, _ := run(t, stream, "POST /api/prom/api/v1/query_range (200) 1.5s", re)
	if want := `{duration="1.5s", job="app", level="info", method="POST", path="/api/prom/api/v1/query_range", status="200"}`; got != want {
		t.Errorf("regexp: %s", got)
	}
	_, got, _ = run(t, stream, "no match", re)
	if got != `{job="app", level="info"}` {
		t.Errorf("regexp no match: %s", got)
	}
	opt, _ := NewRegexpParser(`a(?P<x>b)?(?P<level>c)`)
	if _, got, _ := run(t, stream, "ac", opt); got != `{job="app", level="info", level_extracted="c", x=""}` {
		t.Errorf("regexp optional group: %s", got)
	}
	for _, bad := range []string{`(\d+)`, `(?P<1a>x)`, `(?P<a>x)(?P<a>y)`, `(`} {
		if _, err := NewRegexpParser(bad); err == nil {
			t.Errorf("regexp %q: want an error", bad)
		}
	}

	nginx := `0.191.12.2 - - [10/Jun/2021:09:14:29 +0000] "GET /api/plugins/versioncheck HTTP/1.1" 200 2 "-" "Go-http-client/2.0" "13.76.247.102, 34.120.177.193" "TLSv1.2" "US" ""`
	p, err := NewPatternParser(`<ip> - - <_> "<method> <uri> <_>" <status> <size> <_> "<agent>" <_>`)
	if err != nil {
		t.Fatal(err)
	}
	_, got, _ = run(t, stream, nginx, p)
	if want := `{agent="Go-http-client/2.0", ip="0.191.12.2", job="app", level="info", method="GET", size="2", status="200", uri="/api/plugins/versioncheck"}`; got != want {
		t.Errorf("pattern:\n got %s\nwant %s", got, want)
	}
	p2, _ := NewPatternParser(`<_> msg="<method> <path> (<status>) <latency>"`)
	_, got, _ = run(t, stream, `level=debug caller=logging.go:66 msg="POST /loki/api/v1/push (204) 16.652862ms"`, p2)
	if want := `{job="app", latency="16.652862ms", level="info", method="POST", path="/loki/api/v1/push", status="204"}`; got != want {
		t.Errorf("pattern msg:\n got %s\nwant %s", got, want)
	}
	// a missing literal ends extraction: the capture takes the rest
	_, got, _ = run(t, stream, `level=debug msg="GET /x`, p2)
	if want := `{job="app", level="info", method="GET", path="/x"}`; got != want {
		t.Errorf("pattern partial:\n got %s\nwant %s", got, want)
	}
	// a leading literal anchors the pattern
	p3, _ := NewPatternParser(`GET <path>`)
	if _, got, _ := run(t, stream, `POST /x`, p3); got != `{job="app", level="info"}` {
		t.Errorf("anchored pattern: %s", got)
	}
	for _, bad := range []string{`<_> <_>`, `<a><b>`, `plain`, `<a> <a>`, ``} {
		if _, err := NewPatternParser(bad); err == nil {
			t.Errorf("pattern %q: want an error", bad)
		}
	}
}

func TestUnpack(t *testing.T) {
	line, got, _ := run(t, stream, `{"container":"myapp","pod":"pod-3223f","level":"warn","n":3,"_entry":"original log message"}`, NewUnpackParser())
	if line != "original log message" || got != `{container="myapp", job="app", level="info", level_extracted="warn", pod="pod-3223f"}` {
		t.Errorf("unpack: %q %s", line, got)
	}
	// Loki takes labels only from packed lines (with _entry)
	line, got, _ = run(t, stream, `{"a":"b"}`, NewUnpackParser())
	if line != `{"a":"b"}` || got != `{job="app", level="info"}` {
		t.Errorf("unpack without _entry: %q %s", line, got)
	}
	_, got, _ = run(t, stream, `[1]`, NewUnpackParser())
	if want := `{__error__="JSONParserErr", __error_details__="expecting json object(6), but it is not", job="app", level="info"}`; got != want {
		t.Errorf("unpack of non-object: %s", got)
	}
	line, got, _ = run(t, stream, `{"_entry":"x","a":`, NewUnpackParser())
	if line != `{"_entry":"x","a":` || got != `{__error__="JSONParserErr", __error_details__="Malformed JSON error", job="app", level="info"}` {
		t.Errorf("unpack of broken line: %q %s", line, got)
	}
}

func TestLabelFilters(t *testing.T) {
	base := labels.FromStrings("job", "app")
	parse := NewLogfmtParser(LogfmtOptions{})
	m := func(mt labels.MatchType, n, v string) Stage {
		return NewStringLabelFilter(labels.MustNewMatcher(mt, n, v))
	}
	line := `status=500 duration=10040ms size=1976KB audio=1.70s ip=192.168.1.7 method=GET`
	cases := []struct {
		name  string
		stage Stage
		keep  bool
		err   string // expected __error_details__, "" for none
	}{
		{"eq", m(labels.MatchEqual, "method", "GET"), true, ""},
		{"neq", m(labels.MatchNotEqual, "method", "GET"), false, ""},
		{"regexp anchored", m(labels.MatchRegexp, "method", "G"), false, ""},
		{"regexp", m(labels.MatchRegexp, "method", "G.*"), true, ""},
		{"missing is empty", m(labels.MatchEqual, "nope", ""), true, ""},
		{"num gt", NewNumericLabelFilter("status", CmpGt, 499), true, ""},
		{"num le", NewNumericLabelFilter("status", CmpLe, 499), false, ""},
		{"num eq", NewNumericLabelFilter("status", CmpEq, 500), true, ""},
		{"num missing", NewNumericLabelFilter("nope", CmpNe, 1), false, ""},
		{"num not numeric", NewNumericLabelFilter("audio", CmpGt, 30), true, `strconv.ParseFloat: parsing "1.70s": invalid syntax`},
		{"duration", NewDurationLabelFilter("duration", CmpGe, 10*time.Second), true, ""},
		{"duration lt", NewDurationLabelFilter("duration", CmpLt, 10*time.Second), false, ""},
		{"duration bad", NewDurationLabelFilter("method", CmpLt, time.Second), true, `time: invalid duration "GET"`},
		{"bytes", NewBytesLabelFilter("size", CmpGt, 1_000_000), true, ""},
		{"bytes eq", NewBytesLabelFilter("size", CmpEq, 1_976_000), true, ""},
		{"bytes bad", NewBytesLabelFilter("method", CmpGt, 1), true, `strconv.ParseFloat: parsing "": invalid syntax`},
		{"ip", NewIPLabelFilter("ip", "192.168.0.0/16", false), true, ""},
		{"ip neg", NewIPLabelFilter("ip", "192.168.0.0/16", true), false, ""},
		{"ip missing", NewIPLabelFilter("nope", "192.168.0.0/16", true), false, ""},
		{"ip bad pattern", NewIPLabelFilter("ip", "nonsense", false), true, `ip: invalid pattern: "nonsense"`},
		{"and", NewAndLabelFilter(m(labels.MatchEqual, "method", "GET"), NewNumericLabelFilter("status", CmpEq, 404)), false, ""},
		{"or", NewOrLabelFilter(m(labels.MatchEqual, "method", "POST"), NewNumericLabelFilter("status", CmpEq, 500)), true, ""},
		{"error does not shield from typed", NewAndLabelFilter(NewNumericLabelFilter("audio", CmpGt, 1), NewNumericLabelFilter("status", CmpLt, 1)), false, ""},
		{"first error kept", NewAndLabelFilter(NewNumericLabelFilter("audio", CmpGt, 1), NewDurationLabelFilter("method", CmpGt, 1)), true, `strconv.ParseFloat: parsing "1.70s": invalid syntax`},
		{"string filters errors", NewAndLabelFilter(NewNumericLabelFilter("audio", CmpGt, 1), m(labels.MatchEqual, ErrorLabel, "")), false, ""},
	}
	for _, tc := range cases {
		_, got, ok := run(t, base, line, parse, tc.stage)
		if ok != tc.keep {
			t.Errorf("%s: kept=%v, want %v (%s)", tc.name, ok, tc.keep, got)
			continue
		}
		if !ok {
			continue
		}
		if tc.err == "" && strings.Contains(got, ErrorLabel) {
			t.Errorf("%s: unexpected error %s", tc.name, got)
		}
		if tc.err != "" && !strings.Contains(got, `__error__="LabelFilterErr"`) {
			t.Errorf("%s: want LabelFilterErr, got %s", tc.name, got)
		}
		if tc.err != "" && !strings.Contains(got, ErrorDetailsLabel+"="+strconv.Quote(tc.err)) {
			t.Errorf("%s: want details %q in %s", tc.name, tc.err, got)
		}
	}
}

func TestDropKeepDecolorize(t *testing.T) {
	base := labels.FromStrings("job", "varlogs")
	j := NewJSONParser()
	line := `{"app": "some-api-service", "level": "info", "method": "GET", "path": "/", "host": "grafana.net", "status": "200"}`
	cases := []struct {
		stage Stage
		want  string
	}{
		{NewDropStage([]string{"level", "path"}, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", "some-api.*")}),
			`{host="grafana.net", job="varlogs", method="GET", status="200"}`},
		{NewDropStage(nil, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "method", "POST")}),
			`{app="some-api-service", host="grafana.net", job="varlogs", level="info", method="GET", path="/", status="200"}`},
		{NewKeepStage([]string{"level"}, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "method", "GET")}),
			`{level="info", method="GET"}`},
		{NewKeepStage([]string{"level"}, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "method", "POST")}),
			`{level="info"}`},
	}
	for _, tc := range cases {
		if _, got, _ := run(t, base, line, j, tc.stage); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
	// keep never drops errors; drop can
	if _, got, _ := run(t, base, "INFO GET / loki.net 200", j, NewKeepStage([]string{"x"}, nil)); !strings.Contains(got, "JSONParserErr") || strings.Contains(got, "job") {
		t.Errorf("keep with error: %s", got)
	}
	if _, got, _ := run(t, base, "INFO GET / loki.net 200", j, NewDropStage([]string{ErrorLabel, ErrorDetailsLabel}, nil)); got != `{job="varlogs"}` {
		t.Errorf("drop __error__: %s", got)
	}
	for in, want := range map[string]string{
		"[\x1b[33mWARNING\x1b[0m] x":   "[WARNING] x",
		"\x1b[1;31mred\x1b[0m plain":   "red plain",
		"\x1b]0;title\x07after":        "after",
		"no colour":                    "no colour",
		"\x1b":                         "\x1b", // no final byte: not a sequence
		"\x1b(Bx":                      "x",
		"a\xc2\x9b31mb":                "ab",
		"\x1b[38;5;196mcolour\x1b[39m": "colour",
	} {
		if got, _, _ := run(t, base, in, NewDecolorizeStage()); got != want {
			t.Errorf("decolorize %q = %q, want %q", in, got, want)
		}
	}
}

func TestFormatters(t *testing.T) {
	base := labels.FromStrings("job", "app", "level", "error")
	lf := func(s string) Stage {
		st, err := NewLineFormatter(s)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	parse := NewLogfmtParser(LogfmtOptions{})
	line := `ts=2024-12-17T05:56:02.887Z level=info msg="tts done" request_id=req-84fc6729 duration=3000 path="/a b"`
	cases := []struct {
		tmpl, want string
	}{
		{`{{.msg}}`, "tts done"},
		{`{{.nope}}`, ""},
		{`{{ __line__ | trunc 30 }}|{{ __timestamp__ | date "15:04:05" }}|{{ .request_id | trimPrefix "req-" }}`, "ts=2024-12-17T05:56:02.887Z le|05:45:42|84fc6729"},
		{`{{.level}} {{.level_extracted}}`, "error info"},
		{`{{ div .duration 1000 }}`, "3"},
		{`{{ .path | replace " " "_" | upper }}`, "/A_B"},
		{`{{ if contains "done" .msg }}yes{{ else }}no{{ end }}`, "yes"},
		{`{{ __timestamp__ | unixEpoch }}`, "1734414342"},
		{`{{ "x" | default "-" }}{{ "" | default "-" }}`, "x-"},
	}
	for _, tc := range cases {
		if got, _, _ := run(t, base, line, parse, lf(tc.tmpl)); got != tc.want {
			t.Errorf("line_format %s = %q, want %q", tc.tmpl, got, tc.want)
		}
	}
	// a failing template keeps the line and sets the error
	got, ls, ok := run(t, base, line, parse, lf(`{{ div 1 0 }}`))
	if !ok || got != line || !strings.Contains(ls, `__error__="TemplateFormatErr"`) || !strings.Contains(ls, "divide by zero") {
		t.Errorf("failing line_format: %q %s", got, ls)
	}
	if _, err := NewLineFormatter("{{ .a "); err == nil {
		t.Error("bad template: want an error")
	}
	if _, err := NewLineFormatter("{{ nosuchfunc }}"); err == nil {
		t.Error("unknown function: want an error")
	}

	lbf := func(fs ...LabelFormat) Stage {
		st, err := NewLabelsFormatter(fs)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	lcases := []struct {
		stage Stage
		want  string
	}{
		{lbf(LabelFormat{Name: "id", Value: "request_id", Rename: true}),
			`{duration="3000", id="req-84fc6729", job="app", level="error", level_extracted="info", msg="tts done", path="/a b", ts="2024-12-17T05:56:02.887Z"}`},
		{lbf(LabelFormat{Name: "level", Value: "{{ .level | upper }}"}, LabelFormat{Name: "x", Value: "{{.msg}}!"}, LabelFormat{Name: "ts", Value: ""}),
			`{duration="3000", job="app", level="ERROR", level_extracted="info", msg="tts done", path="/a b", request_id="req-84fc6729", ts="", x="tts done!"}`},
		{lbf(LabelFormat{Name: "a", Value: "missing", Rename: true}),
			`{duration="3000", job="app", level="error", level_extracted="info", msg="tts done", path="/a b", request_id="req-84fc6729", ts="2024-12-17T05:56:02.887Z"}`},
	}
	for _, tc := range lcases {
		if _, got, _ := run(t, base, line, parse, tc.stage); got != tc.want {
			t.Errorf("label_format:\n got %s\nwant %s", got, tc.want)
		}
	}
	if _, err := NewLabelsFormatter([]LabelFormat{{Name: "a", Value: "b", Rename: true}, {Name: "a", Value: "x"}}); err == nil {
		t.Error("duplicate label_format destination: want an error")
	}
	_, ls, _ = run(t, base, line, parse, lbf(LabelFormat{Name: "bad", Value: "{{ div 1 0 }}"}))
	if !strings.Contains(ls, "TemplateFormatErr") || strings.Contains(ls, "bad=") {
		t.Errorf("failing label_format: %s", ls)
	}
}

func TestTemplateFunctions(t *testing.T) {
	base := labels.FromStrings("job", "app")
	cases := map[string]string{
		`{{ alignLeft 5 "hello world" }}|{{ alignLeft 5 "hi" }}|`:  "hello|hi   |",
		`{{ alignRight 5 "hello world" }}|{{ alignRight 5 "hi" }}`: "world|   hi",
		`{{ "hello" | b64enc }} {{ "aGVsbG8=" | b64dec }}`:         "aGVsbG8= hello",
		`{{ "1.5KiB" | bytes }}`:                                   "1536",
		`{{ "1m30s" | duration }} {{ duration_seconds "250ms" }}`:  "90 0.25",
		`{{ count "a|b" "abab" }} {{ count "o" "foo" }}`:           "4 2",
		`{{ indent 2 "a\nb" }}`:                                    "  a\n  b",
		`{{ nindent 2 "a" }}`:                                      "\n  a",
		`{{ repeat 3 "ab" }}`:                                      "ababab",
		`{{ substr 0 5 "hello world" }}{{ substr 6 11 "hello world" }}{{ substr 6 -1 "hello world" }}`: "helloworldworld",
		`{{ title "hello world" }}`:                                                             "Hello World",
		`{{ trim "  x  " }}{{ trimAll "$" "$5.00$" }}`:                                          "x5.00",
		`{{ trunc -5 "hello world" }} {{ trunc 2 "abc" }}`:                                      "world ab",
		`{{ add 3 2 5 }} {{ sub 5 2 }} {{ mul 5 2 3 }} {{ mod 10 3 }}`:                          "10 3 30 1",
		`{{ addf 3.5 2 5 }} {{ subf 5.5 2 1.5 }} {{ mulf 5.5 2 2.5 }} {{ divf 10 2 4 }}`:        "10.5 2 27.5 1.25",
		`{{ addf 0.1 0.2 }}`:                                                                    "0.3",
		`{{ max 1 2 3 }} {{ min 1 2 3 }} {{ maxf 1 2.5 3 }} {{ minf 1 2.5 3 }}`:                 "3 1 3 1",
		`{{ ceil 123.001 }} {{ floor 123.9999 }}`:                                               "124 123",
		`{{ round 123.555555 3 }} {{ round 123.88571428571 5 .2 }}`:                             "123.556 123.88572",
		`{{ "3" | int }} {{ "3.5" | float64 }}`:                                                 "3 3.5",
		`{{ regexReplaceAll "(a*)bc" "aabcx" "${1}Z" }}`:                                        "aaZx",
		`{{ regexReplaceAllLiteral "(ts=)" "ts=1" "timestamp=" }}`:                              "timestamp=1",
		`{{ "a b&c" | urlencode }} {{ "a+b%26c" | urldecode }}`:                                 "a+b%26c a b&c",
		`{{ ToUpper "a" }}{{ ToLower "B" }}{{ Replace "aaa" "a" "b" 2 }}{{ TrimSpace " c " }}`:  "Abbbac",
		`{{ hasPrefix "he" "hello" }} {{ hasSuffix "lo" "hello" }} {{ contains "ll" "hello" }}`: "true true true",
		`{{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpoch }}`:                        "1635811200",
		`{{ toDate "2006-01-02" "2021-11-02" | unixEpochMillis }}`:                              "1635811200000",
		`{{ date "2006-01-02" (unixToTime "1679577215") }}`:                                     "2023-03-23",
		`{{ unixToTime "1679577215123" | unixEpochNanos }}`:                                     "1679577215123000000",
		`{{ (fromJson "{\"foo\": 55}").foo }}`:                                                  "55",
		`{{ printf "%05d" 42 }}`:                                                                "00042",
		`{{ sha256 "abc" }}`:                                                                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	}
	for tmpl, want := range cases {
		st, err := NewLineFormatter(tmpl)
		if err != nil {
			t.Errorf("%s: %v", tmpl, err)
			continue
		}
		got, ls, _ := run(t, base, "line", st)
		if got != want || strings.Contains(ls, ErrorLabel) {
			t.Errorf("%s = %q (%s), want %q", tmpl, got, ls, want)
		}
	}
}

// Every template function that can grow its input, and the template as a
// whole, stop at MaxTemplateOutput beyond the line's length: the line keeps
// its text and gets a TemplateFormatErr. The sizes asked for here would
// exhaust any machine if they were allocated.
func TestTemplateOutputLimit(t *testing.T) {
	base := labels.FromStrings("job", "app")
	over := []string{
		`{{ repeat 1000000000000 "x" }}`,
		`{{ repeat 4000000000 "xy" }}`,
		`{{ repeat 9223372036854775807 "xy" }}`,
		`{{ repeat 200000 "xy" }}`,
		`{{ repeat 200000 "x" | repeat 200000 }}`,
		`{{ indent 1000000000000 "x" }}`,
		`{{ nindent 1000000 "a\nb\nc" }}`,
		`{{ repeat 1000 "\n" | indent 1000 }}`,
		`{{ alignLeft 1000000000000 "x" }}`,
		`{{ alignRight 1000000000000 "x" }}`,
		`{{ printf "%1000000000000d" 1 }}`,
		`{{ printf "%.1000000000f" 1.5 }}`,
		`{{ printf "%*d" 1000000000 1 }}`,
		`{{ replace "" "xxxxxxxxxx" (repeat 100000 "a") }}`,
		`{{ Replace (repeat 100000 "a") "a" "xxxxxxxxxx" -1 }}`,
		`{{ regexReplaceAll "" (repeat 100000 "a") "xxxxxxxxxx" }}`,
		`{{ regexReplaceAll "(a)" (repeat 100000 "a") "$1$1$1$1" }}`,
		`{{ regexReplaceAllLiteral "a" (repeat 100000 "a") "xxxxxxxxxx" }}`,
		`{{ repeat 100000 "<" | html }}`,
		`{{ repeat 100000 "<" | js }}`,
		`{{ repeat 100000 "<" | urlquery }}`,
		`{{ repeat 100000 "<" | urlencode }}`,
		`{{ repeat 250000 "a" | b64enc }}`,
		`{{ $x := repeat 200000 "a" }}{{ print $x $x }}`,
		`{{ $x := repeat 200000 "a" }}{{ println $x $x }}`,
		`{{ $x := repeat 200000 "a" }}{{ $x }}{{ $x }}`,
		`{{ $x := repeat 200000 "a" }}{{ range 3 }}{{ $x }}{{ end }}`,
		`{{ range 1000000000000 }}{{ end }}`,
		`{{ range $i := 100000 }}{{ range 100000 }}{{ end }}{{ end }}`,
		`{{ define "a" }}{{ template "b" }}{{ template "b" }}{{ end }}{{ define "b" }}{{ template "c" }}{{ template "c" }}{{ end }}{{ define "c" }}{{ range 1000 }}{{ end }}{{ range 1000 }}{{ end }}{{ end }}{{ range 1000 }}{{ template "a" }}{{ end }}`,
	}
	for _, tmpl := range over {
		st, err := NewLineFormatter(tmpl)
		if err != nil {
			t.Errorf("%s: %v", tmpl, err)
			continue
		}
		got, ls, _ := run(t, base, "line", st)
		if got != "line" || !strings.Contains(ls, `__error__="TemplateFormatErr"`) {
			t.Errorf("%s = %d bytes (%.200s), want the line kept with TemplateFormatErr", tmpl, len(got), ls)
		}
	}
	// At the limit, and with the line's own length on top, templates work.
	under := map[string]int{
		`{{ repeat 262144 "x" }}`:                          MaxTemplateOutput,
		`{{ repeat 131072 "xy" | trunc 10 }}`:              10,
		`{{ __line__ }}{{ repeat 262144 "x" }}`:            MaxTemplateOutput + 4,
		`{{ printf "%262100d" 1 }}`:                        262100,
		`{{ range 60000 }}{{ end }}x`:                      1,
		`{{ regexReplaceAll "a" (repeat 1000 "a") "bb" }}`: 2000,
		`{{ alignLeft 262144 "x" }}`:                       MaxTemplateOutput,
	}
	for tmpl, n := range under {
		st, err := NewLineFormatter(tmpl)
		if err != nil {
			t.Errorf("%s: %v", tmpl, err)
			continue
		}
		got, ls, _ := run(t, base, "line", st)
		if len(got) != n || strings.Contains(ls, ErrorLabel) {
			t.Errorf("%s = %d bytes (%s), want %d", tmpl, len(got), ls, n)
		}
	}
	// label_format is bounded the same way.
	lf, err := NewLabelsFormatter([]LabelFormat{{Name: "x", Value: `{{ repeat 1000000000000 "x" }}`}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ls, _ := run(t, base, "line", lf); !strings.Contains(ls, "TemplateFormatErr") || strings.Contains(ls, "x=") {
		t.Errorf("label_format over the limit: %.200s", ls)
	}
}

// QueriedBytes is a byte literal as Loki's frontend prints it: decimal
// units, tenths below 10, whole numbers (half to even) above.
func TestQueriedBytes(t *testing.T) {
	cases := []struct{ in, want uint64 }{
		{0, 0}, {9, 9}, {10, 10}, {999, 999},
		{1000, 1000}, {1024, 1000}, {1536, 1500}, {2000, 2000},
		{1_976_000, 2_000_000},
		{22 << 30, 24_000_000_000}, // 22GiB
		{31_450_000, 32_000_000},   // 31.45MB: 31.5 at tenths, printed 32
		{30_500_000, 30_000_000},   // 30.5 prints as 30 (half to even)
		{999_999, 1_000_000},       // "1000 kB"
		{math.MaxUint64, 18_000_000_000_000_000_000},
	}
	for _, c := range cases {
		if got := QueriedBytes(c.in); got != c.want {
			t.Errorf("QueriedBytes(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
