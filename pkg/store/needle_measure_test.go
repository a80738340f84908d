package store

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// TestMeasureNeedle reports, for a real store, what the needle query of
// issue 12 costs and where: the filters it reads and the blocks it decodes.
//
//	LOKAL_BENCH_STORE=/var/tmp/lokal-scale/work/store LOKAL_STORE_CORPUS=/var/tmp/scale/c10g go test -run MeasureNeedle -v ./pkg/store
func TestMeasureNeedle(t *testing.T) {
	dir := os.Getenv("LOKAL_BENCH_STORE")
	if dir == "" {
		t.Skip("set LOKAL_BENCH_STORE to a real store and LOKAL_STORE_CORPUS to its corpus")
	}
	m := loadCorpusManifest(t, corpusDir(t))
	s, err := OpenReadOnly(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "cosyvoice3")},
		Start: m.Start.UnixNano() - nsPerDay, End: m.End.UnixNano() + nsPerDay, Lines: true, Direction: Backward}
	var nb int
	var fbytes int64
	s.mu.RLock()
	for _, st := range s.m.match(p.Matchers) {
		for _, b := range st.blocks {
			nb++
			fbytes += int64(b.h.FilterLen)
		}
	}
	s.mu.RUnlock()
	t.Logf("blocks %d, filter bytes %s", nb, fmtMB(fbytes))
	idle := func() string {
		debug.FreeOSMemory()
		return fmt.Sprintf("RSS %d KB, summaries %s", rssKB(), fmtMB(summaryBytes.used.Load()))
	}
	t.Logf("after open: %s", idle())
	defer func() { t.Logf("after the queries: %s", idle()) }()
	for round := 0; round < 2; round++ {
		for _, nd := range m.Needles {
			p.Hint = &LineFilterHint{Groups: [][]string{{nd.Token}}}
			var c StatsCollector
			ctx := WithStats(context.Background(), &c)
			c0, t0 := cpuTime(), time.Now()
			n := drainMatching(t, s, ctx, p, nd.Token, 1000)
			st := c.Snapshot()
			if round == 1 {
				passed := 0
				s.mu.RLock()
				for _, st := range s.m.match(p.Matchers) {
					for _, b := range st.blocks {
						if sum := b.filterSum.Load(); sum == nil || sum.mayMatch(p.Hint) {
							passed++
						}
					}
				}
				s.mu.RUnlock()
				t.Logf("summaries %s, %d blocks pass them", fmtMB(summaryBytes.used.Load()), passed)
			}
			t.Logf("round %d %s: found %d, wall %v cpu %v, read %d skipped %d of %d, redecoded %d", round, nd.Token, n, time.Since(t0).Round(time.Microsecond), (cpuTime() - c0).Round(time.Microsecond), st.BlocksRead, st.BlocksSkipped, st.BlocksTotal, st.BlocksRedecoded)
		}
	}
}

func TestMeasureNeedleBlocks(t *testing.T) {
	dir := os.Getenv("LOKAL_BENCH_STORE")
	if dir == "" {
		t.Skip("set LOKAL_BENCH_STORE to a real store")
	}
	s, err := OpenReadOnly(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var raw, lines, n, big int64
	var maxRaw uint64
	segs := map[*segment]int{}
	for _, b := range s.m.blocks {
		n++
		raw += int64(b.h.RawBytes)
		lines += int64(b.h.LinesLen)
		maxRaw = max(maxRaw, uint64(b.h.RawBytes))
		if b.h.RawBytes > 4<<20 {
			big++
		}
		segs[b.seg]++
	}
	t.Logf("blocks %d segments %d, raw %s (avg %s, max %s, >4MiB %d), lines %s", n, len(segs), fmtMB(raw), fmtMB(raw/n), fmtMB(int64(maxRaw)), big, fmtMB(lines))
}

// TestMeasureNeedleFirst runs the needle query once per freshly opened
// store, as the first query of a process does (profile it with -cpuprofile).
func TestMeasureNeedleFirst(t *testing.T) {
	dir := os.Getenv("LOKAL_BENCH_STORE")
	if dir == "" {
		t.Skip("set LOKAL_BENCH_STORE to a real store and LOKAL_STORE_CORPUS to its corpus")
	}
	m := loadCorpusManifest(t, corpusDir(t))
	for i, nd := range m.Needles {
		s, err := OpenReadOnly(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "cosyvoice3")},
			Start: m.Start.UnixNano() - nsPerDay, End: m.End.UnixNano() + nsPerDay, Lines: true, Direction: Backward,
			Hint: &LineFilterHint{Groups: [][]string{{nd.Token}}}}
		c0, t0 := cpuTime(), time.Now()
		n := drainMatching(t, s, context.Background(), p, nd.Token, 1000)
		t.Logf("%d %s: found %d, wall %v cpu %v", i, nd.Token, n, time.Since(t0).Round(time.Microsecond), (cpuTime() - c0).Round(time.Microsecond))
		s.Close()
	}
}
