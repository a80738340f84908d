package log

import (
	"fmt"
	"strings"
	"testing"
)

// scanPairs is ScanLogfmt's result as "k=v|k=v", with "(N malformed)"
// appended when pairs were skipped.
func scanPairs(line string, d LogfmtDialect) string {
	var parts []string
	n := ScanLogfmt(line, d, func(k, v string) { parts = append(parts, k+"="+v) })
	out := strings.Join(parts, "|")
	if n > 0 {
		out += fmt.Sprintf(" (%d malformed)", n)
	}
	return out
}

// TestLogfmtDialects feeds the same lines to `| logfmt` (Loki) and to the
// ingest logfmt stage (Promtail) and shows where and why they differ. The
// Promtail column holds the cases the ingest stage was always tested with.
func TestLogfmtDialects(t *testing.T) {
	cases := []struct {
		line, loki, promtail string
		why                  string // empty when both agree
	}{
		{`a=1 b="two words" c`, `a=1|b=two words|c=`, `a=1|b=two words|c=`, ""},
		{`text_len=42, seed=7, seq=3,`, `text_len=42,|seed=7,|seq=3,`, `text_len=42,|seed=7,|seq=3,`, ""},
		{`k="esc \"q\" \\ \n"`, "k=esc \"q\" \\ \n", "k=esc \"q\" \\ \n", ""},
		{`msg="tts failed" err="CUDA: x"`, `msg=tts failed|err=CUDA: x`, `msg=tts failed|err=CUDA: x`, ""},
		{"", "", "", ""},
		{`k="" e=`, `k=|e=`, `k=|e=`, ""},
		{`k="unterminated`, ` (1 malformed)`, `k=unterminated`, "Promtail runs an unterminated value to the end of the line"},
		{`=x ==y "z" a=`, `a= (3 malformed)`, `x=|y=|z=|a=`, "Promtail skips '=' and '\"' where a key would start"},
		{"\xff=\xfe", ` (1 malformed)`, "\xff=\xfe", "Loki rejects keys that are not UTF-8"},
		{`a=b=c d=1`, `d=1 (1 malformed)`, `a=b=c|d=1`, "a Promtail bare value runs to the next space"},
		{`fo"o=bar x=1`, `x=1 (1 malformed)`, `fo=|o=bar|x=1`, "a '\"' ends a Promtail key"},
		{`k="a\/b"`, `k=a/b`, `k=a\/b`, `\/ is a JSON escape, not a Go one (Promtail keeps the raw value)`},
		{`k="\ud83d\ude00"`, "k=\U0001F600", `k=\ud83d\ude00`, "JSON joins surrogate pairs, Go rejects them"},
		{`k="\ud83dx"`, "k=\uFFFDx", `k=\ud83dx`, "JSON makes a lone surrogate U+FFFD, Go rejects it"},
		{`k="\x41" j=1`, `j=1 (1 malformed)`, `k=A|j=1`, `\x is a Go escape, not a JSON one`},
		{`k="a\qb" j=1`, `j=1 (1 malformed)`, `k=a\qb|j=1`, "an unknown escape: Loki skips the pair, Promtail keeps it raw"},
	}
	for _, c := range cases {
		checkDialects(t, fmt.Sprintf("%q", c.line), scanPairs(c.line, LogfmtLoki), c.loki, scanPairs(c.line, LogfmtPromtail), c.promtail, c.why)
	}
}

// checkDialects compares what Loki's and Promtail's readings of input gave
// with the table's, and checks that the table explains every difference.
func checkDialects(t *testing.T, input, loki, wantLoki, promtail, wantPromtail, why string) {
	t.Helper()
	if loki != wantLoki {
		t.Errorf("Loki reads %s as %q, want %q", input, loki, wantLoki)
	}
	if promtail != wantPromtail {
		t.Errorf("Promtail reads %s as %q, want %q", input, promtail, wantPromtail)
	}
	if (loki == promtail) != (why == "") {
		t.Errorf("%s: the readings agree=%v but the table says why=%q", input, loki == promtail, why)
	}
}

// FuzzLogfmtDialects runs one line through both readings of the shared
// scanner: neither panics, keys are never empty and come from the line,
// Promtail never reports a malformed pair, and a line Loki reads without a
// malformed pair and without backslashes gives the same pairs in both.
func FuzzLogfmtDialects(f *testing.F) {
	for _, s := range []string{
		`a=1 b="two words" c`, `=x ==y "z" a=`, `a="x\"y" b= c`, `k="unterminated`, "\xff=\xfe",
		`level=error msg="tts failed" err="CUDA error: \"x\"" duration=102ms`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var pairs [2][]string
		var malformed [2]int
		for i, d := range []LogfmtDialect{LogfmtLoki, LogfmtPromtail} {
			malformed[i] = ScanLogfmt(line, d, func(k, v string) {
				if k == "" || !strings.Contains(line, k) {
					t.Fatalf("dialect %d: key %q not in %q", d, k, line)
				}
				pairs[i] = append(pairs[i], k+"="+v)
			})
		}
		if malformed[1] != 0 {
			t.Fatalf("Promtail reported %d malformed pairs in %q", malformed[1], line)
		}
		if malformed[0] == 0 && !strings.Contains(line, `\`) {
			if l, p := strings.Join(pairs[0], "|"), strings.Join(pairs[1], "|"); l != p {
				t.Fatalf("well-formed %q: Loki %q, Promtail %q", line, l, p)
			}
		}
	})
}
