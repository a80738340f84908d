package engine

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lokal-logs/lokal/pkg/store"
)

// The disk tier keeps the block cache's partial results in files next to
// the store (its ResultCacheDir), so a fresh process (a restart, a CLI
// query, a second reader) starts warm. The memory tier asks it on a miss
// before computing, and offers it every result it computed; writes happen
// on a goroutine of their own, never on the query path. Everything is
// best effort: a missing, corrupt or truncated file is a miss (the writer
// truncates or rewrites it), a failed write turns writing off. Entries are
// keyed by everything that makes them valid (see diskKey), and a read
// checks the record's checksum and that its key is the one asked for.

const (
	// DefaultDiskCacheBytes caps the disk tier when Options.DiskCacheBytes
	// is 0; so does DefaultDiskCacheShare of the store's segment bytes,
	// whichever is smaller.
	DefaultDiskCacheBytes = 64 << 20
	DefaultDiskCacheShare = 0.03
	// diskQueueMax bounds the results waiting to be written; more are
	// dropped (they are computed again when next needed).
	diskQueueMax = 4096
)

// WithDiskCache turns the disk tier on with a budget as
// config.ParseResultCache reads it: negative off, 0 the default, else bytes.
func (o Options) WithDiskCache(budget int64) Options {
	o.DiskCache, o.DiskCacheBytes = budget >= 0, max(budget, 0)
	return o
}

// resultCacheStore is what the disk tier needs of the store.
type resultCacheStore interface {
	ResultCacheDir() (dir string, writable bool)
	// ResultCacheWrite runs a change of the directory while the store is
	// open, and reports false (not running it) once it is closed.
	ResultCacheWrite(write func()) bool
	SegmentBytes() int64
	BlockLive(id store.BlockID) bool
}

type diskTier struct {
	st       resultCacheStore
	dir      string
	writable atomic.Bool // false for a read-only store, or once a write failed
	budget   int64       // bytes; 0: the default share of the store

	mu      sync.Mutex
	listed  bool
	files   map[uint64]*diskFile
	used    int64 // bytes of all files
	queue   []diskWrite
	running bool
	idle    *sync.Cond // signalled when the writer stops
	err     error      // the write that turned writing off
}

// diskFile is one segment's file. Its mu orders loads, reads and writes.
type diskFile struct {
	seg     uint64
	mu      sync.Mutex
	loaded  bool
	mend    bool // loaded by a query: holds a bad tail or dead records
	index   map[diskKey]diskLoc
	size    int64 // bytes on disk as last loaded or written; guarded by the tier's mu too
	lastUse int64 // for LRU eviction; guarded by the tier's mu
}

type diskLoc struct {
	off int64
	n   int
}

type diskWrite struct {
	seg  uint64
	key  diskKey
	part *blockPart
}

func newDiskTier(st resultCacheStore, budget int64) *diskTier {
	dir, writable := st.ResultCacheDir()
	t := &diskTier{st: st, dir: dir, budget: budget, files: map[uint64]*diskFile{}}
	t.writable.Store(writable)
	t.idle = sync.NewCond(&t.mu)
	return t
}

func (t *diskTier) path(seg uint64) string {
	return filepath.Join(t.dir, store.ResultCacheFile(seg))
}

func diskKeyOf(b *store.BlockInfo, k cacheKey) diskKey {
	return diskKey{off: b.ID.Off, fp: b.Fingerprint(), pipe: k.pipe, gran: k.gran, phase: k.phase}
}

// listLocked learns the files already there, least recently written
// first in the LRU order, and starts loading them all at once: on a cold
// disk, one file at a time would cost a seek each on the query's path.
func (t *diskTier) listLocked() {
	if t.listed {
		return
	}
	t.listed = true
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return
	}
	defer func() { go t.prefetch(slices.Collect(maps.Values(t.files))) }()
	for _, e := range ents {
		seg, ok := store.ParseResultCacheFile(e.Name())
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		t.files[seg] = &diskFile{seg: seg, size: info.Size(), lastUse: info.ModTime().UnixNano()}
		t.used += info.Size()
	}
}

