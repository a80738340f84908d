package store

// Forwarding: the store as the write-ahead log of a push client.
//
// A forwarder (package forward) sends every committed entry to a remote
// Loki. It does not keep a log of its own: it walks the store's blocks in
// commit order and keeps one durable cursor per client among the store's
// cursors, so a restart resumes where the last acknowledged batch ended.
//
// Commit order. Segment ids are handed out under commitMu in increasing
// order and a commit's blocks become visible all at once, so ordering the
// blocks by key (segment id, offset) orders them by the commit that wrote
// them, and a block that appears later always has a larger key than every
// block visible before it. A position (ForwardPos) is a block key and an
// entry index within that block: everything before it has been sent.
//
// Three rules keep "a block's entries are either all before a position or
// all after it" true, which is what makes the cursor exact:
//
//  1. A commit merges a slow stream's new lines into its newest small block
//     only if no forwarder has been handed that block (its key is at or past
//     every forwarder's read mark and every durable forward cursor). The
//     merged block gets a new key past every read mark, and the old one is
//     deleted before anybody read it. ForwardPending takes commitMu, so it
//     never hands out a block a commit is merging.
//  2. Recompaction only rewrites blocks every forwarder has acknowledged
//     (keys below the lowest acknowledged position and durable cursor); its
//     blocks (codec 3) are therefore sent by every client, and forwarders
//     skip them although their keys are new.
//  3. Retention by age keeps a partition that holds a block some client has
//     not acknowledged. Retention by size drops it anyway (the disk limit
//     wins) and counts the entries each client lost (ForwardStatus.Dropped),
//     which health reports.
//
// A new client starts at the store's next segment id: it forwards what is
// stored from then on (lokal forward backfills the past). A client no longer
// configured is forgotten (ForwardForget), so adding it again later starts
// afresh instead of from a cursor recompaction may since have overtaken.
//
// Lag. Entries wait in the head until a commit (15 s by default); a
// forwarder calls CommitOlderThan to commit the head sooner, so the live
// lag is a fraction of a second plus the remote's reply.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// ForwardCursorPrefix prefixes the store cursors that hold forward
// positions; the rest of the key is the client's name.
const ForwardCursorPrefix = "forward/"

// ForwardPos is a position in commit order: the next entry to send is entry
// Entry of block (Seg, Off), or, when that block is gone, the first entry of
// the first block with a larger key.
type ForwardPos struct {
	Seg   uint64
	Off   int64
	Entry int
}

func (p ForwardPos) key() blockKey { return blockKey{p.Seg, p.Off} }

// Less orders positions.
func (p ForwardPos) Less(q ForwardPos) bool {
	if c := compareKeys(p.key(), q.key()); c != 0 {
		return c < 0
	}
	return p.Entry < q.Entry
}

// String is for logs and errors.
func (p ForwardPos) String() string { return fmt.Sprintf("%d@%d#%d", p.Seg, p.Off, p.Entry) }

func compareKeys(a, b blockKey) int {
	if c := cmp.Compare(a.seg, b.seg); c != 0 {
		return c
	}
	return cmp.Compare(a.off, b.off)
}

// encodeForwardPos is a cursor value: three uvarints.
func encodeForwardPos(p ForwardPos) []byte {
	b := binary.AppendUvarint(nil, p.Seg)
	b = binary.AppendUvarint(b, uint64(p.Off))
	return binary.AppendUvarint(b, uint64(p.Entry))
}

func decodeForwardPos(b []byte) (ForwardPos, error) {
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return ForwardPos{}, fmt.Errorf("forward cursor %x: bad field %d", b, i)
		}
		v[i], b = x, b[n:]
	}
	if len(b) != 0 || v[1] > 1<<62 || v[2] > maxBlockEntries {
		return ForwardPos{}, fmt.Errorf("forward cursor %x: malformed", b)
	}
	return ForwardPos{Seg: v[0], Off: int64(v[1]), Entry: int(v[2])}, nil
}

// fwdClient is a registered forwarder's in-memory state (under s.mu).
type fwdClient struct {
	acked ForwardPos // acknowledged by the remote (the durable cursor may lag)
	read  blockKey   // every block with a smaller key has been handed out
}

// fwdState is the store's side of forwarding, guarded by s.mu.
type fwdState struct {
	clients     map[string]*fwdClient
	committedAt map[uint64]time.Time // segment id -> when its commit finished (this process)
	opened      time.Time            // commit time assumed for older segments
	dropped     map[string]int64     // entries size retention dropped before a client sent them
}

// ForwardBlock is a committed block handed to a forwarder.
type ForwardBlock struct {
	Seg      uint64
	Off      int64
	Labels   labels.Labels
	Count    int    // entries
	RawBytes uint64 // line bytes
	ref      *blockRef
}

