package engine_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/conformance"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// conformanceReaders returns the real store (flushed to blocks on disk)
// and the in-memory reference reader, both loaded with the corpus.
func conformanceReaders(t testing.TB, dir string) map[string]store.Reader {
	t.Helper()
	mem := memstore.New()
	if !raceEnabled {
		conformance.Load(t, dir, mem)
	}
	disk := conformance.Store(t, dir)
	return map[string]store.Reader{"store": disk, "memstore": mem}
}

func rowParams(t *testing.T, r conformance.Row) engine.Params {
	p := engine.Params{Query: r.Query, Direction: store.Backward}
	parse := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("row %s: bad time %q: %v", r.ID, s, err)
		}
		return ts
	}
	p.Start, p.End = parse(r.Start), parse(r.End)
	if r.Endpoint == "/loki/api/v1/query" {
		p.Instant = true
	}
	if r.Step != "" {
		d, err := time.ParseDuration(r.Step)
		if err != nil {
			t.Fatalf("row %s: bad step %q", r.ID, r.Step)
		}
		p.Step = d
	}
	if r.Limit != "" {
		n, err := strconv.Atoi(r.Limit)
		if err != nil {
			t.Fatalf("row %s: bad limit %q", r.ID, r.Limit)
		}
		p.Limit = n
	}
	if r.Direction == "forward" {
		p.Direction = store.Forward
	}
	return p
}

func TestLokiConformance(t *testing.T) {
	dir := testshared.Path(t, "loki-conformance")
	rows := conformance.ReadRows(t, filepath.Join(dir, "queries.tsv"))
	for name, st := range conformanceReaders(t, dir) {
		if name == "memstore" && raceEnabled {
			// The reference reader only cross-checks the real store.
			continue
		}
		t.Run(name, func(t *testing.T) {
			if hits := runConformance(t, dir, rows, engine.New(st, engine.Options{BlockCacheBytes: -1}), 1); hits != 0 {
				t.Errorf("%d block results reused with the cache off", hits)
			}
		})
		// With the per-block cache, each query twice: the warmed answer
		// must be Loki's too.
		t.Run(name+"/cached", func(t *testing.T) {
			hits := runConformance(t, dir, rows, engine.New(st, engine.Options{}), 2)
			if name == "store" && hits == 0 {
				t.Error("the repeated queries reused no block result")
			}
		})
	}
}

// runConformance evaluates each row repeat times, checking every answer,
// and returns the block results the engine reused.
func runConformance(t *testing.T, dir string, rows []conformance.Row, eng *engine.Engine, repeat int) (hits int64) {
	for _, r := range rows {
		t.Run(r.ID, func(t *testing.T) {
			want, raw := conformance.Answer(t, dir, r.ID)
			for i := 0; i < repeat; i++ {
				res, qerr := eng.Query(context.Background(), rowParams(t, r))
				hits += res.Stats.Cache.Hits
				checkConformance(t, r, want, raw, res, qerr)
			}
		})
	}
	return hits
}

// checkConformance compares one answer with Loki's.
func checkConformance(t *testing.T, r conformance.Row, want []byte, raw string, res engine.Result, qerr error) {
	t.Helper()
	if r.Status != "200" {
		if qerr == nil {
			t.Fatalf("%s (%s): Loki rejects it with %q; we answered", r.Query, r.Note, raw)
		}
		if qerr.Error() != raw {
			t.Errorf("%s: error message differs\n got: %s\nwant: %s", r.Query, qerr, raw)
		}
		return
	}
	if qerr != nil {
		t.Fatalf("%s (%s): %v", r.Query, r.Note, qerr)
	}
	diff, err := conformance.Compare(lokiapi.Marshal(res), want)
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Errorf("%s (%s) differs from Loki:\n%s", r.Query, r.Note, diff)
	}
}
