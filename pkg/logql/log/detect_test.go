package log

import (
	"strings"
	"testing"
	"time"
)

func TestDetectLevel(t *testing.T) {
	cases := []struct {
		line string
		want Level
	}{
		{"[INFO] 2024-12-17T00:00:08Z Audio sample received", LevelInfo},
		{"[WARNING] 2024-12-17T00:00:03Z Sample rate", LevelWarn},
		{"[CRITICAL] Worker process died", LevelCritical},
		{"[\x1b[32mDEBUG\x1b[0m] 2026-11-23T20:36:51Z tokenizer", LevelDebug},
		{"\x1b[31m[ERROR]\x1b[0m boom", LevelError},
		{"INFO:     127.0.0.1:59044 - \"POST /inference_instruct HTTP/1.1\" 200 OK", LevelInfo},
		{"ERROR:    Exception in ASGI application", LevelError},
		{"\x1b[32mINFO\x1b[0m:     Uvicorn running on http://0.0.0.0:50000", LevelInfo},
		{"2024-12-17 00:00:07 INFO Generating audio: text_len=126, seed=12963,", LevelInfo},
		{"2024-12-17 00:00:07,123 WARNING something", LevelWarn},
		{"2024-12-17 14:30:52,123 - cosyvoice.cli.model - INFO - loading", LevelInfo},
		{"2024-12-17 14:30:52,123 - root - ERROR - failed", LevelError},
		{"2024-12-17 14:30:52.123 | INFO     | cosyvoice.cli:inference:42 - done", LevelInfo},
		{"2024-12-17 14:30:52.123 | \x1b[1mWARNING\x1b[0m  | mod:fn:42 - slow", LevelWarn},
		{"2024-12-17T14:30:52Z [ERROR] x", LevelError},
		{"[2024-12-17 14:30:52] ERROR something", LevelError},
		{"ts=2024-12-17T00:00:09.061Z level=info msg=\"tts done\"", LevelInfo},
		{"ts=2024-12-17T00:00:09.061Z level=warning msg=x", LevelWarn},
		{"ts=x level=\"error\" msg=x", LevelError},
		{"time=x lvl=dbg msg=x", LevelDebug},
		{`{"ts":"2024-12-17T00:00:55Z","level":"error","event":"request_done"}`, LevelError},
		{`{"msg":"x", "level": "Warning"}`, LevelWarn},
		{`{"severity":"CRITICAL","msg":"x"}`, LevelCritical},
		{"FATAL: could not start", LevelCritical},
		{"CRITICAL run.sh: exited", LevelCritical},
		{"[SYSTEM] Starting CosyVoice3 v0.3 @ commit ab678aa", LevelUnknown},
		{"[SYSTEM] CUDA device 0: NVIDIA GeForce RTX 4090", LevelUnknown},
		{"Traceback (most recent call last):", LevelUnknown},
		{"no level in this error message", LevelUnknown},
		{"an Error happened but not as a level", LevelUnknown},
		{"", LevelUnknown},
		{"[", LevelUnknown},
		{"\x1b[", LevelUnknown},
		{"level=", LevelUnknown},
		{"sublevel=error", LevelUnknown},
		{"trace: TRACE enabled", LevelTrace},
		{"\xff\xfe[ERROR] invalid utf8 before", LevelError}, // found by the upper-case word scan
		{"[ERROR] \xff\xfe invalid utf8 after", LevelError},
		{"[INFO] crlf line\r", LevelInfo},
		{"E1217 glog style is not detected", LevelUnknown},
		{"  INFO indented", LevelInfo},
		{"Error connecting to the database", LevelUnknown},
		{"error: cannot open file", LevelError},
		{"Warning: deprecated", LevelWarn},
		{"2024-12-17 14:30:52 alert sent to the user", LevelUnknown},
		{"2024-12-17 14:30:52 ALERT sent", LevelCritical},
		{"2024-12-17 14:30:52 warning disk almost full", LevelWarn},
		{"2024-12-17 14:30:52 Info started", LevelInfo},
		{"[InFo] mixed case is not a level", LevelUnknown},
	}
	for _, c := range cases {
		if got := DetectLevel(c.line); got != c.want {
			t.Errorf("DetectLevel(%q) = %s, want %s", c.line, got, c.want)
		}
	}
}

