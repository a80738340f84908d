package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// queryOpts are the query command's flags.
type queryOpts struct {
	from, to, at string
	since        time.Duration
	step         string
	limit        int
	direction    string
	instant      bool
	output       string
	timeout      time.Duration
	file         string
}

// queryMemoryLimit is the soft memory limit of a query run (unless
// GOMEMLIMIT says otherwise): near it the collector works harder instead of
// letting garbage take the process past what the engine's per-query budget
// means to allow. A query that reads every block allocates several times
// the store's raw size in decoded blocks that die at once (600 MB for a
// count over a 1 GiB corpus) while what it holds stays a few tens of MB
// (a block per stream being read, the budgeted results), so with Go's
// default target, twice the live heap, garbage alone took such a query past
// 100 MB. The limit keeps the heap near it instead; only a query whose
// live set passes it (then the collector is held to half the CPU by the
// runtime) grows beyond. It is 80 MiB, not the 100 MB a query may take,
// because the process's resident size is the heap plus the runtime's and
// the binary's own pages (12-20 MB): at 96 MiB a 7-day quantile whose live
// heap peaked at 59 MB still ended at 104-106 MB of peak RSS.
const queryMemoryLimit = 80 << 20

// queryBlockCacheBytes is the memory tier of the block cache for one query
// run. The process answers one query and exits, so nothing it keeps serves
// a next query; the tier only carries results read from the disk tier
// (small: counts per step) and those computed. At the engine's default of
// 32 MiB a 7-day quantile by instance over the 10 GiB store kept its
// blocks' unwrapped samples there beside its windows and peaked at
// 107-113 MB of RSS in 3.0 s before it was refused; with 4 MiB it peaks at
// 90 MB and is refused in 1.2 s (2026-12-06, quiet).
const queryBlockCacheBytes = 4 << 20

// limitQueryMemory applies queryMemoryLimit unless the operator set
// GOMEMLIMIT; the returned func restores the previous limit.
func limitQueryMemory(e env) (restore func()) {
	if e.getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prev := debug.SetMemoryLimit(queryMemoryLimit)
	return func() { debug.SetMemoryLimit(prev) }
}

// maxQueryFile bounds a query read from a file or standard input: far more
// than any hand-written query, and still a bounded read.
const maxQueryFile = 16 << 20

func cmdQuery(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("query", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	var o queryOpts
	fs.StringVar(&o.from, "from", "", "start: RFC3339, Unix seconds, now, now-1h (default: --since before --to)")
	fs.StringVar(&o.to, "to", "now", "end: RFC3339, Unix seconds, now, now-1h")
	fs.DurationVar(&o.since, "since", time.Hour, "look back this far from --to when --from is not given")
	fs.StringVar(&o.step, "step", "", "step of a range metric query, e.g. 1m (default: Loki's, range/250 and at least 1s)")
	fs.IntVar(&o.limit, "limit", 100, "most lines a log query returns")
	fs.StringVar(&o.direction, "direction", "backward", "backward (newest first) or forward")
	fs.BoolVar(&o.instant, "instant", false, "instant query, evaluated at --time")
	fs.StringVar(&o.at, "time", "now", "evaluation time of an --instant query")
	fs.StringVar(&o.output, "o", "raw", "output: raw, jsonl, or json (Loki's HTTP API body)")
	fs.DurationVar(&o.timeout, "timeout", engine.DefaultTimeout, "longest the query may run (0: no limit)")
	resultCache := resultCacheFlag(fs)
	fs.StringVar(&o.file, "f", "", "read the query from `FILE` (- for standard input) instead of the argument")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if (o.file == "") != (len(pos) == 1) || len(pos) > 1 {
		fmt.Fprintln(e.stderr, `usage: lokal query --config F [flags] 'QUERY' | -f FILE | -`)
		fs.PrintDefaults()
		return errUsage
	}
	if o.timeout < 0 {
		return fmt.Errorf("--timeout %s: must not be negative", o.timeout)
	}
	if o.output != "raw" && o.output != "jsonl" && o.output != "json" {
		return fmt.Errorf("-o %q: want raw, jsonl or json", o.output)
	}
	// From here a rejected query also prints Loki's error body with -o json.
	defer func() {
		if err != nil && o.output == "json" {
			fmt.Fprintf(e.stdout, "%s\n", lokiapi.MarshalError(err))
		}
	}()
	q, err := queryText(pos, o.file, e.stdin)
	if err != nil {
		return err
	}
	p, err := queryParams(q, o, e.clock())
	if err != nil {
		return err
	}
	// Parsed once: the engine evaluates it and the read-time notice reads
	// its selectors and ranges.
	if p.Expr, err = syntax.ParseExpr(p.Query); err != nil {
		return err
	}
	_, st, err := openConfigStore(*cfg, e, false)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	defer limitQueryMemory(e)()
	timeout := o.timeout
	if timeout == 0 {
		timeout = -1 // the engine's "no limit"
	}
	budget, err := resultCache()
	if err != nil {
		return err
	}
	res, err := engine.New(st, engine.Options{Timeout: timeout, BlockCacheBytes: queryBlockCacheBytes}.WithDiskCache(budget)).Query(ctx, p)
	if err != nil {
		return err
	}
	res.Warnings = append(res.Warnings, readTimeWarnings(st, p)...)
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	return writeResult(e.stdout, o.output, res, p.Direction == store.Backward)
}

// readTimeWarnings name the entries in the query's range that carry their
// read time (see ingest.ReadTimeStat). An instant query reaches back by its
// longest range.
func readTimeWarnings(st *store.Store, p engine.Params) []string {
	expr := p.Expr
	stats, err := ingest.ReadTimeStatsFrom(st.Cursors())
	if err != nil {
		return []string{err.Error()}
	}
	start := p.Start
	if p.Instant {
		start = start.Add(-engine.LookBack(expr))
	}
	return ingest.ReadTimeWarnings(stats, expr, start, p.End)
}

// queryText is the query: the argument, or what -f FILE (or an argument of
// -, or -f -) holds.
func queryText(pos []string, file string, stdin io.Reader) (string, error) {
	if file == "" && pos[0] != "-" {
		return pos[0], nil
	}
	var r io.Reader = stdin
	name := "standard input"
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("read query: %w", err)
		}
		defer f.Close()
		r, name = f, file
	}
	b, err := io.ReadAll(io.LimitReader(r, maxQueryFile+1))
	if err != nil {
		return "", fmt.Errorf("read query from %s: %w", name, err)
	}
	if len(b) > maxQueryFile {
		return "", fmt.Errorf("read query from %s: longer than %d MiB", name, maxQueryFile>>20)
	}
	q := strings.TrimSpace(string(b))
	if q == "" {
		return "", fmt.Errorf("read query from %s: it is empty", name)
	}
	return q, nil
}

