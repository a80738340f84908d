package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/sample"
	"github.com/lokal-logs/lokal/pkg/store"
)

// guideQuery is one query of the CosyVoice3 logging guide that brings users
// to Loki, as they will type it.
type guideQuery struct {
	title string
	query string
	// alert evaluates the query as Grafana's rule does, every minute.
	alert bool
	// note says what to look for in the answer.
	note string
}

// guideRunRegexp is the parser that extracts run.sh's values without the
// comma | logfmt keeps ("text_len=448," gives "448,").
const guideRunRegexp = `| regexp "text_len=(?P<text_len>\\d+), seed=(?P<seed>\\d+)"`

// guideQueries are the guide's queries in the guide's order, then the
// parsers that make its line_format example work.
var guideQueries = []guideQuery{
	{title: "all of CosyVoice3's logs", query: `{job="cosyvoice3"}`,
		note: "the newest lines are uvicorn's access.log lines: they carry no time, so on catch-up each gets the time it was read, as Promtail does"},
	{title: "errors", query: `{job="cosyvoice3"} |= "error"`},
	{title: "log lines per second, per stream", query: `rate({job="cosyvoice3"}[5m])`,
		note: "access.log's rate is one spike at the time its lines were read (see 1.)"},
	{title: "CUDA out of memory", query: `{job="cosyvoice3"} |= "CUDA out of memory"`},
	{title: "the alert: more than 5 OOMs in 5 minutes", query: `count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m]) > 5`, alert: true},
	{title: "which version was this? (startup.log's restarts on commit abc1234)", query: `{job="cosyvoice3"} |= "commit abc1234"`},
	{title: "run.sh's requests, as the guide formats them", query: `{job="cosyvoice3"} |= "Generating audio" | line_format "{{.text_len}} chars, seed={{.seed}}"`,
		note: "text_len and seed are not labels until a parser extracts them: Loki prints \" chars, seed=\" silently; Lokal adds the hint above"},
	{title: "... with | logfmt", query: `{job="cosyvoice3"} |= "Generating audio" | logfmt | line_format "{{.text_len}} chars, seed={{.seed}}"`,
		note: "run.sh writes \"text_len=448, seed=42\": | logfmt keeps the comma (\"448,\")"},
	{title: "... with a | regexp that extracts clean values", query: `{job="cosyvoice3"} |= "Generating audio" ` + guideRunRegexp + ` | line_format "{{.text_len}} chars, seed={{.seed}}"`},
}

// guideRange is the range the demo queries: the store's own, in whole
// minutes. It is wider than the sample's manifest says: zone-less run.sh
// stamps are read as local time, and access.log's lines get the time they
// were read.
func guideRange(info store.Info) (from, to time.Time) {
	from = time.Unix(0, info.MinTime).UTC().Truncate(time.Minute)
	to = time.Unix(0, info.MaxTime).UTC().Truncate(time.Minute).Add(time.Minute)
	return from, to
}

// guideParams are the parameters the demo runs a guide query with.
func guideParams(q guideQuery, from, to time.Time, lines int) engine.Params {
	p := engine.Params{Query: q.query, Start: from, End: to, Step: 5 * time.Minute, Limit: lines, Direction: store.Backward}
	if q.alert {
		p.Step = time.Minute
	}
	return p
}

func cmdSample(ctx context.Context, args []string, e env) error {
	fs := newFlags("sample", e)
	dir := fs.String("dir", "", "directory to write into (one subdirectory per host)")
	seed := fs.Uint64("seed", 1, "seed: the same seed writes the same logs")
	size := fs.String("size", "4MiB", "history to write first (0 for none)")
	span := fs.Duration("span", 24*time.Hour, "time the history covers, ending now")
	live := fs.Bool("live", false, "after the history, keep appending until SIGINT/SIGTERM")
	rate := fs.Float64("rate", 20, "entries per second with --live")
	rotate := fs.String("rotate-bytes", "10MiB", "with --live, rotate a file beyond this size (0: never)")
	rotateMode := fs.String("rotate-mode", sample.RotateRename, "rename or copytruncate")
	backups := fs.Int("max-backups", 3, "with --live, rotated files kept per log")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		fmt.Fprintln(e.stderr, "usage: lokal sample --dir D [--live]")
		return errUsage
	}
	sz, err := config.ParseByteSize(*size)
	if err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	rb, err := config.ParseByteSize(*rotate)
	if err != nil {
		return fmt.Errorf("--rotate-bytes: %w", err)
	}
	next := int64(1)
	if sz > 0 {
		m, err := sample.Write(*dir, sample.Options{Seed: *seed, Size: sz, Span: *span})
		if err != nil {
			return err
		}
		next = m.LastSeq + 1
		fmt.Fprintf(e.stdout, "wrote %d entries in %d files (%s to %s) into %s\n", m.TotalEntries, len(m.Files),
			m.Start.Format(time.RFC3339), m.End.Format(time.RFC3339), *dir)
	}
	if !*live {
		return nil
	}
	fmt.Fprintf(e.stderr, "appending %.0f entries/s to %s until stopped\n", *rate, *dir)
	res, err := sample.Live(ctx, *dir, sample.LiveOptions{Seed: *seed + 1, Rate: *rate, RotateBytes: rb, RotateMode: *rotateMode, MaxBackups: *backups, FirstSeq: next})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "appended %d entries, %d rotations\n", res.Entries, res.Rotations)
	return nil
}

