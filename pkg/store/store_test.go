package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// day0 is a fixed test time: 2026-11-23T00:00:00Z.
var day0 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixNano()

type streamData struct {
	lbls    labels.Labels
	entries []Entry
}

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// openReadOnlyTest opens a read-only reader of dir (the CLI beside a
// writer), closed when the test ends.
func openReadOnlyTest(t *testing.T, dir string) *Store {
	t.Helper()
	r, err := OpenReadOnly(dir, Options{})
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func appendAll(t *testing.T, s *Store, data []streamData, cursors map[string][]byte) {
	t.Helper()
	var b AppendBatch
	for _, sd := range data {
		b.Streams = append(b.Streams, StreamEntries{Labels: sd.lbls, Entries: sd.entries})
	}
	b.Cursors = cursors
	if err := s.Append(context.Background(), b); err != nil {
		t.Fatalf("append: %v", err)
	}
}

// readAll drains a select into per-stream entries, checking the order.
func readAll(t *testing.T, r Reader, p SelectParams) map[string][]Entry {
	t.Helper()
	its, err := r.Select(context.Background(), p)
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	out := map[string][]Entry{}
	for _, it := range its {
		var got []Entry
		for it.Next() {
			b := it.At()
			if len(b.Ts) != len(b.Seq) || len(b.Ts) != len(b.Sizes) {
				t.Fatalf("batch columns disagree: %d %d %d", len(b.Ts), len(b.Seq), len(b.Sizes))
			}
			if p.Lines != (b.Lines != nil) {
				t.Fatalf("Lines=%v but batch lines nil=%v", p.Lines, b.Lines == nil)
			}
			for i := range b.Ts {
				e := Entry{Ts: b.Ts[i], Seq: b.Seq[i]}
				if b.Metadata != nil {
					if len(b.Metadata) != len(b.Ts) {
						t.Fatalf("batch has %d metadata for %d entries", len(b.Metadata), len(b.Ts))
					}
					e.Metadata = b.Metadata[i]
				}
				if p.Lines {
					e.Line = b.Lines[i]
					if int(b.Sizes[i]) != len(e.Line) {
						t.Fatalf("size %d for line of %d bytes", b.Sizes[i], len(e.Line))
					}
				} else {
					e.Line = fmt.Sprintf("<%d>", b.Sizes[i])
				}
				got = append(got, e)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("iterate: %v", err)
		}
		if err := it.Close(); err != nil {
			t.Fatalf("close iterator: %v", err)
		}
		out[it.Labels().String()] = got
	}
	return out
}

// expected computes what a select must return from the appended data.
func expected(data []streamData, p SelectParams) map[string][]Entry {
	out := map[string][]Entry{}
	for _, sd := range data {
		if !labels.MatchLabels(sd.lbls, p.Matchers...) {
			continue
		}
		var es []Entry
		for _, e := range sd.entries {
			if e.Ts >= p.Start && e.Ts < p.End {
				if !p.Lines {
					e.Line = fmt.Sprintf("<%d>", len(e.Line))
				}
				es = append(es, e)
			}
		}
		if len(es) == 0 {
			continue
		}
		k := sd.lbls.String()
		es = append(out[k], es...)
		slices.SortStableFunc(es, compareEntries)
		if p.Direction == Backward {
			slices.Reverse(es)
		}
		out[k] = es
	}
	return out
}

// entryEqual compares entries field by field, metadata included.
func entryEqual(a, b Entry) bool {
	return a.Ts == b.Ts && a.Seq == b.Seq && a.Line == b.Line && labels.Equal(a.Metadata, b.Metadata)
}

func diff(t *testing.T, got, want map[string][]Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d streams %v, want %d %v", len(got), keys(got), len(want), keys(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("missing stream %s", k)
		}
		if len(g) != len(w) {
			t.Fatalf("stream %s: got %d entries, want %d", k, len(g), len(w))
		}
		for i := range w {
			if !entryEqual(g[i], w[i]) {
				t.Fatalf("stream %s entry %d: got %+v, want %+v", k, i, g[i], w[i])
			}
		}
	}
}

