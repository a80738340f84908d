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
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// The fault-injection suite does to a store what a crash, a bad disk or a
// careless user does, and checks after each fault that what can be read is
// exactly what was written minus what is reported lost, and that no file
// disappears without a report.
//
// By default it runs 300 random corruptions (72 under -short) and 6 kill -9
// points (none under -short);
// the full count the issue asks for (at least 1,000 corruptions, 50 kill -9
// points) runs with
//
//	LOKAL_FAULTS=full go test -run 'Fault|KillNine' -v ./pkg/store/

// faultFixture is a closed store of three streams written in four commits,
// each into a day of its own (so each commit writes its own blocks: 12
// blocks in 4 segments), and what it holds.
type faultFixture struct {
	dir  string
	data []streamData
}

func newFaultFixture(t *testing.T) faultFixture {
	t.Helper()
	dir := t.TempDir()
	s := openTest(t, dir)
	var data []streamData
	for i, job := range []string{"a", "b", "c"} {
		data = append(data, streamData{lbls: labels.FromStrings("job", job, "n", fmt.Sprint(i))})
	}
	seq := 0
	for commit := 0; commit < 4; commit++ {
		var batch []streamData
		for i := range data {
			var es []Entry
			for j := 0; j < 40+commit*7; j++ {
				seq++
				es = append(es, Entry{Ts: day0 + int64(commit)*nsPerDay + int64(seq)*1e6, Seq: uint64(seq), Line: fmt.Sprintf("2026-11-23 commit %d stream %d entry %d %s", commit, i, seq, strings.Repeat("x", seq%50))})
			}
			data[i].entries = append(data[i].entries, es...)
			batch = append(batch, streamData{data[i].lbls, es})
		}
		appendAll(t, s, batch, map[string][]byte{"f": []byte(fmt.Sprint(commit))})
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return faultFixture{dir, data}
}

func (f faultFixture) total() int {
	n := 0
	for _, sd := range f.data {
		n += len(sd.entries)
	}
	return n
}

func allStreams(t testing.TB) SelectParams {
	return SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchRegexp, "job", ".+")}, Start: day0 - nsPerDay, End: day0 + 5*nsPerDay, Lines: true}
}

// storeFiles lists every file below dir with its size, quarantine included.
func storeFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out[rel] = fi.Size()
		}
		return nil
	})
	return out
}