// cmdDemo shows Lokal end to end on its own sample logs: write a day of
// CosyVoice3-style logs, ingest them, and run the logging guide's queries
// in its order, with what a user should see and the hints Loki does not
// give.
func cmdDemo(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("demo", e)
	dir := fs.String("dir", "", "working directory (default: a new temporary directory)")
	size := fs.String("size", "8MiB", "size of the sample history")
	span := fs.Duration("span", 24*time.Hour, "time the sample history covers, ending now")
	lines := fs.Int("lines", 5, "log lines to print per log query")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	sz, err := config.ParseByteSize(*size)
	if err != nil || sz <= 0 {
		return fmt.Errorf("--size %q: want a positive size such as 8MiB", *size)
	}
	if *span <= 0 {
		return fmt.Errorf("--span %s: want a positive duration such as 24h", *span)
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "lokal-demo-"); err != nil {
			return err
		}
	}
	if *dir, err = filepath.Abs(*dir); err != nil {
		return err
	}
	out := e.stdout
	logs := filepath.Join(*dir, "logs")
	fmt.Fprintf(out, "== 1. writing %s of sample CosyVoice3 logs into %s\n", *size, logs)
	m, err := sample.Write(logs, sample.Options{Seed: 1, Size: sz, Span: *span})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   %d entries in %d files, %s to %s\n", m.TotalEntries, len(m.Files), m.Start.Format(time.RFC3339), m.End.Format(time.RFC3339))

	cfgPath := filepath.Join(*dir, "lokal.yaml")
	if err := writeDemoConfig(cfgPath, logs, m); err != nil {
		return err
	}
	l, err := loadConfig(cfgPath, e)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "== 2. ingesting with %s into %s\n", cfgPath, l.storeDir)
	st, err := openWriter(l)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	h, el, err := catchUp(ctx, l, st)
	if err != nil {
		return err
	}
	info := st.Info()
	fmt.Fprintf(out, "   %d lines (%s) from %d files in %s; store: %d streams, %s on disk\n", h.Lines, config.HumanBytes(h.Bytes), h.FilesMatched,
		el.Round(time.Millisecond), info.Streams, config.HumanBytes(info.StoredBytes))
	if err := reportProblems(e.stderr, h); err != nil {
		return err
	}

	eng := engine.New(st, engine.Options{})
	from, to := guideRange(info)
	fmt.Fprintf(out, "== 3. the CosyVoice3 logging guide's queries, in its order, over %s .. %s\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
	for i, q := range guideQueries {
		fmt.Fprintf(out, "\n-- %d. %s\n", i+1, q.title)
		flags := ""
		if q.alert {
			flags = " --step 1m"
		}
		fmt.Fprintf(out, "$ lokal query --config %s --from %s --to %s%s '%s'\n", cfgPath, from.Format(time.RFC3339), to.Format(time.RFC3339), flags, q.query)
		t0 := time.Now()
		res, err := eng.Query(ctx, guideParams(q, from, to, *lines))
		if err != nil {
			return fmt.Errorf("%s: %w", q.query, err)
		}
		el := time.Since(t0)
		if err := printDemoResult(e, res, *lines); err != nil {
			return err
		}
		if q.alert {
			printAlertSteps(out, res, from, to)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(out, "   hint: %s\n", w)
		}
		if q.note != "" {
			fmt.Fprintf(out, "   note: %s\n", q.note)
		}
		fmt.Fprintf(out, "   (%s, %d entries scanned, %d of %d blocks skipped by token filters)\n", el.Round(time.Microsecond),
			res.Stats.Store.EntriesScanned, res.Stats.Store.BlocksSkipped, res.Stats.Store.BlocksTotal)
	}
	abc := 0
	for _, r := range m.Restarts {
		if r.Commit == sample.CommitABC1234 {
			abc++
		}
	}
	fmt.Fprintf(out, "\nThe sample's manifest counts %d entries with \"CUDA out of memory\" and %d restarts on commit %s (of %d).\n",
		m.OOMEntries, abc, sample.CommitABC1234, len(m.Restarts))
	fmt.Fprintf(out, "Try your own: lokal query --config %s --since 48h '<LogQL>'\n", cfgPath)
	return nil
}

