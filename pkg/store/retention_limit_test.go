package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// TestRetentionAtTheLimit catches up on several days of logs into a store
// whose max_bytes holds only a few of them, while queries run all along.
// Whole days go, oldest first, as ingestion continues; the store never
// grows past its limit by more than one day's blocks; and every query
// succeeds, in this process and in a read-only one, and sees, per stream, an unbroken run of entries that starts at
// the first entry of a day and reaches at least every entry appended
// before it began.
func TestRetentionAtTheLimit(t *testing.T) {
	tests := []struct {
		name    string
		days    int
		perDay  int // entries per stream and day
		streams int
		maxDays float64 // max_bytes in days' worth of stored bytes
		flush   int64   // head flush bytes: a commit every few hundred entries
		batch   int     // entries per stream in one Append
		// flushEvery commits at once after every so many appends (0:
		// only the background commits), as the ingesters do at the end
		// of a catch-up; the size is checked right after.
		flushEvery int
		direction  Direction
	}{
		{"forward queries, limit of 2.5 days", 8, 600, 3, 2.5, 32 << 10, 50, 0, Forward},
		{"backward queries, limit of 1.5 days", 7, 500, 2, 1.5, 24 << 10, 40, 0, Backward},
		{"commits span days, limit of 3 days", 9, 300, 4, 3, 128 << 10, 120, 2, Forward},
		{"a flush after every append, limit of 2 days", 6, 400, 3, 2, 64 << 10, 60, 1, Backward},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := limitData(tt.days, tt.perDay, tt.streams)
			dayBytes := storedDayBytes(t, data, tt.flush)
			maxBytes := int64(tt.maxDays * float64(dayBytes))
			dir := t.TempDir()
			s, err := Open(dir, Options{MaxBytes: maxBytes, HeadFlushBytes: tt.flush, HeadMemoryBudget: 2 * tt.flush})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			var appended atomic.Int64 // entries per stream appended so far
			stop := make(chan struct{})
			var wg sync.WaitGroup
			queryErrs := make(chan error, 4)
			var queries atomic.Int64
			// Two readers in this process and one read-only store, as
			// `lokal query` reads beside a running plugin; it sees only
			// what was committed, so it is not held to what was appended.
			ro, err := OpenReadOnly(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			for q, r := range []*Store{s, s, ro} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						var want int64
						if r == s {
							want = appended.Load()
						}
						if err := checkLimitQuery(r, tt.perDay, tt.streams, want, tt.direction); err != nil {
							queryErrs <- fmt.Errorf("reader %d: %w", q, err)
							return
						}
						queries.Add(1)
					}
				}()
			}

			maxSeen := int64(0)
			for from := 0; from < tt.days*tt.perDay; from += tt.batch {
				to := min(from+tt.batch, tt.days*tt.perDay)
				var b AppendBatch
				for _, sd := range data {
					b.Streams = append(b.Streams, StreamEntries{Labels: sd.lbls, Entries: sd.entries[from:to]})
				}
				if err := s.Append(context.Background(), b); err != nil {
					t.Fatalf("append entries %d-%d: %v", from, to, err)
				}
				appended.Store(int64(to))
				if n := from/tt.batch + 1; tt.flushEvery > 0 && n%tt.flushEvery == 0 {
					if err := s.Flush(context.Background()); err != nil {
						t.Fatalf("flush after entry %d: %v", to, err)
					}
				}
				in := s.Info()
				maxSeen = max(maxSeen, in.StoredBytes)
				if in.StoredBytes > maxBytes+dayBytes {
					t.Fatalf("after entry %d the store holds %d bytes: more than max_bytes %d and one day (%d)", to, in.StoredBytes, maxBytes, dayBytes)
				}
			}
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			close(stop)
			wg.Wait()
			close(queryErrs)
			for err := range queryErrs {
				t.Fatal(err)
			}
			if queries.Load() == 0 {
				t.Fatal("no query ran during the catch-up")
			}
			// Flush committed the last entries; retention follows commits
			// made by the background loop, so apply it once more as it would.
			if err := s.ApplyRetention(time.Now()); err != nil {
				t.Fatal(err)
			}
			in := s.Info()
			if in.StoredBytes > maxBytes && in.Partitions > 1 {
				t.Errorf("at rest the store holds %d bytes in %d days, over max_bytes %d", in.StoredBytes, in.Partitions, maxBytes)
			}
			if in.Partitions >= tt.days {
				t.Errorf("nothing was dropped: %d of %d days kept", in.Partitions, tt.days)
			}
			if onDisk := dirSize(t, filepath.Join(dir, dataDirName)) + in.StoredBytes - segmentBytes(s); onDisk > maxBytes+dayBytes {
				t.Errorf("%d bytes on disk, over max_bytes %d and a day (%d)", onDisk, maxBytes, dayBytes)
			}
			// What is kept is the newest whole days, every entry of them.
			if err := checkLimitQuery(s, tt.perDay, tt.streams, int64(tt.days*tt.perDay), Forward); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d queries ran; %d of %d days kept, %d bytes (max_bytes %d, a day %d, largest seen %d)",
				queries.Load(), in.Partitions, tt.days, in.StoredBytes, maxBytes, dayBytes, maxSeen)
		})
	}
}

