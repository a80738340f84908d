package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/lokal-logs/lokal/pkg/config"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/push"
	"github.com/lokal-logs/lokal/pkg/store"
)

func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("lokal "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// openWriter opens the config's store as its writer.
func openWriter(l *loaded) (*store.Store, error) {
	st, err := store.Open(l.storeDir, storeOptions(l))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", l.storeDir, err)
	}
	return st, nil
}

// openReader opens the store for a read-only command. Queries must work
// while the plugin or `lokal tail` writes, so a read-only open is used.
func openReader(l *loaded) (*store.Store, error) {
	if _, err := os.Stat(l.storeDir); err != nil {
		return nil, fmt.Errorf("no store at %s yet: run `lokal ingest --config %s` first", l.storeDir, l.path)
	}
	st, err := store.OpenReadOnly(l.storeDir, storeOptions(l))
	if err != nil {
		return nil, fmt.Errorf("open store %s read-only: %w", l.storeDir, err)
	}
	return st, nil
}

func storeOptions(l *loaded) store.Options {
	// HeadMemoryBudget: as the plugin, so `lokal ingest` measures what
	// the plugin does (it matters only to the commands that append).
	return store.Options{Retention: l.settings.Storage.RetentionOrDefault(), MaxBytes: l.settings.Storage.MaxBytesOrDefault(),
		HeadMemoryBudget: ingest.StoreHeadBudget}
}

// openConfigStore loads the config file and opens its store, as its writer
// or read-only; the caller closes the store with closeStore.
func openConfigStore(path string, e env, write bool) (*loaded, *store.Store, error) {
	l, err := loadConfig(path, e)
	if err != nil {
		return nil, nil, err
	}
	open := openReader
	if write {
		open = openWriter
	}
	st, err := open(l)
	if err != nil {
		return nil, nil, err
	}
	return l, st, nil
}

// closeStore closes st and reports a failure unless another error came first.
func closeStore(st *store.Store, err *error) {
	if cerr := st.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close store: %w", cerr)
	}
}

