package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// This file answers the questions Loki answers from its index rather than
// from lines: what a query would touch (index/stats), how many bytes each
// stream or label holds (index/volume, index/volume_range) and which stream
// labels are worth filtering on (detected_labels). They read the blocks'
// timestamps and line sizes, never lines.

// IndexStats is what a query would touch: Loki's /index/stats body.
type IndexStats struct {
	Streams, Chunks, Entries, Bytes uint64
}

// IndexStats counts the streams, blocks, entries and line bytes a query's
// stream selectors touch in [start, end). A metric or binary query
// contributes every selector in it, as Grafana's Loki datasource does; a
// stream two selectors match counts once.
func (e *Engine) IndexStats(ctx context.Context, query string, start, end int64) (IndexStats, error) {
	sels, err := querySelectors(query)
	if err != nil {
		return IndexStats{}, err
	}
	var col store.StatsCollector
	ctx = store.WithStats(ctx, &col)
	var out IndexStats
	seen := map[string]bool{}
	for _, ms := range sels {
		err := e.eachStream(ctx, ms, start, end, func(ls labels.Labels) bool {
			// A stream counted under an earlier selector is closed
			// unread: it adds no block to what was read.
			key := ls.String()
			if seen[key] {
				return false
			}
			seen[key] = true
			out.Streams++
			return true
		}, func(_ labels.Labels, b *store.Batch) {
			out.Entries += uint64(len(b.Ts))
			for _, s := range b.Sizes {
				out.Bytes += uint64(s)
			}
		})
		if err != nil {
			return IndexStats{}, err
		}
	}
	// With no line filter every block of a stream read to its end is
	// read, or found corrupt, exactly once: that counts the blocks of the
	// streams above, and none of the duplicates closed unread.
	s := col.Snapshot()
	out.Chunks = uint64(s.BlocksRead + s.BlocksSkipped + s.BlocksCorrupt)
	return out, nil
}

// eachStream selects the streams ms match in [start, end) without their
// lines and hands every batch of the streams keep accepts to batch.
func (e *Engine) eachStream(ctx context.Context, ms []*labels.Matcher, start, end int64, keep func(labels.Labels) bool, batch func(labels.Labels, *store.Batch)) error {
	its, err := e.r.Select(ctx, store.SelectParams{Matchers: ms, Start: start, End: end, Direction: store.Forward})
	if err != nil {
		return err
	}
	for i, it := range its {
		ls := it.Labels()
		if keep(ls) {
			for it.Next() {
				batch(ls, it.At())
			}
		}
		err := it.Err()
		if cerr := it.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			closeAll(its[i+1:])
			return fmt.Errorf("read %s: %w", ls, err)
		}
	}
	return nil
}

// querySelectors returns the matchers of every stream selector in a log,
// metric or binary query, in source order. A query without any (such as
// vector(1)) has none, and touches nothing.
func querySelectors(query string) ([][]*labels.Matcher, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return nil, fmt.Errorf("empty query: want a LogQL query such as {job=\"cosyvoice3\"}")
	}
	expr, err := syntax.ParseExpr(query)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	return syntax.Selectors(expr), nil
}

// streamSelector parses a bare stream selector such as {job="a"}; an empty
// query selects every stream when optional.
func streamSelector(what, query string, optional bool) ([]*labels.Matcher, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		if optional {
			return nil, nil
		}
		return nil, queryErr(ErrBadQuery, "%s needs a query: a stream selector such as {job=\"cosyvoice3\"}", what)
	}
	expr, err := syntax.ParseExpr(query)
	if err != nil {
		return nil, err
	}
	m, ok := expr.(*syntax.MatcherExpr)
	if !ok {
		return nil, queryErr(ErrBadQuery, "%s needs a stream selector such as {job=\"cosyvoice3\"}, not %s", what, query)
	}
	return m.Mts, nil
}

// Volume aggregation modes (Loki's aggregateBy).
const (
	VolumeBySeries = "series"
	VolumeByLabels = "labels"
	// DefaultVolumeLimit is how many series a volume query returns when
	// VolumeParams.Limit is 0 (Loki's default).
	DefaultVolumeLimit = 100
)

