// Package host owns what one Lokal process shares between its users of a
// store: the store directories it opened (each opened once, its lock held
// while anyone uses it, its open retried while another process holds it)
// and the one ingester that writes into each. Grafana's datasource
// instances (pkg/plugin) and a standalone server use it alike.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/push"
	"github.com/lokal-logs/lokal/pkg/store"
)

// disposeTimeout bounds how long stopping an ingester may take (its last
// append included) before the store is closed anyway.
const disposeTimeout = 60 * time.Second

// A store that cannot be opened (another process holds its lock, say) is
// tried again after openRetryMin, then at doubling intervals up to
// openRetryMax, for as long as someone uses it.
const (
	openRetryMin = time.Second
	openRetryMax = 30 * time.Second
)

// Logger receives the host's diagnostics. Grafana's SDK logger and
// *slog.Logger both satisfy it.
type Logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// Options are the process-wide settings of a host.
type Options struct {
	// Operator holds the operator's controls (allowed paths, data path,
	// query timeout).
	Operator *config.Operator
	// OperatorErr is a problem reading them; every health check shows it.
	OperatorErr error
	// Logger receives diagnostics; nil means slog's default logger.
	Logger Logger
	// Ingest tunes the ingesters (tests shorten their waits).
	Ingest ingest.Options
	// TuneGC makes New set the process's garbage collector target for
	// ingesting (ingest.SetProcessGC). Only a process's main asks for it,
	// through OptionsFromEnv: tests leave their process alone.
	TuneGC bool
}

// OptionsFromEnv reads the operator's controls from the environment
// (Grafana's GF_PLUGIN_* variables) and tunes the garbage collector.
func OptionsFromEnv() Options {
	op, err := config.OperatorFromEnv(os.Getenv)
	return Options{Operator: op, OperatorErr: err, TuneGC: true}
}

// Host owns the stores of one process. Grafana creates the new instance of
// a datasource before it disposes the old one, so both must be able to use
// one store directory; the host opens each directory once and hands it to
// every user that asks, closing it when the last one releases it.
type Host struct {
	opts Options
	log  Logger

	// queries bounds the queries running at once over all the stores.
	queries *Limiter

	mu     sync.Mutex
	stores map[string]*Store
}

