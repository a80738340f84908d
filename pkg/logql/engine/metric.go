package engine

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// innerSeriesFactor bounds the series an inner node (a range aggregation
// below a sum, say) may hold, as a multiple of MaxSeries: Loki checks only
// the final result, but memory here is series × steps, so a parser that makes
// a label per request must fail instead of exhausting memory.
const innerSeriesFactor = 100

// stepBytes is what one step of one series costs at most in the step
// arrays (value, presence, and an aggregation's count and mean).
const stepBytes = 32

// seriesCap is how many series a node may hold at once over n steps: the
// inner series bound, lowered to what the memory budget pays for, but
// never below what a valid result needs.
func (e *Engine) seriesCap(n int) int {
	c := int64(e.opts.MaxSeries) * innerSeriesFactor
	if b := e.opts.MemoryBudget / (int64(n)*stepBytes + 256); b < c {
		c = max(b, int64(e.opts.MaxSeries)+1)
	}
	return int(c)
}

// tooManyHeld is the error of a node past seriesCap.
func (ev *evaluator) tooManyHeld() error {
	if ev.seriesCap < ev.e.opts.MaxSeries*innerSeriesFactor {
		return queryErr(ErrMemoryBudget, "query would hold more than %d series of %d steps at once (the memory budget of one query is %d MiB); group by fewer labels, shorten the range or raise the step",
			ev.seriesCap, len(ev.steps), ev.e.opts.MemoryBudget>>20)
	}
	return tooManySeries(ev.e.opts.MaxSeries)
}

// stepSeries is one series over all steps of the query: v[i] is its value
// at step i when ok[i].
type stepSeries struct {
	ls   labels.Labels
	hash uint64
	v    []float64
	ok   []bool
}

func newStepSeries(ls labels.Labels, n int) *stepSeries {
	return &stepSeries{ls: ls, hash: ls.Hash(), v: make([]float64, n), ok: make([]bool, n)}
}

func (s *stepSeries) any() bool {
	for _, b := range s.ok {
		if b {
			return true
		}
	}
	return false
}

// value is a node's result: a scalar (the same at every step) or series.
type value struct {
	isScalar bool
	scalar   float64
	series   []*stepSeries
	// sortOrder is set by sort and sort_desc: an instant result keeps the order
	// of series at the (single) step instead of sorting by labels.
	sortOrder []int
}

// evaluator evaluates one metric query over its steps.
type evaluator struct {
	e     *Engine
	ctx   context.Context
	steps []int64 // Unix ns, ascending
	// noFuse evaluates aggregations over range aggregations by
	// materialising the inner series (tests compare both ways).
	noFuse bool
	// noProject extracts every label a parser can (tests compare the
	// results with and without projection).
	noProject bool
	// seriesCap bounds the series any node holds (see Engine.seriesCap).
	seriesCap int
	// held counts what the query's accumulators hold against
	// Options.MemoryBudget.
	held *heldBytes
}

