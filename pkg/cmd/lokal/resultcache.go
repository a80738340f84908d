package main

import (
	"flag"
	"fmt"

	"github.com/lokal-logs/lokal/pkg/config"
)

// resultCacheFlag adds --result-cache to fs and returns the function that
// reads it once flags are parsed: the disk tier's budget as
// engine.Options.WithDiskCache takes it.
func resultCacheFlag(fs *flag.FlagSet) func() (int64, error) {
	v := fs.String("result-cache", "on", "block results kept on disk next to the store, so a new process starts warm: on (the smaller of 64MiB and 3% of the store), off, or a size such as 32MiB (a read-only store only reads them)")
	return func() (int64, error) {
		n, err := config.ParseResultCache(*v)
		if err != nil {
			return 0, fmt.Errorf("--result-cache: %w", err)
		}
		return n, nil
	}
}