func TestDetectTime(t *testing.T) {
	sh := time.FixedZone("", 8*3600)
	ref := time.Date(2024, 12, 20, 0, 0, 0, 0, time.UTC)
	u := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		line      string
		want      time.Time
		found     bool
		malformed bool
	}{
		{"2024-12-17T14:30:52Z x", u("2024-12-17T14:30:52Z"), true, false},
		{"2024-12-17T14:30:52.123456789Z x", u("2024-12-17T14:30:52.123456789Z"), true, false},
		{"2024-12-17T14:30:52,5+08:00 x", u("2024-12-17T14:30:52.5+08:00"), true, false},
		{"2024-12-17T14:30:52-0530 x", u("2024-12-17T14:30:52-05:30"), true, false},
		{"2024-12-17 14:30:52,123 - name - INFO - m", time.Date(2024, 12, 17, 14, 30, 52, 123e6, sh), true, false},
		{"2024-12-17 14:30:52.123 | INFO | m", time.Date(2024, 12, 17, 14, 30, 52, 123e6, sh), true, false},
		{"2024-12-17 14:30:52 UTC x", u("2024-12-17T14:30:52Z"), true, false},
		{"2024-12-17 14:30:52.123 +0800 CST x", u("2024-12-17T14:30:52.123+08:00"), true, false},
		{"2024-12-17 14:30:52 -1 x", time.Date(2024, 12, 17, 14, 30, 52, 0, sh), true, false},
		{"2024/12/17 14:30:52 x", time.Date(2024, 12, 17, 14, 30, 52, 0, sh), true, false},
		{"[INFO] 2024-12-17T00:00:08Z Audio", u("2024-12-17T00:00:08Z"), true, false},
		{"[\x1b[32mINFO\x1b[0m] 2024-12-17T00:00:08Z Audio", u("2024-12-17T00:00:08Z"), true, false},
		{"[2024-12-17 14:30:52] ERROR x", time.Date(2024, 12, 17, 14, 30, 52, 0, sh), true, false},
		{"\x1b[2m2024-12-17T14:30:52Z\x1b[0m x", u("2024-12-17T14:30:52Z"), true, false},
		{"ts=2024-12-17T00:00:09.061Z level=info", u("2024-12-17T00:00:09.061Z"), true, false},
		{`time="2024-12-17T00:00:09Z" level=info`, u("2024-12-17T00:00:09Z"), true, false},
		{`{"ts":"2024-12-17T00:00:55.734175678Z","level":"error"}`, u("2024-12-17T00:00:55.734175678Z"), true, false},
		{`{"level":"info","time": "2024-12-17T00:00:55Z"}`, u("2024-12-17T00:00:55Z"), true, false},
		{`{"ts":1734393655,"level":"error"}`, u("2024-12-17T00:00:55Z"), true, false},
		{"Dec 17 14:30:52 host sshd[1]: x", time.Date(2024, 12, 17, 14, 30, 52, 0, sh), true, false},
		{"Dec  7 14:30:52 host x", time.Date(2024, 12, 7, 14, 30, 52, 0, sh), true, false},
		{"Dec 27 14:30:52 host x", time.Date(2023, 12, 27, 14, 30, 52, 0, sh), true, false}, // a week after ref: last year
		{"1734393607 x", u("2024-12-17T00:00:07Z"), true, false},
		{"1734393607.25 x", u("2024-12-17T00:00:07.25Z"), true, false},
		{"1734393607123 x", u("2024-12-17T00:00:07.123Z"), true, false},
		{"1734393607123456 x", u("2024-12-17T00:00:07.123456Z"), true, false},
		{"1734393607123456789 x", u("2024-12-17T00:00:07.123456789Z"), true, false},
		{"2024-12-17T14:30:52Z\r", u("2024-12-17T14:30:52Z"), true, false},
		{"2024-13-17T14:30:52Z x", time.Time{}, false, true},
		{"2024-02-30 14:30:52 x", time.Time{}, false, true},
		{"2024-12-17 25:30:52 x", time.Time{}, false, true},
		{"2024-12-17T14:30:52+99:00 x", time.Time{}, false, true},
		{"2024-12-17 x", time.Time{}, false, false},
		{"12345 not an epoch", time.Time{}, false, false},
		{"17343936070 eleven digits", time.Time{}, false, false},
		{"1734393607abc", time.Time{}, false, false},
		{"INFO:     127.0.0.1:1 - \"GET /health\"", time.Time{}, false, false},
		{"[SYSTEM] Starting", time.Time{}, false, false},
		{"", time.Time{}, false, false},
		{"\xff\xfe\xfd", time.Time{}, false, false},
		{"Traceback (most recent call last):", time.Time{}, false, false},
		{"Decimal 17 things", time.Time{}, false, false},
	}
	for _, c := range cases {
		got, found, bad := DetectTime(c.line, sh, ref)
		if found != c.found || bad != c.malformed || (found && !got.Equal(c.want)) {
			t.Errorf("DetectTime(%q) = %s, %v, %v; want %s, %v, %v", c.line, got, found, bad, c.want, c.found, c.malformed)
		}
	}
}

// A very long line must be handled without scanning all of it for a level
// word, and give the same answers as its head.
func TestDetectLongLine(t *testing.T) {
	long := "[ERROR] 2024-12-17T00:00:00Z " + strings.Repeat("x", 10<<20)
	if DetectLevel(long) != LevelError {
		t.Error("level of a long line")
	}
	if _, ok, _ := DetectTime(long, time.UTC, time.Time{}); !ok {
		t.Error("time of a long line")
	}
	if DetectLevel(strings.Repeat("a ", 5<<20)) != LevelUnknown {
		t.Error("a long line without a level")
	}
}

func TestStripANSI(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                        "plain",
		"\x1b[32mINFO\x1b[0m x":        "INFO x",
		"[\x1b[1;31mERROR\x1b[0m]":     "[ERROR]",
		"trailing \x1b[":               "trailing ",
		"\x1b":                         "",
		"a\x1b]0;title\x07b":           "a0;title\x07b",
		"\x1b[38;5;196mred\x1b[0m end": "red end",
	} {
		if got := StripANSI(in); got != want {
			t.Errorf("StripANSI(%q) = %q, want %q", in, got, want)
		}
	}
}
