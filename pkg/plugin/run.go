package plugin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// errAlertLogQuery is what an alert rule built on a log query gets.
const errAlertLogQuery = "alert rules need a metric query, e.g. count_over_time({job=\"cosyvoice3\"} |= \"CUDA out of memory\"[5m]); a log query returns lines, not numbers"

// runQuery evaluates one query and shapes its frames. Every failure becomes
// an error response on the query's refId, never a failed request. readTime
// are the counts of entries stored at their read time (see readtime.go).
func runQuery(ctx context.Context, eng *engine.Engine, q lokalQuery, fromAlert bool, readTime []ingest.ReadTimeStat) backend.DataResponse {
	expr, err := syntax.ParseExpr(q.Expr)
	if err != nil {
		// The parser's message already says "parse error" and where, as Loki's does.
		return queryErrorResponse(backend.StatusBadRequest, q.Expr, err)
	}
	_, isLog := expr.(syntax.LogSelectorExpr)
	if isLog && fromAlert {
		return backend.ErrDataResponse(backend.StatusBadRequest, errAlertLogQuery)
	}
	if q.Type == QueryTypeStream && !isLog {
		return backend.ErrDataResponse(backend.StatusBadRequest, "live tail (queryType stream) needs a log query such as {job=\"cosyvoice3\"} |= \"error\", not a metric query")
	}
	p := engine.Params{
		Expr:      expr,
		Start:     q.Start,
		End:       q.End,
		Step:      q.Step,
		Limit:     q.Limit,
		Direction: store.Forward,
		Instant:   q.Type == QueryTypeInstant && !isLog,
	}
	if q.Backward {
		p.Direction = store.Backward
	}
	if p.Instant {
		p.Start = q.End
	}
	res, err := eng.Query(ctx, p)
	if err != nil {
		return queryErrorResponse(errStatus(err), q.Expr, err)
	}
	res.Warnings = append(res.Warnings, ingest.ReadTimeWarnings(readTime, expr, q.Start, q.End)...)
	return backend.DataResponse{Frames: resultFrames(q, expr, res)}
}

// errStatus maps an engine error to a status Grafana shows sensibly.
func errStatus(err error) backend.Status {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return backend.StatusTimeout
	case errors.Is(err, engine.ErrInternal):
		return backend.StatusInternal
	default:
		return backend.StatusBadRequest
	}
}

// resultFrames shapes an engine result by Grafana's data plane contracts.
func resultFrames(q lokalQuery, expr syntax.Expr, res engine.Result) data.Frames {
	frames := typedResultFrames(q, expr, res)
	return withWarnings(frames, res.Warnings)
}

// withWarnings puts the engine's warnings on the first frame as notices,
// which Grafana shows above the panel. A result with no frame gets an empty
// one to carry them.
func withWarnings(frames data.Frames, warnings []string) data.Frames {
	if len(warnings) == 0 {
		return frames
	}
	if len(frames) == 0 {
		frames = data.Frames{data.NewFrame("")}
	}
	f := frames[0]
	if f.Meta == nil {
		f.Meta = &data.FrameMeta{}
	}
	for _, w := range warnings {
		f.Meta.Notices = append(f.Meta.Notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: w})
	}
	return frames
}

func typedResultFrames(q lokalQuery, expr syntax.Expr, res engine.Result) data.Frames {
	st := queryStats{
		Lines:          res.Stats.EntriesReturned,
		EntriesScanned: res.Stats.Store.EntriesScanned,
		BytesScanned:   res.Stats.Store.BytesScanned,
		Streams:        res.Stats.Store.Streams,
		BlocksTotal:    res.Stats.Store.BlocksTotal,
		BlocksSkipped:  res.Stats.Store.BlocksSkipped,
		BlocksCorrupt:  res.Stats.Store.BlocksCorrupt,
		CacheHits:      res.Stats.Cache.Hits,
		CacheMisses:    res.Stats.Cache.Misses,
		Duration:       res.Stats.ExecTime,
	}
	switch res.Type {
	case engine.ValueStreams:
		dir := "backward"
		if !q.Backward {
			dir = "forward"
		}
		custom := logsCustom{SearchWords: engine.LineFilterWords(expr), Limit: q.Limit, LimitReached: res.LimitReached, Direction: dir}
		return data.Frames{logsFrame(q.RefID, q.Expr, streamRows(res.Streams, q.Backward), custom, st)}
	case engine.ValueMatrix:
		ss := make([]series, len(res.Matrix))
		for i, s := range res.Matrix {
			pts := make([]point, len(s.Points))
			for j, p := range s.Points {
				pts[j] = point{T: p.T, V: p.V}
			}
			ss[i] = series{Labels: s.Metric, Points: pts}
		}
		return matrixFrames(q.RefID, q.Expr, q.LegendFormat, ss, st)
	case engine.ValueVector:
		ss := make([]series, len(res.Vector))
		for i, s := range res.Vector {
			ss[i] = series{Labels: s.Metric, Points: []point{{T: s.T, V: s.V}}}
		}
		return vectorFrames(q.RefID, q.Expr, q.LegendFormat, ss, st)
	default: // scalar
		return vectorFrames(q.RefID, q.Expr, q.LegendFormat, []series{{Points: []point{{T: res.Scalar.T, V: res.Scalar.V}}}}, st)
	}
}

// streamRows merges result streams into one list of rows in display order:
// newest first for backward queries, with (Ts, Seq, labels) as tiebreak so
// identical timestamps always come out in the same order.
func streamRows(streams []engine.Stream, backward bool) []logRow {
	n := 0
	for _, s := range streams {
		n += len(s.Entries)
	}
	rows := make([]logRow, 0, n)
	for _, s := range streams {
		for _, e := range s.Entries {
			rows = append(rows, logRow{Ts: e.Ts, Seq: e.Seq, Line: e.Line, Labels: s.Labels})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		less := a.Ts < b.Ts || (a.Ts == b.Ts && a.Seq < b.Seq)
		if backward {
			return b.Ts < a.Ts || (a.Ts == b.Ts && b.Seq < a.Seq)
		}
		return less
	})
	return rows
}

// isLogQuery reports whether text parses as a log query; used by live tail.
func isLogQuery(text string) (syntax.LogSelectorExpr, error) {
	expr, err := syntax.ParseExpr(strings.TrimSpace(text))
	if err != nil {
		return nil, err
	}
	l, ok := expr.(syntax.LogSelectorExpr)
	if !ok {
		return nil, fmt.Errorf("live tail needs a log query, not a metric query")
	}
	return l, nil
}
