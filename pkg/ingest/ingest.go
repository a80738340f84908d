// Package ingest does Promtail's job inside Lokal: it finds log files by
// glob, follows them through rotation (rename, copytruncate, delete and
// recreate, truncation, gzip-compressed generations), cuts them into lines,
// runs each file's pipeline stages and hands entries to the store together
// with the file positions they complete.
//
// The log files are the write-ahead log. A position is stored as a store
// cursor in the same atomic append as the lines before it, so a crash at any
// moment resumes exactly where the durable lines end: nothing is lost and
// nothing is read twice. Files are known by device, inode and a fingerprint
// of their first bytes, never by path, so a rotated file is read to its end
// wherever it was moved, even while Lokal was stopped. A file's identity is
// durable before its first line is read, in the positions file beside the
// store (positions.go), so a generation rotated away before the store's
// first commit is still found after a kill -9.
//
// Two types do the work of a CatchUp or Run. The tracker (tracker*.go)
// knows which file is what: discovery, identity, rotation, copies, restart
// recovery and positions; it owns the tracked files. The pump (pump*.go)
// reads them in a pool of workers, batches the entries with the positions
// they complete, and appends.
//
// Lines are kept as Loki keeps them: "\n" and "\r\n" endings removed, each
// invalid UTF-8 byte replaced by U+FFFD (what Loki does on push), lines
// longer than max_line_bytes cut and marked " …[truncated N bytes]".
//
// Known limits, all shared with Promtail or narrower than its:
//   - A generation rotated away before Lokal ever saw it (it was created
//     and rotated while Lokal was stopped, before any position of its
//     directory was recorded) cannot be told from old history and is not
//     read. After that, generations written while Lokal was stopped are
//     found (named after a known file, changed after its last stored
//     position).
//   - Copies are recognised by their first 1 KiB (or their first bytes
//     while a copy is being written, at least 64 of them): two files whose
//     heads are identical are taken for copies of each other.
//   - A file truncated with no copy left loses what was written after the
//     last read and before the truncation (reported as a problem).
package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/forward"
	"github.com/lokal-logs/lokal/pkg/ingest/stages"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Defaults of Options, in one place.
const (
	// DefaultBatchBytes: big appends keep the store's per-call cost small
	// during catch-up, small enough to bound memory.
	DefaultBatchBytes = 2 << 20
	// DefaultBatchAge bounds how long a live line waits before it is stored.
	DefaultBatchAge = 100 * time.Millisecond
	// DefaultRotatedIdle is how long a rotated file must stay unchanged at
	// its end before its unterminated last line is flushed and it is closed:
	// a writer that has not reopened its log yet may still append to it.
	DefaultRotatedIdle = 5 * time.Second
	// DefaultRetryInterval is the wait before retrying a refused append.
	DefaultRetryInterval = time.Second
	// readBudget is how much one worker reads from one file before the
	// file goes back in the queue, so many files progress fairly.
	readBudget = 1 << 20
	// maxEntryHint caps how many entries a stream's slice in a read's
	// result is made for up front (chunkResult.entryHint): a read of
	// readBudget bytes of 32-byte lines.
	maxEntryHint = readBudget / 32
	// subscriberBuffer is how many notifications a slow live tail may lag.
	subscriberBuffer = 64
	// finalAppendTimeout bounds the last append after Run's context ends.
	finalAppendTimeout = 30 * time.Second
)

