package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/sample"
)

// sampleEntry is one entry of the sample's files, as the ingester groups
// them: a line with a seq and the traceback lines after it.
type sampleEntry struct {
	instance string
	text     string
	seq      int64
}

var entrySeqRe = regexp.MustCompile(`(?:seq=|"seq":)(\d+)`)

// readSampleEntries reads every entry the sample wrote under logs.
func readSampleEntries(t *testing.T, logs string, m sample.Manifest) []sampleEntry {
	t.Helper()
	var out []sampleEntry
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(logs, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		n := len(out)
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			s := entrySeqRe.FindStringSubmatch(l)
			if s == nil {
				if len(out) == n {
					t.Fatalf("%s starts with a line without seq: %q", f.Path, l)
				}
				out[len(out)-1].text += "\n" + l
				continue
			}
			seq, _ := strconv.ParseInt(s[1], 10, 64)
			out = append(out, sampleEntry{instance: f.Labels["instance"], text: l, seq: seq})
		}
	}
	if int64(len(out)) != m.TotalEntries {
		t.Fatalf("read %d entries from the files, the manifest says %d", len(out), m.TotalEntries)
	}
	return out
}

// resultLines are a log answer's lines with the instance they came from.
func resultLines(res engine.Result) (lines []string, instances []string) {
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			lines = append(lines, e.Line)
			instances = append(instances, s.Labels.Get("instance"))
		}
	}
	return lines, instances
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestGuideQueriesOnSample runs the demo, then each of the logging guide's
// queries on the store it left, as the demo runs them but without a line
// limit, and checks each answer against what the sample wrote.
func TestGuideQueriesOnSample(t *testing.T) {
	c := newCLI(t)
	dir := filepath.Join(c.dir, "demo")
	// two hours, so OOM bursts are minutes apart and the alert fires
	code, stdout, stderr := c.run("", "demo", "--dir", dir, "--size", "384KiB", "--span", "2h")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// the demo shows every query, in the guide's order, and the hint
	last := -1
	for _, q := range guideQueries {
		i := strings.Index(stdout, "'"+q.query+"'\n")
		if i < 0 || i < last {
			t.Errorf("demo output lacks %s, or shows it out of order", q.query)
		}
		last = i
	}
	for _, want := range []string{"   hint: `text_len` and `seed` are not labels here", "the condition held at ", "[SYSTEM] Starting CosyVoice3 v0.3 @ commit abc1234"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}

	logs := filepath.Join(dir, "logs")
	m, err := sample.ReadManifest(logs)
	if err != nil {
		t.Fatal(err)
	}
	entries := readSampleEntries(t, logs, m)
	e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return c.env[k] }}
	_, st, err := openConfigStore(filepath.Join(dir, "lokal.yaml"), e, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	eng := engine.New(st, engine.Options{})
	from, to := guideRange(st.Info())
	ctx := context.Background()
	run := func(q guideQuery) engine.Result {
		t.Helper()
		res, err := eng.Query(ctx, guideParams(q, from, to, engine.DefaultMaxEntriesLimit))
		if err != nil {
			t.Fatalf("%s: %v", q.query, err)
		}
		if res.LimitReached {
			t.Fatalf("%s: limit reached; make the sample smaller", q.query)
		}
		return res
	}
	// matching returns the sample's entries containing s.
	matching := func(s string) []sampleEntry {
		var out []sampleEntry
		for _, x := range entries {
			if strings.Contains(x.text, s) {
				out = append(out, x)
			}
		}
		if len(out) == 0 {
			t.Fatalf("the sample has no entry with %q", s)
		}
		return out
	}
	texts := func(es []sampleEntry) []string {
		var out []string
		for _, x := range es {
			out = append(out, x.text)
		}
		return sortedCopy(out)
	}
	runValues := regexp.MustCompile(`Generating audio: text_len=(\d+), seed=(\d+) seq=`)
	generating := matching("Generating audio")
	formatted := func(format string) []string {
		var out []string
		for _, x := range generating {
			v := runValues.FindStringSubmatch(x.text)
			if v == nil {
				t.Fatalf("run.sh line not in the guide's shape: %q", x.text)
			}
			out = append(out, fmt.Sprintf(format, v[1], v[2]))
		}
		return sortedCopy(out)
	}

	checks := map[string]func(t *testing.T, res engine.Result){
		`{job="cosyvoice3"}`: func(t *testing.T, res engine.Result) {
			lines, _ := resultLines(res)
			if !slices.Equal(sortedCopy(lines), texts(entries)) {
				t.Errorf("%d entries, the sample wrote %d (or they differ)", len(lines), len(entries))
			}
		},
		`{job="cosyvoice3"} |= "error"`: func(t *testing.T, res engine.Result) {
			lines, _ := resultLines(res)
			if want := texts(matching("error")); !slices.Equal(sortedCopy(lines), want) {
				t.Errorf("%d entries, the sample has %d with \"error\"", len(lines), len(want))
			}
		},
		`rate({job="cosyvoice3"}[5m])`: func(t *testing.T, res engine.Result) {
			// windows of 5m every 5m partition the range: each entry counts once
			var n float64
			for _, s := range res.Matrix {
				for _, p := range s.Points {
					n += p.V * 300
				}
			}
			if math.Round(n) != float64(m.TotalEntries) {
				t.Errorf("rate × 5m sums to %.1f entries, the sample has %d", n, m.TotalEntries)
			}
		},
		`{job="cosyvoice3"} |= "CUDA out of memory"`: func(t *testing.T, res engine.Result) {
			lines, _ := resultLines(res)
			if want := texts(matching("CUDA out of memory")); !slices.Equal(sortedCopy(lines), want) || int64(len(lines)) != m.OOMEntries {
				t.Errorf("%d entries, the sample has %d OOMs (manifest %d)", len(lines), len(want), m.OOMEntries)
			}
		},
		`count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m]) > 5`: func(t *testing.T, res engine.Result) {
			// per instance, the OOM times from the lines, counted in (t-5m, t]
			stamp := regexp.MustCompile(`\] (\S+Z) Inference failed: CUDA out of memory`)
			times := map[string][]time.Time{}
			for _, x := range matching("CUDA out of memory") {
				s := stamp.FindStringSubmatch(x.text)
				if s == nil {
					t.Fatalf("OOM entry without a time: %q", x.text)
				}
				ts, err := time.Parse(time.RFC3339, s[1])
				if err != nil {
					t.Fatal(err)
				}
				times[x.instance] = append(times[x.instance], ts)
			}
			want := map[string]string{}
			for inst, ts := range times {
				var pts []string
				for at := from; !at.After(to); at = at.Add(time.Minute) {
					n := 0
					for _, x := range ts {
						if x.After(at.Add(-5*time.Minute)) && !x.After(at) {
							n++
						}
					}
					if n > 5 {
						pts = append(pts, fmt.Sprintf("%s=%d", at.Format(time.RFC3339), n))
					}
				}
				if len(pts) > 0 {
					want[inst] = strings.Join(pts, " ")
				}
			}
			if len(want) == 0 {
				t.Fatal("the sample never has more than 5 OOMs in 5 minutes: the alert cannot be checked")
			}
			got := map[string]string{}
			for _, s := range res.Matrix {
				var pts []string
				for _, p := range s.Points {
					pts = append(pts, fmt.Sprintf("%s=%g", time.UnixMilli(p.T).UTC().Format(time.RFC3339), p.V))
				}
				got[s.Metric.Get("instance")] = strings.Join(pts, " ")
			}
			for inst := range want {
				if got[inst] != want[inst] {
					t.Errorf("%s: the alert's condition holds at\n%s\nthe sample says\n%s", inst, got[inst], want[inst])
				}
			}
			if len(got) != len(want) {
				t.Errorf("series for %d instances, want %d", len(got), len(want))
			}
		},
		`{job="cosyvoice3"} |= "commit abc1234"`: func(t *testing.T, res engine.Result) {
			// exactly the manifest's restarts on abc1234: where, when, which entry
			var want []string
			for _, r := range m.Restarts {
				if r.Commit == sample.CommitABC1234 {
					want = append(want, fmt.Sprintf("%s %s seq=%d", strings.SplitN(r.File, "/", 2)[0], r.Ts.Format(time.RFC3339), r.Seq))
				}
			}
			var got []string
			for _, s := range res.Streams {
				for _, x := range s.Entries {
					seq := entrySeqRe.FindStringSubmatch(x.Line)
					if seq == nil || !strings.Contains(x.Line, "[SYSTEM] Starting CosyVoice3 v0.3 @ commit abc1234") {
						t.Errorf("not a restart on abc1234: %q", x.Line)
						continue
					}
					got = append(got, fmt.Sprintf("%s %s seq=%s", s.Labels.Get("instance"), time.Unix(0, x.Ts).UTC().Format(time.RFC3339), seq[1]))
				}
			}
			if len(want) == 0 || !slices.Equal(sortedCopy(got), sortedCopy(want)) {
				t.Errorf("found restarts\n%q\nthe manifest's on %s:\n%q", sortedCopy(got), sample.CommitABC1234, sortedCopy(want))
			}
		},
		`{job="cosyvoice3"} |= "Generating audio" | line_format "{{.text_len}} chars, seed={{.seed}}"`: func(t *testing.T, res engine.Result) {
			lines, _ := resultLines(res)
			if len(lines) != len(generating) {
				t.Errorf("%d lines, the sample has %d run.sh requests", len(lines), len(generating))
			}
			for _, l := range lines {
				if l != " chars, seed=" {
					t.Fatalf("line %q: Loki's answer is \" chars, seed=\" (no parser, no fields)", l)
				}
			}
			if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "`text_len` and `seed` are not labels here") {
				t.Errorf("warnings %q, want the hint", res.Warnings)
			}
		},
		`{job="cosyvoice3"} |= "Generating audio" | logfmt | line_format "{{.text_len}} chars, seed={{.seed}}"`: func(t *testing.T, res engine.Result) {
			lines, _ := resultLines(res)
			if want := formatted("%s, chars, seed=%s"); !slices.Equal(sortedCopy(lines), want) {
				t.Errorf("%d lines, want run.sh's values with logfmt's comma (%d)", len(lines), len(want))
			}
		},
		`{job="cosyvoice3"} |= "Generating audio" ` + guideRunRegexp + ` | line_format "{{.text_len}} chars, seed={{.seed}}"`: func(t *testing.T, res engine.Result) {
			lines, _ := resultLines(res)
			if want := formatted("%s chars, seed=%s"); !slices.Equal(sortedCopy(lines), want) {
				t.Errorf("%d lines, want run.sh's clean values (%d)", len(lines), len(want))
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings %q", res.Warnings)
			}
		},
	}
	for _, q := range guideQueries {
		t.Run(q.query, func(t *testing.T) {
			check, ok := checks[q.query]
			if !ok {
				t.Fatal("no check for this guide query")
			}
			res := run(q)
			if len(res.Streams) == 0 && len(res.Matrix) == 0 {
				t.Fatal("empty answer")
			}
			check(t, res)
		})
	}
	if len(checks) != len(guideQueries) {
		t.Errorf("%d checks for %d guide queries", len(checks), len(guideQueries))
	}

	// startup.log's [SYSTEM] lines name no level: level="unknown", as in Loki
	res := run(guideQuery{query: `{job="cosyvoice3", level="unknown"}`})
	lines, _ := resultLines(res)
	if len(lines) != len(m.Restarts) {
		t.Errorf("%d entries of level unknown, want the %d restarts", len(lines), len(m.Restarts))
	}
	for _, l := range lines {
		if !strings.Contains(l, "[SYSTEM] Starting CosyVoice3") {
			t.Errorf("level unknown: %q", l)
		}
	}
}