// queryParams turns the flags into engine parameters.
func queryParams(q string, o queryOpts, now time.Time) (engine.Params, error) {
	p := engine.Params{Query: q, Limit: o.limit}
	switch o.direction {
	case "backward":
		p.Direction = store.Backward
	case "forward":
		p.Direction = store.Forward
	default:
		return p, fmt.Errorf("--direction %q: want backward or forward", o.direction)
	}
	if o.limit < 0 {
		return p, fmt.Errorf("--limit %d: must not be negative", o.limit)
	}
	if o.instant {
		t, err := parseTime(o.at, now)
		if err != nil {
			return p, fmt.Errorf("--time: %w", err)
		}
		p.Instant, p.Start, p.End = true, t, t
		return p, nil
	}
	end, err := parseTime(o.to, now)
	if err != nil {
		return p, fmt.Errorf("--to: %w", err)
	}
	start := end.Add(-o.since)
	if o.from != "" {
		if start, err = parseTime(o.from, now); err != nil {
			return p, fmt.Errorf("--from: %w", err)
		}
	}
	if end.Before(start) {
		return p, fmt.Errorf("--to %s is before --from %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	p.Start, p.End = start, end
	if o.step != "" {
		d, err := parseDuration(o.step)
		if err != nil || d <= 0 {
			return p, fmt.Errorf("--step %q: want a positive duration such as 1m", o.step)
		}
		p.Step = d
	}
	return p, nil
}

// writeResult prints a result in the chosen output format.
func writeResult(w io.Writer, output string, res engine.Result, backward bool) error {
	switch output {
	case "json":
		return lokiapi.Write(w, res)
	case "jsonl":
		return writeJSONL(w, res, backward)
	default:
		return writeRaw(w, res, backward)
	}
}

func writeRaw(w io.Writer, res engine.Result, backward bool) error {
	var err error
	pr := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	switch res.Type {
	case engine.ValueStreams:
		for _, e := range mergeStreams(res, backward) {
			pr("%s\n", e.line)
		}
	case engine.ValueMatrix:
		for _, s := range res.Matrix {
			for _, p := range s.Points {
				pr("%s %s %s\n", s.Metric, msTime(p.T), lokiapi.FormatValue(p.V))
			}
		}
	case engine.ValueVector:
		for _, s := range res.Vector {
			pr("%s %s %s\n", s.Metric, msTime(s.T), lokiapi.FormatValue(s.V))
		}
	case engine.ValueScalar:
		pr("%s %s\n", msTime(res.Scalar.T), lokiapi.FormatValue(res.Scalar.V))
	}
	return err
}

// jsonlRecord is one line of -o jsonl.
type jsonlRecord struct {
	Time   string            `json:"time"`
	Labels map[string]string `json:"labels"`
	Line   *string           `json:"line,omitempty"`
	Value  *string           `json:"value,omitempty"`
}

func writeJSONL(w io.Writer, res engine.Result, backward bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	value := func(v float64) *string { s := lokiapi.FormatValue(v); return &s }
	switch res.Type {
	case engine.ValueStreams:
		for _, e := range mergeStreams(res, backward) {
			line := e.line
			if err := enc.Encode(jsonlRecord{Time: time.Unix(0, e.ts).UTC().Format(time.RFC3339Nano), Labels: e.labels.Map(), Line: &line}); err != nil {
				return err
			}
		}
	case engine.ValueMatrix:
		for _, s := range res.Matrix {
			for _, p := range s.Points {
				if err := enc.Encode(jsonlRecord{Time: msTime(p.T), Labels: s.Metric.Map(), Value: value(p.V)}); err != nil {
					return err
				}
			}
		}
	case engine.ValueVector:
		for _, s := range res.Vector {
			if err := enc.Encode(jsonlRecord{Time: msTime(s.T), Labels: s.Metric.Map(), Value: value(s.V)}); err != nil {
				return err
			}
		}
	case engine.ValueScalar:
		return enc.Encode(jsonlRecord{Time: msTime(res.Scalar.T), Labels: map[string]string{}, Value: value(res.Scalar.V)})
	}
	return nil
}

type flatEntry struct {
	ts     int64
	seq    uint64
	line   string
	labels labels.Labels
}

// mergeStreams orders every entry of a log result as one list, in the
// query's direction.
func mergeStreams(res engine.Result, backward bool) []flatEntry {
	var out []flatEntry
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			out = append(out, flatEntry{e.Ts, e.Seq, e.Line, s.Labels})
		}
	}
	sortEntries(out, backward)
	return out
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
