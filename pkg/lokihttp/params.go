package lokihttp

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Loki's defaults for the time range of a request without start.
const (
	// defaultQuerySince is query_range's and tail's lookback (documented),
	// and that of the index, detected_* and patterns endpoints (whose
	// start Loki's API reference lists as required).
	defaultQuerySince = time.Hour
	// defaultLabelSince is the lookback of labels and label values
	// (documented), and of series.
	defaultLabelSince = 6 * time.Hour
)

// form parses a request's parameters: the URL's query and, for a POST, its
// url-encoded body, as Loki reads them.
func form(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("read parameters: %w", err)
	}
	return nil
}

// parseTimestamp reads a time as Loki does: a number with a fraction is
// Unix seconds, an integer of at most 10 digits Unix seconds, a longer one
// Unix nanoseconds; anything else must be RFC3339.
func parseTimestamp(s string) (time.Time, error) {
	if strings.Contains(s, ".") {
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			// Loki keeps milliseconds of a fractional time.
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)), nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if len(strings.TrimPrefix(s, "-")) <= 10 {
			return time.Unix(n, 0), nil
		}
		return time.Unix(0, n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
	}
	return t, nil
}

// timeParam reads one optional time parameter.
func timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.Form.Get(name)
	if s == "" {
		return def, nil
	}
	return parseTimestamp(s)
}

// parseSecondsOrDuration reads a step or interval: a number of seconds
// (with a fraction) or a duration such as 30s, 5m or 1d.
func parseSecondsOrDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if math.IsNaN(d) || d >= math.MaxInt64 || d <= math.MinInt64 {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(d), nil
	}
	d, err := syntax.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return d, nil
}

// timeRange reads start, end and since: end defaults to now, start to end
// minus since (or def) or, as Loki's API documents, when end is in the
// future, to now minus since.
func (h *Handler) timeRange(r *http.Request, def time.Duration) (start, end time.Time, err error) {
	now := h.opts.Now()
	end, err = timeParam(r, "end", now)
	if err != nil {
		return start, end, err
	}
	since := def
	if s := r.Form.Get("since"); s != "" {
		if since, err = syntax.ParseDuration(s); err != nil {
			return start, end, fmt.Errorf("cannot parse %q to a valid duration", s)
		}
	}
	from := end
	if end.After(now) {
		from = now
	}
	start, err = timeParam(r, "start", from.Add(-since))
	return start, end, err
}

// limitParam reads limit (default 100); Loki rejects zero and negatives.
func limitParam(r *http.Request) (int, error) {
	s := r.Form.Get("limit")
	if s == "" {
		return engine.DefaultLimit, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid limit", s)
	}
	if n <= 0 {
		return 0, errors.New("limit must be a positive value")
	}
	return int(n), nil
}

// directionParam reads direction (default backward), in any case.
func directionParam(r *http.Request) (store.Direction, error) {
	switch s := r.Form.Get("direction"); strings.ToLower(s) {
	case "", "backward":
		return store.Backward, nil
	case "forward":
		return store.Forward, nil
	default:
		return 0, fmt.Errorf("invalid direction '%s'", s)
	}
}

// queryParam reads the required query parameter.
func queryParam(r *http.Request) (string, error) {
	q := r.Form.Get("query")
	if strings.TrimSpace(q) == "" {
		return "", errors.New("query parameter is required, e.g. query={job=\"varlogs\"}")
	}
	return q, nil
}

// rangeParams reads query_range's parameters into engine.Params.
func (h *Handler) rangeParams(r *http.Request) (engine.Params, error) {
	var p engine.Params
	var err error
	if p.Query, err = queryParam(r); err != nil {
		return p, err
	}
	if p.Start, p.End, err = h.timeRange(r, defaultQuerySince); err != nil {
		return p, err
	}
	if p.Limit, err = limitParam(r); err != nil {
		return p, err
	}
	if p.Direction, err = directionParam(r); err != nil {
		return p, err
	}
	if !p.End.After(p.Start) {
		return p, errors.New("end timestamp must not be before or equal to start time")
	}
	if s := r.Form.Get("step"); s != "" {
		if p.Step, err = parseSecondsOrDuration(s); err != nil {
			return p, err
		}
		if p.Step <= 0 {
			return p, errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer")
		}
	}
	if s := r.Form.Get("interval"); s != "" {
		if p.Interval, err = parseSecondsOrDuration(s); err != nil {
			return p, err
		}
		if p.Interval < 0 {
			return p, errors.New("negative query interval widths are not accepted. Try a positive integer")
		}
	}
	return p, nil
}

// instantParams reads query's parameters (time defaults to now).
func (h *Handler) instantParams(r *http.Request) (engine.Params, error) {
	p := engine.Params{Instant: true}
	var err error
	if p.Query, err = queryParam(r); err != nil {
		return p, err
	}
	if p.Start, err = timeParam(r, "time", h.opts.Now()); err != nil {
		return p, err
	}
	p.End = p.Start
	if p.Limit, err = limitParam(r); err != nil {
		return p, err
	}
	if p.Direction, err = directionParam(r); err != nil {
		return p, err
	}
	return p, nil
}

// intParam reads an optional positive integer.
func intParam(r *http.Request, name string, def int) (int, error) {
	s := r.Form.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive whole number", name, s)
	}
	return n, nil
}
