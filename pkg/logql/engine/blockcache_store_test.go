package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/bench"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/store"
)

// TestBlockCacheRealStore runs the benchmark's query set over a real store
// (LOKAL_BENCH_STORE, e.g. the store `lokal bench --work DIR` leaves in
// DIR/work/store) with the block cache off, then on twice, and checks the
// three answers are the same. It logs the times; it asserts none.
func TestBlockCacheRealStore(t *testing.T) {
	dir := testshared.EnvDir(t, "LOKAL_BENCH_STORE", "LOKAL_BENCH_STORE is not set: no real store to compare the cache on")
	st, err := store.OpenReadOnly(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	info := st.Info()
	start, end := time.Unix(0, info.MinTime).UTC(), time.Unix(0, info.MaxTime+1).UTC()
	off := engine.New(st, engine.Options{BlockCacheBytes: -1})
	on := engine.New(st, engine.Options{})
	ctx := context.Background()
	for _, q := range bench.QuerySet("needle") {
		t.Run(q.Name, func(t *testing.T) {
			p := bench.Params(q, start, end)
			var bodies [][]byte
			var took []string
			for i, e := range []*engine.Engine{off, on, on} {
				began := time.Now()
				res, err := e.Query(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				took = append(took, fmt.Sprintf("%s %v (cache %+v)", []string{"off", "first", "repeated"}[i], time.Since(began).Round(100*time.Microsecond), res.Stats.Cache))
				res.Stats = engine.Stats{}
				bodies = append(bodies, lokiapi.Marshal(res))
			}
			t.Log(strings.Join(took, ", "))
			for i, b := range bodies[1:] {
				if !bytes.Equal(b, bodies[0]) {
					t.Errorf("answer %d with the cache differs from the one without", i+1)
				}
			}
		})
	}
}
