package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/store"
)

// ID is the plugin's id in plugin.json.
const ID = "lokal-logql-datasource"

// disposeTimeout bounds how long stopping an ingester may take (its last
// append included) before the store is closed anyway.
const disposeTimeout = 60 * time.Second

// A store that cannot be opened (another process holds its lock, say) is
// tried again after openRetryMin, then at doubling intervals up to
// openRetryMax, for as long as a datasource uses it.
const (
	openRetryMin = time.Second
	openRetryMax = 30 * time.Second
)

// HostOptions are the process-wide settings of the plugin.
type HostOptions struct {
	// Operator holds the operator's controls (allowed paths, data path).
	Operator *config.Operator
	// OperatorErr is a problem reading them; every health check shows it.
	OperatorErr error
	// Logger receives diagnostics; nil means the SDK's default logger.
	Logger log.Logger
	// Ingest tunes the ingesters (tests shorten their waits).
	Ingest ingest.Options
	// TuneGC makes NewHost set the process's garbage collector target for
	// ingesting (ingest.SetProcessGC). Only the plugin's main asks for it,
	// through HostOptionsFromEnv: tests leave their process alone.
	TuneGC bool
}

// engineOptions are the query bounds the operator set: the longest a query
// may run (GF_PLUGIN_QUERY_TIMEOUT, else the engine's default); Grafana's
// request context can only shorten it.
func (h *Host) engineOptions() engine.Options {
	var o engine.Options
	if h.opts.Operator != nil {
		o.Timeout = h.opts.Operator.QueryTimeout
	}
	return o
}

// HostOptionsFromEnv reads the operator's controls from the environment
// Grafana gives the plugin process.
func HostOptionsFromEnv() HostOptions {
	op, err := config.OperatorFromEnv(os.Getenv)
	return HostOptions{Operator: op, OperatorErr: err, TuneGC: true}
}

// Host owns what the datasource instances of one process share: their
// stores. Grafana creates the new instance of a datasource before it
// disposes the old one, so both must be able to use one store directory;
// the host opens each directory once and hands it to every instance that
// asks, closing it when the last one is disposed.
type Host struct {
	opts HostOptions
	log  log.Logger

	mu     sync.Mutex
	stores map[string]*sharedStore
}

// NewHost returns a host with no open stores.
func NewHost(opts HostOptions) *Host {
	if opts.TuneGC {
		ingest.SetProcessGC(os.Getenv)
	}
	if opts.Operator == nil {
		opts.Operator = &config.Operator{}
		if opts.OperatorErr == nil {
			opts.OperatorErr = errors.New("operator settings missing")
		}
	}
	lg := opts.Logger
	if lg == nil {
		lg = log.DefaultLogger
	}
	return &Host{opts: opts, log: lg, stores: map[string]*sharedStore{}}
}

// sharedStore is one store directory and the ingester currently writing
// into it. Only one ingester runs per store: a newer instance's ingester
// replaces the older one's. A store that could not be opened yet has no st:
// openErr says why, and a goroutine keeps trying until it opens or the last
// instance releases it.
type sharedStore struct {
	dir     string
	refs    int            // guarded by Host.mu
	opts    store.Options  // guarded by Host.mu
	engOpts engine.Options // the operator's query bounds

	// storeMu guards st, eng and openErr: users hold it shared while they
	// read, so a reopen with new options waits for them instead of
	// failing them.
	storeMu sync.RWMutex
	st      *store.Store
	eng     *engine.Engine
	openErr error // the last failed open while st is nil

	// stopRetry ends the open retries and retryDone closes when they have;
	// both are nil when the store opened at once.
	stopRetry chan struct{}
	retryDone chan struct{}

	// openMu orders starting ingestion against the store opening late;
	// pending is the start of the newest instance waiting for it.
	openMu  sync.Mutex
	pending func()

	mu  sync.Mutex
	run *ingestRun
}

// storeWaitError says a store is not open yet: the open is being retried.
type storeWaitError struct {
	dir string
	err error // the last attempt's
}

func (e *storeWaitError) Error() string {
	var le *store.LockedError
	if errors.As(e.err, &le) {
		holder := "another process"
		if le.PID > 0 {
			holder = fmt.Sprintf("pid %d", le.PID)
		}
		return fmt.Sprintf("waiting for the lock on store %s, held by %s (another Lokal writing it, such as the plugin process of a Grafana that crashed): the store opens by itself once that process exits", e.dir, holder)
	}
	return fmt.Sprintf("store %s could not be opened, retrying on its own: %v", e.dir, e.err)
}