func cmdIngest(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("ingest", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	l, st, err := openConfigStore(*cfg, e, true)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	stopProfiles, err := startProfiles()
	if err != nil {
		return err
	}
	h, el, err := catchUp(ctx, l, st)
	if perr := stopProfiles(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	// The ingester forwarded while it read; send what its last commit
	// stored before exiting.
	startForwarding(l, st, e)()
	fmt.Fprintf(e.stdout, "ingested %d lines (%s) from %d files in %s (%.1f MB/s) into %s\n",
		h.Lines, config.HumanBytes(h.Bytes), h.FilesMatched, el.Round(time.Millisecond), float64(h.Bytes)/1e6/max(el.Seconds(), 1e-9), l.storeDir)
	return reportProblems(e.stderr, h)
}

// catchUp reads every source of l to its end into st and makes it durable.
func catchUp(ctx context.Context, l *loaded, st *store.Store) (ingest.Health, time.Duration, error) {
	in, err := ingest.New(l.settings, l.op, st, ingest.Options{})
	if err != nil {
		return ingest.Health{}, 0, err
	}
	began := time.Now()
	if err := in.CatchUp(ctx); err != nil {
		return ingest.Health{}, 0, fmt.Errorf("catch up: %w", err)
	}
	if err := st.Flush(ctx); err != nil {
		return ingest.Health{}, 0, fmt.Errorf("flush: %w", err)
	}
	return in.Health(), time.Since(began), nil
}

// reportProblems prints what the health check would show; rejected files
// make the command fail, since the user asked for them.
func reportProblems(w io.Writer, h ingest.Health) error {
	for _, r := range h.FilesRejected {
		fmt.Fprintf(w, "rejected %s: %s\n", r.Path, r.Reason)
	}
	for _, p := range h.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
	for _, p := range h.LabelCapWarnings {
		fmt.Fprintln(w, "warning:", p)
	}
	if h.TimestampFailures > 0 {
		fmt.Fprintf(w, "warning: %d lines had an unparsable timestamp; the time of reading was used\n", h.TimestampFailures)
	}
	if len(h.FilesRejected) > 0 {
		return fmt.Errorf("%d files were rejected", len(h.FilesRejected))
	}
	return nil
}

func cmdTail(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("tail", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	l, st, in, err := openFollower(*cfg, e)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	fmt.Fprintf(e.stderr, "following %d sources into %s; stop with Ctrl-C or SIGTERM\n", len(l.settings.ScrapeConfigs), l.storeDir)
	// Run returns nil once ctx ends (a signal) and its last lines are stored.
	if err := in.Run(ctx); err != nil {
		return err
	}
	if err := st.Flush(context.Background()); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	h := in.Health()
	fmt.Fprintf(e.stdout, "stopped: %d lines (%s) from %d files stored\n", h.Lines, config.HumanBytes(h.Bytes), h.FilesMatched)
	return reportProblems(e.stderr, h)
}

func cmdStats(_ context.Context, args []string, e env) (err error) {
	fs := newFlags("stats", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	verify := fs.Bool("verify", false, "check every block's checksums now (reads the whole store)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	_, st, err := openConfigStore(*cfg, e, false)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	if *verify {
		if _, err := st.Verify(); err != nil {
			return err
		}
	}
	in := st.Info()
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("store", in.Dir)
	row("streams", in.Streams)
	row("partitions (days)", in.Partitions)
	row("blocks", in.Blocks)
	row("entries", in.Entries+in.HeadEntries)
	row("raw bytes", config.HumanBytes(in.RawBytes+in.HeadBytes))
	row("stored bytes", config.HumanBytes(in.StoredBytes))
	if raw := in.RawBytes + in.HeadBytes; raw > 0 {
		row("stored/raw", fmt.Sprintf("%.1f%%", 100*float64(in.StoredBytes)/float64(raw)))
	}
	if in.MinTime != 0 || in.MaxTime != 0 {
		row("from", time.Unix(0, in.MinTime).UTC().Format(time.RFC3339Nano))
		row("to", time.Unix(0, in.MaxTime).UTC().Format(time.RFC3339Nano))
	}
	manifest := "ok"
	if in.ManifestProblem != "" {
		manifest = in.ManifestProblem
	}
	row("manifest", manifest)
	checked := "found so far; --verify checks every block"
	if *verify {
		checked = "every block checked"
	}
	corrupt := fmt.Sprintf("%d (%s)", in.CorruptBlocks, checked)
	if in.CorruptBlocks > 0 {
		corrupt += fmt.Sprintf(": %d entries skipped by every query; `lokal repair` moves them to quarantine", in.CorruptEntries)
	}
	row("corrupt blocks", corrupt)
	row("quarantined", in.Quarantined)
	if in.Paused {
		row("paused", in.LastError)
	}
	forwardStats(tw, st)
	return tw.Flush()
}

func cmdLabels(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("labels", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	since := fs.Duration("since", 0, "look back this far (default: everything stored)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		fmt.Fprintln(e.stderr, "usage: lokal labels --config F [NAME]")
		return errUsage
	}
	_, st, err := openConfigStore(*cfg, e, false)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	start, end := lookback(e, *since)
	var out []string
	if len(pos) == 0 {
		out, err = st.LabelNames(ctx, start, end)
	} else {
		out, err = st.LabelValues(ctx, pos[0], nil, start, end)
	}
	if err != nil {
		return err
	}
	sort.Strings(out)
	for _, s := range out {
		fmt.Fprintln(e.stdout, s)
	}
	return nil
}

func cmdSeries(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("series", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	since := fs.Duration("since", 0, "look back this far (default: everything stored)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, `usage: lokal series --config F '{job="cosyvoice3"}'`)
		return errUsage
	}
	expr, err := syntax.ParseExpr(pos[0])
	if err != nil {
		return err
	}
	sel, ok := expr.(syntax.LogSelectorExpr)
	if !ok {
		return fmt.Errorf("%s is not a stream selector", pos[0])
	}
	_, st, err := openConfigStore(*cfg, e, false)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	start, end := lookback(e, *since)
	sets, err := st.Streams(ctx, sel.Matchers(), start, end)
	if err != nil {
		return err
	}
	lines := make([]string, len(sets))
	for i, ls := range sets {
		lines[i] = ls.String()
	}
	sort.Strings(lines)
	for _, s := range lines {
		fmt.Fprintln(e.stdout, s)
	}
	return nil
}

// lookback is [now-since, now], or all time when since is 0.
func lookback(e env, since time.Duration) (int64, int64) {
	if since <= 0 {
		return 0, 1<<63 - 1
	}
	now := e.clock()
	return now.Add(-since).UnixNano(), now.UnixNano() + 1
}

func (e env) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

func cmdPush(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("push", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, "usage: lokal push --config F FILE|-")
		return errUsage
	}
	var r io.Reader = e.stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	l, st, err := openConfigStore(*cfg, e, true)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	defer startForwarding(l, st, e)()
	var n int
	err = push.Read(r, push.Options{}, func(b store.AppendBatch) error {
		for _, s := range b.Streams {
			n += len(s.Entries)
		}
		return st.Append(ctx, b)
	})
	if err != nil {
		if errors.Is(err, push.ErrInvalid) {
			return fmt.Errorf("%s: %w (nothing after this point was stored)", pos[0], err)
		}
		return err
	}
	if err := st.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	fmt.Fprintf(e.stdout, "pushed %d entries into %s\n", n, l.storeDir)
	return nil
}

// sortEntries orders entries by (ts, seq, labels), reversed when backward.
func sortEntries(es []flatEntry, backward bool) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if backward {
			a, b = b, a
		}
		if a.ts != b.ts {
			return a.ts < b.ts
		}
		if a.seq != b.seq {
			return a.seq < b.seq
		}
		return labels.Compare(a.labels, b.labels) < 0
	})
}
