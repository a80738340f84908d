package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// defaultLookback is the range of a label or series call without start
// (Loki's default for these endpoints).
const defaultLookback = 6 * time.Hour

// maxFieldLines bounds detected_fields' line_limit so the call stays
// interactive.
const maxFieldLines = 10000

// apiResponse is Loki's HTTP envelope.
type apiResponse struct {
	Status string `json:"status"`
	Data   any    `json:"data,omitempty"`
	Error  string `json:"error,omitempty"`
}

// CallResource serves Loki-shaped endpoints for the label browser,
// autocompletion, template variables and query hints: labels,
// label/<name>/values, series, index/stats and detected_fields.
func (ds *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	if isLokiAPIPath(req.Path) {
		return ds.callLokiAPI(ctx, req, sender)
	}
	status, body := ds.resource(ctx, req)
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":"error","error":"encode response"}`)
	}
	return sender.Send(&backend.CallResourceResponse{
		Status:  status,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    b,
	})
}

func (ds *Datasource) resource(ctx context.Context, req *backend.CallResourceRequest) (status int, body any) {
	defer func() {
		if p := recover(); p != nil {
			ds.log.Error("resource panic", "path", req.Path, "panic", fmt.Sprint(p))
			status, body = http.StatusInternalServerError, apiResponse{Status: "error", Error: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	fail := func(code int, err error) (int, any) {
		return code, apiResponse{Status: "error", Error: err.Error()}
	}
	if err := ds.unavailable(); err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("url %q: %w", req.URL, err))
	}
	params := u.Query()
	if req.Method == http.MethodPost && len(req.Body) > 0 {
		if form, err := url.ParseQuery(string(req.Body)); err == nil {
			for k, v := range form {
				params[k] = append(params[k], v...)
			}
		}
	}
	start, end, err := timeParams(params, time.Now())
	if err != nil {
		return fail(http.StatusBadRequest, err)
	}
	path := strings.Trim(strings.TrimPrefix(req.Path, "api/v1/"), "/")
	if path == "index/stats" || path == "detected_fields" {
		// These run the engine: they take their turn like queries, before
		// holding the store so that a reopen does not wait behind the queue.
		release, err := ds.shared.Admit(ctx)
		if err != nil {
			code := 499 // the client went away, as Loki answers
			if errors.Is(err, context.DeadlineExceeded) {
				code = http.StatusGatewayTimeout
			}
			return fail(code, err)
		}
		defer release()
	}
	r, eng, done := ds.shared.Use()
	defer done()
	switch {
	case path == "labels" || path == "label":
		names, err := r.LabelNames(ctx, start, end)
		if err != nil {
			return fail(http.StatusInternalServerError, err)
		}
		return http.StatusOK, apiResponse{Status: "success", Data: nonNil(names)}
	case strings.HasPrefix(path, "label/") && strings.HasSuffix(path, "/values"):
		name, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(path, "label/"), "/values"))
		if err != nil || name == "" {
			return fail(http.StatusBadRequest, fmt.Errorf("label name missing in %q", req.Path))
		}
		ms, err := selectorParam(params.Get("query"), true)
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		vals, err := r.LabelValues(ctx, name, ms, start, end)
		if err != nil {
			return fail(http.StatusInternalServerError, err)
		}
		return http.StatusOK, apiResponse{Status: "success", Data: nonNil(vals)}
	case path == "series":
		sels := params["match[]"]
		if len(sels) == 0 {
			sels = params["match"]
		}
		if len(sels) == 0 {
			return fail(http.StatusBadRequest, fmt.Errorf("series needs a match[] selector, e.g. match[]={job=\"cosyvoice3\"}"))
		}
		var out []map[string]string
		seen := map[string]bool{}
		for _, sel := range sels {
			ms, err := selectorParam(sel, false)
			if err != nil {
				return fail(http.StatusBadRequest, err)
			}
			sets, err := r.Streams(ctx, ms, start, end)
			if err != nil {
				return fail(http.StatusInternalServerError, err)
			}
			for _, ls := range sets {
				if k := ls.String(); !seen[k] {
					seen[k] = true
					out = append(out, ls.Map())
				}
			}
		}
		if out == nil {
			out = []map[string]string{}
		}
		return http.StatusOK, apiResponse{Status: "success", Data: out}
	case path == "index/stats":
		st, err := eng.IndexStats(ctx, params.Get("query"), start, end)
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		// Loki answers index/stats with the bare object.
		return http.StatusOK, json.RawMessage(lokiapi.MarshalIndexStats(st))
	case path == "detected_fields":
		lineLimit, err := intParam(params, "line_limit", engine.DefaultFieldLines, maxFieldLines)
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		fieldLimit, err := intParam(params, "limit", 1000, 10000)
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		fs, err := eng.DetectedFields(ctx, params.Get("query"), start, end, lineLimit, fieldLimit)
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		// Loki answers detected_fields with the bare object.
		return http.StatusOK, json.RawMessage(lokiapi.MarshalDetectedFields(fs, fieldLimit))
	default:
		return fail(http.StatusNotFound, fmt.Errorf("no resource %q: try labels, label/<name>/values, series, index/stats or detected_fields", req.Path))
	}
}

// intParam reads a positive integer parameter up to max.
func intParam(p url.Values, name string, def, maxV int) (int, error) {
	s := p.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive whole number", name, s)
	}
	if n > maxV {
		return 0, fmt.Errorf("%s %d: at most %d", name, n, maxV)
	}
	return n, nil
}

// selectorParam parses a stream selector; empty is allowed where optional.
func selectorParam(s string, optional bool) ([]*labels.Matcher, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("empty selector")
	}
	expr, err := syntax.ParseExpr(s)
	if err != nil {
		return nil, fmt.Errorf("selector %s: %w", s, err)
	}
	sel, ok := expr.(syntax.LogSelectorExpr)
	if !ok {
		return nil, fmt.Errorf("selector %s: want a stream selector such as {job=\"cosyvoice3\"}", s)
	}
	return sel.Matchers(), nil
}

// timeParams reads start and end as Loki does: Unix nanoseconds, Unix
// seconds (with a fraction) or RFC3339; defaults are the last six hours.
func timeParams(p url.Values, now time.Time) (start, end int64, err error) {
	end = now.UnixNano()
	if s := p.Get("end"); s != "" {
		if end, err = parseAPITime(s); err != nil {
			return 0, 0, fmt.Errorf("end: %w", err)
		}
	}
	start = end - int64(defaultLookback)
	if s := p.Get("start"); s != "" {
		if start, err = parseAPITime(s); err != nil {
			return 0, 0, fmt.Errorf("start: %w", err)
		}
	}
	if end < start {
		return 0, 0, fmt.Errorf("end (%d) is before start (%d)", end, start)
	}
	// The store's ranges are half-open; a label call's end is inclusive.
	if end < math.MaxInt64 {
		end++
	}
	return start, end, nil
}

// parseAPITime parses one time parameter into Unix nanoseconds.
func parseAPITime(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		// Loki: an integer with more than 10 digits is nanoseconds.
		if len(strings.TrimPrefix(s, "-")) > 10 {
			return n, nil
		}
		return n * int64(time.Second), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e10 {
		return int64(f * float64(time.Second)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Unix time or RFC3339", s)
	}
	return t.UnixNano(), nil
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	sort.Strings(ss)
	return ss
}

// storeReader is what the resource calls read; the store implements it.
var _ store.Reader = (*store.Store)(nil)
