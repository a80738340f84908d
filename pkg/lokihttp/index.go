package lokihttp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/logql/patterns"
)

// Limits of the detected_* endpoints' parameters: defaults are Loki's,
// maxima keep one call's sampling bounded.
const (
	defaultFieldLimit = 1000
	maxFieldLines     = 100000
	maxFieldLimit     = 10000
)

// indexCall reads the parameters the index and detected_* endpoints share
// (query, start, end, since), evaluates with f and writes the body f
// returns; f's errors are answered with queryStatus.
func (h *Handler) indexCall(w http.ResponseWriter, r *http.Request, queryRequired bool, f func(b Backend, query string, start, end int64) ([]byte, error)) {
	if err := form(r); err != nil {
		badRequest(w, err)
		return
	}
	query := r.Form.Get("query")
	if queryRequired && strings.TrimSpace(query) == "" {
		badRequest(w, fmt.Errorf("query parameter is required, e.g. query={job=\"varlogs\"}"))
		return
	}
	start, end, err := h.timeRange(r, defaultQuerySince)
	if err != nil {
		badRequest(w, err)
		return
	}
	if !end.After(start) {
		badRequest(w, fmt.Errorf("end timestamp must not be before or equal to start time"))
		return
	}
	h.withTurn(w, r, func() {
		h.withBackend(w, func(b Backend) {
			body, err := f(b, query, start.UnixNano(), end.UnixNano())
			if err != nil {
				writeError(w, queryStatus(err), err)
				return
			}
			writeJSON(w, body)
		})
	})
}

// boundedInt reads an optional positive integer of at most maxV.
func boundedInt(r *http.Request, name string, def, maxV int) (int, error) {
	n, err := intParam(r, name, def)
	if err != nil {
		return 0, err
	}
	if n > maxV {
		return 0, fmt.Errorf("%s %d: at most %d", name, n, maxV)
	}
	return n, nil
}

func (h *Handler) indexStats(w http.ResponseWriter, r *http.Request) {
	h.indexCall(w, r, true, func(b Backend, q string, start, end int64) ([]byte, error) {
		st, err := b.Engine.IndexStats(r.Context(), q, start, end)
		if err != nil {
			return nil, err
		}
		return lokiapi.MarshalIndexStats(st), nil
	})
}

func (h *Handler) volume(w http.ResponseWriter, r *http.Request)      { h.volumeCall(w, r, false) }
func (h *Handler) volumeRange(w http.ResponseWriter, r *http.Request) { h.volumeCall(w, r, true) }

// volumeCall answers index/volume (one total per series) and
// index/volume_range (totals per step).
func (h *Handler) volumeCall(w http.ResponseWriter, r *http.Request, ranged bool) {
	h.indexCall(w, r, true, func(b Backend, q string, start, end int64) ([]byte, error) {
		p := engine.VolumeParams{Query: q, Start: start, End: end, AggregateBy: r.Form.Get("aggregateBy")}
		var err error
		if p.Limit, err = intParam(r, "limit", engine.DefaultVolumeLimit); err != nil {
			return nil, badParam(err)
		}
		if t := r.Form.Get("targetLabels"); t != "" {
			for _, l := range strings.Split(t, ",") {
				if l = strings.TrimSpace(l); l != "" {
					p.TargetLabels = append(p.TargetLabels, l)
				}
			}
		}
		switch p.AggregateBy {
		case "", engine.VolumeBySeries, engine.VolumeByLabels:
		default:
			return nil, badParam(fmt.Errorf("invalid aggregation option %q: want %s or %s", p.AggregateBy, engine.VolumeBySeries, engine.VolumeByLabels))
		}
		if ranged {
			step := time.Duration(engine.DefaultVolumeStep(start, end))
			if s := r.Form.Get("step"); s != "" {
				if step, err = parseSecondsOrDuration(s); err != nil {
					return nil, badParam(err)
				}
				if step <= 0 {
					return nil, badParam(fmt.Errorf("zero or negative query resolution step widths are not accepted. Try a positive integer"))
				}
			}
			p.Step = int64(step)
		}
		res, err := b.Engine.Volume(r.Context(), p)
		if err != nil {
			return nil, err
		}
		return lokiapi.Marshal(res), nil
	})
}

func (h *Handler) detectedLabels(w http.ResponseWriter, r *http.Request) {
	h.indexCall(w, r, false, func(b Backend, q string, start, end int64) ([]byte, error) {
		ls, err := b.Engine.DetectedLabels(r.Context(), q, start, end)
		if err != nil {
			return nil, err
		}
		return lokiapi.MarshalDetectedLabels(ls), nil
	})
}

// fieldLimits reads detected_fields' line_limit and limit.
func fieldLimits(r *http.Request) (lineLimit, limit int, err error) {
	if lineLimit, err = boundedInt(r, "line_limit", engine.DefaultFieldLines, maxFieldLines); err != nil {
		return 0, 0, badParam(err)
	}
	if limit, err = boundedInt(r, "limit", defaultFieldLimit, maxFieldLimit); err != nil {
		return 0, 0, badParam(err)
	}
	return lineLimit, limit, nil
}

func (h *Handler) detectedFields(w http.ResponseWriter, r *http.Request) {
	h.indexCall(w, r, true, func(b Backend, q string, start, end int64) ([]byte, error) {
		lineLimit, limit, err := fieldLimits(r)
		if err != nil {
			return nil, err
		}
		fs, err := b.Engine.DetectedFields(r.Context(), q, start, end, lineLimit, limit)
		if err != nil {
			return nil, err
		}
		return lokiapi.MarshalDetectedFields(fs, limit), nil
	})
}

func (h *Handler) detectedFieldValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	h.indexCall(w, r, true, func(b Backend, q string, start, end int64) ([]byte, error) {
		lineLimit, limit, err := fieldLimits(r)
		if err != nil {
			return nil, err
		}
		vs, err := b.Engine.DetectedFieldValues(r.Context(), q, name, start, end, lineLimit, limit)
		if err != nil {
			return nil, err
		}
		return lokiapi.MarshalDetectedFieldValues(vs, limit), nil
	})
}

// paramError is a bad parameter found inside an indexCall: 400.
type paramError struct{ err error }

func (e *paramError) Error() string { return e.err.Error() }
func (e *paramError) Unwrap() error { return e.err }

func badParam(err error) error { return &paramError{err} }

// patterns answers Logs Drilldown's /loki/api/v1/patterns: line patterns
// mined from the stored lines of the range.
func (h *Handler) patterns(w http.ResponseWriter, r *http.Request) {
	h.indexCall(w, r, true, func(b Backend, q string, start, end int64) ([]byte, error) {
		var step time.Duration
		if s := r.Form.Get("step"); s != "" {
			var err error
			if step, err = parseSecondsOrDuration(s); err != nil {
				return nil, badParam(err)
			}
			if step <= 0 {
				return nil, badParam(fmt.Errorf("zero or negative query resolution step widths are not accepted. Try a positive integer"))
			}
		}
		ps, err := patterns.Detect(r.Context(), b.Reader, q, start, end, int64(step), patterns.Options{})
		if errors.Is(err, patterns.ErrBadRequest) {
			return nil, badParam(err)
		}
		if err != nil {
			return nil, err
		}
		return patterns.MarshalResponse(ps), nil
	})
}