// Pos is the position of the block's entry i.
func (b ForwardBlock) Pos(i int) ForwardPos { return ForwardPos{Seg: b.Seg, Off: b.Off, Entry: i} }

// ErrForwardBlockGone is returned by ForwardRead for a block that retention
// dropped (or a damaged one): its entries cannot be sent.
var ErrForwardBlockGone = errors.New("block no longer in the store")

// ForwardRegister registers a forwarder by name and returns the position it
// resumes from: its durable cursor, or, for a new client, the store's next
// segment (made durable with the next commit).
func (s *Store) ForwardRegister(name string) (ForwardPos, error) {
	if s.readOnly {
		return ForwardPos{}, fmt.Errorf("forward: store %s is open read-only", s.dir)
	}
	if name == "" {
		return ForwardPos{}, fmt.Errorf("forward: a client needs a name")
	}
	key := ForwardCursorPrefix + name
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fwdInit()
	if _, dup := s.fwd.clients[name]; dup {
		return ForwardPos{}, fmt.Errorf("forward: client %q is registered twice", name)
	}
	var pos ForwardPos
	v, ok := s.pending[key]
	if !ok {
		v, ok = s.m.cursors[key]
	}
	if ok && v != nil {
		p, err := decodeForwardPos(v)
		if err != nil {
			return ForwardPos{}, fmt.Errorf("forward client %q: %w", name, err)
		}
		pos = p
	} else {
		pos = ForwardPos{Seg: s.m.nextSeg}
		s.pending[key] = encodeForwardPos(pos)
		if s.headBytes == 0 {
			s.headOldest = time.Now()
		}
	}
	s.fwd.clients[name] = &fwdClient{acked: pos, read: pos.key()}
	return pos, nil
}

// ForwardUnregister forgets a forwarder's in-memory state (its durable
// cursor stays); merges and recompaction no longer wait for it.
func (s *Store) ForwardUnregister(name string) {
	s.mu.Lock()
	if s.fwd.clients != nil {
		delete(s.fwd.clients, name)
	}
	s.mu.Unlock()
}

