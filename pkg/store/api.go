// Package store keeps log entries on one disk: streams identified by their
// label sets, entries in compressed column blocks with per-block time ranges
// and token filters, an index of labels (never of text), an in-memory head for
// recent entries, and retention by whole time partitions. FORMAT.md beside
// this file documents the bytes on disk.
//
// This file is the contract between the store and its two users, the
// ingester (which appends) and the LogQL engine (which selects). The engine
// never sees blocks; the store never sees LogQL beyond matchers, a time range
// and a line-filter hint.
package store

import (
	"context"
	"sync"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// Entry is one log entry of a stream.
type Entry struct {
	// Ts is the entry's time in Unix nanoseconds.
	Ts int64
	// Seq orders entries with equal Ts within a stream, and places an entry in
	// its source file (the ingester uses the byte offset of the line; push uses
	// the entry's index). Entries of a stream come back ordered by (Ts, Seq).
	Seq uint64
	// Line is the entry's text; multi-line entries are joined with "\n".
	Line string
	// Metadata is the entry's structured metadata (Loki's per-entry
	// name/value pairs, which are not stream labels), sorted by name with
	// unique names; nil for most entries.
	Metadata labels.Labels
}

// Direction is the order in which a stream's entries are returned.
type Direction int

const (
	Forward  Direction = iota // oldest first
	Backward                  // newest first
)

// AppendBatch is what the ingester hands over in one atomic step: entries for
// any number of streams plus the cursors (file positions) that become true
// once those entries are durable. The store persists a cursor only together
// with every entry appended with or before it, so a crash can never lose or
// duplicate a line: the log files are the write-ahead log.
type AppendBatch struct {
	Streams []StreamEntries
	// Cursors maps an opaque key (the ingester's file identity) to an opaque
	// value (its position). A nil value deletes the key.
	Cursors map[string][]byte
}

// StreamEntries are entries of one stream, in any order.
type StreamEntries struct {
	Labels  labels.Labels
	Entries []Entry
}

// LineFilterHint lets the store skip blocks by their token filters. Every
// group must be satisfied for a line to match; a group is satisfied when the
// line contains at least one of its literals (case-sensitively). A nil hint
// skips nothing. The engine still evaluates the real filter on every line it
// gets: the hint only prunes, it never decides.
type LineFilterHint struct {
	Groups [][]string
}

// SelectParams describe what the engine wants.
type SelectParams struct {
	Matchers   []*labels.Matcher
	Start, End int64 // Unix ns, [Start, End)
	Direction  Direction
	Hint       *LineFilterHint
	// Lines false returns timestamps and line sizes only, so counting over
	// time never decompresses the line column.
	Lines bool
	// MaxDecodedBytes bounds what the iterators of this select hold
	// decoded at once, all streams together. When the streams' blocks do
	// not fit at once, each stream holds a window of its block's entries
	// (the block is decoded again for the next window); when even a window
	// per stream does not fit, the iterators fail with ErrDecodedLimit.
	// 0 means DefaultMaxDecodedBytes; a negative value means no bound.
	MaxDecodedBytes int64
}

// Batch is a run of entries of one stream, in the requested direction.
// Its slices are valid until the next call to Next.
type Batch struct {
	Labels labels.Labels
	Ts     []int64
	Seq    []uint64
	Sizes  []uint32 // byte length of each line
	Lines  []string // nil when SelectParams.Lines is false
	// Metadata is each entry's structured metadata (as Entry.Metadata),
	// whether or not Lines is asked for; nil when no entry of the batch has
	// any. Label sets may be shared between entries: do not modify them.
	Metadata []labels.Labels
}

// Stats tell the query inspector what a select cost.
type Stats struct {
	Streams        int
	BlocksTotal    int // blocks in the time range of matching streams
	BlocksSkipped  int // of those, skipped by the token filters
	BlocksRead     int
	BlocksCorrupt  int
	EntriesScanned int64
	BytesScanned   int64 // uncompressed line bytes handed to the engine
	// BlocksRedecoded counts the blocks decoded again for their next
	// window, by a select whose streams' blocks did not fit its
	// MaxDecodedBytes at once (more CPU for bounded memory).
	BlocksRedecoded int
}

// StreamIterator yields one stream's batches in the requested direction,
// entries within and across batches ordered by (Ts, Seq) (reversed for
// Backward). It reads lazily: nothing is decompressed before Next.
type StreamIterator interface {
	Labels() labels.Labels
	Next() bool
	At() *Batch
	Err() error
	Close() error
}

// Reader is what the LogQL engine needs from the store.
type Reader interface {
	// Select returns one iterator per matching stream that has entries in
	// [Start, End). Iterators may be consumed concurrently, one goroutine each.
	Select(ctx context.Context, p SelectParams) ([]StreamIterator, error)
	// Streams lists the label sets of matching streams with data in [start, end).
	Streams(ctx context.Context, ms []*labels.Matcher, start, end int64) ([]labels.Labels, error)
	// LabelNames and LabelValues serve label browsers.
	LabelNames(ctx context.Context, start, end int64) ([]string, error)
	LabelValues(ctx context.Context, name string, ms []*labels.Matcher, start, end int64) ([]string, error)
}

// StatsCollector gathers the Stats of every select made with a context from
// WithStats; it is safe for concurrent use by many iterators.
type StatsCollector struct {
	mu sync.Mutex
	s  Stats
}

// Add adds d to the totals.
func (c *StatsCollector) Add(d Stats) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.s.Streams += d.Streams
	c.s.BlocksTotal += d.BlocksTotal
	c.s.BlocksSkipped += d.BlocksSkipped
	c.s.BlocksRead += d.BlocksRead
	c.s.BlocksCorrupt += d.BlocksCorrupt
	c.s.EntriesScanned += d.EntriesScanned
	c.s.BytesScanned += d.BytesScanned
	c.s.BlocksRedecoded += d.BlocksRedecoded
	c.mu.Unlock()
}

// Snapshot returns the totals so far.
func (c *StatsCollector) Snapshot() Stats {
	if c == nil {
		return Stats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}

type statsKey struct{}

// WithStats returns a context whose selects report into c.
func WithStats(ctx context.Context, c *StatsCollector) context.Context {
	return context.WithValue(ctx, statsKey{}, c)
}

// StatsFrom returns the collector of ctx, or nil (whose Add does nothing).
func StatsFrom(ctx context.Context) *StatsCollector {
	c, _ := ctx.Value(statsKey{}).(*StatsCollector)
	return c
}

// Appender is what the ingester needs from the store.
type Appender interface {
	Append(ctx context.Context, b AppendBatch) error
	// Cursors returns the cursors of the last durable commit.
	Cursors() map[string][]byte
}
