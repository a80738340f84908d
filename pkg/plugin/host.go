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

// sharedStore is one open store directory and the ingester currently
// writing into it. Only one ingester runs per store: a newer instance's
// ingester replaces the older one's.
type sharedStore struct {
	dir  string
	refs int           // guarded by Host.mu
	opts store.Options // guarded by Host.mu

	// storeMu guards st and eng: users hold it shared while they read, so a
	// reopen with new options waits for them instead of failing them.
	storeMu sync.RWMutex
	st      *store.Store
	eng     *engine.Engine

	mu  sync.Mutex
	run *ingestRun
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
		ss.st, ss.eng = old, engine.New(old, engine.Options{})
		return fmt.Errorf("reopen store %s with the new storage settings: %w", ss.dir, err)
	}
	ss.st, ss.eng, ss.opts = st, engine.New(st, engine.Options{}), opts
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
// when the storage settings changed).
func (h *Host) acquire(dir string, s *config.Settings) (*sharedStore, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	opts := storeOptions(s)
	if ss, ok := h.stores[dir]; ok {
		if ss.opts != opts {
			if err := ss.reopen(opts); err != nil {
				return nil, err
			}
		}
		ss.refs++
		return ss, nil
	}
	st, err := store.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	ss := &sharedStore{dir: dir, refs: 1, opts: opts, st: st, eng: engine.New(st, engine.Options{})}
	h.stores[dir] = ss
	return ss, nil
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
	if !last {
		return
	}
	ss.stopIngest(nil)
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
	if err := ss.st.Close(); err != nil {
		h.log.Error("close store", "dir", ss.dir, "error", err.Error())
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
			ss.stopIngest(nil)
			ss.storeMu.Lock()
			defer ss.storeMu.Unlock()
			if err := ss.st.Close(); err != nil {
				h.log.Error("close store", "dir", ss.dir, "error", err.Error())
			}
		}()
	}
	wg.Wait()
}