func (e *storeWaitError) Unwrap() error { return e.err }

// waitErr is a *storeWaitError while the store is not open, else nil.
func (ss *sharedStore) waitErr() error {
	ss.storeMu.RLock()
	defer ss.storeMu.RUnlock()
	if ss.st != nil {
		return nil
	}
	return &storeWaitError{dir: ss.dir, err: ss.openErr}
}

// whenOpen calls start now when the store is open, or once it opens. Of
// the instances waiting for it only the newest starts: its ingester would
// replace theirs anyway.
func (ss *sharedStore) whenOpen(start func()) {
	ss.openMu.Lock()
	defer ss.openMu.Unlock()
	if ss.waitErr() != nil {
		ss.pending = start
		return
	}
	ss.pending = nil
	start()
}

// startPending runs the start whenOpen kept, now that the store is open.
func (ss *sharedStore) startPending() {
	ss.openMu.Lock()
	defer ss.openMu.Unlock()
	if start := ss.pending; start != nil {
		ss.pending = nil
		start()
	}
}

// use returns the store and its engine, and the function that ends the use.
func (ss *sharedStore) use() (*store.Store, *engine.Engine, func()) {
	ss.storeMu.RLock()
	return ss.st, ss.eng, ss.storeMu.RUnlock
}

// reopen closes the store and opens it again with new options (retention
// and size limits are fixed when a store opens). Ingestion is stopped
// first; the caller starts the new ingester. On failure the store is
// reopened with its old options so queries keep working.
func (ss *sharedStore) reopen(opts store.Options) error {
	ss.stopIngest(nil)
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
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

// ingestRun is a running ingester.
type ingestRun struct {
	in     *ingest.Ingester
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done closes
}

// acquire opens dir, or shares it when it is already open (reopening it
// when the storage settings changed). A store that cannot be opened is
// shared all the same, not open yet: a goroutine retries until it opens.
func (h *Host) acquire(dir string, s *config.Settings) (*sharedStore, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	opts := storeOptions(s)
	if ss, ok := h.stores[dir]; ok {
		if ss.opts != opts {
			if ss.waitErr() != nil {
				ss.opts = opts // the next attempt uses them
			} else if err := ss.reopen(opts); err != nil {
				return nil, err
			}
		}
		ss.refs++
		return ss, nil
	}
	ss := &sharedStore{dir: dir, refs: 1, opts: opts, engOpts: h.engineOptions()}
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
func (h *Host) retryOpen(ss *sharedStore) {
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

// release drops one reference; the last one stops the ingester, flushes
// and closes the store, releasing its lock.
func (h *Host) release(ss *sharedStore) {
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
func (ss *sharedStore) close(lg log.Logger) {
	if ss.stopRetry != nil {
		// After this no ingester starts: one the retries started is
		// running now, and stopped below.
		close(ss.stopRetry)
		<-ss.retryDone
	}
	ss.stopIngest(nil)
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
	if ss.st == nil {
		return
	}
	if err := ss.st.Close(); err != nil {
		lg.Error("close store", "dir", ss.dir, "error", err.Error())
	}
}

// startIngest stops the current ingester (its positions are durable in the
// store, so the next one resumes exactly there) and starts in.
func (ss *sharedStore) startIngest(in *ingest.Ingester, lg log.Logger) *ingestRun {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.run != nil {
		ss.run.stop()
		ss.run = nil
		// The new ingester resumes from the store's durable cursors: make
		// everything the old one appended durable first, or it would read
		// those lines again.
		ctx, cancel := context.WithTimeout(context.Background(), disposeTimeout)
		st, _, done := ss.use()
		err := st.Flush(ctx)
		done()
		cancel()
		if err != nil {
			lg.Error("flush before handing over ingestion", "dir", ss.dir, "error", err.Error())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &ingestRun{in: in, cancel: cancel, done: make(chan struct{})}
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

// stopIngest stops r when it is still the current run (nil: whatever runs).
func (ss *sharedStore) stopIngest(r *ingestRun) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.run == nil || (r != nil && ss.run != r) {
		return
	}
	ss.run.stop()
	ss.run = nil
}

// current returns the running ingester, if any.
func (ss *sharedStore) current() *ingestRun {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.run
}

func (r *ingestRun) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(disposeTimeout):
	}
}

// running reports whether the ingester is still following its files.
func (r *ingestRun) running() (bool, error) {
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
	stores := make([]*sharedStore, 0, len(h.stores))
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