func (e *Engine) metricQuery(ctx context.Context, expr syntax.SampleExpr, p Params) (Result, error) {
	ev := &evaluator{e: e, ctx: ctx, noFuse: e.noFuse, noProject: e.noProject, held: &heldBytes{max: e.opts.MemoryBudget}}
	if p.Instant {
		t := p.Start
		if t.IsZero() {
			t = p.End
		}
		ev.steps = []int64{t.UnixNano()}
	} else {
		if p.End.Before(p.Start) {
			return Result{}, errEndBeforeStart
		}
		step := p.Step
		if step <= 0 {
			step = defaultStep(p.Start, p.End)
		}
		n := int(p.End.Sub(p.Start)/step) + 1
		if n > MaxPoints {
			return Result{}, queryErr(ErrBadQuery, "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
		}
		start, end := alignToStep(p.Start.UnixNano(), p.End.UnixNano(), int64(step))
		n = int((end-start)/int64(step)) + 1
		ev.steps = make([]int64, n)
		for i := range ev.steps {
			ev.steps[i] = start + int64(i)*int64(step)
		}
	}
	ev.seriesCap = e.seriesCap(len(ev.steps))
	v, err := ev.eval(expr)
	if err != nil {
		return Result{}, err
	}
	out := Result{}
	if v.isScalar {
		if p.Instant {
			out.Type = ValueScalar
			out.Scalar = Scalar{T: ev.steps[0] / 1e6, V: v.scalar}
			return out, nil
		}
		s := newStepSeries(labels.Labels{}, len(ev.steps))
		for i := range s.v {
			s.v[i], s.ok[i] = v.scalar, true
		}
		v = &value{series: []*stepSeries{s}}
	}
	live := 0
	for _, s := range v.series {
		if s.any() {
			live++
		}
	}
	if live > e.opts.MaxSeries {
		return Result{}, tooManySeries(e.opts.MaxSeries)
	}
	if p.Instant {
		out.Type = ValueVector
		out.Vector = []Sample{}
		idx := make([]int, 0, len(v.series))
		if v.sortOrder != nil {
			idx = v.sortOrder
		} else {
			for i := range v.series {
				idx = append(idx, i)
			}
			sort.SliceStable(idx, func(a, b int) bool { return labels.Compare(v.series[idx[a]].ls, v.series[idx[b]].ls) < 0 })
		}
		for _, i := range idx {
			s := v.series[i]
			if s.ok[0] {
				out.Vector = append(out.Vector, Sample{Metric: s.ls, T: ev.steps[0] / 1e6, V: s.v[0]})
			}
		}
		out.Stats.EntriesReturned = len(out.Vector)
		return out, nil
	}
	out.Type = ValueMatrix
	out.Matrix = []Series{}
	for _, s := range v.series {
		var pts []Point
		for i, ok := range s.ok {
			if ok {
				pts = append(pts, Point{T: ev.steps[i] / 1e6, V: s.v[i]})
			}
		}
		if len(pts) > 0 {
			out.Matrix = append(out.Matrix, Series{Metric: s.ls, Points: pts})
			out.Stats.EntriesReturned += len(pts)
		}
	}
	sort.Slice(out.Matrix, func(a, b int) bool { return labels.Compare(out.Matrix[a].Metric, out.Matrix[b].Metric) < 0 })
	return out, nil
}

// alignToStep rounds a range query's start down and its end up to
// multiples of the step (from the Unix epoch), as Loki's query frontend does
// before it splits a metric query: the steps Loki evaluates, and so the
// timestamps it returns, are always multiples of the step.
func alignToStep(start, end, step int64) (int64, int64) {
	if m := start % step; m != 0 {
		if m < 0 {
			m += step
		}
		start -= m
	}
	if m := end % step; m != 0 {
		if m < 0 {
			m += step
		}
		end += step - m
	}
	return start, end
}

func tooManySeries(n int) error {
	return queryErr(ErrTooManySeries, "maximum number of series (%d) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()", n) // Loki 3.x wording
}

// defaultStep is Loki's default resolution: about 250 points, at least 1s.
func defaultStep(start, end time.Time) time.Duration {
	s := math.Max(math.Floor(end.Sub(start).Seconds()/250), 1)
	return time.Duration(s) * time.Second
}

func (ev *evaluator) eval(expr syntax.SampleExpr) (*value, error) {
	if err := ev.ctx.Err(); err != nil {
		return nil, err
	}
	switch x := expr.(type) {
	case *syntax.LiteralExpr:
		return &value{isScalar: true, scalar: x.Val}, nil
	case *syntax.VectorExpr:
		s := newStepSeries(labels.Labels{}, len(ev.steps))
		for i := range s.v {
			s.v[i], s.ok[i] = x.Val, true
		}
		return &value{series: []*stepSeries{s}}, nil
	case *syntax.RangeAggregationExpr:
		return ev.rangeAgg(x)
	case *syntax.VectorAggregationExpr:
		left := x.Left
		injected := false
		if ra, ok := left.(*syntax.RangeAggregationExpr); ok && canInjectGrouping(x.Operation, ra) {
			injected = true
			// sum by (g) (rate(…)) is evaluated as rate over samples
			// grouped by g, as Loki does: the division by the range happens
			// once per group, which is both cheaper and the float Loki
			// prints.
			pushed := *ra
			pushed.Grouping = &syntax.Grouping{}
			if x.Grouping != nil {
				pushed.Grouping = x.Grouping
			}
			left = &pushed
		}
		// fusable judges the query as written: once the sum's grouping is
		// pushed down, the samples are grouped already and fold per
		// stream in parallel, holding one block per worker instead of one
		// per stream and every sample of every window (with or without the
		// block cache).
		if ra, ok := left.(*syntax.RangeAggregationExpr); ok && !ev.noFuse && fusesInto(x) && !ev.foldsPerBlock(x.Operation, ra, injected) {
			agg := ev.newAggSet(x.Operation, x.Grouping)
			if err := ev.rangeAggInto(ra, agg); err != nil {
				return nil, err
			}
			series, err := agg.finish()
			if err != nil {
				return nil, err
			}
			return &value{series: series}, nil
		}
		inner, err := ev.eval(left)
		if err != nil {
			return nil, err
		}
		return ev.vectorAgg(x, inner)
	case *syntax.BinOpExpr:
		return ev.binOp(x)
	case *syntax.LabelReplaceExpr:
		inner, err := ev.eval(x.Left)
		if err != nil {
			return nil, err
		}
		return labelReplace(x, inner)
	}
	return nil, queryErr(ErrBadQuery, "unsupported metric expression %T", expr)
}

// checkInner enforces the memory bound on an intermediate result.
func (ev *evaluator) checkInner(n int) error {
	if n > ev.seriesCap {
		return ev.tooManyHeld()
	}
	return nil
}

// groupLabels applies by/without to a label set. Without also drops
// __name__ (there is none in LogQL, but it keeps Prometheus's rule).
func groupLabels(ls labels.Labels, g *syntax.Grouping) labels.Labels {
	if g == nil {
		return ls
	}
	if g.Without {
		return ls.Drop(append([]string{"__name__"}, g.Groups...)...)
	}
	return ls.Keep(g.Groups...)
}

// canInjectGrouping reports whether a sum's grouping can be pushed into the
// range aggregation below it (Loki's rule: sum over count, rate and bytes
// functions without their own grouping).
func canInjectGrouping(vecOp string, ra *syntax.RangeAggregationExpr) bool {
	if vecOp != syntax.OpTypeSum || ra.Grouping != nil || ra.Left == nil {
		return false
	}
	switch ra.Operation {
	case syntax.OpRangeTypeCount, syntax.OpRangeTypeRate, syntax.OpRangeTypeBytes, syntax.OpRangeTypeBytesRate:
		return true
	}
	return false
}

// mergeSameLabels joins series that ended up with the same labels (the two
// sides of `or`), which never overlap in time.
func mergeSameLabels(ss []*stepSeries) []*stepSeries {
	byHash := map[uint64][]*stepSeries{}
	out := ss[:0:0]
	for _, s := range ss {
		var into *stepSeries
		for _, o := range byHash[s.hash] {
			if labels.Equal(o.ls, s.ls) {
				into = o
				break
			}
		}
		if into == nil {
			c := &stepSeries{ls: s.ls, hash: s.hash, v: append([]float64(nil), s.v...), ok: append([]bool(nil), s.ok...)}
			byHash[s.hash] = append(byHash[s.hash], c)
			out = append(out, c)
			continue
		}
		for i, ok := range s.ok {
			if ok && !into.ok[i] {
				into.v[i], into.ok[i] = s.v[i], true
			}
		}
	}
	return out
}