func keys(m map[string][]Entry) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func genStream(rng *rand.Rand, ls labels.Labels, n int, start, span int64, words []string) streamData {
	sd := streamData{lbls: ls}
	for i := 0; i < n; i++ {
		ts := start + rng.Int64N(span)
		line := fmt.Sprintf("%s line %d %s", words[rng.IntN(len(words))], i, strings.Repeat("x", rng.IntN(40)))
		sd.entries = append(sd.entries, Entry{Ts: ts, Seq: uint64(i), Line: line})
	}
	return sd
}

func mustMatcher(t testing.TB, typ labels.MatchType, n, v string) *labels.Matcher {
	m, err := labels.NewMatcher(typ, n, v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRoundTrip(t *testing.T) { roundTrip(t, false) }

// TestRoundTripMetadata is TestRoundTrip with structured metadata on some
// entries of some streams: version 3 blocks beside version 2 ones, merged
// in commits and recompaction.
func TestRoundTripMetadata(t *testing.T) { roundTrip(t, true) }

// withMetadata gives every third entry of sd structured metadata, one of a
// few sets so blocks share them.
func withMetadata(sd streamData) streamData {
	sets := []labels.Labels{
		labels.FromStrings("detected_level", "info"),
		labels.FromStrings("detected_level", "error", "trace_id", "0af7651916cd43dd"),
		labels.FromStrings("a", "", "z", "\x00 \"quoted\" ünïcode"),
	}
	for i := range sd.entries {
		if i%3 == 0 {
			sd.entries[i].Metadata = sets[(i/3)%len(sets)]
		}
	}
	return sd
}

func roundTrip(t *testing.T, metadata bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"info", "error", "warn CUDA out of memory", "debug"}
	hour := int64(time.Hour)
	// Three appends with commits in between: overlapping, out-of-order
	// blocks; the last append stays in the head.
	a := labels.FromStrings("job", "tts", "host", "a")
	b := labels.FromStrings("job", "tts", "host", "b")
	c := labels.FromStrings("job", "web", "host", "a")
	rounds := [][]streamData{
		{genStream(rng, a, 3000, day0, 30*hour, words), genStream(rng, b, 500, day0, 2*hour, words)},
		{genStream(rng, a, 2000, day0+hour, 3*hour, words), genStream(rng, c, 10, day0-hour, hour, words)},
		{genStream(rng, a, 300, day0, 40*hour, words), genStream(rng, b, 100, day0, hour, words)},
	}
	if metadata {
		// Stream c stays without: its blocks remain version 2.
		for _, r := range rounds {
			for i := range r {
				if !labels.Equal(r[i].lbls, c) {
					r[i] = withMetadata(r[i])
				}
			}
		}
	}
	// Unique (Ts, Seq) per stream so the expected order is total.
	seq := uint64(0)
	var all []streamData
	for _, r := range rounds {
		for i := range r {
			for j := range r[i].entries {
				seq++
				r[i].entries[j].Seq = seq
			}
		}
		all = append(all, r...)
	}
	dir := t.TempDir()
	s := openTest(t, dir)
	defer func() { _ = s.Close() }()
	for i, r := range rounds {
		appendAll(t, s, r, nil)
		if i < len(rounds)-1 {
			if err := s.Flush(context.Background()); err != nil {
				t.Fatalf("flush: %v", err)
			}
		}
	}
	tts := mustMatcher(t, labels.MatchEqual, "job", "tts")
	cases := []struct {
		name string
		p    SelectParams
	}{
		{"all forward", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0 - 10*hour, End: day0 + 50*hour, Lines: true}},
		{"all backward", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0 - 10*hour, End: day0 + 50*hour, Direction: Backward, Lines: true}},
		{"window forward", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0 + hour + 17, End: day0 + 2*hour + 5, Lines: true}},
		{"window backward", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0 + hour + 17, End: day0 + 2*hour + 5, Direction: Backward, Lines: true}},
		{"day edge", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0 + 24*hour - 1, End: day0 + 24*hour + 1, Lines: true}},
		{"no lines", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0, End: day0 + 50*hour}},
		{"no lines backward", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0, End: day0 + 50*hour, Direction: Backward}},
		{"regex", SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchRegexp, "job", "t.s|we.")}, Start: day0 - hour, End: day0 + hour, Lines: true}},
		{"negative", SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchNotEqual, "host", "a")}, Start: day0 - hour, End: day0 + 50*hour, Lines: true}},
		{"negative regex", SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchNotRegexp, "job", "tts"), mustMatcher(t, labels.MatchEqual, "host", "a")}, Start: day0 - 2*hour, End: day0 + 50*hour, Lines: true, Direction: Backward}},
		{"missing label", SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "nope", "x")}, Start: day0 - 2*hour, End: day0 + 50*hour, Lines: true}},
		{"empty range", SelectParams{Matchers: []*labels.Matcher{tts}, Start: day0, End: day0, Lines: true}},
		{"exact entry", SelectParams{Matchers: []*labels.Matcher{tts}, Start: rounds[0][0].entries[7].Ts, End: rounds[0][0].entries[7].Ts + 1, Lines: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diff(t, readAll(t, s, tc.p), expected(all, tc.p))
		})
	}
	// The same answers after a restart, all from blocks.
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = openTest(t, dir)
	for _, tc := range cases {
		t.Run("reopened "+tc.name, func(t *testing.T) {
			diff(t, readAll(t, s, tc.p), expected(all, tc.p))
		})
	}
	ro, err := OpenReadOnly(dir, Options{})
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	defer ro.Close()
	for _, tc := range cases[:2] {
		diff(t, readAll(t, ro, tc.p), expected(all, tc.p))
	}
	if !metadata {
		return
	}
	// Recompaction rewrites the blocks; nothing may change.
	if err := s.Compact(context.Background()); err != nil {
		t.Fatalf("compact: %v", err)
	}
	for _, tc := range cases {
		t.Run("compacted "+tc.name, func(t *testing.T) {
			diff(t, readAll(t, s, tc.p), expected(all, tc.p))
		})
	}
	if n, err := s.Verify(); err != nil || n != 0 {
		t.Fatalf("verify: %d corrupt blocks, %v", n, err)
	}
}

