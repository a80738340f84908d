package engine

import (
	"math"
	"regexp"
	"sort"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// vectorAgg applies sum, avg, …, topk, sort step by step. Groups are fixed
// across steps (labels do not change over time), so grouping is computed
// once per series.
func (ev *evaluator) vectorAgg(x *syntax.VectorAggregationExpr, in *value) (*value, error) {
	if in.isScalar {
		return nil, queryErr(ErrBadQuery, "%s needs a vector, got a scalar", x.Operation)
	}
	switch x.Operation {
	case syntax.OpTypeSort, syntax.OpTypeSortDesc:
		return sortVector(x.Operation == syntax.OpTypeSortDesc, in), nil
	case syntax.OpTypeTopK, syntax.OpTypeBottomK:
		return ev.topk(x, in)
	}
	if !streamable(x.Operation) {
		return nil, queryErr(ErrBadQuery, "unsupported vector aggregation %q", x.Operation)
	}
	agg := ev.newAggSet(x.Operation, x.Grouping)
	for _, s := range in.series {
		for i, ok := range s.ok {
			if ok {
				agg.add(s.ls, s.hash, i, s.v[i])
			}
		}
	}
	series, err := agg.finish()
	if err != nil {
		return nil, err
	}
	return &value{series: series}, nil
}

// aggSet folds samples into the groups of a vector aggregation (sum, avg,
// min, max, count, stddev, stdvar), step by step. It serves both a
// materialised inner vector and a range aggregation streaming its series
// straight into the aggregation (so short-lived series, one per parsed
// request id say, never hold a step array each).
type aggSet struct {
	op     string
	g      *syntax.Grouping
	n      int
	groups map[uint64][]*aggGroup
	order  []*aggGroup
	cache  map[uint64]cachedGroup // input label hash -> its group
	// limit bounds the groups; past it err is set and samples of new
	// groups go to the discarded overflow group.
	limit    int
	overErr  error
	err      error
	overflow *aggGroup
}

type cachedGroup struct {
	raw labels.Labels
	g   *aggGroup
}

type aggGroup struct {
	s    *stepSeries
	cnt  []float64
	mean []float64 // running mean (avg, stddev, stdvar)
}

func newAggSet(op string, g *syntax.Grouping, n int) *aggSet {
	return &aggSet{op: op, g: g, n: n, groups: map[uint64][]*aggGroup{}, cache: map[uint64]cachedGroup{}, limit: math.MaxInt}
}

// newAggSet is an aggregation bounded by the query's series cap.
func (ev *evaluator) newAggSet(op string, g *syntax.Grouping) *aggSet {
	a := newAggSet(op, g, len(ev.steps))
	a.limit, a.overErr = ev.seriesCap, ev.tooManyHeld()
	return a
}

func newAggGroup(ls labels.Labels, n int) *aggGroup {
	return &aggGroup{s: newStepSeries(ls, n), cnt: make([]float64, n), mean: make([]float64, n)}
}

func (a *aggSet) group(ls labels.Labels, h uint64) *aggGroup {
	if c, ok := a.cache[h]; ok && labels.Equal(c.raw, ls) {
		return c.g
	}
	gl := labels.Labels{}
	if a.g != nil {
		gl = groupLabels(ls, a.g)
	}
	gh := gl.Hash()
	var g *aggGroup
	for _, c := range a.groups[gh] {
		if labels.Equal(c.s.ls, gl) {
			g = c
			break
		}
	}
	if g == nil {
		if len(a.order) >= a.limit {
			a.err = a.overErr
			if a.overflow == nil {
				a.overflow = newAggGroup(gl, a.n)
			}
			return a.overflow
		}
		g = newAggGroup(gl, a.n)
		a.groups[gh] = append(a.groups[gh], g)
		a.order = append(a.order, g)
	}
	if len(a.cache) > 4096 {
		a.cache = map[uint64]cachedGroup{}
	}
	a.cache[h] = cachedGroup{raw: ls, g: g}
	return g
}

func (a *aggSet) add(ls labels.Labels, h uint64, i int, v float64) {
	g := a.group(ls, h)
	first := !g.s.ok[i]
	g.s.ok[i] = true
	g.cnt[i]++
	switch a.op {
	case syntax.OpTypeSum:
		g.s.v[i] += v
	case syntax.OpTypeCount:
		g.s.v[i] = g.cnt[i]
	case syntax.OpTypeMin:
		if first || v < g.s.v[i] || math.IsNaN(g.s.v[i]) {
			g.s.v[i] = v
		}
	case syntax.OpTypeMax:
		if first || v > g.s.v[i] || math.IsNaN(g.s.v[i]) {
			g.s.v[i] = v
		}
	case syntax.OpTypeAvg:
		// Loki's incremental mean (Prometheus before Kahan summation), in
		// the order of the series.
		if first {
			g.mean[i] = v
			break
		}
		mean, c := g.mean[i], g.cnt[i]
		if math.IsInf(mean, 0) {
			if math.IsInf(v, 0) && (mean > 0) == (v > 0) {
				break
			}
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				break
			}
		}
		g.mean[i] = mean + v/c - mean/c
	case syntax.OpTypeStddev, syntax.OpTypeStdvar:
		if first {
			g.mean[i] = v
			g.s.v[i] = 0
			break
		}
		delta := v - g.mean[i]
		g.mean[i] += delta / g.cnt[i]
		g.s.v[i] += delta * (v - g.mean[i])
	}
}

