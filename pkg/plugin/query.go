package plugin

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// Query types, as Grafana's Loki datasource names them.
const (
	QueryTypeRange   = "range"
	QueryTypeInstant = "instant"
	QueryTypeStream  = "stream"
)

const (
	// defaultMaxLines is Grafana's Loki datasource default line limit.
	defaultMaxLines = 1000
	// maxLinesLimit bounds what one query may ask for, so a typo (maxLines:
	// 1e9) cannot make the plugin hold a whole store in memory.
	maxLinesLimit = 50000
	// maxPoints is the most points a range query may return per series; the
	// step is raised to stay under it (Loki's own limit is 11000).
	maxPoints = 11000
)

// queryModel is a query's JSON, with the field names of Grafana's Loki
// datasource so that Loki panels and alert rules work unchanged.
type queryModel struct {
	Expr         string          `json:"expr"`
	QueryType    string          `json:"queryType"`
	MaxLines     json.RawMessage `json:"maxLines"`
	LegendFormat string          `json:"legendFormat"`
	Step         string          `json:"step"`
	Resolution   json.RawMessage `json:"resolution"`
	Direction    string          `json:"direction"`
	// Instant is how older Loki panels asked for an instant query.
	Instant bool `json:"instant"`
	// Range is the counterpart of Instant in older panels.
	Range bool `json:"range"`
}

// lokalQuery is a query ready for the engine: variables substituted, times
// resolved, defaults applied.
type lokalQuery struct {
	RefID        string
	Expr         string // with Grafana's variables substituted
	Type         string // range, instant or stream
	Start, End   time.Time
	Step         time.Duration
	Limit        int
	Backward     bool
	LegendFormat string
}

// parseQuery turns a DataQuery into a lokalQuery, or says what is wrong.
func parseQuery(q backend.DataQuery) (lokalQuery, error) {
	var m queryModel
	if err := json.Unmarshal(q.JSON, &m); err != nil {
		return lokalQuery{}, fmt.Errorf("query JSON: %w", err)
	}
	out := lokalQuery{
		RefID:        q.RefID,
		Start:        q.TimeRange.From,
		End:          q.TimeRange.To,
		LegendFormat: m.LegendFormat,
		Backward:     true,
	}
	if strings.TrimSpace(m.Expr) == "" {
		return out, fmt.Errorf("empty query: write a LogQL expression, e.g. {job=\"cosyvoice3\"}")
	}
	if !out.End.After(out.Start) && !out.End.Equal(out.Start) {
		return out, fmt.Errorf("time range ends (%s) before it starts (%s)", out.End.Format(time.RFC3339), out.Start.Format(time.RFC3339))
	}

	switch qt := firstNonEmpty(m.QueryType, q.QueryType); qt {
	case "", QueryTypeRange:
		out.Type = QueryTypeRange
		if m.Instant && !m.Range {
			out.Type = QueryTypeInstant
		}
	case QueryTypeInstant, QueryTypeStream:
		out.Type = qt
	default:
		return out, fmt.Errorf("queryType %q: want range, instant or stream", qt)
	}

	switch strings.ToLower(m.Direction) {
	case "", "backward":
	case "forward":
		out.Backward = false
	case "scan": // Loki's "scan" is forward order without a limit guarantee
		out.Backward = false
	default:
		return out, fmt.Errorf("direction %q: want backward or forward", m.Direction)
	}

	limit, err := jsonInt(m.MaxLines, defaultMaxLines)
	if err != nil {
		return out, fmt.Errorf("maxLines: %w", err)
	}
	if limit <= 0 {
		limit = defaultMaxLines
	}
	if limit > maxLinesLimit {
		return out, fmt.Errorf("maxLines %d is above the limit of %d lines per query", limit, maxLinesLimit)
	}
	out.Limit = limit

	resolution, err := jsonInt(m.Resolution, 1)
	if err != nil {
		return out, fmt.Errorf("resolution: %w", err)
	}
	if resolution <= 0 {
		resolution = 1
	}

	vars := syntax.GrafanaVars{Interval: q.Interval, Range: out.End.Sub(out.Start)}
	stepExpr := expandVars(strings.TrimSpace(m.Step), vars)
	step, err := calculateStep(stepExpr, q.Interval, vars.Range, resolution)
	if err != nil {
		return out, err
	}
	out.Step = step
	vars.Auto = step
	if out.Type == QueryTypeInstant {
		// An instant query's window is the whole range, as in Loki's datasource.
		vars.Auto = vars.Range
	}
	out.Expr = expandVars(m.Expr, vars)
	return out, nil
}

// calculateStep picks the evaluation step of a range query: the query's own
// step if it has one, else Grafana's interval, times the resolution factor,
// raised so that no series gets more than maxPoints points.
func calculateStep(step string, interval, rng time.Duration, resolution int) (time.Duration, error) {
	var d time.Duration
	if step != "" {
		var err error
		d, err = parseStepDuration(step)
		if err != nil {
			return 0, fmt.Errorf("step %q: %w", step, err)
		}
		if d <= 0 {
			return 0, fmt.Errorf("step %q: must be positive", step)
		}
	} else {
		d = interval
	}
	d *= time.Duration(resolution)
	safe := time.Duration(math.Ceil(float64(rng)/float64(maxPoints)/float64(time.Millisecond))) * time.Millisecond
	if d < safe {
		d = safe
	}
	if d < time.Millisecond {
		d = time.Second
	}
	return d, nil
}

// parseStepDuration accepts Go and Prometheus durations ("30s", "1m30s",
// "1d") and bare seconds ("15", "0.5").
func parseStepDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f > float64(math.MaxInt64)/float64(time.Second) {
			return 0, fmt.Errorf("not a usable number of seconds")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	if strings.HasSuffix(s, "d") || strings.HasSuffix(s, "w") || strings.HasSuffix(s, "y") {
		unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}[s[len(s)-1]]
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil {
			return 0, fmt.Errorf("not a duration")
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration (want e.g. 30s, 1m, 1h)")
	}
	return d, nil
}

// expandVars substitutes Grafana's time variables. Alert rules arrive
// without the frontend's interpolation, so the backend must do it.
func expandVars(s string, v syntax.GrafanaVars) string {
	return syntax.ExpandGrafanaVariables(s, v)
}

// jsonInt reads a number that Grafana may send as a number or a string.
func jsonInt(raw json.RawMessage, def int) (int, error) {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		if f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			return 0, fmt.Errorf("%s is not a whole number", raw)
		}
		return int(f), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("%s is not a number", raw)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