func TestHintPrunesBlocks(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	ls := labels.FromStrings("job", "x")
	var es []Entry
	for i := 0; i < 100; i++ {
		es = append(es, Entry{Ts: day0 + int64(i), Seq: uint64(i), Line: fmt.Sprintf("plain line %d", i)})
	}
	appendAll(t, s, []streamData{{ls, es}}, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Another day, so another block (small blocks of one day merge).
	es2 := []Entry{{Ts: day0 + nsPerDay, Seq: 1000, Line: "an ERROR happened"}}
	appendAll(t, s, []streamData{{ls, es2}}, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		hint        *LineFilterHint
		read, skips int
	}{
		{"nil", nil, 2, 0},
		{"substring", &LineFilterHint{Groups: [][]string{{"rror"}}}, 1, 1},
		{"case folded", &LineFilterHint{Groups: [][]string{{"error"}}}, 1, 1},
		{"absent", &LineFilterHint{Groups: [][]string{{"needle-0123"}}}, 0, 2},
		{"alternation", &LineFilterHint{Groups: [][]string{{"needle-0123", "plain"}}}, 1, 1},
		{"two groups", &LineFilterHint{Groups: [][]string{{"plain"}, {"ERROR"}}}, 0, 2},
		{"short literal", &LineFilterHint{Groups: [][]string{{"zz"}}}, 2, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c StatsCollector
			ctx := WithStats(context.Background(), &c)
			its, err := s.Select(ctx, SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + 2*nsPerDay, Hint: tc.hint, Lines: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range its {
				for it.Next() {
				}
				it.Close()
			}
			st := c.Snapshot()
			if st.BlocksTotal != 2 || st.BlocksRead != tc.read || st.BlocksSkipped != tc.skips {
				t.Fatalf("stats %+v, want read %d skipped %d of 2", st, tc.read, tc.skips)
			}
		})
	}
}

func TestLabelsAPI(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	appendAll(t, s, []streamData{
		{labels.FromStrings("job", "a", "level", "info"), []Entry{{Ts: day0, Line: "x"}}},
		{labels.FromStrings("job", "a", "level", "error"), []Entry{{Ts: day0 + 10, Line: "y"}}},
		{labels.FromStrings("job", "b", "env", "prod"), []Entry{{Ts: day0 + 20, Line: "z"}}},
	}, nil)
	ctx := context.Background()
	for _, flush := range []bool{false, true} {
		if flush {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		names, err := s.LabelNames(ctx, day0, day0+15)
		if err != nil || !slices.Equal(names, []string{"job", "level"}) {
			t.Fatalf("names %v %v", names, err)
		}
		vals, err := s.LabelValues(ctx, "level", []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "a")}, day0, day0+100)
		if err != nil || !slices.Equal(vals, []string{"error", "info"}) {
			t.Fatalf("values %v %v", vals, err)
		}
		ss, err := s.Streams(ctx, []*labels.Matcher{mustMatcher(t, labels.MatchRegexp, "job", ".+")}, day0+5, day0+100)
		if err != nil || len(ss) != 2 || ss[0].String() != `{env="prod", job="b"}` {
			t.Fatalf("streams %v %v", ss, err)
		}
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	bad := []AppendBatch{
		{Streams: []StreamEntries{{Labels: nil, Entries: []Entry{{Ts: 1, Line: "x"}}}}},
		{Streams: []StreamEntries{{Labels: labels.Labels{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}}, Entries: []Entry{{Ts: 1, Line: "x"}}}}},
		{Streams: []StreamEntries{{Labels: labels.FromStrings("a", "1"), Entries: []Entry{{Ts: 1, Line: "ok"}}}, {Labels: labels.FromStrings("a", ""), Entries: []Entry{{Ts: 1, Line: "x"}}}}},
	}
	for i, b := range bad {
		if err := s.Append(context.Background(), b); err == nil {
			t.Fatalf("batch %d accepted", i)
		}
	}
	if in := s.Info(); in.HeadEntries != 0 || in.Streams != 0 {
		t.Fatalf("rejected batches left data: %+v", in)
	}
}

