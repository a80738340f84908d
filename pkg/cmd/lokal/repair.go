package main

import (
	"context"
	"fmt"
	"os"

	"github.com/lokal-logs/lokal/pkg/store"
)

// cmdRepair rebuilds a damaged store's manifest from its readable records,
// its checkpoint and the segments, and moves what it cannot read or account
// for into the store's quarantine folder; it deletes nothing. The store must
// not be open for writing elsewhere (stop the plugin or `lokal tail`).
func cmdRepair(_ context.Context, args []string, e env) error {
	fs := newFlags("repair", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	l, err := loadConfig(*cfg, e)
	if err != nil {
		return err
	}
	if _, err := os.Stat(l.storeDir); err != nil {
		return fmt.Errorf("no store at %s to repair", l.storeDir)
	}
	rep, err := store.Repair(l.storeDir)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(e.stderr, "found: %s\n", p)
	}
	if !rep.Changed {
		fmt.Fprintf(e.stdout, "store %s is sound: %d entries, nothing changed\n", rep.Dir, rep.EntriesRecovered)
		return nil
	}
	fmt.Fprintf(e.stdout, "repaired store %s from %s\n", rep.Dir, rep.Source)
	fmt.Fprintf(e.stdout, "entries recovered: %d\n", rep.EntriesRecovered)
	fmt.Fprintf(e.stdout, "entries lost: %d (corrupt or missing blocks)\n", rep.EntriesLost)
	if rep.EntriesUnaccounted > 0 || rep.SegmentsQuarantined > 0 {
		fmt.Fprintf(e.stdout, "entries in segments no manifest record accounts for: %d in %d segment files\n", rep.EntriesUnaccounted, rep.SegmentsQuarantined)
	}
	if rep.RecordsSkipped > 0 {
		fmt.Fprintf(e.stdout, "damaged manifest records left out: %d\n", rep.RecordsSkipped)
	}
	if rep.Quarantine != "" {
		kept := fmt.Sprintf("%d corrupt blocks and %d segment files", rep.BlocksQuarantined, rep.SegmentsQuarantined)
		if rep.ManifestKept {
			kept = "the damaged manifest, " + kept
		}
		fmt.Fprintf(e.stdout, "kept aside in %s, not deleted: %s\n", rep.Quarantine, kept)
	}
	if rep.ManifestRebuilt {
		fmt.Fprintln(e.stdout, "the ingester resumes from the file positions the rebuilt manifest holds; lines after them are read again from the log files that still exist")
	}
	return nil
}