// printAlertSteps says at how many of the rule's one-minute evaluations
// the alert's condition held, and when first.
func printAlertSteps(out io.Writer, res engine.Result, from, to time.Time) {
	held := map[int64]bool{}
	for _, s := range res.Matrix {
		for _, p := range s.Points {
			held[p.T] = true
		}
	}
	if len(held) == 0 {
		fmt.Fprintf(out, "   the condition never held: the rule would not fire\n")
		return
	}
	first := int64(math.MaxInt64)
	for t := range held {
		first = min(first, t)
	}
	fmt.Fprintf(out, "   the condition held at %d of %d one-minute evaluations, first at %s: the rule fires once it holds for 1m\n",
		len(held), int(to.Sub(from)/time.Minute)+1, time.UnixMilli(first).UTC().Format(time.RFC3339))
}

// printDemoResult prints a log result's first lines, or a metric result's
// series with their totals.
func printDemoResult(e env, res engine.Result, lines int) error {
	out := e.stdout
	switch res.Type {
	case engine.ValueStreams:
		es := mergeStreams(res, true)
		if len(es) > lines {
			es = es[:lines]
		}
		for _, x := range es {
			line := x.line
			if i := strings.IndexByte(line, '\n'); i >= 0 {
				line = line[:i] + " …"
			}
			if len(line) > 160 {
				line = line[:160] + "…"
			}
			fmt.Fprintf(out, "   %s %s %s\n", time.Unix(0, x.ts).UTC().Format(time.RFC3339), x.labels.Get("instance"), line)
		}
		more := ""
		if res.LimitReached {
			more = " (limit reached: more exist)"
		}
		fmt.Fprintf(out, "   %d lines shown%s\n", len(es), more)
	case engine.ValueMatrix:
		type row struct {
			name       string
			points     int
			sum, peakV float64
		}
		var rows []row
		for _, s := range res.Matrix {
			r := row{name: s.Metric.String(), points: len(s.Points)}
			for _, p := range s.Points {
				r.sum += p.V
				r.peakV = max(r.peakV, p.V)
			}
			rows = append(rows, r)
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].sum > rows[j].sum })
		for i, r := range rows {
			if i == 8 {
				fmt.Fprintf(out, "   … %d more series\n", len(rows)-i)
				break
			}
			fmt.Fprintf(out, "   %-90s %4d points, peak %.4g, sum %.4g\n", r.name, r.points, r.peakV, r.sum)
		}
		fmt.Fprintf(out, "   %d series\n", len(rows))
	default:
		return writeRaw(out, res, true)
	}
	return nil
}

// writeDemoConfig writes a config in the settings schema: one static
// config per sample host, with that host's labels.
func writeDemoConfig(path, logs string, m sample.Manifest) error {
	hosts := map[string]map[string]string{}
	for _, f := range m.Files {
		host := strings.SplitN(f.Path, "/", 2)[0]
		if _, ok := hosts[host]; ok {
			continue
		}
		ls := map[string]string{"__path__": filepath.Join(logs, host, "*.log")}
		for k, v := range f.Labels {
			if k != "filename" {
				ls[k] = v
			}
		}
		hosts[host] = ls
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	var statics []map[string]any
	for _, h := range names {
		statics = append(statics, map[string]any{"labels": hosts[h]})
	}
	doc := map[string]any{
		"storage":        map[string]any{"path": "store", "retention": "0s"},
		"scrape_configs": []any{map[string]any{"job_name": "cosyvoice3", "static_configs": statics}},
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	header := "# Written by `lokal demo`: the datasource settings schema, as in Grafana's jsonData.\n"
	return os.WriteFile(path, append([]byte(header), b...), 0o644)
}