// diskPrefetchers is how many files a tier loads at once when it starts.
const diskPrefetchers = 8

// prefetch loads the files' indexes, several at once, ahead of the gets
// that need them (which wait for a file being loaded).
func (t *diskTier) prefetch(files []*diskFile) {
	var wg sync.WaitGroup
	next := make(chan *diskFile)
	for range min(diskPrefetchers, len(files)) {
		wg.Go(func() {
			for f := range next {
				f.mu.Lock()
				if !f.loaded {
					t.load(f, false)
				}
				f.mu.Unlock()
			}
		})
	}
	for _, f := range files {
		next <- f
	}
	close(next)
	wg.Wait()
}

// file returns segment seg's file, nil when there is none (a writer with
// create makes its entry).
func (t *diskTier) file(seg uint64, create bool) *diskFile {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.listLocked()
	if f := t.files[seg]; f != nil {
		return f
	}
	if !create {
		if t.writable.Load() {
			return nil // this process writes every file it does not list
		}
		// A reader learns of files the writer made since.
		info, err := os.Stat(t.path(seg))
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		f := &diskFile{seg: seg, size: info.Size(), lastUse: info.ModTime().UnixNano()}
		t.files[seg] = f
		t.used += info.Size()
		return f
	}
	f := &diskFile{seg: seg, loaded: true, index: map[diskKey]diskLoc{}}
	t.files[seg] = f
	return f
}

// get returns the kept result of k over block b, if the disk holds it.
func (t *diskTier) get(b *store.BlockInfo, k cacheKey) (*blockPart, bool) {
	f := t.file(b.ID.Seg, false)
	if f == nil {
		return nil, false
	}
	dk := diskKeyOf(b, k)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		t.load(f, false)
	}
	loc, ok := f.index[dk]
	if !ok && !t.writable.Load() && t.changed(f) {
		t.load(f, false) // the writer added to it since
		loc, ok = f.index[dk]
	}
	if !ok {
		return nil, false
	}
	part, err := t.read(f, loc, dk)
	if err != nil {
		delete(f.index, dk) // rewritten or damaged under us: compute it again
		return nil, false
	}
	t.mu.Lock()
	f.lastUse = time.Now().UnixNano()
	t.mu.Unlock()
	return part, true
}

// changed reports whether the file on disk is no longer the one f loaded.
func (t *diskTier) changed(f *diskFile) bool {
	info, err := os.Stat(t.path(f.seg))
	t.mu.Lock()
	defer t.mu.Unlock()
	return err == nil && info.Size() != f.size
}

// read decodes the record at loc, checking it is k's.
func (t *diskTier) read(f *diskFile, loc diskLoc, k diskKey) (*blockPart, error) {
	fh, err := os.Open(t.path(f.seg))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	buf := make([]byte, loc.n)
	if _, err := fh.ReadAt(buf, loc.off); err != nil {
		return nil, err
	}
	payload, n, ok := nextDiskRecord(buf)
	if !ok || n != loc.n {
		return nil, errDiskRecord
	}
	r := &diskReader{b: payload}
	got, err := decodeDiskKey(r)
	if err != nil {
		return nil, err
	}
	if got != k {
		return nil, errDiskRecord
	}
	return decodeDiskPart(r, k)
}