func TestCursorsCommitWithEntries(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ls := labels.FromStrings("job", "x")
	appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0, Line: "a"}}}}, map[string][]byte{"f1": []byte("10"), "f2": []byte("5")})
	if got := s.Cursors(); len(got) != 0 {
		t.Fatalf("cursors before commit: %v", got)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, nil, map[string][]byte{"f2": nil, "f1": []byte("20")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	got := s.Cursors()
	if len(got) != 1 || string(got["f1"]) != "20" {
		t.Fatalf("cursors after reopen: %v", got)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	_, err := Open(dir, Options{})
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), fmt.Sprintf("locked by pid %d", os.Getpid())) {
		t.Fatalf("second writer: %v", err)
	}
	ro, err := OpenReadOnly(dir, Options{})
	if err != nil {
		t.Fatalf("reader beside the writer: %v", err)
	}
	ro.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	s2.Close()
}

// TestCrashConsistency kills a commit between the segment write and the
// manifest record, and right after the record: a reopened store has either
// none or all of it, with cursors to match, and re-appending from the
// cursor duplicates nothing.
func TestCrashConsistency(t *testing.T) {
	for _, stage := range []string{"segment-sync", "manifest-append", "manifest-sync"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			ls := labels.FromStrings("job", "x")
			file := make([]Entry, 200)
			for i := range file {
				file[i] = Entry{Ts: day0 + int64(i), Seq: uint64(i), Line: fmt.Sprintf("line %d", i)}
			}
			s := openTest(t, dir)
			appendAll(t, s, []streamData{{ls, file[:100]}}, map[string][]byte{"f": []byte("100")})
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			appendAll(t, s, []streamData{{ls, file[100:]}}, map[string][]byte{"f": []byte("200")})
			s.setFaults(func(st string) error {
				if st == stage {
					return errSimulatedCrash
				}
				return nil
			})
			if err := s.Flush(context.Background()); !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("flush: %v", err)
			}
			s.abandon()

			s = openTest(t, dir)
			defer s.Close()
			cur := string(s.Cursors()["f"])
			var upto int
			fmt.Sscan(cur, &upto)
			// The ingester resumes from the cursor.
			appendAll(t, s, []streamData{{ls, file[upto:]}}, map[string][]byte{"f": []byte("200")})
			p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + 1000, Lines: true}
			diff(t, readAll(t, s, p), expected([]streamData{{ls, file}}, p))
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			diff(t, readAll(t, s, p), expected([]streamData{{ls, file}}, p))
			// No stray files.
			files, _ := filepath.Glob(filepath.Join(dir, dataDirName, "*", "*"))
			if in := s.Info(); len(files) != countSegments(s) {
				t.Fatalf("%d files for %d segments (%+v)", len(files), countSegments(s), in)
			}
		})
	}
}

