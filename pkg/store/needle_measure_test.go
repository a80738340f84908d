package store

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// needleParams is issue 12's needle query over all of m's corpus: the
// newest 1000 lines of {job="cosyvoice3"} holding token.
func needleParams(tb testing.TB, m corpusManifest, token string) SelectParams {
	return SelectParams{Matchers: []*labels.Matcher{mustMatcher(tb, labels.MatchEqual, "job", "cosyvoice3")},
		Start: m.Start.UnixNano() - nsPerDay, End: m.End.UnixNano() + nsPerDay, Lines: true, Direction: Backward,
		Hint: &LineFilterHint{Groups: [][]string{{token}}}}
}

// BenchmarkNeedleRealStore measures issue 12's needle query over a real
// store: warm/ in one opened store (its filter summaries kept from run to
// run), first/ in a store opened for each run, as the first query of a
// process. Each run queries every needle of the corpus once; it reports
// CPU time and the blocks read per run, and logs the summaries' memory and
// the process's RSS before and after. Profile it with -cpuprofile.
//
//	LOKAL_BENCH_STORE=/var/tmp/lokal-scale/work/store LOKAL_STORE_CORPUS=/var/tmp/scale/c10g \
//	  go test -run XXX -bench NeedleRealStore ./pkg/store
func BenchmarkNeedleRealStore(b *testing.B) {
	dir := os.Getenv("LOKAL_BENCH_STORE")
	if dir == "" {
		b.Skip("set LOKAL_BENCH_STORE to a real store and LOKAL_STORE_CORPUS to its corpus")
	}
	m := loadCorpusManifest(b, corpusDir(b))
	idle := func() string {
		debug.FreeOSMemory()
		return fmt.Sprintf("RSS %d KB, summaries %s", rssKB(), fmtMB(summaryBytes.used.Load()))
	}
	open := func() *Store {
		s, err := OpenReadOnly(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	query := func(s *Store) (read int) {
		for _, nd := range m.Needles {
			var c StatsCollector
			drainMatching(b, s, WithStats(context.Background(), &c), needleParams(b, m, nd.Token), nd.Token, 1000)
			read += c.Snapshot().BlocksRead
		}
		return read
	}
	b.Run("warm", func(b *testing.B) {
		s := open()
		defer s.Close()
		b.Logf("after open: %s", idle())
		query(s) // the summaries the warm runs use
		read := 0
		c0 := cpuTime()
		for b.Loop() {
			read += query(s)
		}
		b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(read)/float64(b.N), "blocks-read/op")
		b.Logf("after the queries: %s", idle())
	})
	b.Run("first", func(b *testing.B) {
		read := 0
		c0 := cpuTime()
		for b.Loop() {
			s := open()
			read += query(s)
			s.Close()
		}
		b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(read)/float64(b.N), "blocks-read/op")
	})
}