// load indexes f's records up to the first bad one, leaving out those of
// blocks the store no longer holds. With mayWrite (the writer, inside the
// store's ResultCacheWrite) it then makes the file exactly that: truncated
// after its last good record, or rewritten without the dead ones, or
// removed when nothing in it is good; without, it marks the file for the
// writer to mend before it next appends. Called with f.mu held. (Queries
// never write: they hold f.mu, and taking the store's gate under it could
// deadlock with the writer, which takes them the other way round.)
func (t *diskTier) load(f *diskFile, mayWrite bool) {
	path := t.path(f.seg)
	data, err := os.ReadFile(path)
	f.loaded, f.index, f.mend = true, map[diskKey]diskLoc{}, false
	if err != nil {
		t.resize(f, 0)
		return
	}
	good, dead, bad := 0, 0, !validDiskHeader(data)
	var live []diskLoc
	var keys []diskKey
	if !bad {
		good = diskHdrLen
		for good < len(data) {
			payload, n, ok := nextDiskRecord(data[good:])
			if !ok {
				bad = true
				break
			}
			k, err := decodeDiskKey(&diskReader{b: payload})
			if err != nil {
				bad = true
				break
			}
			if t.st.BlockLive(store.BlockID{Seg: f.seg, Off: k.off}) {
				live = append(live, diskLoc{off: int64(good), n: n})
				keys = append(keys, k)
			} else {
				dead += n
			}
			good += n
		}
	}
	f.mend = bad || dead > 0
	if !mayWrite || !f.mend {
		for i, k := range keys {
			f.index[k] = live[i]
		}
		t.resize(f, int64(len(data)))
		return
	}
	f.mend = false
	if len(live) == 0 {
		_ = os.Remove(path)
		t.resize(f, 0)
		return
	}
	out := diskFileHeader()
	for i, loc := range live {
		f.index[keys[i]] = diskLoc{off: int64(len(out)), n: loc.n}
		out = append(out, data[loc.off:loc.off+int64(loc.n)]...)
	}
	if err := replaceFile(path, out); err != nil {
		t.stopWriting(err)
		f.index = map[diskKey]diskLoc{}
		t.resize(f, int64(len(data)))
		return
	}
	t.resize(f, int64(len(out)))
}

// resize records f's new size in the tier's total.
func (t *diskTier) resize(f *diskFile, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.used += size - f.size
	f.size = size
}

func replaceFile(path string, data []byte) error {
	if err := store.ReplaceDerivedFile(path, data); err != nil {
		return fmt.Errorf("rewrite result cache %s: %w", path, err)
	}
	return nil
}

// stopWriting turns writing off after a failure (a full disk, a directory
// that is not ours; nil: the store closed): the cache is an optimization,
// never a reason to fail.
func (t *diskTier) stopWriting(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
	}
	t.writable.Store(false)
}

// offer queues part, k's result over block b, to be written.
func (t *diskTier) offer(b *store.BlockInfo, k cacheKey, part *blockPart) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.writable.Load() || len(t.queue) >= diskQueueMax {
		return
	}
	t.queue = append(t.queue, diskWrite{seg: b.ID.Seg, key: diskKeyOf(b, k), part: part})
	if !t.running {
		t.running = true
		go t.drain()
	}
}

// drain writes what is queued until nothing is, then evicts past the
// budget.
func (t *diskTier) drain() {
	for {
		t.mu.Lock()
		q := t.queue
		t.queue = nil
		if len(q) == 0 || !t.writable.Load() {
			t.running = false
			t.idle.Broadcast()
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		slices.SortStableFunc(q, func(a, b diskWrite) int { return cmp.Compare(a.seg, b.seg) })
		for i := 0; i < len(q); {
			j := i + 1
			for j < len(q) && q[j].seg == q[i].seg {
				j++
			}
			var err error
			if !t.st.ResultCacheWrite(func() { err = t.write(q[i].seg, q[i:j]) }) {
				t.stopWriting(nil) // the store closed
				break
			}
			if err != nil {
				t.stopWriting(err)
				break
			}
			i = j
		}
		t.st.ResultCacheWrite(t.evict)
	}
}

// flush waits until every result offered so far is written (tests).
func (t *diskTier) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.running {
		t.idle.Wait()
	}
}

