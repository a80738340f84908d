package store

import (
	"runtime"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// A record that removes blocks (recompaction's del block, retention's drop
// day) and adds others leaves each stream's list with exactly the blocks
// still in the manifest, in time order, and does not change a list a
// reader took before it.
func TestApplyRemovesBlocksPerRecord(t *testing.T) {
	const n = 40
	hdr := testBlockHeader
	blockLen := hdr(0).totalLen()
	tests := []struct {
		name string
		ops  func() []op
		want []int64 // MinTs of the blocks left, in order
	}{
		{"every other block deleted", func() []op {
			var ops []op
			for i := 0; i < n; i += 2 {
				ops = append(ops, op{kind: opDelBlock, seg: 1, off: int64(i) * blockLen})
			}
			return ops
		}, func() []int64 {
			var w []int64
			for i := 1; i < n; i += 2 {
				w = append(w, int64(i))
			}
			return w
		}()},
		{"a merge: first ten deleted, their replacement added", func() []op {
			ops := []op{{kind: opSegment, id: 2, day: 0, size: blockLen}, {kind: opAddBlock, stream: 1, seg: 2, off: 0, hdr: *hdr(5)}}
			for i := 0; i < 10; i++ {
				ops = append(ops, op{kind: opDelBlock, seg: 1, off: int64(i) * blockLen})
			}
			return ops
		}, func() []int64 {
			w := []int64{5}
			for i := 10; i < n; i++ {
				w = append(w, int64(i))
			}
			return w
		}()},
		{"the day dropped", func() []op { return []op{{kind: opDropDay, day: 0}} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metaOfBlocks(t, n)
			before := m.streams[1].blocks
			if _, err := m.apply(tt.ops()); err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, b := range m.streams[1].blocks {
				got = append(got, b.h.MinTs)
				if m.blocks[blockKey{b.seg.id, b.off}] != b {
					t.Errorf("block %d listed but not in the manifest", b.h.MinTs)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("blocks %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("blocks %v, want %v", got, tt.want)
				}
			}
			if len(m.blocks) != len(tt.want) {
				t.Errorf("%d blocks in the manifest, want %d", len(m.blocks), len(tt.want))
			}
			if len(before) != n || before[0].h.MinTs != 0 || before[n-1].h.MinTs != n-1 {
				t.Errorf("the list a reader held changed: %d blocks", len(before))
			}
		})
	}
}

// Replaying a recompaction that removes half of a long stream's blocks
// copies the stream's list once, not once per block: opening a store
// replays every such record of its manifest.
func TestApplyRemovalCopiesListOnce(t *testing.T) {
	const n = 4000
	blockLen := testBlockHeader(0).totalLen()
	m := metaOfBlocks(t, n)
	var dels []op
	for i := 0; i < n; i += 2 {
		dels = append(dels, op{kind: opDelBlock, seg: 1, off: int64(i) * blockLen})
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := m.apply(dels); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// One copy per removal was n/2 lists of up to n pointers: 64 MB here.
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("removing %d of %d blocks allocated %d bytes", n/2, n, got)
	}
	if len(m.streams[1].blocks) != n/2 {
		t.Errorf("%d blocks left, want %d", len(m.streams[1].blocks), n/2)
	}
}

func testBlockHeader(i int) *blockHeader {
	return &blockHeader{Count: 1, MinTs: int64(i), MaxTs: int64(i)}
}

// metaOfBlocks is a manifest of one stream with n one-entry blocks in one
// segment of day 0, block i at time i.
func metaOfBlocks(t *testing.T, n int) *meta {
	t.Helper()
	blockLen := testBlockHeader(0).totalLen()
	m := newMeta()
	ops := []op{{kind: opStream, id: 1, lbls: labels.FromStrings("job", "x")}, {kind: opSegment, id: 1, day: 0, size: int64(n) * blockLen}}
	for i := 0; i < n; i++ {
		ops = append(ops, op{kind: opAddBlock, stream: 1, seg: 1, off: int64(i) * blockLen, hdr: *testBlockHeader(i)})
	}
	if _, err := m.apply(ops); err != nil {
		t.Fatal(err)
	}
	return m
}