func countSegments(s *Store) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m.segments)
}

func TestTornManifestTail(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ls := labels.FromStrings("job", "x")
	appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0, Line: "kept"}}}}, map[string][]byte{"f": []byte("1")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, manifestName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5}) // a record that never finished
	f.Close()
	s = openTest(t, dir)
	defer s.Close()
	if in := s.Info(); in.Entries != 1 || string(s.Cursors()["f"]) != "1" {
		t.Fatalf("after torn tail: %+v %v", in, s.Cursors())
	}
	appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0 + 1, Line: "more"}}}}, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptBlockSkipped(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a, b := labels.FromStrings("job", "a"), labels.FromStrings("job", "b")
	big := func(n int) []Entry {
		var es []Entry
		for i := 0; i < n; i++ {
			es = append(es, Entry{Ts: day0 + int64(i), Seq: uint64(i), Line: fmt.Sprintf("entry %d %s", i, strings.Repeat("q", 100))})
		}
		return es
	}
	appendAll(t, s, []streamData{{a, big(1000)}, {b, big(1000)}}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside stream a's block (blocks are written in stream
	// order within the segment, but find it through the metadata).
	s = openTest(t, dir)
	s.mu.RLock()
	var victim *blockRef
	for _, bl := range s.m.blocks {
		if bl.stream.lbls.Get("job") == "a" {
			victim = bl
		}
	}
	path := segPath(dir, victim.seg)
	off := victim.off + victim.h.linesOff() + 10
	s.mu.RUnlock()
	data, _ := os.ReadFile(path)
	data[off] ^= 0x55
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var c StatsCollector
	ctx := WithStats(context.Background(), &c)
	its, err := s.Select(ctx, SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchRegexp, "job", ".*")}, Start: day0, End: day0 + 10000, Lines: true})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, it := range its {
		for it.Next() {
			n[it.Labels().Get("job")] += len(it.At().Ts)
		}
		if it.Err() != nil {
			t.Fatalf("iterator error on corrupt block: %v", it.Err())
		}
		it.Close()
	}
	if n["a"] != 0 || n["b"] != 1000 {
		t.Fatalf("served %v", n)
	}
	if st := c.Snapshot(); st.BlocksCorrupt != 1 {
		t.Fatalf("stats %+v", st)
	}
	if in := s.Info(); in.CorruptBlocks != 1 || !strings.Contains(in.LastError, "corrupt") {
		t.Fatalf("info %+v", in)
	}
	// Counting without lines still works: only the lines section is bad.
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "b")}, Start: day0, End: day0 + 10000}
	if got := readAll(t, s, p); len(got[b.String()]) != 1000 {
		t.Fatalf("count select: %d", len(got[b.String()]))
	}
}

func TestTruncatedSegmentReportedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	appendAll(t, s, []streamData{{labels.FromStrings("job", "a"), []Entry{{Ts: day0, Line: "hello"}}}}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, dataDirName, "*", "*.seg"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	if err := os.Truncate(files[0], 10); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if in := s.Info(); in.CorruptBlocks != 1 {
		t.Fatalf("info %+v", in)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Retention: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ls := labels.FromStrings("job", "x")
	// Five days up to today, so the retention Open applies agrees with ours.
	now := time.Now()
	base := (dayOf(now.UnixNano()) - 4) * nsPerDay
	var es []Entry
	for d := int64(0); d < 5; d++ {
		es = append(es, Entry{Ts: base + d*nsPerDay + 5, Seq: uint64(d), Line: strings.Repeat("z", 1000)})
	}
	appendAll(t, s, []streamData{{ls, es}}, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if in := s.Info(); in.Partitions != 5 {
		t.Fatalf("partitions %d", in.Partitions)
	}
	if err := s.ApplyRetention(now); err != nil {
		t.Fatal(err)
	}
	// Days 0 and 1 ended more than 48h before now; day 2 ends 25h before.
	in := s.Info()
	if in.Partitions != 3 || in.MinTime != base+2*nsPerDay+5 {
		t.Fatalf("after age retention: %+v", in)
	}
	dirs, _ := os.ReadDir(filepath.Join(dir, dataDirName))
	if len(dirs) != 3 {
		t.Fatalf("%d partition directories left", len(dirs))
	}
	// Size: keep only what fits, never the newest partition. Open applies
	// retention at once.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{Retention: 48 * time.Hour, MaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if in := s2.Info(); in.Partitions != 1 || in.Entries != 1 || in.MinTime != base+4*nsPerDay+5 {
		t.Fatalf("after size retention: %+v", in)
	}
	if err := s2.ApplyRetention(now); err != nil {
		t.Fatal(err)
	}
	if in := s2.Info(); in.Partitions != 1 {
		t.Fatalf("the newest partition went: %+v", in)
	}
}

func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{HeadFlushBytes: 1 << 20, HeadMemoryBudget: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	enospc := func(st string) error {
		if st == "segment-write" || st == "manifest-append" {
			return syscall.ENOSPC
		}
		return nil
	}
	s.setFaults(enospc)
	ls := labels.FromStrings("job", "x")
	line := strings.Repeat("w", 1000)
	var appended []Entry
	var pausedErr error
	for i := 0; i < 5000 && pausedErr == nil; i++ {
		e := Entry{Ts: day0 + int64(i), Seq: uint64(i), Line: line}
		err := s.Append(context.Background(), AppendBatch{Streams: []StreamEntries{{ls, []Entry{e}}}, Cursors: map[string][]byte{"f": []byte(fmt.Sprint(i + 1))}})
		if err != nil {
			pausedErr = err
			break
		}
		appended = append(appended, e)
		if i%200 == 0 {
			_ = s.Flush(context.Background()) // fails: the disk is full
		}
	}
	if !errors.Is(pausedErr, ErrPaused) || !strings.Contains(pausedErr.Error(), "no space") {
		t.Fatalf("append on a full disk: %v", pausedErr)
	}
	in := s.Info()
	if !in.Paused || in.LastError == "" || len(s.Cursors()) != 0 {
		t.Fatalf("info while full: %+v cursors %v", in, s.Cursors())
	}
	// Queries keep working from memory.
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + 100000, Lines: true}
	diff(t, readAll(t, s, p), expected([]streamData{{ls, appended}}, p))
	if files, _ := filepath.Glob(filepath.Join(dir, dataDirName, "*", "*")); len(files) != 0 {
		t.Fatalf("failed commits left files: %v", files)
	}
	// Space comes back.
	s.setFaults(nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	in = s.Info()
	if in.Paused || in.LastError != "" || in.HeadEntries != 0 || string(s.Cursors()["f"]) != fmt.Sprint(len(appended)) {
		t.Fatalf("info after recovery: %+v cursors %v", in, s.Cursors())
	}
	diff(t, readAll(t, s, p), expected([]streamData{{ls, appended}}, p))
}

func TestSmallBlocksMerge(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	ls := labels.FromStrings("job", "x")
	var all []Entry
	for round := 0; round < 20; round++ {
		var es []Entry
		for i := 0; i < 50; i++ {
			n := round*50 + i
			es = append(es, Entry{Ts: day0 + int64(n)*1000, Seq: uint64(n), Line: fmt.Sprintf("entry %d", n)})
		}
		all = append(all, es...)
		appendAll(t, s, []streamData{{ls, es}}, nil)
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	in := s.Info()
	if in.Blocks != 1 {
		t.Fatalf("%d blocks after 20 small commits, want 1", in.Blocks)
	}
	files, _ := filepath.Glob(filepath.Join(dir, dataDirName, "*", "*"))
	if len(files) != 1 {
		t.Fatalf("%d segment files", len(files))
	}
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + nsPerDay, Lines: true}
	diff(t, readAll(t, s, p), expected([]streamData{{ls, all}}, p))
}

// TestSegmentHeldByReader checks a merge does not delete a file an open
// iterator still needs.
func TestSegmentHeldByReader(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ls := labels.FromStrings("job", "x")
	appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0, Line: "first"}}}}, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + 10, Lines: true}
	its, err := s.Select(context.Background(), p)
	if err != nil || len(its) != 1 {
		t.Fatal(its, err)
	}
	appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0 + 1, Line: "second"}}}}, nil)
	if err := s.Flush(context.Background()); err != nil { // merges the first block away
		t.Fatal(err)
	}
	if !its[0].Next() || its[0].At().Lines[0] != "first" || its[0].Err() != nil {
		t.Fatalf("held iterator: %v", its[0].Err())
	}
	its[0].Close()
	if in := s.Info(); in.CorruptBlocks != 0 {
		t.Fatalf("info %+v", in)
	}
}

