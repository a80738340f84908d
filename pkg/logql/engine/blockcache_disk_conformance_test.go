package engine_test

import (
	"path/filepath"
	"testing"

	"github.com/lokal-logs/lokal/pkg/internal/conformance"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// Loki's answers through the disk tier: one engine computes the block
// results and writes them, a fresh engine (a restarted process) answers
// from them, and both answers are Loki's.
func TestLokiConformanceDiskTier(t *testing.T) {
	dir := testshared.Path(t, "loki-conformance")
	rows := conformance.ReadRows(t, filepath.Join(dir, "queries.tsv"))
	st := conformance.Store(t, dir)
	opts := engine.Options{DiskCache: true}
	first := engine.New(st, opts)
	runConformance(t, dir, rows, first, 1)
	first.FlushResultCache()
	t.Run("restarted", func(t *testing.T) {
		if hits := runConformance(t, dir, rows, engine.New(st, opts), 1); hits == 0 {
			t.Error("the fresh engine reused no block result from the disk")
		}
	})
}
