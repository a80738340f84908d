package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// synthLines makes loggen-like lines without the corpus.
func synthLines(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	levels := []string{"INFO", "INFO", "INFO", "WARNING", "ERROR", "DEBUG"}
	msgs := []string{"tts done", "request received", "CUDA out of memory. Tried to allocate 2.94 GiB", "queue depth", "speaker embedding cached"}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s 2026-11-23 %02d:%02d:%02d,%03d - cosyvoice - %s - %s request_id=req-%08x rtf=%.3f",
			levels[rng.IntN(len(levels))], rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000),
			levels[rng.IntN(len(levels))], msgs[rng.IntN(len(msgs))], rng.Uint32(), rng.Float64()*2)
	}
	return out
}

func synthEntries(lines []string, start int64) []Entry {
	es := make([]Entry, len(lines))
	for i, l := range lines {
		es[i] = Entry{Ts: start + int64(i)*int64(time.Millisecond), Seq: uint64(i), Line: l}
	}
	return es
}

func BenchmarkEncodeBlock(b *testing.B) {
	es := synthEntries(synthLines(9000, 1), day0)
	raw := 0
	for _, e := range es {
		raw += len(e.Line)
	}
	c, _ := newCodecs(codecZstd)
	defer c.close()
	fb := newFilterBuilder()
	var buf []byte
	b.SetBytes(int64(raw))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _, _ = encodeBlock(buf[:0], es, c, fb)
	}
	b.ReportMetric(float64(len(buf))/float64(raw)*100, "%stored")
}

