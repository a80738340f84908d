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
// reading it. It also drops, as soon as a block is decoded, the lines the
// filters reject, so the pipeline sees only candidates.
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

// Keep marks the lines that pass every filter and remembers a block with
// none.
func (m *noMatchMemo) Keep(id store.BlockID, lines []string, keep []bool) bool {
	m.counter.miss()
	any := false
	for i, l := range lines {
		b := unsafe.Slice(unsafe.StringData(l), len(l))
		k := true
		for _, f := range m.filters {
			if !f.Match(b) {
				k = false
				break
			}
		}
		keep[i] = k
		any = any || k
	}
	if !any {
		m.cache.put(m.cacheKey(id), struct{}{}, noMatchSize)
	}
	return any
}
