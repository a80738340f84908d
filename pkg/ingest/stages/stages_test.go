package stages

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/labels"
)

var (
	readTime  = time.Date(2024, 12, 17, 12, 0, 0, 0, time.UTC)
	fileLabel = labels.FromStrings("job", "cosyvoice3", "filename", "/logs/a.log")
)

// parseStages reads pipeline_stages written in YAML flow style.
func parseStages(t testing.TB, flow string) []config.Stage {
	t.Helper()
	if flow == "" {
		return nil
	}
	doc := fmt.Sprintf("scrape_configs:\n- job_name: t\n  static_configs: [{labels: {__path__: /x}}]\n  pipeline_stages: %s\n", flow)
	s, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("stages %s: %v", flow, err)
	}
	return s.ScrapeConfigs[0].PipelineStages
}

// runLines feeds lines (offsets counted as in a file) and flushes at the end.
func runLines(t testing.TB, p *Pipeline, lines ...string) []Entry {
	t.Helper()
	var out []Entry
	emit := func(e Entry) { out = append(out, e) }
	var off int64
	for _, l := range lines {
		p.Process(Entry{Line: l, Ts: readTime, Offset: off}, emit)
		off += int64(len(l)) + 1
	}
	p.Flush(time.Time{}, emit)
	return out
}