// VolumeParams describe a volume query; times are Unix ns.
type VolumeParams struct {
	// Query is a stream selector.
	Query      string
	Start, End int64
	// Step 0 asks for one total per series over [Start, End) (a vector,
	// Loki's index/volume); Step > 0 for the bytes of every step
	// [t, t+Step) from Start on (a matrix, index/volume_range).
	Step int64
	// TargetLabels are the labels volumes are aggregated into; the label
	// names of the query's matchers when empty.
	TargetLabels []string
	// AggregateBy is VolumeBySeries (the default when empty): one series
	// per combination of the target labels' values; or VolumeByLabels:
	// one series per target label name, {name=""}, over every stream
	// carrying it.
	AggregateBy string
	// Limit keeps the largest series (DefaultVolumeLimit when 0).
	Limit int
}

// DefaultVolumeStep is the step of a volume_range call that gives none
// (Unix ns in and out): Loki's default resolution, about 250 points and at
// least a second, as for a range query.
func DefaultVolumeStep(start, end int64) int64 {
	return int64(defaultStep(time.Unix(0, start), time.Unix(0, end)))
}

// Volume sums the line bytes of the streams a selector matches, grouped as
// VolumeParams say, largest first (ties in label order). Points and sample
// times are Unix ms as in every Result: an instant volume is stamped at End.
func (e *Engine) Volume(ctx context.Context, p VolumeParams) (Result, error) {
	began := time.Now()
	ms, err := streamSelector("volume", p.Query, false)
	if err != nil {
		return Result{}, err
	}
	if p.End <= p.Start {
		return Result{}, errEndBeforeStart
	}
	byLabels := false
	switch p.AggregateBy {
	case "", VolumeBySeries:
	case VolumeByLabels:
		byLabels = true
	default:
		return Result{}, queryErr(ErrBadQuery, "invalid aggregation option %q: want %s or %s", p.AggregateBy, VolumeBySeries, VolumeByLabels)
	}
	if p.Step < 0 {
		return Result{}, queryErr(ErrBadQuery, "zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	steps := 1
	if p.Step > 0 {
		n := (p.End - p.Start + p.Step - 1) / p.Step
		if n > MaxPoints {
			return Result{}, queryErr(ErrBadQuery, "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
		}
		steps = int(n)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = DefaultVolumeLimit
	}
	targets := p.TargetLabels
	if len(targets) == 0 {
		for _, m := range ms {
			targets = append(targets, m.Name)
		}
	}
	want := map[string]bool{}
	for _, t := range targets {
		want[t] = true
	}

	type group struct {
		ls    labels.Labels
		bytes []uint64 // per step
		total uint64
	}
	groups := map[string]*group{}
	var budgetErr error
	get := func(ls labels.Labels) *group {
		k := ls.String()
		g := groups[k]
		if g == nil {
			// Bounded like any metric query's step arrays.
			if int64(len(groups)+1)*int64(steps)*8 > e.opts.MemoryBudget {
				budgetErr = queryErr(ErrMemoryBudget, "volume would hold more than %d series of %d steps (the memory budget of one query is %d MiB); narrow the selector, target fewer labels or raise the step", len(groups), steps, e.opts.MemoryBudget>>20)
				return nil
			}
			g = &group{ls: ls, bytes: make([]uint64, steps)}
			groups[k] = g
		}
		return g
	}
	var into []*group // the groups of the stream being read
	var col store.StatsCollector
	ctx = store.WithStats(ctx, &col)
	err = e.eachStream(ctx, ms, p.Start, p.End, func(ls labels.Labels) bool {
		into = into[:0]
		if budgetErr != nil {
			return false
		}
		if byLabels {
			for _, l := range ls {
				if want[l.Name] {
					into = append(into, get(labels.Labels{{Name: l.Name}}))
				}
			}
		} else {
			var kept labels.Labels
			for _, l := range ls {
				if want[l.Name] {
					kept = append(kept, l)
				}
			}
			if len(kept) > 0 {
				into = append(into, get(kept))
			}
		}
		return budgetErr == nil && len(into) > 0
	}, func(_ labels.Labels, b *store.Batch) {
		for i, ts := range b.Ts {
			if ts < p.Start || ts >= p.End {
				continue
			}
			k := 0
			if p.Step > 0 {
				k = int((ts - p.Start) / p.Step)
			}
			for _, g := range into {
				g.bytes[k] += uint64(b.Sizes[i])
				g.total += uint64(b.Sizes[i])
			}
		}
	})
	if err == nil {
		err = budgetErr
	}
	if err != nil {
		return Result{}, err
	}
	gs := make([]*group, 0, len(groups))
	for _, g := range groups {
		if g.total > 0 {
			gs = append(gs, g)
		}
	}
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].total != gs[j].total {
			return gs[i].total > gs[j].total
		}
		return labels.Compare(gs[i].ls, gs[j].ls) < 0
	})
	if len(gs) > limit {
		gs = gs[:limit]
	}
	res := Result{Stats: Stats{Store: col.Snapshot()}}
	if p.Step == 0 {
		res.Type, res.Vector = ValueVector, make([]Sample, len(gs))
		for i, g := range gs {
			res.Vector[i] = Sample{Metric: g.ls, T: p.End / int64(time.Millisecond), V: float64(g.total)}
		}
	} else {
		res.Type, res.Matrix = ValueMatrix, make([]Series, len(gs))
		for i, g := range gs {
			s := Series{Metric: g.ls}
			for k, n := range g.bytes {
				if n > 0 {
					s.Points = append(s.Points, Point{T: (p.Start + int64(k)*p.Step) / int64(time.Millisecond), V: float64(n)})
				}
			}
			res.Matrix[i] = s
		}
	}
	res.Stats.ExecTime = time.Since(began)
	return res, nil
}