// segmentsAnywhere counts segment files in data/ and in quarantine/.
func segmentsAnywhere(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for p := range storeFiles(t, dir) {
		if strings.HasSuffix(p, segmentExt) {
			n++
		}
	}
	return n
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xA5
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFaultManifestFlippedByte is the first finding: one flipped
// byte in MANIFEST made readers show an empty store and the next writer
// delete every segment. Now both refuse with a message saying what is
// wrong, nothing is deleted, and repair gets everything back.
func TestFaultManifestFlippedByte(t *testing.T) {
	f := newFaultFixture(t)
	man := filepath.Join(f.dir, manifestName)
	flipByte(t, man, 30)
	before := storeFiles(t, f.dir)

	if _, err := OpenReadOnly(f.dir, Options{}); !errors.Is(err, ErrManifestCorrupt) {
		t.Fatalf("read-only open of a damaged manifest: %v", err)
	}
	_, err := Open(f.dir, Options{})
	if !errors.Is(err, ErrManifestCorrupt) || !strings.Contains(err.Error(), "lokal repair") || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("writer open of a damaged manifest: %v", err)
	}
	after := storeFiles(t, f.dir)
	for p, size := range before {
		if p == lockName {
			continue
		}
		if after[p] != size {
			t.Fatalf("%s changed from %d to %d bytes after a refused open", p, size, after[p])
		}
	}

	rep, err := Repair(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EntriesRecovered != int64(f.total()) || rep.EntriesLost != 0 || !rep.Changed {
		t.Fatalf("repair: %+v", rep)
	}
	s := openTest(t, f.dir)
	defer s.Close()
	p := allStreams(t)
	diff(t, readAll(t, s, p), expected(f.data, p))
	if got := string(s.Cursors()["f"]); got != "3" {
		t.Fatalf("cursor after repair: %q", got)
	}
}

// TestFaultManifestDeleted is the second finding: a deleted MANIFEST made
// the next writer delete every segment.
func TestFaultManifestDeleted(t *testing.T) {
	for _, checkpoint := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint=%v", checkpoint), func(t *testing.T) {
			f := newFaultFixture(t)
			if err := os.Remove(filepath.Join(f.dir, manifestName)); err != nil {
				t.Fatal(err)
			}
			if !checkpoint {
				if err := os.Remove(filepath.Join(f.dir, manifestPrevName)); err != nil {
					t.Fatal(err)
				}
			}
			segs := segmentsAnywhere(t, f.dir)
			if _, err := OpenReadOnly(f.dir, Options{}); !errors.Is(err, ErrManifestCorrupt) || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("read-only open without manifest: %v", err)
			}
			if _, err := Open(f.dir, Options{}); !errors.Is(err, ErrManifestCorrupt) {
				t.Fatalf("writer open without manifest: %v", err)
			}
			if n := segmentsAnywhere(t, f.dir); n != segs {
				t.Fatalf("%d segment files, had %d", n, segs)
			}
			rep, err := Repair(f.dir)
			if err != nil {
				t.Fatal(err)
			}
			if n := segmentsAnywhere(t, f.dir); n != segs {
				t.Fatalf("repair left %d segment files, had %d", n, segs)
			}
			s := openTest(t, f.dir)
			defer s.Close()
			p := allStreams(t)
			got := readAll(t, s, p)
			if checkpoint {
				diff(t, got, expected(f.data, p))
				return
			}
			// Without any manifest the labels of the streams are gone: every
			// segment is kept in quarantine and reported.
			if len(got) != 0 || rep.EntriesUnaccounted != int64(f.total()) || rep.SegmentsQuarantined != segs {
				t.Fatalf("got %d streams; report %+v", len(got), rep)
			}
			if in := s.Info(); in.Quarantined != segs {
				t.Fatalf("info: %+v", in)
			}
		})
	}
}

