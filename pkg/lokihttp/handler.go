// Package lokihttp serves Loki's HTTP API (/loki/api/v1/...) over Lokal's
// store and LogQL engine, so tools that speak Loki (Grafana's built-in Loki
// datasource, Logs Drilldown, logcli, Alloy) work against Lokal. The same
// handler runs inside the plugin, under the datasource's resource path, and
// standalone in `lokal serve`.
//
// Parameters, defaults, limits, status codes and bodies follow Loki 3.x:
// success bodies are Loki's JSON (see pkg/logql/lokiapi), rejected requests
// get 400 with Loki's plain-text message, as Loki answers them.
package lokihttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Prefix is where Loki's API lives.
const Prefix = "/loki/api/v1/"

// LokiVersion is the Loki release whose API this handler mirrors; buildinfo
// reports it so clients that gate features on Loki's version enable them.
const LokiVersion = "3.7.6"

// Backend is what one request reads: the store and an engine over it.
type Backend struct {
	Reader store.Reader
	Engine *engine.Engine
}

// Options configure a Handler.
type Options struct {
	// Acquire returns the backend for one request and a release function
	// the handler calls when the request is done. An error answers 503
	// (the store is not open yet, or failed to open).
	Acquire func() (Backend, func(), error)
	// Admit, when set, waits for the request's turn to run the engine
	// (queries, index and detected_* calls; Loki's querier
	// max_concurrent) and returns the function that ends it. Its error,
	// which wraps the context's when the wait was cancelled or timed out,
	// is answered 499 or 504 like a query's.
	Admit func(ctx context.Context) (func(), error)
	// Push serves POST /loki/api/v1/push; nil answers 404 saying so.
	Push http.Handler
	// Tail feeds /loki/api/v1/tail; nil answers 400 saying why.
	Tail *Hub
	// TailUnsupported, when Tail is nil, is the reason given to a tail
	// request (e.g. the plugin's resource calls cannot hold a websocket).
	TailUnsupported string
	// Version is Lokal's own version, reported by buildinfo.
	Version string
	// Now is the clock for default time ranges; nil means time.Now.
	Now func() time.Time
}

// Handler serves Loki's HTTP API.
type Handler struct {
	opts Options
	mux  *http.ServeMux
}

// New returns a handler serving Loki's API paths and /ready.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{opts: opts, mux: http.NewServeMux()}
	routes := map[string]func(http.ResponseWriter, *http.Request){
		"query":                        h.query,
		"query_range":                  h.queryRange,
		"labels":                       h.labels,
		"label":                        h.labels,
		"label/{name}/values":          h.labelValues,
		"series":                       h.series,
		"format_query":                 h.formatQuery,
		"status/buildinfo":             h.buildInfo,
		"tail":                         h.tail,
		"push":                         h.push,
		"index/stats":                  h.indexStats,
		"index/volume":                 h.volume,
		"index/volume_range":           h.volumeRange,
		"detected_labels":              h.detectedLabels,
		"detected_fields":              h.detectedFields,
		"detected_field/{name}/values": h.detectedFieldValues,
		"patterns":                     h.patterns,
	}
	for p, f := range routes {
		h.mux.HandleFunc(Prefix+p, f)
	}
	h.mux.HandleFunc("/ready", h.ready)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("404 page not found: %s is not part of Loki's API as Lokal serves it", r.URL.Path))
	})
	return h
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("internal error serving %s: %v", r.URL.Path, p))
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// withTurn runs f once Admit lets the request run the engine.
func (h *Handler) withTurn(w http.ResponseWriter, r *http.Request, f func()) {
	if h.opts.Admit == nil {
		f()
		return
	}
	release, err := h.opts.Admit(r.Context())
	if err != nil {
		writeError(w, queryStatus(err), err)
		return
	}
	defer release()
	f()
}

// withBackend runs f with the request's backend, answering 503 when the
// store is not available.
func (h *Handler) withBackend(w http.ResponseWriter, f func(Backend)) {
	if h.opts.Acquire == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("no store configured"))
		return
	}
	b, release, err := h.opts.Acquire()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	defer release()
	f(b)
}

func (h *Handler) ready(w http.ResponseWriter, _ *http.Request) {
	if h.opts.Acquire == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("no store configured"))
		return
	}
	_, release, err := h.opts.Acquire()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("not ready: %w", err))
		return
	}
	release()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

func (h *Handler) push(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		writeError(w, http.StatusNotFound, errors.New("push is not enabled here"))
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("push takes POST, not %s", r.Method))
		return
	}
	h.opts.Push.ServeHTTP(w, r)
}

// writeError answers as Loki does: the status and the message as plain
// text.
func writeError(w http.ResponseWriter, status int, err error) {
	http.Error(w, err.Error(), status)
}

// queryStatus maps an engine error to Loki's status code: the query's
// fault is 400, a timeout 504, a client that went away 499, anything else
// (the store) 500.
func queryStatus(err error) int {
	switch {
	case errors.Is(err, context.Canceled):
		return 499
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, engine.ErrInternal):
		return http.StatusInternalServerError
	}
	var qe *engine.QueryError
	var pe *paramError
	if errors.As(err, &qe) || errors.As(err, &pe) || errors.Is(err, syntax.ErrParse) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeJSON writes a success body.
func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body)
}
