// Command lokal is Lokal's command line: the same ingestion, store and
// LogQL engine as the Grafana plugin, driven by a config file in the
// datasource's settings schema.
//
//	lokal ingest --config F          catch up on every source, then exit
//	lokal tail --config F            keep following until SIGINT/SIGTERM
//	lokal serve --config F           follow, and serve Loki's HTTP API
//	lokal stats --config F           streams, blocks, bytes, time range
//	lokal repair --config F          rebuild a damaged store's manifest
//	lokal query --config F QUERY     run LogQL (-o raw|jsonl|json)
//	lokal labels --config F [NAME]   label names, or one label's values
//	lokal series --config F SELECTOR the streams a selector matches
//	lokal push --config F FILE|-     store Loki push-API JSON as given
//	lokal sample --dir D [--live]    write sample CosyVoice3 logs
//	lokal demo                       sample → ingest → the seed's queries
//	lokal forward --config F --to URL [SELECTOR]  backfill into a Loki
//	lokal migrate-dashboards --from-uid A --to-uid B FILE  switch datasource
//
// Operator controls: like the plugin, the CLI reads only below the
// directories in GF_PLUGIN_ALLOWED_PATHS and keeps stores below
// GF_PLUGIN_DATA_PATH. At a terminal the operator is the user, so when
// GF_PLUGIN_ALLOWED_PATHS is unset the directories named by the config
// file's __path__ globs are allowed, and when GF_PLUGIN_DATA_PATH is unset
// an absolute storage.path is used as given.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lokal-logs/lokal/pkg/ingest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "ingest", "tail", "serve", "demo":
			// Ingesting commands trade some CPU for a heap near their live
			// set; queries keep Go's default (see ingest.ProcessGCPercent).
			ingest.SetProcessGC(os.Getenv)
		}
		if os.Args[1] == "ingest" || os.Args[1] == "tail" {
			// Ingest only: no query shares the heap (queries run in
			// processes of their own; see ingest.ProcessMemoryLimit).
			ingest.SetProcessMemoryLimit(os.Getenv)
		}
	}
	code := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is what a command may touch, so tests can run commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// now is the clock for relative times; nil means time.Now.
	now func() time.Time
}

const usage = `usage: lokal <command> [flags]

commands:
  ingest  --config F                 catch up on all sources, then exit
  tail    --config F                 follow the sources until SIGINT/SIGTERM, then flush and exit
  serve   --config F [--listen ADDR] follow the sources and serve Loki's HTTP API (lokal serve -h for auth, TLS)
  stats   --config F [--verify]      streams, blocks, bytes raw/stored, time range, store health
  repair  --config F                 rebuild a damaged store's manifest; quarantine what cannot be read
  query   --config F [flags] QUERY   run a LogQL query (lokal query -h for flags)
  labels  --config F [NAME]          label names, or the values of label NAME
  series  --config F SELECTOR        label sets of the streams SELECTOR matches
  push    --config F FILE|-          store entries in Loki's push API JSON exactly as given
  sample  --dir D [--live]           write sample CosyVoice3 logs into D
  demo    [--dir D]                  write a sample, ingest it and run the seed's queries
  compact --config F                 recompact the store now (the plugin does it when idle)
  forward --config F --to URL [--from T] [--to-time T] [SELECTOR]
                                     backfill the store into a Loki, resumable, with a final count
  migrate-dashboards --from-uid A --to-uid B FILE.json
                                     point a dashboard's or rule file's queries at another datasource
  bench   [--corpus D] [--size 1GiB] measure ingest, restart, idle and the query set beside grep;
                                     --size 1GiB,4GiB,10GiB: each figure's growth with the data

The config file uses the datasource's settings schema (YAML or JSON).
GF_PLUGIN_ALLOWED_PATHS and GF_PLUGIN_DATA_PATH work as in the plugin; when
GF_PLUGIN_ALLOWED_PATHS is unset the CLI allows the directories the config's
__path__ globs name.
`

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, env) error{
		"ingest":  cmdIngest,
		"tail":    cmdTail,
		"serve":   cmdServe,
		"stats":   cmdStats,
		"repair":  cmdRepair,
		"query":   cmdQuery,
		"labels":  cmdLabels,
		"series":  cmdSeries,
		"push":    cmdPush,
		"sample":  cmdSample,
		"demo":    cmdDemo,
		"compact": cmdCompact,
		"bench":   cmdBench,
		// bench-worker is cmdBench's child; not listed in the usage.
		"bench-worker": cmdBenchWorker,

		// Moving to a Loki cluster.
		"forward":            cmdForward,
		"migrate-dashboards": cmdMigrateDashboards,
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Fprint(e.stdout, usage)
		return 0
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(e.stderr, "lokal: unknown command %q\n\n%s", name, usage)
		return 2
	}
	if err := cmd(ctx, args[1:], e); err != nil {
		if err == errUsage {
			return 2
		}
		if err != errReported {
			fmt.Fprintf(e.stderr, "lokal %s: %v\n", name, err)
		}
		return 1
	}
	return 0
}