// TestFaultCorruptBlockOneTruth is the fourth finding: with a block's line
// data damaged, log queries skipped it while counts still counted it.
// Every kind of read now skips it alike and counts it.
func TestFaultCorruptBlockOneTruth(t *testing.T) {
	f := newFaultFixture(t)
	s := openTest(t, f.dir)
	s.mu.RLock()
	victim := sortedBlocks(s.m)[0]
	path, off, lost := segPath(f.dir, victim.seg), victim.off+victim.h.linesOff()+3, int(victim.h.Count)
	job := victim.stream.lbls.Get("job")
	s.mu.RUnlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flipByte(t, path, off)

	for _, lines := range []bool{false, true} {
		t.Run(fmt.Sprintf("lines=%v", lines), func(t *testing.T) {
			s, err := OpenReadOnly(f.dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var c StatsCollector
			p := allStreams(t)
			p.Lines = lines
			its, err := s.Select(WithStats(context.Background(), &c), p)
			if err != nil {
				t.Fatal(err)
			}
			n := drainCount(t, its)
			if n != f.total()-lost || c.Snapshot().BlocksCorrupt != 1 {
				t.Fatalf("read %d entries of %d (block of %s with %d lost), stats %+v", n, f.total(), job, lost, c.Snapshot())
			}
			if in := s.Info(); in.CorruptBlocks != 1 {
				t.Fatalf("info %+v", in)
			}
		})
	}

	// Verify finds it without a query; repair quarantines it.
	r, err := OpenReadOnly(f.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Verify(); err != nil || n != 1 {
		t.Fatalf("verify: %d, %v", n, err)
	}
	r.Close()
	rep, err := Repair(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EntriesLost != int64(lost) || rep.BlocksQuarantined != 1 || rep.EntriesRecovered != int64(f.total()-lost) {
		t.Fatalf("repair: %+v", rep)
	}
	s = openTest(t, f.dir)
	defer s.Close()
	if in := s.Info(); in.CorruptBlocks != 0 || in.Quarantined != 1 || in.Entries != int64(f.total()-lost) {
		t.Fatalf("after repair: %+v", in)
	}
}

// TestFaultTornTailKept: a torn last record is cut, but its bytes and the
// segment it may have written are kept in quarantine. A manifest cut
// shorter than its checkpoint is damage instead (TestFaultRandom covers it).
func TestFaultTornTailKept(t *testing.T) {
	f := newFaultFixture(t)
	man := filepath.Join(f.dir, manifestName)
	b, _ := os.ReadFile(man)
	// Cut the last record in half: its segment exists, its record is torn.
	recs, _, _ := readManifest(b)
	last := frameRecord(encodeOps(recs[len(recs)-1]))
	if err := os.WriteFile(man, b[:len(b)-len(last)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// A crash during the last commit leaves the checkpoint of the open
	// before it, which the torn record is not part of.
	if err := os.WriteFile(filepath.Join(f.dir, manifestPrevName), b[:len(b)-len(last)], 0o644); err != nil {
		t.Fatal(err)
	}
	segs := segmentsAnywhere(t, f.dir)
	s := openTest(t, f.dir)
	defer s.Close()
	in := s.Info()
	if !strings.Contains(in.LastError, "interrupted commit") || in.Quarantined == 0 {
		t.Fatalf("info %+v", in)
	}
	if n := segmentsAnywhere(t, f.dir); n != segs {
		t.Fatalf("%d segment files, had %d", n, segs)
	}
	tails, _ := filepath.Glob(filepath.Join(f.dir, quarantineDirName, "*", "MANIFEST.tail"))
	if len(tails) != 1 {
		t.Fatalf("torn tail not kept: %v", tails)
	}
	// What the last commit held is gone from queries (its cursor too, so
	// the ingester reads it again), and everything before is intact.
	want := 0
	for _, sd := range f.data {
		want += len(sd.entries) - (40 + 3*7)
	}
	if got := in.Entries; got != int64(want) || string(s.Cursors()["f"]) != "2" {
		t.Fatalf("entries %d, want %d; cursors %v", got, want, s.Cursors())
	}
}

// drainCount reads iterators to the end and returns how many entries
// they yielded.
func drainCount(t testing.TB, its []StreamIterator) int {
	t.Helper()
	n := 0
	for _, it := range its {
		for it.Next() {
			n += len(it.At().Ts)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		it.Close()
	}
	return n
}

// fullFaults reports whether the full counts were asked for.
func fullFaults() bool { return os.Getenv("LOKAL_FAULTS") == "full" }

// snapshotDir reads every file below dir.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for rel := range storeFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = b
	}
	return out
}

func restoreDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for rel, b := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fault is one way of damaging a store.
type fault struct {
	name string
	// apply damages the store in dir; fixture blocks tell where sections are.
	apply func(t *testing.T, rng *rand.Rand, dir string, blocks []*blockRef)
}

// span is a half-open byte range.
type span struct{ from, to int64 }

func flipIn(t *testing.T, rng *rand.Rand, path string, where span) {
	t.Helper()
	if where.to <= where.from {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// 1 to 3 distinct bytes, each changed.
	flipped := map[int64]bool{}
	for range 1 + rng.IntN(3) {
		off := where.from + rng.Int64N(where.to-where.from)
		if !flipped[off] {
			flipped[off] = true
			b[off] ^= byte(1 + rng.IntN(255))
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// blockSpan picks a block and the byte range of one of its parts.
func blockSpan(rng *rand.Rand, blocks []*blockRef, part string) (*blockRef, span) {
	b := blocks[rng.IntN(len(blocks))]
	h := &b.h
	var sp span
	switch part {
	case "header":
		sp = span{0, blockHeaderSize}
	case "timestamps": // the meta section: times, seqs, sizes
		sp = span{h.metaOff(), h.linesOff()}
	case "lines":
		sp = span{h.linesOff(), h.filterOff()}
	case "footer": // the token filter and the last checksum
		sp = span{h.filterOff(), h.totalLen()}
	}
	return b, span{b.off + sp.from, b.off + sp.to}
}

// manifestSpans are the offset classes of a manifest: the magic, each
// record's frame (length and checksum) and each record's payload.
func manifestSpans(data []byte) map[string][]span {
	out := map[string][]span{"magic": {{0, int64(len(manifestMagic))}}}
	p := len(manifestMagic)
	for p+8 <= len(data) {
		n := int(uint32(data[p]) | uint32(data[p+1])<<8 | uint32(data[p+2])<<16 | uint32(data[p+3])<<24)
		out["frame"] = append(out["frame"], span{int64(p), int64(p + 8)})
		out["payload"] = append(out["payload"], span{int64(p + 8), int64(p + 8 + n)})
		p += 8 + n
	}
	return out
}

func faults() []fault {
	var fs []fault
	for _, class := range []string{"magic", "frame", "payload"} {
		fs = append(fs, fault{"flip manifest " + class, func(t *testing.T, rng *rand.Rand, dir string, _ []*blockRef) {
			path := filepath.Join(dir, manifestName)
			data, _ := os.ReadFile(path)
			spans := manifestSpans(data)[class]
			flipIn(t, rng, path, spans[rng.IntN(len(spans))])
		}})
	}
	for _, part := range []string{"header", "timestamps", "lines", "footer"} {
		fs = append(fs, fault{"flip segment " + part, func(t *testing.T, rng *rand.Rand, dir string, blocks []*blockRef) {
			b, sp := blockSpan(rng, blocks, part)
			flipIn(t, rng, segPath(dir, b.seg), sp)
		}})
	}
	fs = append(fs,
		fault{"truncate manifest", func(t *testing.T, rng *rand.Rand, dir string, _ []*blockRef) {
			path := filepath.Join(dir, manifestName)
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, rng.Int64N(fi.Size())); err != nil {
				t.Fatal(err)
			}
		}},
		fault{"truncate segment", func(t *testing.T, rng *rand.Rand, dir string, blocks []*blockRef) {
			path := segPath(dir, blocks[rng.IntN(len(blocks))].seg)
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, rng.Int64N(fi.Size())); err != nil {
				t.Fatal(err)
			}
		}},
		fault{"delete manifest", func(t *testing.T, rng *rand.Rand, dir string, _ []*blockRef) {
			_ = os.Remove(filepath.Join(dir, manifestName))
			if rng.IntN(2) == 0 {
				_ = os.Remove(filepath.Join(dir, manifestPrevName))
			}
		}},
		fault{"delete segment", func(t *testing.T, rng *rand.Rand, dir string, blocks []*blockRef) {
			_ = os.Remove(segPath(dir, blocks[rng.IntN(len(blocks))].seg))
		}},
		fault{"flip manifest and checkpoint", func(t *testing.T, rng *rand.Rand, dir string, _ []*blockRef) {
			for _, name := range []string{manifestName, manifestPrevName} {
				path := filepath.Join(dir, name)
				fi, _ := os.Stat(path)
				flipIn(t, rng, path, span{0, fi.Size()})
			}
		}},
	)
	return fs
}

type entryKey struct {
	stream string
	ts     int64
	seq    uint64
	line   string
}

// TestFaultRandom damages copies of one store in every way faults() knows,
// at random offsets, and after each checks the store's promise: it reads
// back exactly the input minus what it reports lost (corrupt blocks,
// repair's lost and unaccounted entries), never an entry twice or one that
// was not written, and no segment file disappears (it is in data/ or in
// quarantine/ unless the fault itself deleted it).
func TestFaultRandom(t *testing.T) {
	rounds := 25 // per fault kind (12 kinds): 300 corruptions
	if fullFaults() {
		rounds = 100 // 1,200 corruptions
	} else if testing.Short() {
		rounds = 6 // 72
	}
	f := newFaultFixture(t)
	pristine := snapshotDir(t, f.dir)
	s := openTest(t, f.dir)
	s.mu.RLock()
	blocks := sortedBlocks(s.m)
	s.mu.RUnlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	pristine = snapshotDir(t, f.dir) // the close rewrote the checkpoint
	input := map[entryKey]bool{}
	for _, sd := range f.data {
		for _, e := range sd.entries {
			input[entryKey{sd.lbls.String(), e.Ts, e.Seq, e.Line}] = true
		}
	}
	seed := uint64(0x10c41)
	total, refused, lostSome := 0, 0, 0
	for _, fl := range faults() {
		kindRefused, kindLost, kindEntries := 0, 0, int64(0)
		for round := range rounds {
			rng := rand.New(rand.NewPCG(seed, uint64(round)))
			seed++
			dir := restoreDir(t, pristine)
			fl.apply(t, rng, dir, blocks)
			total++
			wasRefused, lost := checkAfterFault(t, fmt.Sprintf("%s #%d", fl.name, round), dir, pristine, input)
			if wasRefused {
				refused++
				kindRefused++
			}
			if lost > 0 {
				lostSome++
				kindLost++
				kindEntries += lost
			}
		}
		t.Logf("%-30s %d: writer refused %d until repaired; %d lost %d entries in all, each reported", fl.name, rounds, kindRefused, kindLost, kindEntries)
	}
	t.Logf("%d corruptions: %d refused by the writer until repaired, %d lost some entries (each loss reported); no segment deleted", total, refused, lostSome)
}

// checkAfterFault runs the checks of TestFaultRandom on a damaged store. It
// returns whether the writer refused it and how many entries were lost.
func checkAfterFault(t *testing.T, name, dir string, pristine map[string][]byte, input map[entryKey]bool) (refused bool, lost int64) {
	t.Helper()
	segsBefore := map[string]bool{}
	for rel := range storeFiles(t, dir) {
		if strings.HasSuffix(rel, segmentExt) {
			segsBefore[filepath.Base(rel)] = true
		}
	}
	var reported int64
	s, err := Open(dir, Options{})
	if err != nil {
		if !errors.Is(err, ErrManifestCorrupt) {
			t.Fatalf("%s: writer open failed without saying the manifest is damaged: %v", name, err)
		}
		refused = true
		if r, rerr := OpenReadOnly(dir, Options{}); rerr == nil {
			r.Close()
			t.Fatalf("%s: the writer refuses (%v) but a reader opens", name, err)
		}
		rep, rerr := Repair(dir)
		if rerr != nil {
			t.Fatalf("%s: repair: %v", name, rerr)
		}
		reported += rep.EntriesLost + rep.EntriesUnaccounted
		if s, err = Open(dir, Options{}); err != nil {
			t.Fatalf("%s: open after repair: %v", name, err)
		}
	}
	defer s.Close()
	if _, err := s.Verify(); err != nil {
		t.Fatalf("%s: verify: %v", name, err)
	}
	in := s.Info()
	reported += in.CorruptEntries
	if strings.Contains(in.LastError, "interrupted commit") {
		// A torn tail was cut: what its segments held is in quarantine.
		for rel := range storeFiles(t, filepath.Join(dir, quarantineDirName)) {
			if strings.HasSuffix(rel, segmentExt) {
				n, _ := scanSegment(filepath.Join(dir, quarantineDirName, rel))
				reported += n
			}
		}
	}
	p := allStreams(t)
	counts := map[bool]int{}
	for _, lines := range []bool{true, false} {
		p.Lines = lines
		got := readAll(t, s, p)
		seen := map[entryKey]bool{}
		for stream, es := range got {
			for _, e := range es {
				counts[lines]++
				if !lines {
					continue
				}
				k := entryKey{stream, e.Ts, e.Seq, e.Line}
				if !input[k] || seen[k] {
					t.Fatalf("%s: read %+v of %s, which was not written or is read twice", name, e, stream)
				}
				seen[k] = true
			}
		}
	}
	if counts[true] != counts[false] {
		t.Fatalf("%s: log reads see %d entries, count reads %d", name, counts[true], counts[false])
	}
	lost = int64(len(input) - counts[true])
	if lost > reported || (lost > 0 && reported == 0) {
		t.Fatalf("%s: %d entries lost, %d reported (info %+v)", name, lost, reported, in)
	}
	if reported > 0 && in.CorruptBlocks == 0 && in.Quarantined == 0 && !refused {
		t.Fatalf("%s: loss counted but not visible in Info: %+v", name, in)
	}
	// No segment file vanished: each is in data/ or in quarantine/.
	after := map[string]bool{}
	for rel := range storeFiles(t, dir) {
		if strings.HasSuffix(rel, segmentExt) {
			after[filepath.Base(rel)] = true
		}
	}
	for seg := range segsBefore {
		if !after[seg] {
			t.Fatalf("%s: segment %s was deleted", name, seg)
		}
	}
	return refused, lost
}

// TestRepairSoundStore: on a sound store whose commits merged small blocks
// (so live segments hold replaced blocks) repair changes nothing.
func TestRepairSoundStore(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a, b := labels.FromStrings("job", "a"), labels.FromStrings("job", "b")
	for i := range 5 {
		es := []Entry{{Ts: day0 + int64(i), Seq: uint64(i), Line: fmt.Sprint("line ", i)}}
		data := []streamData{{a, es}}
		if i == 0 {
			// b's block keeps the first segment while a's is replaced.
			data = append(data, streamData{b, es})
		}
		appendAll(t, s, data, map[string][]byte{"f": []byte(fmt.Sprint(i))})
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := storeFiles(t, dir)
	rep, err := Repair(dir)
	if err != nil || rep.Changed || rep.EntriesRecovered != 6 || len(rep.Problems) != 0 {
		t.Fatalf("repair of a sound store: %+v, %v", rep, err)
	}
	after := storeFiles(t, dir)
	delete(before, lockName)
	delete(after, lockName)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("files changed:\n%v\n%v", before, after)
	}
}

// TestManifestClassify: which damage is a torn tail (cut at open) and which
// is damage (the store refuses), record by record.
func TestManifestClassify(t *testing.T) {
	rec := func(i int) []byte {
		return frameRecord(encodeOps([]op{{kind: opNextIDs, next: [2]uint64{uint64(i + 1), uint64(i + 1)}}, {kind: opCursor, key: "f", present: true, val: []byte(fmt.Sprint(i))}}))
	}
	r1, r2, r3 := rec(1), rec(2), rec(3)
	good := slices.Concat([]byte(manifestMagic), r1, r2, r3)
	last := len(good) - len(r3)
	mid := len(manifestMagic) + len(r1)
	edit := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	cases := []struct {
		name  string
		data  []byte
		want  string // "", "torn", "damage"
		valid int
	}{
		{"sound", good, "", len(good)},
		{"last record cut in half", good[:len(good)-len(r3)/2], "torn", last},
		{"last frame cut short", good[:last+5], "torn", last},
		{"last length beyond the end", edit(func(b []byte) []byte { b[last+2] = 0x7f; return b }), "torn", last},
		{"zeros after the last record", append(slices.Clone(good), make([]byte, 5)...), "torn", len(good)},
		{"middle payload flipped", edit(func(b []byte) []byte { b[mid+9] ^= 1; return b }), "damage", mid},
		{"middle checksum flipped", edit(func(b []byte) []byte { b[mid+5] ^= 1; return b }), "damage", mid},
		{"middle length beyond the end", edit(func(b []byte) []byte { b[mid+3] = 0x40; return b }), "damage", mid},
		{"last payload flipped", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), "damage", last},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), "damage", 0},
		{"empty file", nil, "damage", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, valid, err := readManifest(c.data)
			got := ""
			var me *ManifestError
			switch {
			case errors.Is(err, errTornTail):
				got = "torn"
			case errors.As(err, &me) && errors.Is(err, ErrManifestCorrupt):
				got = "damage"
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			}
			if got != c.want || (got != "damage" && int(valid) != c.valid) || (me != nil && me.Offset >= 0 && int(me.Offset) != c.valid) {
				t.Fatalf("got %q valid %d (%v), want %q valid %d", got, valid, err, c.want, c.valid)
			}
		})
	}
	// A record that does not apply is damage too.
	bad := slices.Concat([]byte(manifestMagic), frameRecord(encodeOps([]op{{kind: opDelBlock, seg: 9, off: 0}})))
	if _, _, err := loadManifest("M", bad); !errors.Is(err, ErrManifestCorrupt) || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("record that does not apply: %v", err)
	}
}

// TestReaderDuringCheckpoints: a reader never takes a checkpoint written
// while it reads for damage (it reads the checkpoint before the manifest).
func TestReaderDuringCheckpoints(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	ls := labels.FromStrings("job", "x")
	appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0, Line: "first"}}}}, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := openReadOnlyTest(t, dir)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < 60; i++ {
			_ = s.Append(context.Background(), AppendBatch{Streams: []StreamEntries{{Labels: ls, Entries: []Entry{{Ts: day0 + int64(i), Line: "more"}}}}})
			_ = s.Flush(context.Background())
			s.commitMu.Lock()
			_ = s.checkpoint()
			s.commitMu.Unlock()
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if in := r.Info(); in.ManifestProblem != "" {
			t.Fatalf("reader saw a problem during checkpoints: %s", in.ManifestProblem)
		}
	}
}