// limitData is days of entries for each stream: entry i of a stream is at
// day0 + i × (a day / perDay), with Seq i and a line that zstd cannot
// shrink much, so each day costs about the same on disk.
func limitData(days, perDay, streams int) []streamData {
	rng := rand.New(rand.NewPCG(12, uint64(days)))
	out := make([]streamData, streams)
	step := nsPerDay / int64(perDay)
	for k := range out {
		out[k].lbls = labels.FromStrings("job", "limit", "stream", fmt.Sprint(k))
		raw := make([]byte, 48)
		for i := 0; i < days*perDay; i++ {
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			out[k].entries = append(out[k].entries, Entry{Ts: day0 + int64(i)*step, Seq: uint64(i), Line: fmt.Sprintf("i=%d %s", i, hex.EncodeToString(raw))})
		}
	}
	return out
}

// storedDayBytes is what the first day of data costs once committed in the
// same commit sizes, measured in a store of its own.
func storedDayBytes(t *testing.T, data []streamData, flush int64) int64 {
	t.Helper()
	s, err := Open(t.TempDir(), Options{HeadFlushBytes: flush, HeadMemoryBudget: 2 * flush})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b AppendBatch
	for _, sd := range data {
		var es []Entry
		for _, e := range sd.entries {
			if dayOf(e.Ts) == dayOf(day0) {
				es = append(es, e)
			}
		}
		b.Streams = append(b.Streams, StreamEntries{Labels: sd.lbls, Entries: es})
	}
	if err := s.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.days[dayOf(day0)].bytes
}

// checkLimitQuery reads every stream over all days and checks what a
// query may see while retention drops days: no error, entries in order
// with no gap, the first one opening a day (the same day in every
// stream), and at least the first `appended` entries of each stream less
// the dropped days.
func checkLimitQuery(s *Store, perDay, streams int, appended int64, dir Direction) error {
	m, err := labels.NewMatcher(labels.MatchEqual, "job", "limit")
	if err != nil {
		return err
	}
	its, err := s.Select(context.Background(), SelectParams{Matchers: []*labels.Matcher{m}, Start: day0, End: day0 + 365*nsPerDay, Lines: true, Direction: dir})
	if err != nil {
		return fmt.Errorf("select during retention: %w", err)
	}
	defer func() {
		for _, it := range its {
			it.Close()
		}
	}()
	if len(its) == 0 && appended == 0 {
		return nil // a read-only store before the first commit
	}
	if appended > 0 && len(its) != streams {
		return fmt.Errorf("%d streams selected, want %d", len(its), streams)
	}
	firstDay := int64(-1)
	for _, it := range its {
		var seqs []uint64
		for it.Next() {
			b := it.At()
			for i, sq := range b.Seq {
				if want := fmt.Sprintf("i=%d ", sq); len(b.Lines[i]) < len(want) || b.Lines[i][:len(want)] != want {
					return fmt.Errorf("stream %s: entry %d has line %q", it.Labels(), sq, b.Lines[i])
				}
				seqs = append(seqs, sq)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read stream %s during retention: %w", it.Labels(), err)
		}
		if dir == Backward {
			for i, j := 0, len(seqs)-1; i < j; i, j = i+1, j-1 {
				seqs[i], seqs[j] = seqs[j], seqs[i]
			}
		}
		if len(seqs) == 0 {
			return fmt.Errorf("stream %s: no entries", it.Labels())
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				return fmt.Errorf("stream %s: entry %d follows entry %d: a gap or a disorder", it.Labels(), seqs[i], seqs[i-1])
			}
		}
		if seqs[0]%uint64(perDay) != 0 {
			return fmt.Errorf("stream %s starts at entry %d, inside day %d: a day was dropped in part", it.Labels(), seqs[0], seqs[0]/uint64(perDay))
		}
		d := int64(seqs[0]) / int64(perDay)
		if firstDay >= 0 && d != firstDay {
			return fmt.Errorf("stream %s starts on day %d, another on day %d", it.Labels(), d, firstDay)
		}
		firstDay = d
		if end := int64(seqs[len(seqs)-1]) + 1; end < appended {
			return fmt.Errorf("stream %s ends at entry %d, but %d were appended before the query", it.Labels(), end, appended)
		}
	}
	return nil
}

// segmentBytes is what the manifest counts for segment files.
func segmentBytes(s *Store) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, d := range s.m.days {
		n += d.bytes
	}
	return n
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
