package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
)

// cmdCompact rewrites the store's fast-level blocks at zstd's stronger level
// and merges small blocks, as a running plugin does once ingestion is idle;
// `lokal ingest` exits before that would happen.
func cmdCompact(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("compact", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	_, st, err := openConfigStore(*cfg, e, true)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	before := st.Info()
	began := time.Now()
	// The store's errors start with "compact:" already.
	if err := st.Compact(ctx); err != nil {
		return err
	}
	after := st.Info()
	fmt.Fprintf(e.stdout, "compacted in %s: %d blocks (%s) → %d blocks (%s)\n", time.Since(began).Round(time.Millisecond),
		before.Blocks, config.HumanBytes(before.StoredBytes), after.Blocks, config.HumanBytes(after.StoredBytes))
	return nil
}