// TestConcurrentAppendSelect runs queries while appends and commits (with
// small-block merges) happen, checking every answer is ordered and never
// loses entries already seen.
func TestConcurrentAppendSelect(t *testing.T) {
	s, err := Open(t.TempDir(), Options{HeadFlushBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ls := labels.FromStrings("job", "x")
	const batches, per = 60, 100
	done := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < batches; i++ {
			var es []Entry
			for j := 0; j < per; j++ {
				n := i*per + j
				es = append(es, Entry{Ts: day0 + rng.Int64N(int64(time.Hour)), Seq: uint64(n), Line: fmt.Sprintf("entry %d", n)})
			}
			if err := s.Append(context.Background(), AppendBatch{Streams: []StreamEntries{{ls, es}}}); err != nil {
				done <- err
				return
			}
			if i%7 == 0 {
				if err := s.Flush(context.Background()); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + nsPerDay, Lines: true, Direction: Backward}
	seen := 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		got := readAll(t, s, p)[ls.String()]
		for i := 1; i < len(got); i++ {
			if compareEntries(got[i-1], got[i]) < 0 {
				t.Fatalf("out of order at %d", i)
			}
		}
		if len(got) < seen {
			t.Fatalf("saw %d entries, then %d", seen, len(got))
		}
		seen = len(got)
	}
	if got := readAll(t, s, p)[ls.String()]; len(got) != batches*per {
		t.Fatalf("%d entries at the end, want %d", len(got), batches*per)
	}
}

// TestOverlappingBlocks merges blocks too big to be merged at commit, whose
// time ranges interleave, with the head.
func TestOverlappingBlocks(t *testing.T) {
	s, all, m := overlappingStore(t)
	ls := labels.FromStrings("job", "x")
	sec := int64(time.Second)
	for _, p := range []SelectParams{
		{Matchers: m, Start: day0, End: day0 + 3000*sec, Lines: true},
		{Matchers: m, Start: day0, End: day0 + 3000*sec, Lines: true, Direction: Backward},
		{Matchers: m, Start: day0 + 100*sec, End: day0 + 101*sec, Lines: true},
		{Matchers: m, Start: day0 + 500*sec, End: day0 + 1500*sec, Direction: Backward},
		{Matchers: m, Start: day0 + 500*sec, End: day0 + 1500*sec},
	} {
		diff(t, readAll(t, s, p), expected([]streamData{{ls, all}}, p))
	}
}

func TestReadOnlySeesNewCommits(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir)
	defer w.Close()
	ls := labels.FromStrings("job", "x")
	appendAll(t, w, []streamData{{ls, []Entry{{Ts: day0, Line: "one"}}}}, nil)
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := openReadOnlyTest(t, dir)
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + 100, Lines: true}
	if got := readAll(t, r, p)[ls.String()]; len(got) != 1 {
		t.Fatalf("reader saw %d entries", len(got))
	}
	appendAll(t, w, []streamData{{ls, []Entry{{Ts: day0 + 1, Line: "two"}}}}, nil)
	if got := readAll(t, r, p)[ls.String()]; len(got) != 1 {
		t.Fatalf("reader saw the writer's head: %d entries", len(got))
	}
	if err := w.Flush(context.Background()); err != nil { // merges "one" away
		t.Fatal(err)
	}
	if got := readAll(t, r, p)[ls.String()]; len(got) != 2 || got[1].Line != "two" {
		t.Fatalf("reader after commit: %+v", got)
	}
	if err := r.Append(context.Background(), AppendBatch{}); err == nil {
		t.Fatal("read-only store accepted an append")
	}
	if in := r.Info(); in.Entries != 2 || !in.ReadOnly {
		t.Fatalf("reader info %+v", in)
	}
}
