// Package memstore is an in-memory store.Reader and store.Appender: it
// honours the store contract (half-open ranges, direction, Lines:false, the
// line-filter hint as a pure pruning aid, statistics) without any disk. Live
// tail runs the engine on one holding just the freshly stored entries, and
// the engine's tests and benchmarks use it to test engine semantics apart
// from the real store.
package memstore

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// blockSize mimics the real store's blocks so the hint prunes something.
const blockSize = 64

type stream struct {
	ls       labels.Labels
	entries  []store.Entry
	metadata bool // some entry has structured metadata
}

// Store holds streams in memory. It is not safe for concurrent Append; reads
// may run concurrently once loading is done.
type Store struct {
	streams      map[string]*stream
	minTs, maxTs int64
	mu           sync.Mutex
	// SelectCalls records every Select, so tests can check what the engine
	// asked for (Lines, Hint).
	SelectCalls []store.SelectParams
}

// New returns an empty store.
func New() *Store {
	return &Store{streams: map[string]*stream{}, minTs: math.MaxInt64, maxTs: math.MinInt64}
}

// Append adds a batch, copying its entries; they are kept ordered by
// (Ts, Seq). A stream without labels refuses the whole batch.
func (s *Store) Append(_ context.Context, b store.AppendBatch) error {
	for _, se := range b.Streams {
		if len(se.Labels) == 0 {
			return fmt.Errorf("memstore: stream without labels")
		}
	}
	for _, se := range b.Streams {
		for _, e := range se.Entries {
			s.minTs = min(s.minTs, e.Ts)
			s.maxTs = max(s.maxTs, e.Ts)
		}
		k := se.Labels.String()
		st := s.streams[k]
		if st == nil {
			st = &stream{ls: se.Labels}
			s.streams[k] = st
		}
		st.entries = append(st.entries, se.Entries...)
		for i := range se.Entries {
			st.metadata = st.metadata || len(se.Entries[i].Metadata) > 0
		}
		sort.SliceStable(st.entries, func(i, j int) bool {
			a, b := &st.entries[i], &st.entries[j]
			if a.Ts != b.Ts {
				return a.Ts < b.Ts
			}
			return a.Seq < b.Seq
		})
	}
	return nil
}

// Bounds returns the times of the oldest and newest entry held; ok is false
// when the store holds none.
func (s *Store) Bounds() (minTs, maxTs int64, ok bool) {
	return s.minTs, s.maxTs, s.minTs <= s.maxTs
}

// Cursors is unused by the engine.
func (s *Store) Cursors() map[string][]byte { return nil }

func (s *Store) matching(ms []*labels.Matcher) []*stream {
	var out []*stream
	for _, st := range s.streams {
		if labels.MatchLabels(st.ls, ms...) {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].ls, out[j].ls) < 0 })
	return out
}

func inRange(es []store.Entry, start, end int64) []store.Entry {
	lo := sort.Search(len(es), func(i int) bool { return es[i].Ts >= start })
	hi := sort.Search(len(es), func(i int) bool { return es[i].Ts >= end })
	return es[lo:hi]
}

// Select implements store.Reader.
func (s *Store) Select(ctx context.Context, p store.SelectParams) ([]store.StreamIterator, error) {
	s.mu.Lock()
	s.SelectCalls = append(s.SelectCalls, p)
	s.mu.Unlock()
	var its []store.StreamIterator
	stats := store.StatsFrom(ctx)
	for _, st := range s.matching(p.Matchers) {
		es := inRange(st.entries, p.Start, p.End)
		if len(es) == 0 {
			continue
		}
		its = append(its, &iter{ls: st.ls, entries: es, metadata: st.metadata, p: p, stats: stats, ctx: ctx})
		stats.Add(store.Stats{Streams: 1, BlocksTotal: (len(es) + blockSize - 1) / blockSize})
	}
	return its, nil
}

type iter struct {
	ls       labels.Labels
	entries  []store.Entry
	metadata bool
	p        store.SelectParams
	stats    *store.StatsCollector
	ctx      context.Context
	pos      int // blocks consumed
	b        store.Batch
	err      error
}

func (it *iter) Labels() labels.Labels { return it.ls }

func hintMatches(h *store.LineFilterHint, es []store.Entry) bool {
	if h == nil {
		return true
	}
	for _, g := range h.Groups {
		ok := false
		for _, lit := range g {
			for _, e := range es {
				if strings.Contains(e.Line, lit) {
					ok = true
					break
				}
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (it *iter) Next() bool {
	nblocks := (len(it.entries) + blockSize - 1) / blockSize
	for it.pos < nblocks {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			return false
		}
		bi := it.pos
		if it.p.Direction == store.Backward {
			bi = nblocks - 1 - it.pos
		}
		it.pos++
		es := it.entries[bi*blockSize : min((bi+1)*blockSize, len(it.entries))]
		if !hintMatches(it.p.Hint, es) {
			it.stats.Add(store.Stats{BlocksSkipped: 1})
			continue
		}
		b := store.Batch{Labels: it.ls}
		var bytes int64
		for k := range es {
			e := &es[k]
			if it.p.Direction == store.Backward {
				e = &es[len(es)-1-k]
			}
			b.Ts = append(b.Ts, e.Ts)
			b.Seq = append(b.Seq, e.Seq)
			b.Sizes = append(b.Sizes, uint32(len(e.Line)))
			if it.p.Lines {
				b.Lines = append(b.Lines, e.Line)
				bytes += int64(len(e.Line))
			}
			if it.metadata {
				if len(e.Metadata) > 0 && b.Metadata == nil {
					b.Metadata = make([]labels.Labels, k, len(es))
				}
				if b.Metadata != nil {
					b.Metadata = append(b.Metadata, e.Metadata)
				}
			}
		}
		it.stats.Add(store.Stats{BlocksRead: 1, EntriesScanned: int64(len(es)), BytesScanned: bytes})
		it.b = b
		return true
	}
	return false
}

func (it *iter) At() *store.Batch { return &it.b }
func (it *iter) Err() error       { return it.err }
func (it *iter) Close() error     { return nil }

// Streams implements store.Reader.
func (s *Store) Streams(_ context.Context, ms []*labels.Matcher, start, end int64) ([]labels.Labels, error) {
	var out []labels.Labels
	for _, st := range s.matching(ms) {
		if len(inRange(st.entries, start, end)) > 0 {
			out = append(out, st.ls)
		}
	}
	return out, nil
}

// LabelNames implements store.Reader.
func (s *Store) LabelNames(_ context.Context, start, end int64) ([]string, error) {
	set := map[string]bool{}
	for _, st := range s.matching(nil) {
		if len(inRange(st.entries, start, end)) > 0 {
			for _, l := range st.ls {
				set[l.Name] = true
			}
		}
	}
	return sortedKeys(set), nil
}

// LabelValues implements store.Reader.
func (s *Store) LabelValues(_ context.Context, name string, ms []*labels.Matcher, start, end int64) ([]string, error) {
	set := map[string]bool{}
	for _, st := range s.matching(ms) {
		if v := st.ls.Get(name); v != "" && len(inRange(st.entries, start, end)) > 0 {
			set[v] = true
		}
	}
	return sortedKeys(set), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	_ store.Reader   = (*Store)(nil)
	_ store.Appender = (*Store)(nil)
)