// DetectedLabel is a stream label worth filtering on, with how many values
// it takes (an entry of Loki's /detected_labels body).
type DetectedLabel struct {
	Label       string
	Cardinality uint64
}

// alwaysDetected are labels detected_labels reports whatever their
// cardinality: they name where a stream comes from.
var alwaysDetected = map[string]bool{"cluster": true, "namespace": true, "instance": true, "pod": true}

// DetectedLabels lists the labels of the streams a selector matches in
// [start, end) (every stream for an empty query), in name order, with their
// number of distinct values. As Loki's detected_labels, it leaves out labels
// that cannot narrow a search (one value, unless the label is one of
// cluster, namespace, instance, pod) and labels whose values are all IDs
// (numbers or UUIDs).
func (e *Engine) DetectedLabels(ctx context.Context, query string, start, end int64) ([]DetectedLabel, error) {
	ms, err := streamSelector("detected_labels", query, true)
	if err != nil {
		return nil, err
	}
	sets, err := e.r.Streams(ctx, ms, start, end)
	if err != nil {
		return nil, err
	}
	values := map[string]map[string]struct{}{}
	for _, ls := range sets {
		for _, l := range ls {
			vs := values[l.Name]
			if vs == nil {
				vs = map[string]struct{}{}
				values[l.Name] = vs
			}
			vs[l.Value] = struct{}{}
		}
	}
	out := []DetectedLabel{}
	for name, vs := range values {
		if strings.HasPrefix(name, "__") || (len(vs) < 2 && !alwaysDetected[name]) || allIDs(vs) {
			continue
		}
		out = append(out, DetectedLabel{Label: name, Cardinality: uint64(len(vs))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out, nil
}

// allIDs reports whether every value is a number or a UUID.
func allIDs(vs map[string]struct{}) bool {
	for v := range vs {
		if !isNumber(v) && !isUUID(v) {
			return false
		}
	}
	return true
}

func isNumber(v string) bool {
	return valueType(v) == "int" || valueType(v) == "float"
}

// isUUID reports whether v is a UUID in its canonical 8-4-4-4-12 form.
func isUUID(v string) bool {
	if len(v) != 36 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// SearchWords returns what Grafana highlights in a log query's lines: the
// literals and patterns of its positive line filters (see LineFilterWords).
func (e *Engine) SearchWords(query string) ([]string, error) {
	expr, err := syntax.ParseExpr(strings.TrimSpace(query))
	if err != nil {
		return nil, err
	}
	return LineFilterWords(expr), nil
}

// LineFilterWords are the literals and patterns of a log query's positive
// line filters (|= and |~, with their or alternatives), once each in query
// order; none for a metric query or negative, empty and IP filters.
func LineFilterWords(expr syntax.Expr) []string {
	p, ok := expr.(*syntax.PipelineExpr)
	if !ok {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(f *syntax.LineFilterExpr) {
		if f.IP || f.Op.Negative() || f.Value == "" || seen[f.Value] {
			return
		}
		if f.Op != syntax.LineContains && f.Op != syntax.LineMatchRegexp {
			return
		}
		seen[f.Value] = true
		out = append(out, f.Value)
	}
	for _, st := range p.Stages {
		f, ok := st.(*syntax.LineFilterExpr)
		if !ok {
			continue
		}
		add(f)
		for _, alt := range f.Or {
			add(alt)
		}
	}
	return out
}
