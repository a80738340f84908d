package engine

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// The script tests in testdata/*.test are LogQL's conformance suite in
// plain text, in the spirit of Prometheus's promqltest:
//
//	# comment
//	load {app="api", level="info"}
//	  10s GET /users 200
//	  20s "a line with\na newline (Go-quoted)"
//
//	eval logs start=0s end=1m limit=10 direction=backward {app="api"} |= "GET"
//	  {app="api", level="info"}
//	    10s GET /users 200
//
//	eval range start=0s end=2m step=1m count_over_time({app="api"}[1m])
//	  {app="api", level="info"} 1@1m 0@2m
//
//	eval instant time=1m sum(count_over_time({app="api"}[1m]))
//	  {} 2
//
//	eval instant time=1m ordered sort(…)   # vector order matters
//	eval instant time=1m 1+1
//	  scalar 2
//
//	eval range start=0s end=1m step=1m rate({app="x"}[1m])
//	  expect error <substring of the message>
//
// Times are durations since the Unix epoch; an eval with no expected lines
// expects an empty result. Streams and series compare as sets, entries of a
// stream in order, values as Loki prints them.

type scriptCmd struct {
	file    string
	line    int
	kind    string // logs, range, instant
	params  Params
	ordered bool
	query   string
	expect  []string
}

func parseDur(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

func parseEntryText(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		return strconv.Unquote(s)
	}
	return s, nil
}

// loadScript parses a script, appending its entries to every appender.
func loadScript(t *testing.T, path string, apps ...store.Appender) []scriptCmd {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []scriptCmd
	var cur *scriptCmd
	var loading labels.Labels
	seq := map[string]uint64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		trim := strings.TrimSpace(raw)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		indented := raw != strings.TrimLeft(raw, " \t")
		switch {
		case !indented && strings.HasPrefix(trim, "load "):
			cur = nil
			ms, err := syntax.ParseMatchers(strings.TrimPrefix(trim, "load "))
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			var ls []labels.Label
			for _, m := range ms {
				ls = append(ls, labels.Label{Name: m.Name, Value: m.Value})
			}
			loading = labels.New(ls...)
		case !indented && strings.HasPrefix(trim, "eval "):
			loading = nil
			c, err := parseEval(trim)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			c.file, c.line = path, n
			cmds = append(cmds, c)
			cur = &cmds[len(cmds)-1]
		case indented && loading != nil:
			ts, text, _ := strings.Cut(trim, " ")
			d, err := parseDur(ts)
			if err != nil {
				t.Fatalf("%s:%d: bad time %q: %v", path, n, ts, err)
			}
			line, err := parseEntryText(text)
			if err != nil {
				t.Fatalf("%s:%d: bad quoted line: %v", path, n, err)
			}
			k := loading.String()
			for _, app := range apps {
				if err := app.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{
					Labels: loading, Entries: []store.Entry{{Ts: int64(d), Seq: seq[k], Line: line}},
				}}}); err != nil {
					t.Fatal(err)
				}
			}
			seq[k]++
		case indented && cur != nil:
			cur.expect = append(cur.expect, trim)
		default:
			t.Fatalf("%s:%d: unexpected line %q", path, n, raw)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

func parseEval(s string) (scriptCmd, error) {
	fields := strings.Fields(s)
	if len(fields) < 3 {
		return scriptCmd{}, fmt.Errorf("eval needs a kind and a query")
	}
	c := scriptCmd{kind: fields[1]}
	switch c.kind {
	case "logs", "range", "instant":
	default:
		return c, fmt.Errorf("unknown eval kind %q", c.kind)
	}
	c.params.Instant = c.kind == "instant"
	c.params.Direction = store.Backward
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(s, "eval")), c.kind))
	for {
		tok, after, _ := strings.Cut(rest, " ")
		k, v, ok := strings.Cut(tok, "=")
		known := ok && (k == "start" || k == "end" || k == "step" || k == "limit" || k == "direction" || k == "time" || k == "interval")
		if tok == "ordered" {
			c.ordered = true
		} else if !known {
			break
		}
		rest = strings.TrimSpace(after)
		if tok == "ordered" {
			continue
		}
		switch k {
		case "start", "end", "time", "step", "interval":
			d, err := parseDur(v)
			if err != nil {
				return c, fmt.Errorf("bad %s: %v", k, err)
			}
			switch k {
			case "start", "time":
				c.params.Start = time.Unix(0, int64(d)).UTC()
			case "end":
				c.params.End = time.Unix(0, int64(d)).UTC()
			case "step":
				c.params.Step = d
			case "interval":
				c.params.Interval = d
			}
		case "limit":
			l, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("bad limit: %v", err)
			}
			c.params.Limit = l
		case "direction":
			switch v {
			case "forward":
				c.params.Direction = store.Forward
			case "backward":
				c.params.Direction = store.Backward
			default:
				return c, fmt.Errorf("bad direction %q", v)
			}
		}
	}
	c.query = rest
	c.params.Query = rest
	return c, nil
}

