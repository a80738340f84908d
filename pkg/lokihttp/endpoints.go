package lokihttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// badRequest answers 400 with err as Loki words it.
func badRequest(w http.ResponseWriter, err error) {
	writeError(w, http.StatusBadRequest, err)
}

func (h *Handler) query(w http.ResponseWriter, r *http.Request) { h.run(w, r, h.instantParams) }

func (h *Handler) queryRange(w http.ResponseWriter, r *http.Request) { h.run(w, r, h.rangeParams) }

// run reads a query's parameters with params, evaluates it and writes
// Loki's body.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, params func(*http.Request) (engine.Params, error)) {
	if err := form(r); err != nil {
		badRequest(w, err)
		return
	}
	p, err := params(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	h.withTurn(w, r, func() {
		h.withBackend(w, func(b Backend) {
			res, err := b.Engine.Query(r.Context(), p)
			if err != nil {
				writeError(w, queryStatus(err), err)
				return
			}
			writeJSON(w, lokiapi.Marshal(res))
		})
	})
}

// labelRange reads a label call's range; its end is inclusive, the
// store's ranges half-open.
func (h *Handler) labelRange(r *http.Request) (start, end int64, err error) {
	s, e, err := h.timeRange(r, defaultLabelSince)
	if err != nil {
		return 0, 0, err
	}
	if e.Before(s) {
		return 0, 0, errors.New("end timestamp must not be before or equal to start time")
	}
	return s.UnixNano(), e.UnixNano() + 1, nil
}

// matchersParam parses an optional stream selector.
func matchersParam(s string) ([]*labels.Matcher, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	sel, err := syntax.ParseLogSelector(s)
	if err != nil {
		return nil, err
	}
	return sel.Matchers(), nil
}

// successData writes {"status":"success","data":v}.
func successData(w http.ResponseWriter, v any) {
	b, err := json.Marshal(struct {
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{"success", v})
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("encode response: %w", err))
		return
	}
	writeJSON(w, b)
}

func (h *Handler) labels(w http.ResponseWriter, r *http.Request) {
	h.labelLookup(w, r, func(b Backend, ms []*labels.Matcher, start, end int64) ([]string, error) {
		if ms == nil {
			return b.Reader.LabelNames(r.Context(), start, end)
		}
		return namesOf(r, b, ms, start, end)
	})
}

func (h *Handler) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	h.labelLookup(w, r, func(b Backend, ms []*labels.Matcher, start, end int64) ([]string, error) {
		return b.Reader.LabelValues(r.Context(), name, ms, start, end)
	})
}

// labelLookup answers a label names or values call: it reads the range and
// the optional query selector, and lists the sorted strings list returns.
func (h *Handler) labelLookup(w http.ResponseWriter, r *http.Request, list func(b Backend, ms []*labels.Matcher, start, end int64) ([]string, error)) {
	if err := form(r); err != nil {
		badRequest(w, err)
		return
	}
	start, end, err := h.labelRange(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	ms, err := matchersParam(r.Form.Get("query"))
	if err != nil {
		badRequest(w, err)
		return
	}
	h.withBackend(w, func(b Backend) {
		out, err := list(b, ms, start, end)
		if err != nil {
			writeError(w, queryStatus(err), err)
			return
		}
		successData(w, sorted(out))
	})
}

// namesOf lists the label names of the streams ms selects.
func namesOf(r *http.Request, b Backend, ms []*labels.Matcher, start, end int64) ([]string, error) {
	sets, err := b.Reader.Streams(r.Context(), ms, start, end)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for _, ls := range sets {
		for _, l := range ls {
			if !seen[l.Name] {
				seen[l.Name] = true
				names = append(names, l.Name)
			}
		}
	}
	return names, nil
}

func (h *Handler) series(w http.ResponseWriter, r *http.Request) {
	if err := form(r); err != nil {
		badRequest(w, err)
		return
	}
	sels := r.Form["match[]"]
	if len(sels) == 0 {
		sels = r.Form["match"]
	}
	if len(sels) == 0 {
		badRequest(w, errors.New("0 matchers given: series needs at least one match[] selector, e.g. match[]={job=\"varlogs\"}"))
		return
	}
	start, end, err := h.labelRange(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	var mss [][]*labels.Matcher
	for _, s := range sels {
		ms, err := matchersParam(s)
		if err != nil {
			badRequest(w, err)
			return
		}
		mss = append(mss, ms)
	}
	h.withBackend(w, func(b Backend) {
		out := []map[string]string{}
		seen := map[string]bool{}
		for _, ms := range mss {
			sets, err := b.Reader.Streams(r.Context(), ms, start, end)
			if err != nil {
				writeError(w, queryStatus(err), err)
				return
			}
			for _, ls := range sets {
				if k := ls.String(); !seen[k] {
					seen[k] = true
					out = append(out, ls.Map())
				}
			}
		}
		successData(w, out)
	})
}

func (h *Handler) formatQuery(w http.ResponseWriter, r *http.Request) {
	if err := form(r); err != nil {
		badRequest(w, err)
		return
	}
	expr, err := syntax.ParseExpr(r.Form.Get("query"))
	if err != nil {
		badRequest(w, err)
		return
	}
	successData(w, syntax.Prettify(expr))
}

func (h *Handler) buildInfo(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(map[string]string{
		"version":   LokiVersion,
		"revision":  "lokal-" + h.opts.Version,
		"branch":    "lokal",
		"buildUser": "lokal",
		"goVersion": runtime.Version(),
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, b)
}

func sorted(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	sort.Strings(ss)
	return ss
}