// Options tune an Ingester; the zero value means defaults.
type Options struct {
	// Workers is how many files are read in parallel (default GOMAXPROCS).
	Workers int
	// BatchBytes and BatchAge say when accumulated lines are appended.
	BatchBytes int
	BatchAge   time.Duration
	// RotatedIdle: see DefaultRotatedIdle.
	RotatedIdle time.Duration
	// RetryInterval: see DefaultRetryInterval.
	RetryInterval time.Duration
	// NoFsnotify relies on polling only (settings.poll_interval).
	NoFsnotify bool
	// Now is the clock (time of reading); nil means time.Now.
	Now func() time.Time
	// Logf receives diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// Ingester follows the files of one settings' scrape configs into one store.
type Ingester struct {
	settings *config.Settings
	op       *config.Operator
	app      store.Appender
	opts     Options
	targets  []*target

	running sync.Mutex // one CatchUp or Run at a time
	buffers sync.Pool  // read buffers of idle files

	fwdMu sync.Mutex
	fwd   *forward.Forwarder // while CatchUp or Run forwards (forward.go)

	mu sync.Mutex // guards hs, subs and pipes
	hs healthState
	// pipes are the live per-file pipelines and retiredStats the counters
	// of finished ones: together they give timestamp failures and warnings.
	pipes        map[*stages.Pipeline]struct{}
	retiredStats stages.Stats
	subs         map[int]chan Notification
	subMissed    map[int]int
	nextSub      int
	// readTime: see ReadTimeStamped.
	readTime []ReadTimeStat
}

// target is one static config of a scrape config: a glob and its labels.
type target struct {
	key     string // job_name/index, stored in positions
	job     string
	include *globPattern
	exclude *globPattern
	labels  labels.Labels // static labels, without the __ ones
	stages  []config.Stage
}

// New checks the settings and prepares an ingester; nothing is read before
// CatchUp or Run. Bad settings give one error listing every problem.
func New(settings *config.Settings, op *config.Operator, app store.Appender, opts Options) (*Ingester, error) {
	if settings == nil {
		return nil, errors.New("ingest: nil settings")
	}
	if op == nil {
		return nil, errors.New("ingest: nil operator controls")
	}
	if app == nil {
		return nil, errors.New("ingest: nil store appender")
	}
	if err := settings.Validate(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = DefaultBatchBytes
	}
	if opts.BatchAge <= 0 {
		opts.BatchAge = DefaultBatchAge
	}
	if opts.RotatedIdle <= 0 {
		opts.RotatedIdle = DefaultRotatedIdle
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	in := &Ingester{settings: settings, op: op, app: app, opts: opts,
		subs: map[int]chan Notification{}, subMissed: map[int]int{}, pipes: map[*stages.Pipeline]struct{}{}}
	var errs []error
	for i, sc := range settings.ScrapeConfigs {
		if err := checkStages(sc.PipelineStages); err != nil {
			errs = append(errs, fmt.Errorf("scrape_configs[%d] (%s): %w", i, sc.JobName, err))
		}
		for j, st := range sc.StaticConfigs {
			t := &target{key: fmt.Sprintf("%s/%d", sc.JobName, j), job: sc.JobName, stages: sc.PipelineStages}
			var err error
			if t.include, err = compileGlob(st.Path()); err != nil {
				errs = append(errs, fmt.Errorf("scrape_configs[%d].static_configs[%d].labels.__path__: %w", i, j, err))
				continue
			}
			if ex := st.PathExclude(); ex != "" {
				if t.exclude, err = compileGlob(ex); err != nil {
					errs = append(errs, fmt.Errorf("scrape_configs[%d].static_configs[%d].labels.__path_exclude__: %w", i, j, err))
					continue
				}
			}
			t.labels = labels.FromMap(st.StreamLabels())
			in.targets = append(in.targets, t)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("ingest: %w", errors.Join(errs...))
	}
	// Counts from earlier runs are known before Run reads anything; an
	// unreadable cursor is reported by Run.
	in.readTime, _ = ReadTimeStatsFrom(app.Cursors())
	return in, nil
}

// maxLine is the effective max_line_bytes.
func (in *Ingester) maxLine() int {
	if n := int(in.settings.MaxLineBytes); n > 0 {
		return n
	}
	return DefaultMaxLineBytes
}

func (in *Ingester) pollInterval() time.Duration {
	if d := in.settings.PollInterval.D(); d > 0 {
		return d
	}
	return config.DefaultPollInterval
}

// CatchUp reads every matched file to its end (rotated generations
// included), stores everything and returns: `lokal ingest`. An active file's
// unterminated last line stays unread, since its writer may still finish it.
func (in *Ingester) CatchUp(ctx context.Context) error {
	return in.runPump(ctx, false)
}

// Run follows the files until ctx ends, then stores what it has read and
// returns nil: `lokal tail` and the plugin. It returns an error only when it
// could not start, or could not store its last lines.
func (in *Ingester) Run(ctx context.Context) error {
	return in.runPump(ctx, true)
}

// runPump runs one pump at a time (follow: until ctx ends, else to the files'
// ends), with forwarding to the clients running alongside.
func (in *Ingester) runPump(ctx context.Context, follow bool) error {
	if !in.running.TryLock() {
		return errors.New("ingest: already running")
	}
	defer in.running.Unlock()
	defer in.forwarding()()
	return newPump(in, follow).run(ctx)
}

// Health returns a snapshot of the ingester's state.
func (in *Ingester) Health() Health {
	in.mu.Lock()
	defer in.mu.Unlock()
	h := in.hs.snapshot()
	st := in.retiredStats
	st.Warnings = append([]string(nil), st.Warnings...)
	for p := range in.pipes {
		st.Add(p.Stats())
	}
	h.TimestampFailures = st.TimestampFailures
	h.LabelCapWarnings = st.Warnings
	h.Dropped = st.Dropped
	h.Forward = in.forwardStatus()
	return h
}

// Subscribe returns a channel receiving every stored batch, for live tail.
// A subscriber that falls behind loses notifications (counted in the next
// one's Missed) rather than stalling ingestion. cancel closes the channel.
func (in *Ingester) Subscribe() (<-chan Notification, func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	id := in.nextSub
	in.nextSub++
	ch := make(chan Notification, subscriberBuffer)
	in.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			in.mu.Lock()
			defer in.mu.Unlock()
			if c, ok := in.subs[id]; ok {
				delete(in.subs, id)
				delete(in.subMissed, id)
				close(c)
			}
		})
	}
}

func (in *Ingester) notify(streams []store.StreamEntries) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for id, ch := range in.subs {
		select {
		case ch <- Notification{Streams: streams, Missed: in.subMissed[id]}:
			in.subMissed[id] = 0
		default:
			in.subMissed[id]++
		}
	}
}

func (in *Ingester) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	in.opts.Logf("%s", msg)
	in.mu.Lock()
	in.hs.problem(msg)
	in.mu.Unlock()
}