func fmtDur(ns int64) string {
	if ns == 0 {
		return "0s"
	}
	return time.Duration(ns).String()
}

// render prints a result in the script's expected-line syntax.
func render(r Result) []string {
	var out []string
	switch r.Type {
	case ValueStreams:
		ss := append([]Stream(nil), r.Streams...)
		sort.Slice(ss, func(i, j int) bool { return labels.Compare(ss[i].Labels, ss[j].Labels) < 0 })
		for _, s := range ss {
			out = append(out, s.Labels.String())
			for _, e := range s.Entries {
				line := e.Line
				if strings.ContainsAny(line, "\n\r\t\"\\") || strings.TrimSpace(line) != line || !strconv.CanBackquote(line) {
					line = strconv.Quote(line)
				}
				out = append(out, "  "+fmtDur(e.Ts)+" "+line)
			}
		}
	case ValueMatrix:
		for _, s := range r.Matrix {
			parts := []string{s.Metric.String()}
			for _, p := range s.Points {
				parts = append(parts, formatValue(p.V)+"@"+fmtDur(p.T*1e6))
			}
			out = append(out, strings.Join(parts, " "))
		}
		sort.Strings(out)
	case ValueVector:
		for _, s := range r.Vector {
			out = append(out, s.Metric.String()+" "+formatValue(s.V))
		}
	case ValueScalar:
		out = append(out, "scalar "+formatValue(r.Scalar.V))
	}
	return out
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// normalizeExpected rewrites the expected lines to the render form:
// entry lines lose their leading indentation differences.
func normalizeExpected(c scriptCmd) []string {
	var out []string
	for _, e := range c.expect {
		if c.kind == "logs" && !strings.HasPrefix(e, "{") {
			ts, text, _ := strings.Cut(e, " ")
			d, err := parseDur(ts)
			if err == nil {
				line, err := parseEntryText(text)
				if err == nil {
					if strings.ContainsAny(line, "\n\r\t\"\\") || strings.TrimSpace(line) != line || !strconv.CanBackquote(line) {
						line = strconv.Quote(line)
					}
					e = "  " + fmtDur(int64(d)) + " " + line
				}
			}
		}
		out = append(out, e)
	}
	return out
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			// Every script runs on the in-memory reference reader, on the
			// real store's head and on its flushed blocks.
			mem := memstore.New()
			head, err := store.Open(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer head.Close()
			flushed, err := store.Open(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer flushed.Close()
			cmds := loadScript(t, f, mem, head, flushed)
			if err := flushed.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				name string
				r    store.Reader
			}{{"memstore", mem}, {"store-head", head}, {"store-blocks", flushed}} {
				t.Run(r.name, func(t *testing.T) {
					runScript(t, New(r.r, Options{Parallelism: 2, BlockCacheBytes: -1}), cmds, 1)
				})
				// With the per-block cache, every query twice: the second
				// answer comes from the first one's kept block results and
				// must be the same.
				t.Run(r.name+"/cached", func(t *testing.T) {
					hits := runScript(t, New(r.r, Options{Parallelism: 2}), cmds, 2)
					if r.name == "store-blocks" && hits == 0 && scriptHasCount(cmds) {
						t.Error("the repeated queries reused no block result")
					}
				})
			}
		})
	}
}

// scriptHasCount reports whether a script counts lines over time (the
// queries the per-block cache serves).
func scriptHasCount(cmds []scriptCmd) bool {
	for _, c := range cmds {
		if strings.Contains(c.query, "count_over_time") || strings.Contains(c.query, "rate(") {
			return true
		}
	}
	return false
}

// runScript evaluates each query of a script repeat times, checking every
// answer, and returns the block results the engine reused.
func runScript(t *testing.T, eng *Engine, cmds []scriptCmd, repeat int) (hits int64) {
	for i := 0; i < len(cmds)*repeat; i++ {
		c := cmds[i/repeat]
		res, err := eng.Query(context.Background(), c.params)
		hits += res.Stats.Cache.Hits
		where := fmt.Sprintf("%s:%d: %s", c.file, c.line, c.query)
		if len(c.expect) == 1 && strings.HasPrefix(c.expect[0], "expect error") {
			want := strings.TrimSpace(strings.TrimPrefix(c.expect[0], "expect error"))
			if err == nil {
				t.Errorf("%s: expected error containing %q, got result %q", where, want, render(res))
			} else if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: expected error containing %q, got %q", where, want, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: unexpected error: %v", where, err)
			continue
		}
		got := render(res)
		want := normalizeExpected(c)
		if c.kind == "instant" && !c.ordered {
			sort.Strings(got)
			sort.Strings(want)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got:\n\t%s\nwant:\n\t%s", where, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
		}
	}
	return hits
}