func BenchmarkDecodeBlock(b *testing.B) {
	es := synthEntries(synthLines(9000, 1), day0)
	c, _ := newCodecs(codecZstd)
	defer c.close()
	buf, h, _ := encodeBlock(nil, es, c, newFilterBuilder())
	for _, lines := range []bool{true, false} {
		b.Run(fmt.Sprintf("lines=%v", lines), func(b *testing.B) {
			b.SetBytes(int64(h.RawBytes))
			for i := 0; i < b.N; i++ {
				if _, _, err := decodeBlock(buf, c, lines); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFilter(b *testing.B) {
	es := synthEntries(synthLines(9000, 1), day0)
	raw := 0
	for _, e := range es {
		raw += len(e.Line)
	}
	fb := newFilterBuilder()
	b.Run("build", func(b *testing.B) {
		b.SetBytes(int64(raw))
		for i := 0; i < b.N; i++ {
			fb.build(nil, es)
		}
	})
	f, err := parseFilter(fb.build(nil, es))
	if err != nil {
		b.Fatal(err)
	}
	for _, lit := range []string{"needle-9392d4c63ecd7e57", "CUDA out of memory"} {
		b.Run("probe "+lit, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f.mayContain(lit)
			}
		})
	}
}

// BenchmarkAppendCommit measures the store's share of ingestion: append
// and commit (encode, filters, fsync) of synthetic lines.
func BenchmarkAppendCommit(b *testing.B) {
	lines := synthLines(50000, 3)
	raw := 0
	for _, l := range lines {
		raw += len(l)
	}
	ls := []labels.Labels{labels.FromStrings("job", "a", "filename", "x.log"), labels.FromStrings("job", "a", "filename", "y.log")}
	b.SetBytes(int64(raw))
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < len(lines); j += 1000 {
			es := synthEntries(lines[j:min(j+1000, len(lines))], day0+int64(i)*int64(time.Minute)+int64(j))
			if err := s.Append(context.Background(), AppendBatch{Streams: []StreamEntries{{Labels: ls[j/1000%2], Entries: es}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSelect scans a generated store of 4 streams x 200k entries.
func BenchmarkSelect(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lines := synthLines(200000, 5)
	for k := 0; k < 4; k++ {
		ls := labels.FromStrings("job", "a", "n", strconv.Itoa(k))
		for j := 0; j < len(lines); j += 5000 {
			es := synthEntries(lines[j:j+5000], day0+int64(j)*int64(time.Millisecond))
			if err := s.Append(context.Background(), AppendBatch{Streams: []StreamEntries{{Labels: ls, Entries: es}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	m := mustMatcher(b, labels.MatchEqual, "job", "a")
	cases := []struct {
		name string
		p    SelectParams
	}{
		{"lines forward", SelectParams{Matchers: []*labels.Matcher{m}, Start: day0, End: day0 + nsPerDay, Lines: true}},
		{"lines backward", SelectParams{Matchers: []*labels.Matcher{m}, Start: day0, End: day0 + nsPerDay, Lines: true, Direction: Backward}},
		{"counts only", SelectParams{Matchers: []*labels.Matcher{m}, Start: day0, End: day0 + nsPerDay}},
		{"absent needle", SelectParams{Matchers: []*labels.Matcher{m}, Start: day0, End: day0 + nsPerDay, Lines: true, Hint: &LineFilterHint{Groups: [][]string{{"needle-0123456789"}}}}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n := drain(b, s, tc.p, 0)
				if tc.p.Hint == nil && n != 800000 {
					b.Fatalf("%d entries", n)
				}
			}
		})
	}
}

// drain reads a select to its end, or to limit entries when limit > 0.
func drain(tb testing.TB, r Reader, p SelectParams, limit int) int {
	its, err := r.Select(context.Background(), p)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, it := range its {
		for (limit == 0 || n < limit) && it.Next() {
			n += len(it.At().Ts)
		}
		if err := it.Err(); err != nil {
			tb.Fatal(err)
		}
		it.Close()
	}
	return n
}

// BenchmarkCorpus ingests a loggen corpus and measures what issue 2 and 3
// ask of the store. Generate the corpus and run it with
//
//	/work/shared/bin/loggen -out /tmp/corpus -size 1GiB -needles 20
//	LOKAL_STORE_CORPUS=/tmp/corpus go test -run XXX -bench Corpus -benchtime 1x ./pkg/store
//
// Each file becomes a stream; its lines get the time written near their
// start, as the ingester's default detection does, or else one spread evenly
// over the corpus span by byte offset.
func BenchmarkCorpus(b *testing.B) {
	dir := corpusDir(b)
	m := loadCorpusManifest(b, dir)
	start, span := m.Start.UnixNano(), m.End.Sub(m.Start).Nanoseconds()
	storeDir := os.Getenv("LOKAL_STORE_DIR") // kept for BenchmarkCorpusIdle
	if storeDir == "" {
		storeDir = b.TempDir()
	}
	for i := 0; i < b.N; i++ {
		_ = os.RemoveAll(storeDir)
		s, err := Open(storeDir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		type file struct {
			sc   *bufio.Scanner
			f    *os.File
			ls   labels.Labels
			off  int64
			size int64
			key  string
		}
		var files []*file
		for _, mf := range m.Files {
			f, err := os.Open(filepath.Join(dir, mf.Path))
			if err != nil {
				b.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			files = append(files, &file{sc: sc, f: f, ls: labels.FromMap(mf.Labels), size: max(1, mf.Bytes), key: mf.Path})
		}
		var raw int64
		cpu0 := cpuTime()
		t0 := time.Now()
		for live := len(files); live > 0; {
			live = 0
			var batch AppendBatch
			batch.Cursors = map[string][]byte{}
			for _, f := range files {
				var es []Entry
				for len(es) < 2000 && f.sc.Scan() {
					line := f.sc.Text()
					ts := lineTime(line, start+int64(float64(span)*float64(f.off)/float64(f.size)))
					es = append(es, Entry{Ts: ts, Seq: uint64(f.off), Line: line})
					f.off += int64(len(line) + 1)
					raw += int64(len(line))
				}
				if len(es) > 0 {
					live++
					batch.Streams = append(batch.Streams, StreamEntries{Labels: f.ls, Entries: es})
					batch.Cursors[f.key] = []byte(strconv.FormatInt(f.off, 10))
				}
			}
			if err := s.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		ingest := time.Since(t0)
		ingestCPU := cpuTime() - cpu0
		for _, f := range files {
			f.f.Close()
		}

		t0 = time.Now()
		s, err = Open(storeDir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		openT := time.Since(t0)
		in := s.Info()
		all := []*labels.Matcher{mustMatcher(b, labels.MatchEqual, "job", "cosyvoice3")}
		full := SelectParams{Matchers: all, Start: start - nsPerDay, End: start + span + nsPerDay, Lines: true}

		// The first query after open: one needle.
		needle := m.Needles[0].Token
		t0 = time.Now()
		var c StatsCollector
		p := full
		p.Hint = &LineFilterHint{Groups: [][]string{{needle}}}
		drainMatching(b, s, WithStats(context.Background(), &c), p, needle, 0)
		firstQ := time.Since(t0)

		// All needles: time and false-positive rate of the filters.
		var needleT time.Duration
		var read, total, truePos int
		for _, nd := range m.Needles {
			var c StatsCollector
			p := full
			p.Hint = &LineFilterHint{Groups: [][]string{{nd.Token}}}
			t0 := time.Now()
			hits := drainMatching(b, s, WithStats(context.Background(), &c), p, nd.Token, 0)
			needleT += time.Since(t0)
			st := c.Snapshot()
			read += st.BlocksRead
			total += st.BlocksTotal
			truePos += hits
		}
		// Each needle sits in one line, so in one block.
		fpNeedle := float64(read-truePos) / float64(total-truePos)

		cuda := "CUDA out of memory"
		p = full
		p.Direction = Backward
		p.Hint = &LineFilterHint{Groups: [][]string{{cuda}}}
		t0 = time.Now()
		drainMatching(b, s, context.Background(), p, cuda, 1000)
		cudaT := time.Since(t0)
		c = StatsCollector{}
		drainMatching(b, s, WithStats(context.Background(), &c), func() SelectParams { q := p; q.Direction = Forward; return q }(), cuda, 0)
		cst := c.Snapshot()
		withCuda := blocksContaining(b, s, full, cuda)
		fpCuda := float64(cst.BlocksRead-withCuda) / float64(max(1, cst.BlocksTotal-withCuda))

		count := full
		count.Lines = false
		t0 = time.Now()
		n := drain(b, s, count, 0)
		countT := time.Since(t0)
		s.Close()

		b.ReportMetric(float64(raw)/ingest.Seconds()/1e6, "ingestMB/s")
		b.ReportMetric(float64(raw)/ingestCPU.Seconds()/1e6, "ingestMB/cpu-s")
		b.ReportMetric(float64(in.StoredBytes)/float64(in.RawBytes)*100, "%stored")
		b.ReportMetric(float64(openT.Microseconds())/1000, "open-ms")
		b.ReportMetric(float64(firstQ.Microseconds())/1000, "first-needle-ms")
		b.ReportMetric(float64(needleT.Microseconds())/1000/float64(len(m.Needles)), "needle-ms")
		b.ReportMetric(fpNeedle*100, "%needle-fp")
		b.ReportMetric(float64(cudaT.Microseconds())/1000, "cuda-limit1000-ms")
		b.ReportMetric(fpCuda*100, "%cuda-fp")
		b.ReportMetric(float64(countT.Microseconds())/1000, "count-all-ms")
		b.Logf("raw %s stored %s (%d blocks, %d partitions), %d entries counted; cuda blocks: %d of %d hold it, %d read",
			fmtMB(in.RawBytes), fmtMB(in.StoredBytes), in.Blocks, in.Partitions, n, withCuda, cst.BlocksTotal, cst.BlocksRead)
		b.Logf("peak RSS of this benchmark process: %s", peakRSS())
	}
}

// drainMatching reads a select and counts lines containing lit, stopping
// after limit matches when limit > 0.
func drainMatching(tb testing.TB, r Reader, ctx context.Context, p SelectParams, lit string, limit int) int {
	its, err := r.Select(ctx, p)
	if err != nil {
		tb.Fatal(err)
	}
	hits := 0
	for _, it := range its {
		for (limit == 0 || hits < limit) && it.Next() {
			for _, l := range it.At().Lines {
				if strings.Contains(l, lit) {
					hits++
				}
			}
		}
		if err := it.Err(); err != nil {
			tb.Fatal(err)
		}
		it.Close()
	}
	return hits
}

// blocksContaining counts blocks holding lit, by reading every block.
func blocksContaining(tb testing.TB, s *Store, p SelectParams, lit string) int {
	s.mu.RLock()
	var blocks []*blockRef
	for _, st := range s.m.match(p.Matchers) {
		blocks = append(blocks, st.blocks...)
	}
	s.mu.RUnlock()
	n := 0
	for _, bl := range blocks {
		d := &blockData{}
		if _, err := s.readBlock(bl, true, d, nil); err != nil {
			tb.Fatal(err)
		}
		for _, l := range d.lines {
			if strings.Contains(l, lit) {
				n++
				break
			}
		}
	}
	return n
}

func peakRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}

// BenchmarkCorpusIdle opens a store BenchmarkCorpus left in
// LOKAL_STORE_DIR, answers one needle query and reports the time to the
// first answer and the resident memory once idle:
//
//	LOKAL_STORE_DIR=/tmp/st LOKAL_STORE_CORPUS=/tmp/corpus go test -run XXX -bench 'Corpus$' -benchtime 1x ./pkg/store
//	LOKAL_STORE_DIR=/tmp/st LOKAL_STORE_CORPUS=/tmp/corpus go test -run XXX -bench CorpusIdle -benchtime 1x ./pkg/store
func BenchmarkCorpusIdle(b *testing.B) {
	dir := os.Getenv("LOKAL_STORE_DIR")
	if dir == "" {
		b.Skip("set LOKAL_STORE_DIR to a store made by BenchmarkCorpus")
	}
	m := loadCorpusManifest(b, corpusDir(b))
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(b, labels.MatchEqual, "job", "cosyvoice3")},
			Start: m.Start.UnixNano() - nsPerDay, End: m.End.UnixNano() + nsPerDay, Lines: true,
			Hint: &LineFilterHint{Groups: [][]string{{m.Needles[3].Token}}}}
		if n := drainMatching(b, s, context.Background(), p, m.Needles[3].Token, 0); n != 1 {
			b.Fatalf("needle found %d times", n)
		}
		first := time.Since(t0)
		runtime.GC()
		debug.FreeOSMemory()
		time.Sleep(3 * time.Second) // idle: only the background loop ticks
		c0 := cpuTime()
		time.Sleep(5 * time.Second)
		idleCPU := cpuTime() - c0
		b.ReportMetric(float64(first.Microseconds())/1000, "open+first-query-ms")
		b.ReportMetric(float64(rssKB())/1024, "idle-RSS-MiB")
		b.ReportMetric(float64(idleCPU.Microseconds())/5000, "idle-CPU-ms/s")
		s.Close()
	}
}

func rssKB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}

// BenchmarkCorpusQueries runs the engine's typical selects against a store
// BenchmarkCorpus left in LOKAL_STORE_DIR (see BenchmarkCorpusIdle).
func BenchmarkCorpusQueries(b *testing.B) {
	dir := os.Getenv("LOKAL_STORE_DIR")
	if dir == "" {
		b.Skip("set LOKAL_STORE_DIR to a store made by BenchmarkCorpus")
	}
	m := loadCorpusManifest(b, corpusDir(b))
	s, err := OpenReadOnly(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	all := SelectParams{Matchers: []*labels.Matcher{mustMatcher(b, labels.MatchEqual, "job", "cosyvoice3")},
		Start: m.Start.UnixNano() - nsPerDay, End: m.End.UnixNano() + nsPerDay}
	withHint := func(p SelectParams, lit string) SelectParams {
		p.Lines = true
		p.Hint = &LineFilterHint{Groups: [][]string{{lit}}}
		return p
	}
	b.Run("counts only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			drain(b, s, all, 0)
		}
	})
	b.Run("needle", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			nd := m.Needles[i%len(m.Needles)].Token
			if n := drainMatching(b, s, context.Background(), withHint(all, nd), nd, 0); n != 1 {
				b.Fatalf("needle found %d times", n)
			}
		}
	})
	b.Run("cuda all lines", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			drainMatching(b, s, context.Background(), withHint(all, "CUDA out of memory"), "CUDA out of memory", 0)
		}
	})
	b.Run("cuda newest 1000", func(b *testing.B) {
		p := withHint(all, "CUDA out of memory")
		p.Direction = Backward
		for i := 0; i < b.N; i++ {
			drainMatching(b, s, context.Background(), p, "CUDA out of memory", 1000)
		}
	})
}

// BenchmarkCorpusCompact recompacts, in place, a store BenchmarkCorpus left
// in LOKAL_STORE_DIR, as the background loop does once ingestion is idle,
// and reports the size before and after and the CPU it took (run
// BenchmarkCorpusQueries before and after to compare query times):
//
//	LOKAL_STORE_DIR=/tmp/st LOKAL_STORE_CORPUS=/tmp/corpus go test -run XXX -bench CorpusCompact -benchtime 1x ./pkg/store
func BenchmarkCorpusCompact(b *testing.B) {
	dir := os.Getenv("LOKAL_STORE_DIR")
	if dir == "" {
		b.Skip("set LOKAL_STORE_DIR to a store made by BenchmarkCorpus")
	}
	for i := 0; i < b.N; i++ {
		s, err := Open(dir, Options{CompactAfterIdle: -1})
		if err != nil {
			b.Fatal(err)
		}
		before := s.Info()
		b.Logf("before: %s", sectionShares(s))
		c0 := cpuTime()
		t0 := time.Now()
		if err := s.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(t0)
		cpu := cpuTime() - c0
		after := s.Info()
		b.Logf("after: %s", sectionShares(s))
		s.Close()
		b.ReportMetric(float64(before.StoredBytes)/float64(before.RawBytes)*100, "%stored-before")
		b.ReportMetric(float64(after.StoredBytes)/float64(after.RawBytes)*100, "%stored-after")
		b.ReportMetric(float64(before.RawBytes)/cpu.Seconds()/1e6, "compactMB/cpu-s")
		b.ReportMetric(wall.Seconds(), "compact-s")
		b.Logf("blocks %d -> %d, stored %s -> %s; peak RSS of this process: %s",
			before.Blocks, after.Blocks, fmtMB(before.StoredBytes), fmtMB(after.StoredBytes), peakRSS())
	}
}

// sectionShares says what share of the raw bytes each block section takes.
func sectionShares(s *Store) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var raw, meta, lines, filter, hdr float64
	for _, b := range s.m.blocks {
		raw += float64(b.h.RawBytes)
		meta += float64(b.h.MetaLen)
		lines += float64(b.h.LinesLen)
		filter += float64(b.h.FilterLen)
		hdr += blockHeaderSize + 12
	}
	return fmt.Sprintf("meta %.2f%%, lines %.2f%%, filter %.2f%%, headers %.3f%%, manifest %.3f%% of raw",
		meta/raw*100, lines/raw*100, filter/raw*100, hdr/raw*100, float64(s.manSize.Load())/raw*100)
}