// New returns a host with no open stores. Missing operator settings are
// taken as empty, and reported through Options().OperatorErr.
func New(opts Options) *Host {
	if opts.TuneGC {
		ingest.SetProcessGC(os.Getenv)
	}
	if opts.Operator == nil {
		opts.Operator = &config.Operator{}
		if opts.OperatorErr == nil {
			opts.OperatorErr = errors.New("operator settings missing")
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	limit := opts.Operator.MaxConcurrent
	if limit == 0 {
		limit = DefaultMaxConcurrent
	}
	queries := NewLimiter(limit)
	if opts.TuneGC {
		queries.changed = memoryLimitFor(os.Getenv, debug.SetMemoryLimit)
	}
	return &Host{opts: opts, log: opts.Logger, queries: queries, stores: map[string]*Store{}}
}

// QueryMemoryHeadroom is what the process's soft memory limit grows by for
// each query in flight: the peak a query may reach beside the rest of the
// process (issue 12's bound of 100 MB per query).
const QueryMemoryHeadroom = 100 << 20

// memoryLimitFor returns the function the query limiter calls when the
// number of queries in flight changes: it sets the process's soft memory
// limit (set) to ingest.ProcessMemoryLimit plus QueryMemoryHeadroom per
// query. With no query running that is the limit `lokal ingest` uses, which
// keeps a 10 GiB catch-up's peak RSS under 150 MB (157 MB without a limit);
// a fixed limit would make the collector run flat out while a query holds
// its share beside the ingester. The operator's GOMEMLIMIT wins: then
// memoryLimitFor returns nil and the limit is never touched.
func memoryLimitFor(getenv func(string) string, set func(int64) int64) func(inFlight int) {
	if getenv("GOMEMLIMIT") != "" {
		return nil
	}
	apply := func(inFlight int) {
		set(ingest.ProcessMemoryLimit + int64(inFlight)*QueryMemoryHeadroom)
	}
	apply(0)
	return apply
}

// Admit waits, in arrival order, until fewer than the operator's
// max_concurrent queries run in the process (GF_PLUGIN_MAX_CONCURRENT,
// else DefaultMaxConcurrent), and returns the function that ends the
// query's turn. A query whose ctx ends while waiting gets an error wrapping
// ctx.Err().
func (h *Host) Admit(ctx context.Context) (func(), error) { return h.queries.Admit(ctx) }

// Queries is the process's query limiter.
func (h *Host) Queries() *Limiter { return h.queries }

// Options returns the host's settings.
func (h *Host) Options() Options { return h.opts }

// engineOptions are the query bounds the operator set: the longest a query
// may run (GF_PLUGIN_QUERY_TIMEOUT, else the engine's default); a
// request's context can only shorten it. Block results are kept on disk
// next to each store unless GF_PLUGIN_RESULT_CACHE is off.
func (h *Host) engineOptions() engine.Options {
	return engine.Options{Timeout: h.opts.Operator.QueryTimeout}.WithDiskCache(h.opts.Operator.ResultCacheBytes)
}

// Store is one store directory and the ingester currently writing into
// it. Only one ingester runs per store: a newer user's ingester replaces
// the older one's. A store that could not be opened yet has no st: openErr
// says why, and a goroutine keeps trying until it opens or the last user
// releases it.
type Store struct {
	dir     string
	log     Logger
	hostMu  *sync.Mutex    // the Host's mu
	refs    int            // guarded by hostMu
	opts    store.Options  // guarded by hostMu
	engOpts engine.Options // the operator's query bounds
	queries *Limiter       // the Host's

	// storeMu guards st, eng and openErr: users hold it shared while they
	// read, so a reopen with new options waits for them instead of
	// failing them.
	storeMu sync.RWMutex
	st      *store.Store
	eng     *engine.Engine
	openErr error // the last failed open while st is nil

	// pushMu guards the push handler of the store now open: one handler per
	// opened store keeps its per-stream state (for Loki's duplicate and
	// out-of-order rules) across requests, and a reopen gets a new one.
	pushMu  sync.Mutex
	pushFor *store.Store
	pushH   http.Handler

	// stopRetry ends the open retries and retryDone closes when they have;
	// both are nil when the store opened at once.
	stopRetry chan struct{}
	retryDone chan struct{}

	// openMu orders starting ingestion against the store opening late;
	// pending is the start of the newest instance waiting for it.
	openMu  sync.Mutex
	pending func()

	mu  sync.Mutex
	run *Run
}

// WaitError says a store is not open yet: the open is being retried.
type WaitError struct {
	Dir string
	Err error // the last attempt's
}

func (e *WaitError) Error() string {
	var le *store.LockedError
	if errors.As(e.Err, &le) {
		holder := "another process"
		if le.PID > 0 {
			holder = fmt.Sprintf("pid %d", le.PID)
		}
		return fmt.Sprintf("waiting for the lock on store %s, held by %s (another Lokal writing it, such as the plugin process of a Grafana that crashed): the store opens by itself once that process exits", e.Dir, holder)
	}
	return fmt.Sprintf("store %s could not be opened, retrying on its own: %v", e.Dir, e.Err)
}

func (e *WaitError) Unwrap() error { return e.Err }

// Dir is the store's directory.
func (ss *Store) Dir() string { return ss.dir }

// WaitErr is a *WaitError while the store is not open, else nil.
func (ss *Store) WaitErr() error {
	ss.storeMu.RLock()
	defer ss.storeMu.RUnlock()
	if ss.st != nil {
		return nil
	}
	return &WaitError{Dir: ss.dir, Err: ss.openErr}
}

// WhenOpen calls start now when the store is open, or once it opens. Of
// the users waiting for it only the newest starts: its ingester would
// replace theirs anyway.
func (ss *Store) WhenOpen(start func()) {
	ss.openMu.Lock()
	defer ss.openMu.Unlock()
	if ss.WaitErr() != nil {
		ss.pending = start
		return
	}
	ss.pending = nil
	start()
}

// startPending runs the start WhenOpen kept, now that the store is open.
func (ss *Store) startPending() {
	ss.openMu.Lock()
	defer ss.openMu.Unlock()
	if start := ss.pending; start != nil {
		ss.pending = nil
		start()
	}
}

// Use returns the store and its engine (nil while WaitErr is not), and the
// function that ends the use: a reopen with new options waits for it.
func (ss *Store) Use() (*store.Store, *engine.Engine, func()) {
	ss.storeMu.RLock()
	return ss.st, ss.eng, ss.storeMu.RUnlock
}

// Admit is the Host's Admit: every store of a process shares one bound.
func (ss *Store) Admit(ctx context.Context) (func(), error) { return ss.queries.Admit(ctx) }

// ServePush answers Loki's push endpoint (POST /loki/api/v1/push) into
// this store, or 503 while it cannot be opened.
func (ss *Store) ServePush(w http.ResponseWriter, r *http.Request) {
	st, _, done := ss.Use()
	defer done()
	if st == nil {
		msg := "store is not open"
		if err := ss.WaitErr(); err != nil {
			msg = err.Error()
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	ss.pushMu.Lock()
	if ss.pushFor != st {
		ss.pushH, ss.pushFor = push.NewHandler(st, push.HandlerOptions{}), st
	}
	h := ss.pushH
	ss.pushMu.Unlock()
	h.ServeHTTP(w, r)
}

// reopen closes the store and opens it again with new options (retention
// and size limits are fixed when a store opens). Ingestion is stopped
// first; the caller starts the new ingester. On failure the store is
// reopened with its old options so queries keep working.
func (ss *Store) reopen(opts store.Options) error {
	ss.StopIngest(nil)
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
	ss.eng.FlushResultCache() // results computed so far stay on disk for the reopened store
	if err := ss.st.Close(); err != nil {
		return fmt.Errorf("close store %s to apply new storage settings: %w", ss.dir, err)
	}
	st, err := store.Open(ss.dir, opts)
	if err != nil {
		old, oerr := store.Open(ss.dir, ss.opts)
		if oerr != nil {
			return fmt.Errorf("reopen store %s: %w (and with the previous settings: %v)", ss.dir, err, oerr)
		}
		ss.st, ss.eng = old, engine.New(old, ss.engOpts)
		return fmt.Errorf("reopen store %s with the new storage settings: %w", ss.dir, err)
	}
	ss.st, ss.eng, ss.opts = st, engine.New(st, ss.engOpts), opts
	return nil
}

// Run is a running ingester.
type Run struct {
	in     *ingest.Ingester
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done closes
}

// Acquire opens dir, or shares it when it is already open (reopening it
// when the storage options changed: see StoreOptions). A store that cannot
// be opened is shared all the same, not open yet: a goroutine retries until
// it opens. Every Acquire needs its Release.
func (h *Host) Acquire(dir string, opts store.Options) (*Store, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ss, ok := h.stores[dir]; ok {
		if ss.opts != opts {
			if ss.WaitErr() != nil {
				ss.opts = opts // the next attempt uses them
			} else if err := ss.reopen(opts); err != nil {
				return nil, err
			}
		}
		ss.refs++
		return ss, nil
	}
	ss := &Store{dir: dir, log: h.log, hostMu: &h.mu, refs: 1, opts: opts, engOpts: h.engineOptions(), queries: h.queries}
	st, err := store.Open(dir, opts)
	if err != nil {
		h.log.Warn("store cannot be opened yet, retrying", "dir", dir, "error", err.Error())
		ss.openErr = err
		ss.stopRetry, ss.retryDone = make(chan struct{}), make(chan struct{})
		go h.retryOpen(ss)
	} else {
		ss.st, ss.eng = st, engine.New(st, ss.engOpts)
	}
	h.stores[dir] = ss
	return ss, nil
}

// retryOpen tries to open ss with backoff until it opens (then starts the
// ingester waiting for it) or ss.stopRetry closes.
func (h *Host) retryOpen(ss *Store) {
	defer close(ss.retryDone)
	wait := openRetryMin
	for {
		select {
		case <-ss.stopRetry:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, openRetryMax)
		h.mu.Lock()
		opts := ss.opts
		h.mu.Unlock()
		st, err := store.Open(ss.dir, opts)
		if err != nil {
			ss.storeMu.Lock()
			ss.openErr = err
			ss.storeMu.Unlock()
			continue
		}
		h.mu.Lock()
		if released := h.stores[ss.dir] != ss; released || ss.opts != opts {
			// Released meanwhile (stopRetry is closed too), or the storage
			// settings changed: then open again with the new options.
			h.mu.Unlock()
			if err := st.Close(); err != nil {
				h.log.Error("close store", "dir", ss.dir, "error", err.Error())
			}
			if released {
				return
			}
			wait = openRetryMin
			continue
		}
		ss.storeMu.Lock()
		ss.st, ss.eng, ss.openErr = st, engine.New(st, ss.engOpts), nil
		ss.storeMu.Unlock()
		h.mu.Unlock()
		h.log.Info("store opened", "dir", ss.dir)
		ss.startPending()
		return
	}
}

// Options are the options the store is open (or will open) with.
func (ss *Store) Options() store.Options {
	ss.hostMu.Lock()
	defer ss.hostMu.Unlock()
	return ss.opts
}

// Release drops one reference; the last one stops the ingester, flushes
// and closes the store, releasing its lock.
func (h *Host) Release(ss *Store) {
	h.mu.Lock()
	if h.stores[ss.dir] != ss {
		h.mu.Unlock()
		return // Close already closed it
	}
	ss.refs--
	last := ss.refs == 0
	if last {
		delete(h.stores, ss.dir)
	}
	h.mu.Unlock()
	if last {
		ss.close(h.log)
	}
}

// close ends the open retries, stops the ingester, then flushes and closes
// the store, releasing its lock. ss must be out of Host.stores already.
func (ss *Store) close(lg Logger) {
	if ss.stopRetry != nil {
		// After this no ingester starts: one the retries started is
		// running now, and stopped below.
		close(ss.stopRetry)
		<-ss.retryDone
	}
	ss.StopIngest(nil)
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
	if ss.st == nil {
		return
	}
	// Results queued for the disk tier are written before the store closes
	// (a later Grafana start answers from them).
	ss.eng.FlushResultCache()
	if err := ss.st.Close(); err != nil {
		lg.Error("close store", "dir", ss.dir, "error", err.Error())
	}
}

// Ingest starts an ingester following the files settings configure into
// the store, replacing the current one (see StartIngest). The store must
// be open: call it from WhenOpen.
func (ss *Store) Ingest(settings *config.Settings, op *config.Operator, opts ingest.Options) (*Run, error) {
	st, _, done := ss.Use()
	if st == nil {
		done()
		return nil, ss.WaitErr()
	}
	in, err := ingest.New(settings, op, st, opts)
	done()
	if err != nil {
		return nil, err
	}
	return ss.StartIngest(in), nil
}

// StartIngest stops the current ingester (its positions are durable in the
// store, so the next one resumes exactly there) and starts in.
func (ss *Store) StartIngest(in *ingest.Ingester) *Run {
	lg := ss.log
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.run != nil {
		ss.run.stop()
		ss.run = nil
		// The new ingester resumes from the store's durable cursors: make
		// everything the old one appended durable first, or it would read
		// those lines again.
		ctx, cancel := context.WithTimeout(context.Background(), disposeTimeout)
		st, _, done := ss.Use()
		err := st.Flush(ctx)
		done()
		cancel()
		if err != nil {
			lg.Error("flush before handing over ingestion", "dir", ss.dir, "error", err.Error())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{in: in, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("ingester crashed: %v", p)
				lg.Error("ingester crashed", "dir", ss.dir, "panic", fmt.Sprint(p))
			}
		}()
		r.err = in.Run(ctx)
		if r.err != nil {
			lg.Error("ingester stopped", "dir", ss.dir, "error", r.err.Error())
		}
	}()
	ss.run = r
	return r
}

// StopIngest stops r when it is still the current run (nil: whatever runs).
func (ss *Store) StopIngest(r *Run) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.run == nil || (r != nil && ss.run != r) {
		return
	}
	ss.run.stop()
	ss.run = nil
}

// Current returns the running ingester, if any.
func (ss *Store) Current() *Run {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.run
}

// Ingester is the ingester that runs.
func (r *Run) Ingester() *ingest.Ingester { return r.in }

// Done closes when the ingester has stopped.
func (r *Run) Done() <-chan struct{} { return r.done }

// Err is why the ingester stopped, once Done is closed.
func (r *Run) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

func (r *Run) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(disposeTimeout):
	}
}

// Running reports whether the ingester is still following its files, and
// once not, why it stopped.
func (r *Run) Running() (bool, error) {
	select {
	case <-r.done:
		return false, r.err
	default:
		return true, nil
	}
}

// CloseWithin is Close bounded by d: it reports whether every store was
// closed in time. A store left open loses nothing (its cursors are only
// durable with their lines) but its newest lines are read again.
func (h *Host) CloseWithin(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Close()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Close stops every ingester and closes every store, as when Grafana shuts
// the plugin down. Instances disposed later find their store released.
func (h *Host) Close() {
	h.mu.Lock()
	stores := make([]*Store, 0, len(h.stores))
	for dir, ss := range h.stores {
		stores = append(stores, ss)
		delete(h.stores, dir)
		ss.refs = 0
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, ss := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss.close(h.log)
		}()
	}
	wg.Wait()
}
