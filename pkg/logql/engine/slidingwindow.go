package engine

import (
	"math"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// A vector aggregation directly over a range aggregation of unwrapped
// values, such as
//
//	sum by (instance) (sum_over_time({…} | logfmt | unwrap audio_sec [5m]))
//
// is evaluated the way Loki does it, step by step: samples arrive in time
// order, each series keeps only the samples of its current window, and the
// window's value goes straight into the aggregation. A parser that gives
// every line its own label set (a request id) then costs one short-lived
// window per line instead of a step array per line, so memory follows the
// series alive in one window, never the data.

// fusable reports whether the range aggregation below a streamable vector
// aggregation should be streamed into it: functions over a pipeline, unless
// Loki's sum push-down already groups the samples.
func fusable(vecOp string, ra *syntax.RangeAggregationExpr) bool {
	if ra == nil || !streamable(vecOp) || ra.Left == nil || canInjectGrouping(vecOp, ra) {
		return false
	}
	if ra.Operation == syntax.OpRangeTypeAbsent {
		return false
	}
	if additive(ra.Operation) && ra.Left.Unwrap == nil {
		// Counting lines of bare streams is folded in parallel without
		// reading lines; only a pipeline (a parser making a label set per
		// line) needs streaming.
		p, ok := ra.Left.Left.(*syntax.PipelineExpr)
		return ok && len(p.Stages) > 0
	}
	return true
}

// fusesInto reports whether x's range aggregation, as written (before
// the sum push-down), streams into x.
func fusesInto(x *syntax.VectorAggregationExpr) bool {
	ra, _ := x.Left.(*syntax.RangeAggregationExpr)
	return fusable(x.Operation, ra)
}

// winSeriesBytes is about what a window series costs besides its samples.
func winSeriesBytes(ws *winSeries) int64 { return int64(labelsBytes(ws.ls)) + seriesOverhead }

// winSeries is one series alive in the current window.
type winSeries struct {
	ls   labels.Labels
	hash uint64
	win  []tv // sample times shifted by the offset
	head int
	dead bool
}

// windowValue is the range function over one window's samples, in time
// order, with the same float operations as the per-step accumulators.
func windowValue(op string, w []tv, t, rng int64, q float64) float64 {
	switch op {
	case syntax.OpRangeTypeCount:
		return float64(len(w))
	case syntax.OpRangeTypeRate:
		// Only reached with unwrap: the sum of the values per second.
		sum := 0.0
		for _, p := range w {
			sum += p.v
		}
		return sum / (float64(rng) / 1e9)
	case syntax.OpRangeTypeSum, syntax.OpRangeTypeBytes:
		sum := 0.0
		for _, p := range w {
			sum += p.v
		}
		return sum
	case syntax.OpRangeTypeBytesRate:
		sum := 0.0
		for _, p := range w {
			sum += p.v
		}
		return sum / (float64(rng) / 1e9)
	case syntax.OpRangeTypeAvg:
		var mean, cnt float64
		for _, p := range w {
			cnt++
			x := p.v
			if math.IsInf(mean, 0) {
				if math.IsInf(x, 0) && (mean > 0) == (x > 0) {
					continue
				}
				if !math.IsInf(x, 0) && !math.IsNaN(x) {
					continue
				}
			}
			mean = mean + x/cnt - mean/cnt
		}
		return mean
	case syntax.OpRangeTypeMin:
		m := w[0].v
		for _, p := range w[1:] {
			if p.v < m || math.IsNaN(m) {
				m = p.v
			}
		}
		return m
	case syntax.OpRangeTypeMax:
		m := w[0].v
		for _, p := range w[1:] {
			if p.v > m || math.IsNaN(m) {
				m = p.v
			}
		}
		return m
	case syntax.OpRangeTypeFirst:
		return w[0].v
	case syntax.OpRangeTypeLast:
		return w[len(w)-1].v
	case syntax.OpRangeTypeStddev, syntax.OpRangeTypeStdvar:
		var cnt, mean, aux float64
		for _, p := range w {
			cnt++
			delta := p.v - mean
			mean += delta / cnt
			aux += delta * (p.v - mean)
		}
		if op == syntax.OpRangeTypeStddev {
			return math.Sqrt(aux / cnt)
		}
		return aux / cnt
	case syntax.OpRangeTypeQuantile:
		return quantile(q, w)
	case syntax.OpRangeTypeRateCounter:
		return extrapolatedRate(w, t, rng)
	}
	return math.NaN()
}

// rangeAggInto streams a range aggregation into agg.
func (ev *evaluator) rangeAggInto(x *syntax.RangeAggregationExpr, agg *aggSet) error {
	lr := x.Left
	if lr.Interval <= 0 {
		return queryErr(ErrBadQuery, "%s needs a positive range", x.Operation)
	}
	its, ex, err := ev.selectRange(x, true)
	if err != nil {
		return err
	}
	defer closeAll(its)
	rng, off := int64(lr.Interval), int64(lr.Offset)

	m, stop, err := ev.mergeSamples(its, ex, x, rng, off)
	if err != nil {
		return err
	}
	// Stop the readers and wait for them before the iterators are closed.
	defer stop()

	var q float64
	if x.Params != nil {
		q = *x.Params
	}
	// held counts the samples in all windows (for the error message); what
	// they and their series cost counts against ev.held.
	held := 0
	active := map[uint64][]*winSeries{}
	var order []*winSeries
	next := 0
	finishUpTo := func(ts int64) error {
		for next < len(ev.steps) && ev.steps[next] < ts {
			t := ev.steps[next]
			live := order[:0]
			for _, ws := range order {
				for ws.head < len(ws.win) && ws.win[ws.head].t <= t-rng {
					ws.head++
					held--
				}
				w := ws.win[ws.head:]
				if len(w) == 0 {
					// Every sample it had is out of every window to come.
					ws.dead = true
					ev.held.add(-winSeriesBytes(ws) - int64(cap(ws.win))*tvBytes)
					ws.win = nil
					continue
				}
				if errV := ws.ls.Get(log.ErrorLabel); errV != "" {
					return pipelineErr(errV, ws.ls)
				}
				agg.add(ws.ls, ws.hash, next, windowValue(x.Operation, w, t, rng, q))
				if ws.head > 1024 && ws.head*2 > len(ws.win) {
					ws.win = append(ws.win[:0], ws.win[ws.head:]...)
					ws.head = 0
				}
				live = append(live, ws)
			}
			for i := len(live); i < len(order); i++ {
				order[i] = nil
			}
			order = live
			next++
		}
		// Forget the dead so their labels can be collected.
		for k, list := range active {
			kept := list[:0]
			for _, ws := range list {
				if !ws.dead {
					kept = append(kept, ws)
				}
			}
			if len(kept) == 0 {
				delete(active, k)
			} else {
				active[k] = kept
			}
		}
		return nil
	}
	for !m.empty() {
		c := m.top()
		shifted := c.ts + off
		if lo, hi := ev.stepSpan(shifted, rng); lo <= hi {
			// Steps before lo are complete: no later sample can fall in
			// them. Finishing sweeps every live series, so it runs only
			// when a step boundary is crossed.
			if next < lo {
				if err := finishUpTo(shifted); err != nil {
					return err
				}
			}
			gl, gh := c.ls, c.hash
			var ws *winSeries
			for _, s := range active[gh] {
				if labels.Equal(s.ls, gl) {
					ws = s
					break
				}
			}
			if ws == nil {
				if len(order) >= ev.seriesCap {
					return ev.tooManyHeld()
				}
				ws = &winSeries{ls: gl, hash: gh}
				active[gh] = append(active[gh], ws)
				order = append(order, ws)
				if !ev.held.add(winSeriesBytes(ws)) {
					return ev.windowsOverBudget(x, len(order), held)
				}
			}
			c0 := cap(ws.win)
			ws.win = append(ws.win, tv{shifted, c.v})
			held++
			if d := cap(ws.win) - c0; d != 0 && !ev.held.add(int64(d)*tvBytes) {
				return ev.windowsOverBudget(x, len(order), held)
			}
		}
		if err := m.next(ev.ctx); err != nil {
			return err
		}
	}
	return finishUpTo(math.MaxInt64)
}
