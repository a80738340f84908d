package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lokal-logs/lokal/pkg/bench"
	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/sample"
)

// cmdBench runs issue 5's benchmark suite: it generates a corpus with the
// project's sample writer (or uses --corpus), then measures the lokal binary
// itself in child processes beside grep on the raw files.
func cmdBench(ctx context.Context, args []string, e env) error {
	fs := newFlags("bench", e)
	corpus := fs.String("corpus", "", "existing directory of log files (e.g. from ../shared/bin/loggen); default: generate one")
	size := fs.String("size", "1GiB", "size of the generated corpus")
	seed := fs.Uint64("seed", 1, "seed of the generated corpus")
	work := fs.String("work", "", "work directory for the corpus and store (default: a new temp dir, removed afterwards)")
	runs := fs.Int("runs", 5, "warm runs of each query")
	idle := fs.Duration("idle", 10*time.Second, "how long the idle instance runs before its RSS is read")
	out := fs.String("out", "bench-results.json", "where to write the full results")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	n, err := config.ParseByteSize(*size)
	if err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	dir := *work
	if dir == "" {
		if dir, err = os.MkdirTemp("", "lokal-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	if *corpus == "" {
		*corpus = filepath.Join(dir, "corpus")
		if _, err := os.Stat(filepath.Join(*corpus, sample.ManifestFile)); err != nil {
			fmt.Fprintf(e.stderr, "corpus: writing %s of sample logs (seed %d) into %s…\n", *size, *seed, *corpus)
			if _, err := sample.Write(*corpus, sample.Options{Seed: *seed, Size: n, Span: 24 * time.Hour, Instances: 2, Needles: 20}); err != nil {
				return fmt.Errorf("write corpus: %w", err)
			}
		}
	}
	abs, err := filepath.Abs(*corpus)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the lokal binary: %w", err)
	}
	// The binary usually sits in the checkout's dist/: git finds the commit from there.
	res, err := bench.Run(ctx, bench.Options{Corpus: abs, Work: filepath.Join(dir, "work"), Lokal: self, Repo: filepath.Dir(self), Runs: *runs, IdleWait: *idle, Log: e.stderr})
	if err != nil {
		return err
	}
	bench.WriteTable(e.stdout, res)
	if err := bench.Save(*out, res); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	fmt.Fprintf(e.stderr, "results written to %s\n", *out)
	return nil
}

// cmdBenchWorker is the child that runs the query set in-process for
// cmdBench, so that its timings exclude process start and its peak RSS is
// the queries' own.
func cmdBenchWorker(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("bench-worker", e)
	cfg := fs.String("config", "", "config file")
	queries := fs.String("queries", "", "query set (JSON)")
	runs := fs.Int("runs", 1, "runs of each query")
	t0 := fs.String("t0", "", "Unix ns at which the parent started this process")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	began := time.Now()
	if ns, err := strconv.ParseInt(*t0, 10, 64); err == nil {
		began = time.Unix(0, ns)
	}
	b, err := os.ReadFile(*queries)
	if err != nil {
		return err
	}
	var qs []bench.Query
	if err := json.Unmarshal(b, &qs); err != nil {
		return fmt.Errorf("query set %s: %w", *queries, err)
	}
	_, st, err := openConfigStore(*cfg, e, false)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	// As `lokal query`, so the suite's peak RSS is what a query run costs.
	defer limitQueryMemory(e)()
	rep, err := bench.Worker(ctx, st, qs, *runs, began)
	if err != nil {
		return err
	}
	return json.NewEncoder(e.stdout).Encode(rep)
}