// write appends the results of one segment's blocks to its file.
func (t *diskTier) write(seg uint64, ws []diskWrite) error {
	if !t.st.BlockLive(store.BlockID{Seg: seg, Off: ws[0].key.off}) {
		// The segment may be gone already; do not make its file again.
		// (Blocks of one segment go together unless compaction took
		// some; a file of a live segment drops the dead on its next load.)
		return nil
	}
	f := t.file(seg, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded || f.mend {
		t.load(f, true)
		if !t.writable.Load() {
			return nil // mending it failed
		}
	}
	t.mu.Lock()
	start := f.size
	t.mu.Unlock()
	var buf []byte
	if start < diskHdrLen {
		start, buf = 0, diskFileHeader()
	}
	type placed struct {
		k   diskKey
		loc diskLoc
	}
	var done []placed
	for _, w := range ws {
		if _, ok := f.index[w.key]; ok {
			continue
		}
		mark := len(buf)
		buf = appendDiskRecord(buf, w.key, w.part)
		if len(buf)-mark-8 > diskMaxRecord {
			buf = buf[:mark] // too big to keep
			continue
		}
		done = append(done, placed{w.key, diskLoc{off: start + int64(mark), n: len(buf) - mark}})
	}
	if len(done) == 0 {
		return nil
	}
	fh, err := t.create(seg)
	if err != nil {
		return err
	}
	_, werr := fh.WriteAt(buf, start)
	if cerr := fh.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		// What it holds past start is unknown: load it again next time.
		f.loaded = false
		return fmt.Errorf("write result cache %s: %w", t.path(seg), werr)
	}
	for _, p := range done {
		f.index[p.k] = p.loc
	}
	t.resize(f, start+int64(len(buf)))
	t.mu.Lock()
	f.lastUse = time.Now().UnixNano()
	t.mu.Unlock()
	return nil
}

// create opens segment seg's file for writing, making the directory
// first. The store removes the directory once it is empty (the last
// segment's file went with its segment), so a second try covers a removal
// between the two steps.
func (t *diskTier) create(seg uint64) (*os.File, error) {
	var err error
	for range 2 {
		if err = os.MkdirAll(t.dir, 0o755); err != nil {
			return nil, fmt.Errorf("result cache directory: %w", err)
		}
		var fh *os.File
		if fh, err = os.OpenFile(t.path(seg), os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
			return fh, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil, fmt.Errorf("open result cache: %w", err)
}

// budgetBytes is the most the tier's files may hold.
func (t *diskTier) budgetBytes() int64 {
	if t.budget > 0 {
		return t.budget
	}
	return min(DefaultDiskCacheBytes, int64(DefaultDiskCacheShare*float64(t.st.SegmentBytes())))
}

// evict removes the least recently used files until the rest fit the
// budget.
func (t *diskTier) evict() {
	budget := t.budgetBytes()
	t.mu.Lock()
	var gone []uint64
	for t.used > budget && len(t.files) > 0 {
		var victim *diskFile
		for _, f := range t.files {
			if victim == nil || f.lastUse < victim.lastUse {
				victim = f
			}
		}
		delete(t.files, victim.seg)
		t.used -= victim.size
		gone = append(gone, victim.seg)
	}
	t.mu.Unlock()
	for _, seg := range gone {
		if err := os.Remove(t.path(seg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.stopWriting(fmt.Errorf("evict result cache: %w", err))
		}
	}
}

// FlushResultCache waits until the block results offered to the disk tier
// so far are written (or dropped): call it before closing the store, so a
// restart finds them.
func (e *Engine) FlushResultCache() {
	if e != nil && e.cache != nil && e.cache.disk != nil {
		e.cache.disk.flush()
	}
}

// getDisk asks the disk tier for k's result over b after a memory miss,
// keeping what it finds in memory too.
func (c *blockCache) getDisk(b *store.BlockInfo, k cacheKey, counter *cacheCounter) (any, bool) {
	if c.disk == nil || b.Corrupt() {
		return nil, false
	}
	part, ok := c.disk.get(b, k)
	if !ok {
		return nil, false
	}
	counter.diskHit()
	c.put(k, part, part.size)
	return part, true
}

// offerDisk hands a computed result to the disk tier, which writes it
// later. Only block partial results are kept on disk.
func (c *blockCache) offerDisk(b *store.BlockInfo, k cacheKey, v any) {
	if c.disk == nil || b.Corrupt() {
		return
	}
	if part, ok := v.(*blockPart); ok {
		c.disk.offer(b, k, part)
	}
}