func newPipeline(t testing.TB, flow string) *Pipeline {
	t.Helper()
	p, err := New(parseStages(t, flow), Options{Labels: fileLabel, Location: time.UTC, Now: func() time.Time { return readTime }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// show prints an entry compactly for comparisons.
func show(e Entry) string {
	ts := "read"
	if !e.Ts.Equal(readTime) {
		ts = e.Ts.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%d %s %s %q", e.Offset, ts, e.Labels.Drop("job", "filename"), e.Line)
}

func TestStages(t *testing.T) {
	cases := []struct {
		name   string
		stages string
		lines  []string
		want   []string
	}{
		{"defaults", "", []string{"[INFO] 2024-12-17T00:00:08Z hello", "INFO:     127.0.0.1:1 - \"GET /health HTTP/1.1\" 200 OK", "plain"},
			[]string{`0 2024-12-17T00:00:08Z {level="info"} "[INFO] 2024-12-17T00:00:08Z hello"`, `34 read {level="info"} "INFO:     127.0.0.1:1 - \"GET /health HTTP/1.1\" 200 OK"`, `88 read {level="unknown"} "plain"`}},
		{"crlf", "", []string{"[WARNING] 2024-12-17T00:00:08Z x\r"}, []string{`0 2024-12-17T00:00:08Z {level="warn"} "[WARNING] 2024-12-17T00:00:08Z x"`}},
		{"regex labels timestamp", `[{regex: {expression: '^(?P<ts>\S+) (?P<lvl>\w+) (?P<user>\w+)'}}, {labels: {severity: lvl, user: }}, {timestamp: {source: ts, format: RFC3339}}]`,
			[]string{"2024-12-17T01:02:03Z WARN bob did x"}, []string{`0 2024-12-17T01:02:03Z {level="warn", severity="WARN", user="bob"} "2024-12-17T01:02:03Z WARN bob did x"`}},
		{"logfmt mapping", `[{logfmt: {mapping: {lvl: level, dur: duration}}}, {labels: {lvl: }}]`,
			[]string{`ts=x level=error msg="tts failed" duration=879ms`}, []string{`0 read {level="error", lvl="error"} "ts=x level=error msg=\"tts failed\" duration=879ms"`}},
		{"logfmt all keys and output", `[{logfmt: {mapping: {}}}, {output: {source: msg}}]`,
			[]string{`level=info msg="tts \"done\"" x`}, []string{`0 read {level="unknown"} "tts \"done\""`}},
		{"json paths", `[{json: {expressions: {lvl: level, depth: queue.depth, first: 'items[0].name', last: 'items[-1].name', obj: gpu, dotted: '"a.b"'}}}, {labels: {lvl: , depth: , first: , last: , obj: , dotted: }}]`,
			[]string{`{"level":"warning","queue":{"depth":13},"items":[{"name":"x"},{"name":"y"}],"gpu":{"util":42},"a.b":true}`},
			[]string{`0 read {depth="13", dotted="true", first="x", last="y", level="warn", lvl="warning", obj="{\"util\":42}"} "{\"level\":\"warning\",\"queue\":{\"depth\":13},\"items\":[{\"name\":\"x\"},{\"name\":\"y\"}],\"gpu\":{\"util\":42},\"a.b\":true}"`}},
		{"json malformed kept", `[{json: {expressions: {a: a}}}]`, []string{`{"a":`}, []string{`0 read {level="unknown"} "{\"a\":"`}},
		{"json malformed dropped", `[{json: {expressions: {a: a}, drop_malformed: true}}]`, []string{`{"a":`, `{"a":1}`}, []string{`6 read {level="unknown"} "{\"a\":1}"`}},
		{"json source", `[{json: {expressions: {p: payload}}}, {json: {expressions: {n: name}, source: p}}, {labels: {n: }}]`,
			[]string{`{"payload":{"name":"inner"}}`}, []string{`0 read {level="unknown", n="inner"} "{\"payload\":{\"name\":\"inner\"}}"`}},
		{"static labeldrop labelallow", `[{static_labels: {env: prod, tier: gpu}}, {labeldrop: [tier]}]`, []string{"x"}, []string{`0 read {env="prod", level="unknown"} "x"`}},
		{"labelallow", `[{static_labels: {env: prod}}, {labelallow: [job]}]`, []string{"[ERROR] x"}, []string{`0 read {level="error"} "[ERROR] x"`}},
		{"drop value", `[{regex: {expression: '^\[(?P<lvl>\w+)\]'}}, {drop: {source: lvl, value: DEBUG}}]`, []string{"[DEBUG] a", "[INFO] b"}, []string{`10 read {level="info"} "[INFO] b"`}},
		{"drop expression on line", `[{drop: {expression: 'GET /health'}}]`, []string{`INFO: "GET /health"`, `INFO: "POST /x"`}, []string{`20 read {level="info"} "INFO: \"POST /x\""`}},
		{"drop longer_than", `[{drop: {longer_than: 8}}]`, []string{"123456789", "12345678"}, []string{`10 read {level="unknown"} "12345678"`}},
		{"drop older_than", `[{drop: {older_than: 1h}}]`, []string{"2024-12-17T10:00:00Z old", "2024-12-17T11:30:00Z new"},
			[]string{`25 2024-12-17T11:30:00Z {level="unknown"} "2024-12-17T11:30:00Z new"`}},
		{"drop source exists", `[{logfmt: {mapping: {secret: }}}, {drop: {source: secret}}]`, []string{"a=1", "secret=x"}, []string{`0 read {level="unknown"} "a=1"`}},
		{"drop multi source", `[{logfmt: {mapping: {a: , b: }}}, {drop: {source: [a, b], separator: "-", value: "1-2"}}]`, []string{"a=1 b=2", "a=1 b=3"}, []string{`8 read {level="unknown"} "a=1 b=3"`}},
		{"match keep", `[{match: {selector: '{job="cosyvoice3"} |= "CUDA"', stages: [{static_labels: {oom: "true"}}]}}]`, []string{"[ERROR] CUDA out of memory", "[ERROR] other"},
			[]string{`0 read {level="error", oom="true"} "[ERROR] CUDA out of memory"`, `27 read {level="error"} "[ERROR] other"`}},
		{"match drop", `[{match: {selector: '{job=~"cosy.*"} !~ "ERROR|WARN"', action: drop}}]`, []string{"[INFO] a", "[ERROR] b"}, []string{`9 read {level="error"} "[ERROR] b"`}},
		{"match miss", `[{match: {selector: '{job="other"}', action: drop}}]`, []string{"a"}, []string{`0 read {level="unknown"} "a"`}},
		{"template", `[{regex: {expression: '(?P<lvl>\w+):'}}, {template: {source: lvl, template: '{{ ToLower .Value }}-{{ .lvl }}'}}, {labels: {lvl: }}]`,
			[]string{"WARN: x"}, []string{`0 read {level="warn", lvl="warn-WARN"} "WARN: x"`}},
		{"template hash and entry", `[{regex: {expression: 'user=(?P<user>\w+)'}}, {template: {source: user, template: '{{ Sha2Hash .Value "salt" | printf "%.8s" }}'}}, {template: {source: first, template: '{{ .Entry | TrimSpace | printf "%.3s" }}'}}, {labels: {user: , first: }}]`,
			[]string{" user=bob"}, []string{`0 read {first="use", level="unknown", user="` + sha2("saltbob")[:8] + `"} " user=bob"`}},
		{"replace", `[{replace: {expression: 'password=(\S+)', replace: '****'}}]`, []string{"login password=hunter2 ok"}, []string{`0 read {level="unknown"} "login password=**** ok"`}},
		{"replace whole match", `[{replace: {expression: '\d+', replace: 'N'}}]`, []string{"a1b22"}, []string{`0 read {level="unknown"} "aNbN"`}},
		{"timestamp formats", `[{regex: {expression: '^(?P<ts>\S+)'}}, {timestamp: {source: ts, format: UnixMs, fallback_formats: ['2006-01-02T15:04:05']}}]`,
			[]string{"1734393607123 a", "2024-12-17T01:02:03 b"}, []string{`0 2024-12-17T00:00:07.123Z {level="unknown"} "1734393607123 a"`, `16 2024-12-17T01:02:03Z {level="unknown"} "2024-12-17T01:02:03 b"`}},
		{"timestamp location", `[{regex: {expression: '^(?P<ts>.{19})'}}, {timestamp: {source: ts, format: '2006-01-02 15:04:05', location: Asia/Shanghai}}]`,
			[]string{"2024-12-17 08:00:00 x"}, []string{`0 2024-12-17T00:00:00Z {level="unknown"} "2024-12-17 08:00:00 x"`}},
		{"timestamp fudge", `[{regex: {expression: '^(?P<ts>\S+)'}}, {timestamp: {source: ts, format: RFC3339}}]`,
			[]string{"2024-12-17T01:00:00Z a", "garbage b"}, []string{`0 2024-12-17T01:00:00Z {level="unknown"} "2024-12-17T01:00:00Z a"`, `23 2024-12-17T01:00:00.000000001Z {level="unknown"} "garbage b"`}},
		{"timestamp skip", `[{regex: {expression: '^(?P<ts>\S+)'}}, {timestamp: {source: ts, format: RFC3339, action_on_failure: skip}}]`,
			[]string{"2024-12-17T01:00:00Z a", "garbage 2024-12-17T05:00:00Z"}, []string{`0 2024-12-17T01:00:00Z {level="unknown"} "2024-12-17T01:00:00Z a"`, `23 read {level="unknown"} "garbage 2024-12-17T05:00:00Z"`}},
		{"timestamp unix float", `[{regex: {expression: '^(?P<ts>\S+)'}}, {timestamp: {source: ts, format: Unix}}]`,
			[]string{"1734393607.5 a"}, []string{`0 2024-12-17T00:00:07.5Z {level="unknown"} "1734393607.5 a"`}},
		{"multiline firstline ansi", `[{multiline: {firstline: '^\[\w+\]', max_lines: 3}}]`,
			[]string{"orphan", "\x1b[31m[ERROR]\x1b[0m a", "  b", "  c", "  d", "[INFO] e"},
			[]string{`0 read {level="unknown"} "orphan"`, `7 read {level="error"} "\x1b[31m[ERROR]\x1b[0m a\n  b\n  c"`, `34 read {level="unknown"} "  d"`, `38 read {level="info"} "[INFO] e"`}},
		{"stages after multiline see the joined entry", `[{multiline: {firstline: '^\d'}}, {regex: {expression: '(?s)^\d (?P<rest>.*)$'}}, {output: {source: rest}}]`,
			[]string{"1 a", "b", "2 c"}, []string{`0 read {level="unknown"} "a\nb"`, `6 read {level="unknown"} "c"`}},
		{"decolorize", `[{decolorize: }]`, []string{"[\x1b[31mERROR\x1b[0m] x"}, []string{`0 read {level="error"} "[ERROR] x"`}},
		{"label value utf8 and length", `[{regex: {expression: '^(?P<a>\S+) (?P<b>\S+)'}}, {labels: {a: , b: }}]`, []string{"\xff\xfeok " + strings.Repeat("x", 3000)},
			[]string{`0 read {a="` + "\ufffd" + `ok", b="` + strings.Repeat("x", 2048) + `", level="unknown"} "\xff\xfeok ` + strings.Repeat("x", 3000) + `"`}},
		{"label value with __ dropped", `[{static_labels: {__hidden: x, empty: ""}}]`, []string{"a"}, []string{`0 read {level="unknown"} "a"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := runLines(t, newPipeline(t, c.stages), c.lines...)
			var shown []string
			for _, e := range got {
				shown = append(shown, show(e))
			}
			if strings.Join(shown, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(shown, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func sha2(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestTracebacks(t *testing.T) {
	lines := []string{
		"[ERROR] 2024-12-17T00:01:32Z Inference failed: CUDA out of memory seq=1",
		"Traceback (most recent call last):",
		`  File "/root/CosyVoice/cosyvoice/cli/model.py", line 210, in tts`,
		"    tts_mel, _ = self.flow.inference(token=tts_speech_token)",
		"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.45 GiB",
		"[INFO] 2024-12-17T00:01:40Z next seq=2",
		"2024-12-17 00:01:41,000 - app - ERROR - chained",
		"Traceback (most recent call last):",
		`  File "a.py", line 1, in <module>`,
		"KeyError: 'x'",
		"",
		"During handling of the above exception, another exception occurred:",
		"",
		"Traceback (most recent call last):",
		`  File "a.py", line 3, in <module>`,
		"ValueError",
		"",
		"[INFO] after a blank line",
		"Traceback (most recent call last):",
		`  File "b.py", line 9, in f`,
		"INFO:     127.0.0.1:1 - a traceback cut short",
		"2024-12-17 00:01:42.000 | ERROR    | app:run:9 - loguru with backtrace",
		"Traceback (most recent call last):",
		"",
		`  File "test.py", line 8, in <module>`,
		"    func()",
		"    └ <function func at 0x7f>",
		"",
		`> File "test.py", line 5, in func`,
		"    1 / 0",
		"",
		"ZeroDivisionError: division by zero",
		"[ERROR] 2024-12-17T00:01:43Z exception group",
		"  + Exception Group Traceback (most recent call last):",
		`  |   File "<stdin>", line 1, in <module>`,
		"  | ExceptionGroup: msg (1 sub-exception)",
		"  +-+---------------- 1 ----------------",
		"    | ValueError: x",
		"    +------------------------------------",
		"[INFO] done",
	}
	got := runLines(t, newPipeline(t, ""), lines...)
	want := []struct {
		lines int
		level string
	}{{5, "error"}, {1, "info"}, {10, "error"}, {1, "unknown"}, {3, "info"}, {1, "info"}, {11, "error"}, {7, "error"}, {1, "info"}}
	if len(got) != len(want) {
		for _, e := range got {
			t.Log(show(e))
		}
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if n := strings.Count(got[i].Line, "\n") + 1; n != w.lines || got[i].Labels.Get("level") != w.level {
			t.Errorf("entry %d: %d lines, level %s; want %d, %s: %q", i, n, got[i].Labels.Get("level"), w.lines, w.level, got[i].Line)
		}
	}
	if !got[0].Ts.Equal(time.Date(2024, 12, 17, 0, 1, 32, 0, time.UTC)) || got[0].Offset != 0 {
		t.Errorf("joined entry keeps the first line's time and offset: %s %d", got[0].Ts, got[0].Offset)
	}
}

func TestPendingAndFlush(t *testing.T) {
	p := newPipeline(t, "")
	var out []Entry
	emit := func(e Entry) { out = append(out, e) }
	t0 := time.Date(2024, 12, 17, 0, 0, 0, 0, time.UTC)
	p.Process(Entry{Line: "[INFO] a", Ts: t0, Offset: 100}, emit)
	if off, ok := p.Pending(); !ok || off != 100 || len(out) != 0 {
		t.Fatalf("a line is held for a possible traceback: pending %d %v, out %d", off, ok, len(out))
	}
	if at, ok := p.NextFlush(); !ok || !at.Equal(t0.Add(DefaultTracebackWait)) {
		t.Fatalf("NextFlush %s %v", at, ok)
	}
	p.Flush(t0.Add(DefaultTracebackWait/2), emit)
	if len(out) != 0 {
		t.Fatal("flushed before max wait")
	}
	p.Flush(t0.Add(DefaultTracebackWait), emit)
	if len(out) != 1 {
		t.Fatal("not flushed after max wait")
	}
	if _, ok := p.Pending(); ok {
		t.Fatal("still pending after flush")
	}
	if _, ok := p.NextFlush(); ok {
		t.Fatal("NextFlush with nothing held")
	}
	// without a read time, the clock starts at the first flush that sees it
	p.Process(Entry{Line: "[INFO] b", Offset: 200}, emit)
	if at, ok := p.NextFlush(); !ok || !at.IsZero() {
		t.Fatalf("NextFlush without read time: %s %v", at, ok)
	}
	p.Flush(t0.Add(time.Hour), emit)
	if len(out) != 1 {
		t.Fatal("an entry without read time flushed at first sight")
	}
	p.Flush(t0.Add(time.Hour+DefaultTracebackWait), emit)
	if len(out) != 2 {
		t.Fatal("an entry without read time never flushed")
	}
	// configured multiline uses its max_wait_time
	m := newPipeline(t, `[{multiline: {firstline: '^\[', max_wait_time: 10s}}]`)
	m.Process(Entry{Line: "[INFO] c", Ts: t0, Offset: 5}, emit)
	m.Process(Entry{Line: " d", Ts: t0.Add(5 * time.Second), Offset: 14}, emit)
	m.Flush(t0.Add(12*time.Second), emit)
	if len(out) != 2 {
		t.Fatal("flushed before max_wait_time since the last line")
	}
	if off, ok := m.Pending(); !ok || off != 5 {
		t.Fatalf("pending %d %v", off, ok)
	}
	m.Flush(t0.Add(15*time.Second), emit)
	if len(out) != 3 || out[2].Line != "[INFO] c\n d" {
		t.Fatalf("multiline flush: %d %q", len(out), out[len(out)-1].Line)
	}
}

func TestLabelValueCap(t *testing.T) {
	p, err := New(parseStages(t, `[{regex: {expression: 'id=(?P<id>\d+)'}}, {labels: {id: }}]`), Options{Labels: fileLabel, MaxLabelValues: 10})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := 0; i < 25; i++ {
		lines = append(lines, fmt.Sprintf("id=%d", i%20))
	}
	got := runLines(t, p, lines...)
	with := 0
	for _, e := range got {
		if e.Labels.Has("id") {
			with++
		}
	}
	if len(got) != 25 || with != 15 { // 0..9 and the repeats 0..4
		t.Errorf("%d entries, %d with the label; want 25, 15", len(got), with)
	}
	st := p.Stats()
	if st.LabelValuesCapped != 10 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], `"id"`) {
		t.Errorf("stats %+v", st)
	}
}

func TestStats(t *testing.T) {
	p := newPipeline(t, `[{regex: {expression: '^(?P<ts>\S+) (?P<lvl>\w+)'}}, {timestamp: {source: ts, format: RFC3339}}, {drop: {source: lvl, value: DEBUG, drop_counter_reason: noisy}}]`)
	runLines(t, p, "2024-12-17T00:00:00Z INFO a", "bad INFO b", "2024-12-17T00:00:00Z DEBUG c")
	st := p.Stats()
	if st.Lines != 3 || st.Entries != 2 || st.Dropped != 1 || st.DroppedByReason["noisy"] != 1 || st.TimestampFailures != 1 {
		t.Errorf("stats %+v", st)
	}
	var sum Stats
	sum.Add(st)
	sum.Add(st)
	if sum.Entries != 4 || sum.DroppedByReason["noisy"] != 2 || len(sum.Warnings) != len(st.Warnings) {
		t.Errorf("sum %+v", sum)
	}
	d := newPipeline(t, "")
	runLines(t, d, "2024-99-17T00:00:00Z malformed", "no time")
	if st := d.Stats(); st.TimestampFailures != 1 || st.NoTimestamp != 2 {
		t.Errorf("default detection stats %+v", st)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		stages []config.Stage
		want   string
	}{
		{[]config.Stage{{}}, "empty stage"},
		{[]config.Stage{{Multiline: &config.MultilineStage{FirstLine: "a"}}, {Multiline: &config.MultilineStage{FirstLine: "b"}}}, "only one multiline"},
		{[]config.Stage{{Regex: &config.RegexStage{Expression: "("}}}, "pipeline_stages[0].regex.expression"},
		{[]config.Stage{{Match: &config.MatchStage{Selector: "{a=\"b\"}", Stages: []config.Stage{{Multiline: &config.MultilineStage{FirstLine: "x"}}}}}}, "not allowed inside match"},
		{[]config.Stage{{Match: &config.MatchStage{Selector: "nope"}}}, "selector"},
		{[]config.Stage{{JSON: &config.JSONStage{Expressions: map[string]string{"a": "a[*]"}}}}, "expressions.a"},
		{[]config.Stage{{Timestamp: &config.TimestampStage{Source: "a", Format: "RFC3339", Location: "Nowhere/City"}}}, "location"},
		{[]config.Stage{{Template: &config.TemplateStage{Source: "a", Template: "{{"}}}, "template"},
	}
	for _, c := range cases {
		_, err := New(c.stages, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want an error about %q", c.stages, err, c.want)
		}
	}
}

func TestBaseLevelLabelKept(t *testing.T) {
	p, err := New(nil, Options{Labels: labels.FromStrings("job", "x", "level", "audit")})
	if err != nil {
		t.Fatal(err)
	}
	got := runLines(t, p, "[ERROR] x")
	if got[0].Labels.Get("level") != "audit" {
		t.Errorf("a configured level label was overridden: %s", got[0].Labels)
	}
}

// Entries with equal labels share one interned set, whose values are copies
// (a value cut from a line must not keep the whole line in memory).
func TestLabelsInterned(t *testing.T) {
	p := newPipeline(t, `[{regex: {expression: 'user=(?P<user>\w+)'}}, {labels: {user: }}]`)
	got := runLines(t, p, "[INFO] user=bob a", "[INFO] user=bob b", "[INFO] user=amy c")
	if len(got) != 3 || got[0].Labels.Get("user") != "bob" || got[2].Labels.Get("user") != "amy" {
		t.Fatalf("%v", got)
	}
	if &got[0].Labels[0] != &got[1].Labels[0] {
		t.Error("equal label sets are not shared")
	}
	line := got[0].Line
	v := got[0].Labels.Get("user")
	if start, end := uintptr(unsafe.Pointer(unsafe.StringData(line))), uintptr(unsafe.Pointer(unsafe.StringData(v))); end >= start && end < start+uintptr(len(line)) {
		t.Error("a label value points into its line")
	}
}

// Stats may be read by a health check while the pipeline runs (go test -race).
func TestStatsConcurrent(t *testing.T) {
	p := newPipeline(t, `[{regex: {expression: 'id=(?P<id>\d+)'}}, {labels: {id: }}, {drop: {source: id, value: "3"}}]`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			_ = p.Stats()
		}
	}()
	var lines []string
	for i := 0; i < 500; i++ {
		lines = append(lines, fmt.Sprintf("[INFO] id=%d", i%7))
	}
	runLines(t, p, lines...)
	<-done
	if st := p.Stats(); st.Lines != 500 || st.Dropped != 71 {
		t.Errorf("stats %+v", st)
	}
}
