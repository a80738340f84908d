package engine

import (
	"context"
	"unsafe"

	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/store"
)

// noMatchMemo is a log query's per-block "no line passes these filters"
// memo, kept in the engine's block cache: a search repeated over unchanged
// blocks skips every block that held no match the first time, without
// reading it. Learning costs a block with a match only the lines up to its
// first one; a block without any is dropped before the pipeline sees it.
// Log queries that keep their passing entries per block (logmemo.go) do
// without it.
type noMatchMemo struct {
	cache   *blockCache
	key     string
	filters []log.Filter
	counter *cacheCounter
}

// noMatchSize is what one memo entry costs beyond its key.
const noMatchSize = 16

// withNoMatchMemo returns ctx with the memo of sel's line filters when the
// engine has a cache and sel filters lines.
func (e *Engine) withNoMatchMemo(ctx context.Context, sel *selector) context.Context {
	if e.cache == nil || len(sel.lineFilters) == 0 {
		return ctx
	}
	if br, ok := e.r.(store.BlockReader); ok {
		e.cache.sweep(br)
	}
	return store.WithBlockFilter(ctx, &noMatchMemo{cache: e.cache, key: "nomatch" + sel.filterKey, filters: sel.lineFilters, counter: cacheCounterFrom(ctx)})
}

func (m *noMatchMemo) cacheKey(id store.BlockID) cacheKey {
	return cacheKey{block: id, pipe: m.key}
}

// Skip reports whether the block held no match when last read.
func (m *noMatchMemo) Skip(id store.BlockID) bool {
	if _, ok := m.cache.get(m.cacheKey(id)); ok {
		m.counter.hit()
		return true
	}
	return false
}

// AnyWanted reports whether a line passes every filter (it stops at the
// first), and remembers a block with none.
func (m *noMatchMemo) AnyWanted(id store.BlockID, lines []string) bool {
	m.counter.miss()
	for _, l := range lines {
		if m.match(l) {
			return true
		}
	}
	m.cache.put(m.cacheKey(id), struct{}{}, noMatchSize)
	return false
}

func (m *noMatchMemo) match(line string) bool {
	b := unsafe.Slice(unsafe.StringData(line), len(line))
	for _, f := range m.filters {
		if !f.Match(b) {
			return false
		}
	}
	return true
}