// ForwardForget deletes the durable cursors of clients not in keep, with
// the next commit. It returns their names.
func (s *Store) ForwardForget(keep []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for k := range s.m.cursors {
		name, ok := strings.CutPrefix(k, ForwardCursorPrefix)
		if ok && !slices.Contains(keep, name) {
			if v, p := s.pending[k]; p && v == nil {
				continue
			}
			s.pending[k] = nil
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 && s.headBytes == 0 {
		s.headOldest = time.Now()
	}
	slices.Sort(gone)
	return gone
}

func (s *Store) fwdInit() {
	if s.fwd.clients == nil {
		s.fwd.clients = map[string]*fwdClient{}
		s.fwd.committedAt = map[uint64]time.Time{}
		s.fwd.dropped = map[string]int64{}
		s.fwd.opened = time.Now()
	}
}

// fwdPositions returns every forward position the store must respect:
// registered clients' acknowledged positions and durable forward cursors
// (a client that has not registered yet, or a cursor not yet committed).
// s.mu is held.
func (s *Store) fwdPositions() map[string]ForwardPos {
	out := map[string]ForwardPos{}
	for k, v := range s.m.cursors {
		if name, ok := strings.CutPrefix(k, ForwardCursorPrefix); ok {
			if p, err := decodeForwardPos(v); err == nil {
				out[name] = p
			} else {
				out[name] = ForwardPos{} // unreadable: respect everything
			}
		}
	}
	for name, c := range s.fwd.clients {
		out[name] = c.acked
	}
	return out
}

// fwdMergeFloor is the smallest key a commit may merge new lines into:
// past every block a forwarder was handed or a durable cursor covers.
// s.mu is held.
func (s *Store) fwdMergeFloor() blockKey {
	var hi blockKey
	for _, p := range s.fwdPositions() {
		if compareKeys(p.key(), hi) > 0 {
			hi = p.key()
		}
		if p.Entry > 0 {
			// The block itself is partly sent.
			if k := (blockKey{p.Seg, p.Off + 1}); compareKeys(k, hi) > 0 {
				hi = k
			}
		}
	}
	for _, c := range s.fwd.clients {
		if compareKeys(c.read, hi) > 0 {
			hi = c.read
		}
	}
	return hi
}

// fwdSentFloor is the key below which every client has acknowledged every
// block, and ok false when no forward position exists (everything is
// free to recompact or expire). s.mu is held.
func (s *Store) fwdSentFloor() (blockKey, bool) {
	ps := s.fwdPositions()
	if len(ps) == 0 {
		return blockKey{}, false
	}
	first := true
	var lo blockKey
	for _, p := range ps {
		if first || compareKeys(p.key(), lo) < 0 {
			lo, first = p.key(), false
		}
	}
	return lo, true
}

// fwdUnsent says whether some client may still have to send block b.
// Recompacted blocks are sent by every client (rule 2). s.mu is held.
func fwdUnsent(b *blockRef, floor blockKey, ok bool) bool {
	return ok && b.h.Codec != codecZstdStrong && compareKeys(blockKey{b.seg.id, b.off}, floor) >= 0
}

// fwdNoteCommit records when a commit's segments became durable, for lag.
func (s *Store) fwdNoteCommit(ids []uint64, at time.Time) {
	if s.fwd.clients == nil {
		return
	}
	for _, id := range ids {
		s.fwd.committedAt[id] = at
	}
	if lo, ok := s.fwdSentFloor(); ok {
		for id := range s.fwd.committedAt {
			if id < lo.seg {
				delete(s.fwd.committedAt, id)
			}
		}
	}
}

// fwdNoteDrop counts, per client, the unsent entries of blocks size
// retention is about to drop. s.mu is held.
func (s *Store) fwdNoteDrop(day int64) {
	ps := s.fwdPositions()
	if len(ps) == 0 {
		return
	}
	s.fwdInit()
	for _, b := range s.m.blocks {
		if b.seg.day != day || b.h.Codec == codecZstdStrong {
			continue
		}
		k := blockKey{b.seg.id, b.off}
		for name, p := range ps {
			switch c := compareKeys(k, p.key()); {
			case c > 0:
				s.fwd.dropped[name] += int64(b.h.Count)
			case c == 0:
				s.fwd.dropped[name] += int64(b.h.Count) - int64(p.Entry)
			}
		}
	}
}

// ForwardPending hands out up to maxBlocks committed blocks at or after
// from (the block holding from included), in commit order, skipping
// recompacted ones (rule 2). maxBytes bounds their line bytes (at least one
// block is returned when any is pending).
func (s *Store) ForwardPending(name string, from ForwardPos, maxBlocks int, maxBytes uint64) ([]ForwardBlock, error) {
	s.commitMu.Lock() // no commit is choosing blocks to merge meanwhile
	defer s.commitMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.fwd.clients[name]
	if c == nil {
		return nil, fmt.Errorf("forward: client %q is not registered", name)
	}
	fk := from.key()
	var refs []*blockRef
	for k, b := range s.m.blocks {
		if compareKeys(k, fk) >= 0 && b.h.Codec != codecZstdStrong {
			refs = append(refs, b)
		}
	}
	slices.SortFunc(refs, func(a, b *blockRef) int {
		return compareKeys(blockKey{a.seg.id, a.off}, blockKey{b.seg.id, b.off})
	})
	var out []ForwardBlock
	var raw uint64
	for _, b := range refs {
		if len(out) >= maxBlocks || (len(out) > 0 && raw+b.h.RawBytes > maxBytes) {
			break
		}
		raw += b.h.RawBytes
		out = append(out, ForwardBlock{Seg: b.seg.id, Off: b.off, Labels: b.stream.lbls,
			Count: int(b.h.Count), RawBytes: b.h.RawBytes, ref: b})
	}
	if n := len(out); n > 0 {
		if k := (blockKey{out[n-1].Seg, out[n-1].Off + 1}); compareKeys(k, c.read) > 0 {
			c.read = k
		}
	}
	return out, nil
}

// ForwardRead decodes a block handed out by ForwardPending. A block dropped
// by retention since, or one that is damaged, gives an error wrapping
// ErrForwardBlockGone.
func (s *Store) ForwardRead(b ForwardBlock) ([]Entry, error) {
	s.mu.Lock()
	cur := s.m.blocks[blockKey{b.Seg, b.Off}]
	if cur != b.ref || cur == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("forward block %d@%d: %w", b.Seg, b.Off, ErrForwardBlockGone)
	}
	cur.seg.readers++
	s.mu.Unlock()
	defer s.releaseSegments([]*segment{cur.seg})
	es, err := s.readBlockEntries(cur)
	if err != nil {
		if isReadCorruption(err) {
			if !cur.corrupt.Swap(true) {
				s.noteCorrupt(cur, err)
			}
			return nil, fmt.Errorf("forward block %d@%d: %v: %w", b.Seg, b.Off, err, ErrForwardBlockGone)
		}
		return nil, fmt.Errorf("forward block %d@%d: %w", b.Seg, b.Off, err)
	}
	return es, nil
}

// ForwardAck records that the remote acknowledged everything before pos.
// The cursor becomes durable with the next commit; a crash before it
// re-sends from the previous durable cursor, whole batches.
func (s *Store) ForwardAck(name string, pos ForwardPos) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.fwd.clients[name]
	if c == nil {
		return fmt.Errorf("forward: client %q is not registered", name)
	}
	if pos.Less(c.acked) {
		return fmt.Errorf("forward client %q: acknowledged position %s is before %s", name, pos, c.acked)
	}
	c.acked = pos
	if s.closed {
		return ErrClosed
	}
	if s.headBytes == 0 && len(s.pending) == 0 {
		s.headOldest = time.Now()
	}
	s.pending[ForwardCursorPrefix+name] = encodeForwardPos(pos)
	return nil
}

