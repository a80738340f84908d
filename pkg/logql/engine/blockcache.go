package engine

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"

	"github.com/lokal-logs/lokal/pkg/store"
)

// DefaultBlockCacheBytes is the memory the per-block result cache may hold
// when Options.BlockCacheBytes is 0.
const DefaultBlockCacheBytes = 32 << 20

// CacheStats say how much of a query's answer came from results kept per
// immutable block: a hit is a block whose result was reused instead of read,
// a miss one that was read (and its result kept for the next query).
type CacheStats struct {
	Hits   int64
	Misses int64
	// DiskHits are the hits read from the disk tier (counted in Hits too).
	DiskHits int64
}

// cacheKey names one kept result: a block, what was computed over it (the
// normalized pipeline: extraction kind, selector and every stage, printed
// canonically) and how its entries were bucketed. gran 0 is one bucket for
// the whole block, which any alignment can use.
type cacheKey struct {
	block store.BlockID
	pipe  string
	gran  int64
	phase int64
}

type cacheEntry struct {
	key  cacheKey
	val  any
	size int64
}

// blockCache is an LRU of per-block results bounded by the bytes they hold.
// Blocks never change, so an entry is right for as long as its block lives;
// entries of blocks the store removed are swept when its block epoch moves.
type blockCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	lru    *list.List // front: most recently used; values *cacheEntry
	byKey  map[cacheKey]*list.Element
	epoch  uint64
	swept  bool
	disk   *diskTier // nil: memory only
	// overAt remembers, per pipeline, the fewest block entries whose kept
	// samples did not fit the budget, so that a query as large does not
	// compute (and evict the cache for) samples it cannot keep.
	overAt map[string]int64
}

func newBlockCache(budget int64) *blockCache {
	return &blockCache{budget: budget, lru: list.New(), byKey: map[cacheKey]*list.Element{}, overAt: map[string]int64{}}
}

// tooLarge reports whether blocks holding entries entries of pipeline pipe
// are known to give more samples than the budget holds.
func (c *blockCache) tooLarge(pipe string, entries int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.overAt[pipe]
	return ok && entries >= at
}

// noteTooLarge records that blocks holding entries entries of pipeline
// pipe gave more samples than the budget holds.
func (c *blockCache) noteTooLarge(pipe string, entries int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.overAt[pipe]; ok && at <= entries {
		return
	}
	if len(c.overAt) >= 1024 { // forget, rather than grow without bound
		clear(c.overAt)
	}
	c.overAt[pipe] = entries
}

func (c *blockCache) get(k cacheKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry).val, true
}

// put keeps v (costing size bytes), evicting the least recently used
// entries past the budget. A value larger than the whole budget is not kept.
func (c *blockCache) put(k cacheKey, v any, size int64) {
	size += int64(len(k.pipe)) + 128 // key, entry and list overhead
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.budget {
		return
	}
	if el, ok := c.byKey[k]; ok {
		c.removeLocked(el)
	}
	c.byKey[k] = c.lru.PushFront(&cacheEntry{key: k, val: v, size: size})
	c.used += size
	for c.used > c.budget {
		c.removeLocked(c.lru.Back())
	}
}

// drop removes k's entry, if the cache holds one.
func (c *blockCache) drop(k cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.removeLocked(el)
	}
}

func (c *blockCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.byKey, e.key)
	c.used -= e.size
}

// sweep drops the entries of blocks the store no longer holds, once per
// change of its block epoch.
func (c *blockCache) sweep(br store.BlockReader) {
	epoch := br.BlocksEpoch()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.swept && epoch == c.epoch {
		return
	}
	c.epoch, c.swept = epoch, true
	live := map[store.BlockID]bool{}
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		id := el.Value.(*cacheEntry).key.block
		ok, seen := live[id]
		if !seen {
			ok = br.BlockLive(id)
			live[id] = ok
		}
		if !ok {
			c.removeLocked(el)
		}
		el = next
	}
}

// len is how many results the cache holds.
func (c *blockCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// cacheCounter counts one query's hits and misses; workers share it.
type cacheCounter struct {
	hits, misses, diskHits atomic.Int64
}

func (c *cacheCounter) hit() {
	if c != nil {
		c.hits.Add(1)
	}
}

func (c *cacheCounter) diskHit() {
	if c != nil {
		c.diskHits.Add(1)
	}
}

func (c *cacheCounter) miss() {
	if c != nil {
		c.misses.Add(1)
	}
}

func (c *cacheCounter) snapshot() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), DiskHits: c.diskHits.Load()}
}

type cacheCounterKey struct{}

func withCacheCounter(ctx context.Context, c *cacheCounter) context.Context {
	return context.WithValue(ctx, cacheCounterKey{}, c)
}

func cacheCounterFrom(ctx context.Context) *cacheCounter {
	c, _ := ctx.Value(cacheCounterKey{}).(*cacheCounter)
	return c
}

// blockCacheFor returns the engine's cache and the store's blocks when both
// are there, so a query can keep results per block.
func (e *Engine) blockCacheFor() (*blockCache, store.BlockReader, bool) {
	if e.cache == nil {
		return nil, nil, false
	}
	br, ok := e.r.(store.BlockReader)
	return e.cache, br, ok
}
