package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	corpus := fs.String("corpus", "", "existing directories of log files (e.g. from ../shared/bin/loggen), comma-separated, one per --size; default: generate them")
	size := fs.String("size", "1GiB", "size of the generated corpus; several, comma-separated (1GiB,4GiB,10GiB), make a scaling run that prints each figure's growth")
	span := fs.Duration("span", 0, "time covered by a generated corpus (default 24h for one size, 168h for a scaling run)")
	seed := fs.Uint64("seed", 1, "seed of the generated corpus")
	work := fs.String("work", "", "work directory for the corpora and stores, kept for the next run (default: a new temp dir, removed afterwards)")
	runs := fs.Int("runs", 5, "warm runs of each query")
	idle := fs.Duration("idle", 10*time.Second, "how long the idle instance runs before its RSS is read")
	out := fs.String("out", "bench-results.json", "where to write the full results")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var sizes []int64
	names := strings.Split(*size, ",")
	for _, s := range names {
		n, err := config.ParseByteSize(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--size %s: %w", s, err)
		}
		if n <= 0 {
			return fmt.Errorf("--size %s: a corpus needs a size above 0", s)
		}
		sizes = append(sizes, n)
	}
	if !slices.IsSorted(sizes) {
		return fmt.Errorf("--size %s: list the sizes smallest first (growth is against the first)", *size)
	}
	var corpora []string
	if *corpus != "" {
		corpora = strings.Split(*corpus, ",")
		if len(corpora) != len(sizes) {
			return fmt.Errorf("--corpus names %d directories for %d sizes: give one per size", len(corpora), len(sizes))
		}
	}
	if *span == 0 {
		*span = 24 * time.Hour
		if len(sizes) > 1 {
			*span = 7 * 24 * time.Hour
		}
	}
	dir := *work
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "lokal-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the lokal binary: %w", err)
	}
	var all []*bench.Results
	for i, n := range sizes {
		name := strings.TrimSpace(names[i])
		c := ""
		if corpora != nil {
			c = corpora[i]
		} else {
			c = filepath.Join(dir, "corpus")
			if len(sizes) > 1 {
				c += "-" + name
			}
			if _, err := os.Stat(filepath.Join(c, sample.ManifestFile)); err != nil {
				fmt.Fprintf(e.stderr, "corpus: writing %s of sample logs over %s (seed %d) into %s…\n", name, *span, *seed, c)
				if _, err := sample.Write(c, sample.Options{Seed: *seed, Size: n, Span: *span, Instances: 2, Needles: 20}); err != nil {
					return fmt.Errorf("write corpus: %w", err)
				}
			}
		}
		abs, err := filepath.Abs(c)
		if err != nil {
			return err
		}
		if len(sizes) > 1 {
			fmt.Fprintf(e.stderr, "size %s: %s\n", name, abs)
		}
		// The binary usually sits in the checkout's dist/: git finds the commit from there.
		res, err := bench.Run(ctx, bench.Options{Corpus: abs, Work: filepath.Join(dir, "work"), Lokal: self, Repo: filepath.Dir(self), Runs: *runs, IdleWait: *idle, Log: e.stderr})
		if err != nil {
			return fmt.Errorf("size %s: %w", name, err)
		}
		all = append(all, res)
	}
	if len(all) == 1 {
		bench.WriteTable(e.stdout, all[0])
		err = bench.Save(*out, all[0])
	} else {
		sc := bench.Scale(all)
		for _, n := range names {
			sc.Names = append(sc.Names, strings.TrimSpace(n))
		}
		bench.WriteScaleTable(e.stdout, sc)
		err = bench.Save(*out, sc)
	}
	if err != nil {
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