// CommitOlderThan commits the head when its oldest entry (or pending
// cursor) has waited at least age; forwarders call it to bound their lag.
// It reports whether it committed.
func (s *Store) CommitOlderThan(age time.Duration) (bool, error) {
	s.mu.Lock()
	due := (s.headBytes > 0 || len(s.pending) > 0) && !s.failing && time.Since(s.headOldest) >= age
	s.mu.Unlock()
	if !due {
		return false, nil
	}
	return true, s.commit()
}

// CommitNotify returns a channel closed after the next commit attempt.
func (s *Store) CommitNotify() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.commitDone
}

// ForwardStatus is a client's backlog as the store sees it.
type ForwardStatus struct {
	Acked ForwardPos
	// LagEntries are stored entries the remote has not acknowledged:
	// committed ones after Acked plus those still in the head.
	LagEntries int64
	LagBytes   int64
	// Lag is how long the oldest of them has waited: since its commit, or
	// since it entered the head; 0 when nothing waits.
	Lag time.Duration
	// Dropped are entries size retention deleted before the client sent
	// them (the disk limit won over forwarding), since this process started.
	Dropped int64
}

// ForwardStatus reports a client's backlog: a registered client's from its
// acknowledged position, another's (a read-only store: lokal stats) from
// its durable cursor.
func (s *Store) ForwardStatus(name string, now time.Time) (ForwardStatus, error) {
	if s.readOnly {
		if err := s.reload(); err != nil {
			return ForwardStatus{}, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var acked ForwardPos
	if c := s.fwd.clients[name]; c != nil {
		acked = c.acked
	} else if v, ok := s.m.cursors[ForwardCursorPrefix+name]; ok {
		p, err := decodeForwardPos(v)
		if err != nil {
			return ForwardStatus{}, fmt.Errorf("forward client %q: %w", name, err)
		}
		acked = p
	} else {
		return ForwardStatus{}, fmt.Errorf("forward: no client %q in store %s", name, s.dir)
	}
	st := ForwardStatus{Acked: acked, Dropped: s.fwd.dropped[name]}
	c := &fwdClient{acked: acked}
	var oldest time.Time
	ak := c.acked.key()
	for k, b := range s.m.blocks {
		if b.h.Codec == codecZstdStrong {
			continue
		}
		switch cmpk := compareKeys(k, ak); {
		case cmpk < 0:
			continue
		case cmpk == 0:
			if c.acked.Entry >= int(b.h.Count) {
				continue
			}
			st.LagEntries += int64(b.h.Count) - int64(c.acked.Entry)
			st.LagBytes += int64(b.h.RawBytes) * (int64(b.h.Count) - int64(c.acked.Entry)) / int64(b.h.Count)
		default:
			st.LagEntries += int64(b.h.Count)
			st.LagBytes += int64(b.h.RawBytes)
		}
		at, ok := s.fwd.committedAt[k.seg]
		if !ok {
			at = s.segmentTime(b.seg)
		}
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	if s.headBytes > 0 {
		for _, stm := range s.m.streams {
			for _, part := range [][]Entry{stm.flushing, stm.head} {
				st.LagEntries += int64(len(part))
				for _, e := range part {
					st.LagBytes += int64(len(e.Line))
				}
			}
		}
		if oldest.IsZero() || s.headOldest.Before(oldest) {
			oldest = s.headOldest
		}
	}
	if !oldest.IsZero() && now.After(oldest) {
		st.Lag = now.Sub(oldest)
	}
	return st, nil
}

// fwdDayUnsent says whether partition day holds a block some forward client
// has not acknowledged. s.mu is held.
func (s *Store) fwdDayUnsent(day int64) bool {
	floor, ok := s.fwdSentFloor()
	if !ok {
		return false
	}
	for _, b := range s.m.blocks {
		if b.seg.day == day && fwdUnsent(b, floor, ok) {
			return true
		}
	}
	return false
}

// segmentTime is when a segment was committed, as its file says (its
// modification time: segments are written once, by their commit).
func (s *Store) segmentTime(seg *segment) time.Time {
	fi, err := os.Stat(segPath(s.dir, seg))
	if err != nil {
		return s.fwd.opened
	}
	return fi.ModTime()
}

// ForwardClients lists the clients with a durable cursor in the store.
func (s *Store) ForwardClients() ([]string, error) {
	if s.readOnly {
		if err := s.reload(); err != nil {
			return nil, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for k := range s.m.cursors {
		if name, ok := strings.CutPrefix(k, ForwardCursorPrefix); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