// TestCheckpointOrder: a checkpoint older than the manifest is fine, one
// longer than it with the same start means records were cut off (which is
// why readers read the checkpoint first).
func TestCheckpointOrder(t *testing.T) {
	r := func(i uint64) []byte { return frameRecord(encodeOps([]op{{kind: opNextIDs, next: [2]uint64{i, i}}})) }
	older := slices.Concat([]byte(manifestMagic), r(1))
	newer := slices.Concat(older, r(2))
	rewritten := slices.Concat([]byte(manifestMagic), r(7))
	for _, c := range []struct {
		name       string
		prev, data []byte
		damaged    bool
	}{
		{"checkpoint older", older, newer, false},
		{"checkpoint equal", newer, newer, false},
		{"no checkpoint", nil, newer, false},
		{"manifest rewritten since", newer, rewritten, false},
		{"manifest cut below its checkpoint", newer, older, true},
	} {
		err := checkCheckpoint("d", c.prev, c.data, int64(len(c.data)))
		if (err != nil) != c.damaged || (err != nil && !errors.Is(err, ErrManifestCorrupt)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestRepairRecordThatDoesNotApply: a record that passes its checksum but
// does not fit (a writer bug, say) makes the writer refuse; repair leaves
// out what does not fit, reports it, and the store opens again.
func TestRepairRecordThatDoesNotApply(t *testing.T) {
	f := newFaultFixture(t)
	man := filepath.Join(f.dir, manifestName)
	fh, err := os.OpenFile(man, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(frameRecord(encodeOps([]op{{kind: opDelBlock, seg: 999, off: 0}}))); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if _, err := Open(f.dir, Options{}); !errors.Is(err, ErrManifestCorrupt) {
		t.Fatalf("open: %v", err)
	}
	rep, err := Repair(f.dir)
	if err != nil || !rep.Changed || rep.EntriesRecovered != int64(f.total()) || len(rep.Problems) == 0 {
		t.Fatalf("repair: %+v, %v", rep, err)
	}
	s := openTest(t, f.dir)
	defer s.Close()
	p := allStreams(t)
	diff(t, readAll(t, s, p), expected(f.data, p))
}
