package engine

import (
	"container/heap"
	"context"
	"errors"
	"math/rand"
	"reflect"
	"testing"
)

// sliceInput is a mergeInput over fixed keys; id tells tied inputs apart.
type sliceInput struct {
	id   int
	keys []int
	pos  int
	cur  int
	err  error // returned once keys run out
}

func (s *sliceInput) advance(context.Context) (bool, error) {
	if s.pos == len(s.keys) {
		return false, s.err
	}
	s.cur = s.keys[s.pos]
	s.pos++
	return true, nil
}

type pulled struct{ id, key int }

func byKeyOnly(a, b *sliceInput) bool { return a.cur < b.cur }

func inputs(keys [][]int) []*sliceInput {
	out := make([]*sliceInput, len(keys))
	for i, k := range keys {
		out[i] = &sliceInput{id: i, keys: k}
	}
	return out
}

func drain(t *testing.T, m *merge[*sliceInput]) []pulled {
	t.Helper()
	var out []pulled
	for !m.empty() {
		c := m.top()
		out = append(out, pulled{c.id, c.cur})
		if err := m.next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// refHeap is the container/heap merge the engine used before merge.
type refHeap []*sliceInput

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return byKeyOnly(h[i], h[j]) }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeap) Push(x any)        { *h = append(*h, x.(*sliceInput)) }
func (h *refHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func refMerge(ins []*sliceInput) []pulled {
	h := refHeap{}
	for _, c := range ins {
		if ok, _ := c.advance(context.Background()); ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	var out []pulled
	for h.Len() > 0 {
		c := h[0]
		out = append(out, pulled{c.id, c.cur})
		if ok, _ := c.advance(context.Background()); ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return out
}

func TestMergeOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys [][]int
		want []pulled
	}{
		{"no inputs", nil, nil},
		{"empty inputs", [][]int{{}, {}}, nil},
		{"one input", [][]int{{1, 2, 3}}, []pulled{{0, 1}, {0, 2}, {0, 3}}},
		{"interleaved", [][]int{{1, 4, 7}, {2, 5}, {3, 6, 8}},
			[]pulled{{0, 1}, {1, 2}, {2, 3}, {0, 4}, {1, 5}, {2, 6}, {0, 7}, {2, 8}}},
		{"one input ends first", [][]int{{1}, {}, {0, 2}}, []pulled{{2, 0}, {0, 1}, {2, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newMerge(context.Background(), inputs(tc.keys), byKeyOnly)
			if err != nil {
				t.Fatal(err)
			}
			if got := drain(t, m); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMergeTiesAsContainerHeap checks that inputs tied on their key come
// out in the same order as with container/heap, which decided the order of
// tied samples (and so float sums) before.
func TestMergeTiesAsContainerHeap(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 200; round++ {
		keys := make([][]int, 1+rng.Intn(12))
		for i := range keys {
			k := 0
			for j := rng.Intn(20); j > 0; j-- {
				k += rng.Intn(3) // many ties across inputs
				keys[i] = append(keys[i], k)
			}
		}
		m, err := newMerge(context.Background(), inputs(keys), byKeyOnly)
		if err != nil {
			t.Fatal(err)
		}
		got, want := drain(t, m), refMerge(inputs(keys))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("keys %v:\ngot  %v\nwant %v", keys, got, want)
		}
	}
}

func TestMergeErrors(t *testing.T) {
	boom := errors.New("boom")
	// An input failing on its first item fails the merge's start.
	if _, err := newMerge(context.Background(), []*sliceInput{{keys: nil, err: boom}}, byKeyOnly); !errors.Is(err, boom) {
		t.Errorf("newMerge error %v, want boom", err)
	}
	// One failing later fails the next step.
	m, err := newMerge(context.Background(), []*sliceInput{{keys: []int{1}, err: boom}}, byKeyOnly)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.next(context.Background()); !errors.Is(err, boom) {
		t.Errorf("next error %v, want boom", err)
	}
}
