package store

import (
	"bytes"
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// TestMeasureTokenBitmaps measures what a per-block bitmap of the lines
// holding a frequent token would cost and save on a real store
// (LOKAL_BENCH_STORE), for FORMAT.md's decision: the bitmaps' zstd size
// against the store's, and the time a scan spends decoding and searching
// lines (what a bitmap would spare) against reading the meta section alone
// (what it would still need). It logs numbers; it asserts only that every
// block was read.
func TestMeasureTokenBitmaps(t *testing.T) {
	dir := os.Getenv("LOKAL_BENCH_STORE")
	if dir == "" {
		t.Skip("LOKAL_BENCH_STORE is not set: no real store to measure")
	}
	s, err := OpenReadOnly(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tokens := []string{"CUDA out of memory", "error", "Traceback", "ERROR", "WARN", "INFO", "duration=", "Generating audio"}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	p := SelectParams{Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "job", ".+")}, Start: math.MinInt64, End: math.MaxInt64, Lines: true}
	streams, err := s.SelectBlocks(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var blocks, lines, raw int
	sizes := make([]int, len(tokens))
	hits := make([]int, len(tokens))
	var decode, search time.Duration
	bm := []byte{}
	for _, st := range streams {
		if st.Head != nil {
			st.Head.Close()
		}
		for i := range st.Blocks {
			b := &st.Blocks[i]
			began := time.Now()
			ok, err := b.ScanLines(func(bl *BlockLines) error {
				decode += time.Since(began)
				blocks++
				lines += len(bl.Sizes)
				raw += len(bl.Text)
				for k, tok := range tokens {
					began := time.Now()
					bm = append(bm[:0], make([]byte, (len(bl.Sizes)+7)/8)...)
					off := 0
					for j, sz := range bl.Sizes {
						if bytes.Contains(bl.Text[off:off+int(sz)], []byte(tok)) {
							bm[j/8] |= 1 << (j % 8)
							hits[k]++
						}
						off += int(sz)
					}
					search += time.Since(began)
					sizes[k] += len(enc.EncodeAll(bm, nil))
				}
				return nil
			})
			b.Iter.Close()
			if err != nil || !ok {
				t.Fatalf("block %s: scanned %v, %v", b.ID, ok, err)
			}
		}
	}
	// The meta section alone, as a count over a bitmap would read it.
	p.Lines = false
	streams, err = s.SelectBlocks(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for _, st := range streams {
		if st.Head != nil {
			st.Head.Close()
		}
		for i := range st.Blocks {
			it := st.Blocks[i].Iter
			for it.Next() {
			}
			it.Close()
		}
	}
	meta := time.Since(began)
	stored := s.Info().StoredBytes
	t.Logf("%d blocks, %d lines, %.1f MB of lines, store %.1f MB", blocks, lines, float64(raw)/1e6, float64(stored)/1e6)
	t.Logf("read and decode meta and lines %v (%.0f MB/s of lines), meta alone %v, one token searched line by line %v", decode.Round(time.Millisecond), float64(raw)/1e6/decode.Seconds(), meta.Round(time.Millisecond), (search / time.Duration(len(tokens))).Round(time.Millisecond))
	total := 0
	for k, tok := range tokens {
		total += sizes[k]
		t.Logf("%-20q in %5.1f%% of lines: bitmaps %7.1f KB zstd = %.2f%% of the store", tok, 100*float64(hits[k])/float64(lines), float64(sizes[k])/1e3, 100*float64(sizes[k])/float64(stored))
	}
	t.Logf("all %d bitmaps: %.1f KB = %.2f%% of the store", len(tokens), float64(total)/1e3, 100*float64(total)/float64(stored))
	if blocks == 0 {
		t.Fatal("no block read")
	}
}