func (a *aggSet) finish() ([]*stepSeries, error) {
	if a.err != nil {
		return nil, a.err
	}
	out := make([]*stepSeries, 0, len(a.order))
	for _, g := range a.order {
		for i, ok := range g.s.ok {
			if !ok {
				continue
			}
			switch a.op {
			case syntax.OpTypeAvg:
				g.s.v[i] = g.mean[i]
			case syntax.OpTypeStdvar:
				g.s.v[i] /= g.cnt[i]
			case syntax.OpTypeStddev:
				g.s.v[i] = math.Sqrt(g.s.v[i] / g.cnt[i])
			}
		}
		out = append(out, g.s)
	}
	return out, nil
}

// streamable reports whether aggSet implements the operation.
func streamable(op string) bool {
	switch op {
	case syntax.OpTypeSum, syntax.OpTypeAvg, syntax.OpTypeMin, syntax.OpTypeMax,
		syntax.OpTypeCount, syntax.OpTypeStddev, syntax.OpTypeStdvar:
		return true
	}
	return false
}

// topk keeps, at each step and within each group, the k largest (smallest)
// series; the kept series keep all their labels.
func (ev *evaluator) topk(x *syntax.VectorAggregationExpr, in *value) (*value, error) {
	k := x.Params
	if k < 1 {
		return &value{}, nil
	}
	n := len(ev.steps)
	groups := map[uint64][]int{}
	var keys []uint64
	for i, s := range in.series {
		gl := groupLabels(s.ls, x.Grouping)
		if x.Grouping == nil {
			gl = labels.Labels{}
		}
		h := gl.Hash()
		if _, ok := groups[h]; !ok {
			keys = append(keys, h)
		}
		groups[h] = append(groups[h], i)
	}
	outs := make([]*stepSeries, len(in.series))
	for i, s := range in.series {
		outs[i] = &stepSeries{ls: s.ls, hash: s.hash, v: make([]float64, n), ok: make([]bool, n)}
	}
	bottom := x.Operation == syntax.OpTypeBottomK
	cand := []int{}
	for step := 0; step < n; step++ {
		for _, h := range keys {
			cand = cand[:0]
			for _, i := range groups[h] {
				if in.series[i].ok[step] {
					cand = append(cand, i)
				}
			}
			sort.SliceStable(cand, func(a, b int) bool {
				va, vb := in.series[cand[a]].v[step], in.series[cand[b]].v[step]
				if math.IsNaN(va) != math.IsNaN(vb) {
					return !math.IsNaN(va) // NaN sorts last either way
				}
				if bottom {
					return va < vb
				}
				return va > vb
			})
			for j := 0; j < len(cand) && j < k; j++ {
				i := cand[j]
				outs[i].v[step], outs[i].ok[step] = in.series[i].v[step], true
			}
		}
	}
	out := &value{}
	for _, s := range outs {
		if s.any() {
			out.series = append(out.series, s)
		}
	}
	// An instant topk/bottomk comes out in label order like any vector:
	// Loki keeps evaluation order only under sort and sort_desc (its
	// answer to topk by (instance) lists host-1, host-2, host-3 whatever
	// their values).
	return out, nil
}

func sortVector(desc bool, in *value) *value {
	out := &value{series: in.series}
	idx := make([]int, len(in.series))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		va, vb := in.series[idx[a]].v[0], in.series[idx[b]].v[0]
		if math.IsNaN(va) != math.IsNaN(vb) {
			return !math.IsNaN(va)
		}
		if desc {
			return va > vb
		}
		return va < vb
	})
	out.sortOrder = idx
	return out
}

// labelReplace is Prometheus's label_replace: where src matches regex
// (anchored), dst becomes the expanded replacement; an empty result removes
// dst.
func labelReplace(x *syntax.LabelReplaceExpr, in *value) (*value, error) {
	if in.isScalar {
		return nil, queryErr(ErrBadQuery, "label_replace needs a vector, got a scalar")
	}
	re, err := regexp.Compile("^(?:" + x.Regex + ")$") // Loki: no (?s), unlike label matchers
	if err != nil {
		return nil, queryErr(ErrBadQuery, "invalid regular expression in label_replace(): %s", x.Regex)
	}
	out := &value{sortOrder: in.sortOrder}
	for _, s := range in.series {
		ls := s.ls
		src := ls.Get(x.Src)
		if m := re.FindStringSubmatchIndex(src); m != nil {
			res := string(re.ExpandString(nil, x.Replacement, src, m))
			if res == "" {
				ls = ls.Drop(x.Dst)
			} else {
				ls = labels.New(append(append(labels.Labels{}, ls...), labels.Label{Name: x.Dst, Value: res})...)
			}
		}
		out.series = append(out.series, &stepSeries{ls: ls, hash: ls.Hash(), v: s.v, ok: s.ok})
	}
	// Two series may only end up with the same labels if they never have a
	// value at the same step (Prometheus checks each step's vector).
	byHash := map[uint64][]*stepSeries{}
	for _, s := range out.series {
		for _, o := range byHash[s.hash] {
			if !labels.Equal(o.ls, s.ls) {
				continue
			}
			for i := range s.ok {
				if s.ok[i] && o.ok[i] {
					return nil, queryErr(ErrBadQuery, "vector cannot contain metrics with the same labelset")
				}
			}
		}
		byHash[s.hash] = append(byHash[s.hash], s)
	}
	if out.sortOrder == nil {
		out.series = mergeSameLabels(out.series)
	}
	return out, nil
}
