// Package plugin is Lokal's Grafana backend: one Datasource per configured
// datasource, each following its log files into its own store (through
// pkg/ingest) and answering LogQL (through pkg/logql/engine) as Grafana's
// data plane frames, health checks, Loki-shaped resource calls and live
// tail streams.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/host"
)

// Every handler Grafana may call, checked at compile time.
var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ backend.StreamHandler         = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// Datasource is one instance of a Lokal datasource: its settings, its share
// of a store and its ingester. A setup problem (bad settings, a store that
// cannot open) does not fail the instance: health checks and queries
// report it, so the user sees what to fix.
type Datasource struct {
	host     *Host
	uid      string
	settings *config.Settings
	log      log.Logger

	// setupErr stops everything: no store to query.
	setupErr error

	shared *host.Store

	// mu guards what may be set after setup, when the store opens late.
	mu sync.Mutex
	// ingestErr stops ingestion only: stored data still answers queries.
	ingestErr error
	run       *host.Run
	disposed  bool

	disposeOnce sync.Once
}

// NewDatasource is the instance factory datasource.Manage calls for every
// datasource (and again whenever its settings change).
func (h *Host) NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	ds := &Datasource{host: h, uid: s.UID, log: h.log.With("datasource", s.UID)}
	ds.setup(s.JSONData)
	return ds, nil
}

func (ds *Datasource) setup(jsonData []byte) {
	defer func() {
		// Third-party code below must never take the plugin process down.
		if p := recover(); p != nil {
			ds.setupErr = fmt.Errorf("internal error setting up the datasource: %v", p)
			ds.log.Error("setup panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	if len(jsonData) == 0 {
		jsonData = []byte("{}")
	}
	jsonData, err := withoutGrafanaKeys(jsonData)
	if err != nil {
		ds.setupErr = fmt.Errorf("settings: %w", err)
		return
	}
	settings, err := config.Parse(jsonData)
	if err != nil {
		ds.setupErr = fmt.Errorf("settings: %w", err)
		return
	}
	ds.settings = settings
	op := ds.host.Options().Operator
	dir, err := op.StoreDir(settings, ds.uid)
	if err != nil {
		ds.setupErr = err
		return
	}
	ss, err := ds.host.Acquire(dir, host.StoreOptions(settings))
	if err != nil {
		ds.setupErr = fmt.Errorf("open store %s: %w", dir, err)
		return
	}
	ds.shared = ss
	if len(settings.ScrapeConfigs) == 0 {
		ds.ingestErr = fmt.Errorf("no sources configured: add a scrape_configs entry with a __path__ glob, e.g. /root/CosyVoice/logs/*.log")
		return
	}
	ss.WhenOpen(ds.startIngest)
}

// startIngest starts this instance's ingester on its open store, unless the
// instance was disposed while the store could not be opened.
func (ds *Datasource) startIngest() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.disposed {
		return
	}
	defer func() {
		// Third-party code below must never take the plugin process down.
		if p := recover(); p != nil {
			ds.ingestErr = fmt.Errorf("internal error starting ingestion: %v", p)
			ds.log.Error("ingest start panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	hopts := ds.host.Options()
	opts := hopts.Ingest
	if opts.Logf == nil {
		lg := ds.log
		opts.Logf = func(format string, args ...any) { lg.Debug(fmt.Sprintf(format, args...)) }
	}
	run, err := ds.shared.Ingest(ds.settings, hopts.Operator, opts)
	if err != nil {
		ds.ingestErr = err
		return
	}
	ds.run = run
}

// ingestion returns the instance's ingester (nil before the store opens or
// when none could start) and why ingestion stopped.
func (ds *Datasource) ingestion() (*host.Run, error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.run, ds.ingestErr
}

// unavailable says why nothing can be queried: bad settings, or a store
// that is not open yet (a *host.WaitError).
func (ds *Datasource) unavailable() error {
	if ds.setupErr != nil {
		return ds.setupErr
	}
	return ds.shared.WaitErr()
}

// Dispose stops this instance's ingester (when a newer instance has not
// replaced it already) and releases its store; the last user of a store
// flushes and closes it.
func (ds *Datasource) Dispose() {
	ds.disposeOnce.Do(func() {
		if ds.shared == nil {
			return
		}
		ds.mu.Lock()
		ds.disposed = true
		run := ds.run
		ds.mu.Unlock()
		if run != nil {
			ds.shared.StopIngest(run)
		}
		ds.host.Release(ds.shared)
	})
}

// QueryData answers each query on its own: one query's error is that
// query's response, never the request's.
func (ds *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	fromAlert := req.Headers[backend.FromAlertHeaderName] == "true" || req.GetHTTPHeader(backend.FromAlertHeaderName) == "true"
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = ds.query(ctx, q, fromAlert)
	}
	// The caller went away (a dashboard refresh or a closed panel cancels
	// its in-flight queries): nobody reads these responses, so say the
	// request was cancelled rather than answering each query with an error
	// that Grafana logs as the plugin's failure. A deadline is different: it
	// is a real timeout, and each query says so.
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return nil, err
	}
	return resp, nil
}

func (ds *Datasource) query(ctx context.Context, q backend.DataQuery, fromAlert bool) (dr backend.DataResponse) {
	defer func() {
		if p := recover(); p != nil {
			ds.log.Error("query panic", "refId", q.RefID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			dr = backend.ErrDataResponse(backend.StatusInternal, fmt.Sprintf("internal error: %v", p))
		}
	}()
	if ds.setupErr != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, ds.setupErr.Error())
	}
	if err := ds.shared.WaitErr(); err != nil {
		return backend.ErrDataResponse(backend.Status(http.StatusServiceUnavailable), err.Error())
	}
	lq, err := parseQuery(q)
	if err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
	}
	// Wait for the process's turn before holding the store: a reopen must
	// not wait behind the queue.
	release, err := ds.shared.Admit(ctx)
	if err != nil {
		return backend.ErrDataResponse(errStatus(err), err.Error())
	}
	defer release()
	st, eng, done := ds.shared.Use()
	defer done()
	return runQuery(ctx, eng, lq, fromAlert, ds.readTimeStats(st))
}

// grafanaKeys are jsonData keys Grafana itself (not Lokal's config editor)
// may write into any datasource's settings: the alerting toggle, the
// default interval and timeout options, HTTP options kept from older
// editors. The settings schema is strict, so they are set aside here
// rather than rejected as unknown.
var grafanaKeys = []string{
	"manageAlerts", "alertmanagerUid", "timeInterval", "queryTimeout", "timeout",
	"disableGrafanaCache", "oauthPassThru", "keepCookies", "httpMethod",
	"tlsAuth", "tlsAuthWithCACert", "tlsSkipVerify", "serverName",
}

// withoutGrafanaKeys removes grafanaKeys from a jsonData object.
func withoutGrafanaKeys(jsonData []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(jsonData, &m); err != nil {
		return nil, fmt.Errorf("jsonData is not a JSON object: %w", err)
	}
	found := false
	for _, k := range grafanaKeys {
		if _, ok := m[k]; ok {
			delete(m, k)
			found = true
		}
	}
	if !found {
		return jsonData, nil
	}
	return json.Marshal(m)
}
