package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// tv is one unwrapped sample kept for functions that need the whole window.
type tv struct {
	t int64
	v float64
}

// rangeAcc folds the samples of one output series into every step whose
// window (t-range, t] holds them. Samples must arrive in time order for the
// order-sensitive functions (sum, avg, stddev, first, last): then each step
// sees its samples in the order Loki's window functions do, and the floats
// come out bit for bit the same.
type rangeAcc struct {
	ls   labels.Labels
	hash uint64
	v    []float64
	c    []float64 // counts (avg, stddev, stdvar)
	m    []float64 // running means (stddev, stdvar)
	ok   []bool
	diff bool // v and c are difference arrays (additive functions)
	// win holds the samples (times shifted by the offset) of the window
	// being filled, for quantile_over_time and rate_counter.
	win   []tv
	wHead int
}

// finishWindow computes step i (at t) from the window buffer: samples at or
// before t-rng are dropped for good, the rest are exactly the window.
func (a *rangeAcc) finishWindow(op string, i int, t, rng int64, q float64) {
	for a.wHead < len(a.win) && a.win[a.wHead].t <= t-rng {
		a.wHead++
	}
	if a.wHead > 1024 && a.wHead*2 > len(a.win) {
		a.win = append(a.win[:0], a.win[a.wHead:]...)
		a.wHead = 0
	}
	w := a.win[a.wHead:]
	if len(w) == 0 {
		return
	}
	switch op {
	case syntax.OpRangeTypeQuantile:
		a.v[i] = quantile(q, w)
	case syntax.OpRangeTypeRateCounter:
		a.v[i] = extrapolatedRate(w, t, rng)
	}
	a.ok[i] = true
}

func newRangeAcc(op string, ls labels.Labels, hash uint64, n int) *rangeAcc {
	a := &rangeAcc{ls: ls, hash: hash, v: make([]float64, n), ok: make([]bool, n)}
	switch op {
	case syntax.OpRangeTypeAvg:
		a.c = make([]float64, n)
	case syntax.OpRangeTypeStddev, syntax.OpRangeTypeStdvar:
		a.c = make([]float64, n)
		a.m = make([]float64, n)
	}
	return a
}

func (a *rangeAcc) add(op string, i int, ts int64, x float64) {
	switch op {
	case syntax.OpRangeTypeCount, syntax.OpRangeTypeRate, syntax.OpRangeTypeBytes,
		syntax.OpRangeTypeBytesRate, syntax.OpRangeTypeSum, syntax.OpRangeTypeAbsent:
		a.v[i] += x
	case syntax.OpRangeTypeAvg:
		a.c[i]++
		mean, cnt := a.v[i], a.c[i]
		if math.IsInf(mean, 0) {
			if math.IsInf(x, 0) && (mean > 0) == (x > 0) {
				break
			}
			if !math.IsInf(x, 0) && !math.IsNaN(x) {
				break
			}
		}
		a.v[i] = mean + x/cnt - mean/cnt
	case syntax.OpRangeTypeMin:
		if !a.ok[i] || x < a.v[i] || math.IsNaN(a.v[i]) {
			a.v[i] = x
		}
	case syntax.OpRangeTypeMax:
		if !a.ok[i] || x > a.v[i] || math.IsNaN(a.v[i]) {
			a.v[i] = x
		}
	case syntax.OpRangeTypeFirst:
		if !a.ok[i] {
			a.v[i] = x
		}
	case syntax.OpRangeTypeLast:
		a.v[i] = x
	case syntax.OpRangeTypeStddev, syntax.OpRangeTypeStdvar:
		a.c[i]++
		delta := x - a.m[i]
		a.m[i] += delta / a.c[i]
		a.v[i] += delta * (x - a.m[i])
	}
	a.ok[i] = true
}

// Additive functions (counts and byte sums of lines) fold through
// difference arrays: a sample adds +x where its first window starts and -x
// after its last, so a sample costs O(1) however many windows overlap
// ([1h] at a 15s step is 240 windows), and a prefix sum at the end gives
// every window. The values are integers, so the sums are exact.
func newDiffAcc(ls labels.Labels, hash uint64, n int) *rangeAcc {
	return &rangeAcc{ls: ls, hash: hash, v: make([]float64, n+1), c: make([]float64, n+1), diff: true}
}

func (a *rangeAcc) addSpan(lo, hi int, x float64) {
	a.addSpanN(lo, hi, x, 1)
}

// addSpanN adds n samples summing to x (a bucket of a block's partial
// result) to steps lo..hi.
func (a *rangeAcc) addSpanN(lo, hi int, x, n float64) {
	a.v[lo] += x
	a.v[hi+1] -= x
	a.c[lo] += n
	a.c[hi+1] -= n
}

// merge adds b's partial difference arrays into a.
func (a *rangeAcc) merge(b *rangeAcc) {
	for i := range a.v {
		a.v[i] += b.v[i]
		a.c[i] += b.c[i]
	}
}

// finish turns difference arrays into per-step values.
func (a *rangeAcc) finish() {
	if !a.diff {
		return
	}
	n := len(a.v) - 1
	a.ok = make([]bool, n)
	var sum, cnt float64
	for i := 0; i < n; i++ {
		sum += a.v[i]
		cnt += a.c[i]
		a.v[i] = sum
		a.ok[i] = cnt > 0
	}
	a.v, a.c, a.diff = a.v[:n], nil, false
}

// additive functions over lines (not unwrapped values) can be folded per
// stream in parallel and the partial step arrays summed: their values are
// integer counts, exact in any order.
func additive(op string) bool {
	switch op {
	case syntax.OpRangeTypeCount, syntax.OpRangeTypeRate, syntax.OpRangeTypeBytes,
		syntax.OpRangeTypeBytesRate, syntax.OpRangeTypeAbsent:
		return true
	}
	return false
}

// stepSpan returns the steps [lo, hi] whose windows hold a sample at ts
// (already shifted by the offset): steps t with t-rng < ts <= t.
func (ev *evaluator) stepSpan(ts, rng int64) (int, int) {
	s0 := ev.steps[0]
	n := len(ev.steps)
	if n == 1 {
		if ts <= s0 && ts > s0-rng {
			return 0, 0
		}
		return 1, 0
	}
	step := ev.steps[1] - s0
	lo := ceilDiv(ts-s0, step)
	hi := ceilDiv(ts+rng-s0, step) - 1
	if lo < 0 {
		lo = 0
	}
	if hi > int64(n-1) {
		hi = int64(n - 1)
	}
	return int(lo), int(hi)
}

func ceilDiv(a, b int64) int64 {
	if a >= 0 {
		return (a + b - 1) / b
	}
	return -((-a) / b)
}

// selectRange compiles the selector and sample extractor of x and selects,
// oldest first, the streams of every window its steps need; lines are read
// when the extractor needs them or allLines asks for them. The caller closes
// the iterators.
func (ev *evaluator) selectRange(x *syntax.RangeAggregationExpr, allLines bool) ([]store.StreamIterator, *log.SampleExtractor, error) {
	p, ex, err := ev.rangeSelectParams(x, allLines)
	if err != nil {
		return nil, nil, err
	}
	its, err := ev.e.r.Select(ev.ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("select streams: %w", err)
	}
	return its, ex, nil
}

// rangeSelectParams is what selectRange selects, and the extractor.
func (ev *evaluator) rangeSelectParams(x *syntax.RangeAggregationExpr, allLines bool) (store.SelectParams, *log.SampleExtractor, error) {
	sel, err := ev.e.compileSelector(unusedParsersDropped(x))
	if err != nil {
		return store.SelectParams{}, nil, err
	}
	ex, err := sampleExtractor(x, sel.pipeline)
	if err != nil {
		return store.SelectParams{}, nil, err
	}
	if !ev.noProject {
		ex = projected(x, ex)
	}
	rng, off := int64(x.Left.Interval), int64(x.Left.Offset)
	last := ev.steps[len(ev.steps)-1]
	return store.SelectParams{
		Matchers:  sel.matchers,
		Start:     ev.steps[0] - off - rng + 1,
		End:       last - off + 1,
		Direction: store.Forward,
		Hint:      sel.hint,
		Lines:     allLines || !ex.LineOnly(),
	}, ex, nil
}

// rangeAgg evaluates a range aggregation over the store.
func (ev *evaluator) rangeAgg(x *syntax.RangeAggregationExpr) (*value, error) {
	lr := x.Left
	if lr == nil || lr.Interval <= 0 {
		return nil, queryErr(ErrBadQuery, "%s needs a positive range", x.Operation)
	}
	var err error
	rng, off := int64(lr.Interval), int64(lr.Offset)
	op := x.Operation
	var accs []*rangeAcc
	cached := false
	if additive(op) && lr.Unwrap == nil {
		accs, cached, err = ev.foldBlocks(x, rng, off)
	} else {
		accs, cached, err = ev.foldBlockSamples(x, rng, off)
	}
	if err != nil {
		return nil, err
	}
	if !cached {
		its, ex, err := ev.selectRange(x, false)
		if err != nil {
			return nil, err
		}
		defer closeAll(its)
		if additive(op) && lr.Unwrap == nil {
			accs, err = ev.foldParallel(its, ex, x, ex.LineOnly(), rng, off)
		} else {
			accs, err = ev.foldOrdered(its, ex, x, rng, off)
		}
		if err != nil {
			return nil, err
		}
	}
	if op == syntax.OpRangeTypeAbsent {
		return ev.absent(accs, lr.Left), nil
	}
	// Sorted first so that a pipeline error names the same series every run.
	sort.Slice(accs, func(i, j int) bool { return labels.Compare(accs[i].ls, accs[j].ls) < 0 })
	out := &value{}
	rangeSec := float64(rng) / 1e9
	for _, a := range accs {
		s := &stepSeries{ls: a.ls, hash: a.hash, v: a.v, ok: a.ok}
		if !s.any() {
			continue
		}
		if errV := a.ls.Get(log.ErrorLabel); errV != "" {
			return nil, pipelineErr(errV, a.ls)
		}
		for i, ok := range a.ok {
			if !ok {
				continue
			}
			switch op {
			case syntax.OpRangeTypeRate, syntax.OpRangeTypeBytesRate:
				s.v[i] = a.v[i] / rangeSec
			case syntax.OpRangeTypeStdvar:
				s.v[i] = a.v[i] / a.c[i]
			case syntax.OpRangeTypeStddev:
				s.v[i] = math.Sqrt(a.v[i] / a.c[i])
			}
		}
		out.series = append(out.series, s)
	}
	return out, nil
}

func pipelineErr(kind string, ls labels.Labels) error {
	return queryErr(ErrPipeline, "pipeline error: '%s' for series: '%s'.\n"+
		"Use a label filter to intentionally skip this error. (e.g | __error__!=\"%s\").\n"+
		"To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"+
		"The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
		kind, ls, kind)
}

// accSet maps output label sets to accumulators.
type accSet struct {
	op      string
	diff    bool // accumulators are difference arrays
	n       int
	byKey   map[uint64][]*rangeAcc
	all     []*rangeAcc
	limit   int
	overErr error
	// held counts the series' bytes against the query's memory budget
	// (shared by all the sets of one query).
	held *heldBytes
}

// newAccSet holds a range aggregation's series, bounded by the query's
// series cap.
func (ev *evaluator) newAccSet(op string) *accSet {
	return &accSet{op: op, n: len(ev.steps), byKey: map[uint64][]*rangeAcc{}, limit: ev.seriesCap, overErr: ev.tooManyHeld(), held: ev.held}
}

func (s *accSet) get(ls labels.Labels, h uint64) (*rangeAcc, error) {
	for _, a := range s.byKey[h] {
		if labels.Equal(a.ls, ls) {
			return a, nil
		}
	}
	if len(s.all) >= s.limit {
		return nil, s.overErr
	}
	var a *rangeAcc
	if s.diff {
		a = newDiffAcc(ls, h, s.n)
	} else {
		a = newRangeAcc(s.op, ls, h, s.n)
	}
	if !s.held.add(accBytes(a)) {
		return nil, queryErr(ErrMemoryBudget, "%s would hold more than %d series (%d MiB with their labels and %d steps) at once, more than the memory budget of one query (%d MiB); group by fewer labels, drop labels the parser makes or shorten the range",
			s.op, len(s.all), mib(s.held.n.Load()), s.n, mib(s.held.max))
	}
	s.byKey[h] = append(s.byKey[h], a)
	s.all = append(s.all, a)
	return a, nil
}

// grouper caches the grouped label set of each result label set.
type grouper struct {
	g     *syntax.Grouping
	cache map[uint64]grouped
}

type grouped struct {
	raw  labels.Labels
	ls   labels.Labels
	hash uint64
}

func (g *grouper) group(ls labels.Labels, h uint64) (labels.Labels, uint64) {
	// A line that failed keeps all its labels, so the failure is reported
	// with its series instead of vanishing in the grouping (Loki does the same).
	if g.g == nil || ls.Has(log.ErrorLabel) {
		return ls, h
	}
	if c, ok := g.cache[h]; ok && labels.Equal(c.raw, ls) {
		return c.ls, c.hash
	}
	out := groupLabels(ls, g.g)
	oh := out.Hash()
	if g.cache == nil || len(g.cache) > 4096 {
		g.cache = map[uint64]grouped{}
	}
	g.cache[h] = grouped{raw: ls, ls: out, hash: oh}
	return out, oh
}

// firstCause is the error that stopped a set of workers: one worker's
// failure cancels the others, and their "context canceled" must not hide
// it. All cancellations (the caller gave up) give the cancellation.
func firstCause(errs []error) error {
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			if canceled == nil {
				canceled = err
			}
		default:
			return err
		}
	}
	return canceled
}

// foldParallel folds additive functions stream by stream on all cores and
// sums the partial step arrays.
func (ev *evaluator) foldParallel(its []store.StreamIterator, ex *log.SampleExtractor, x *syntax.RangeAggregationExpr, lineOnly bool, rng, off int64) ([]*rangeAcc, error) {
	return ev.foldJobs(x, len(its), func(ctx context.Context, g *grouper, set *accSet, i int) error {
		return ev.foldStream(ctx, its[i], ex, x.Operation, g, set, lineOnly, rng, off)
	})
}

// foldJobs runs fold for jobs 0..n-1 on all cores, each worker into its own
// difference arrays, and sums them. The first failure stops the others.
func (ev *evaluator) foldJobs(x *syntax.RangeAggregationExpr, n int, fold func(ctx context.Context, g *grouper, set *accSet, i int) error) ([]*rangeAcc, error) {
	workers := min(ev.e.opts.Parallelism, n)
	ctx, cancel := context.WithCancel(ev.ctx)
	defer cancel()
	jobs := make(chan int)
	parts := make([]*accSet, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		parts[w] = ev.newAccSet(x.Operation)
		parts[w].diff = true
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[w] = queryErr(ErrInternal, "internal error evaluating %s: %v", x.Operation, r)
					cancel()
				}
			}()
			g := &grouper{g: x.Grouping}
			for i := range jobs {
				if errs[w] != nil {
					continue
				}
				if err := fold(ctx, g, parts[w], i); err != nil {
					errs[w] = err
					cancel()
				}
			}
		}(w)
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := firstCause(errs); err != nil {
		return nil, err
	}
	if err := ev.ctx.Err(); err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, nil
	}
	total := parts[0]
	for _, p := range parts[1:] {
		for _, a := range p.all {
			t, err := total.get(a.ls, a.hash)
			if err != nil {
				return nil, err
			}
			t.merge(a)
		}
	}
	for _, a := range total.all {
		a.finish()
	}
	return total.all, nil
}

func (ev *evaluator) foldStream(ctx context.Context, it store.StreamIterator, ex *log.SampleExtractor, op string, g *grouper, set *accSet, lineOnly bool, rng, off int64) error {
	var sx *log.StreamSampleExtractor
	var fixed *rangeAcc
	var wm *withMetadata
	if lineOnly {
		wm = newWithMetadata(it.Labels())
		gl, gh := g.group(wm.stream, wm.hash)
		var err error
		if fixed, err = set.get(gl, gh); err != nil {
			return err
		}
	} else {
		sx = ex.ForStream(it.Labels())
	}
	bytes := ex.Kind() == log.LineBytes
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := it.At()
		if !lineOnly && len(b.Lines) != len(b.Ts) {
			return fmt.Errorf("read stream %s: store returned a batch without lines", it.Labels())
		}
		for i, ts := range b.Ts {
			if !lineOnly && stopped(ctx) {
				return ctx.Err()
			}
			lo, hi := ev.stepSpan(ts+off, rng)
			if lo > hi {
				continue
			}
			a := fixed
			v := 1.0
			if lineOnly {
				if bytes {
					v = float64(b.Sizes[i])
				}
				if md := metadataAt(b, i); len(md) > 0 {
					gl, gh := g.group(wm.labels(md))
					var err error
					if a, err = set.get(gl, gh); err != nil {
						return err
					}
				}
			} else {
				var ls labels.Labels
				var h uint64
				var ok bool
				v, ls, h, ok = sx.ProcessStringMetadata(ts, b.Lines[i], metadataAt(b, i))
				if !ok {
					continue
				}
				gl, gh := g.group(ls, h)
				var err error
				if a, err = set.get(gl, gh); err != nil {
					return err
				}
			}
			a.addSpan(lo, hi, v)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read stream %s: %w", it.Labels(), err)
	}
	return nil
}

// foldOrdered merges all streams by time before folding, so every series
// sees its samples in time order as Loki's window functions do.
func (ev *evaluator) foldOrdered(its []store.StreamIterator, ex *log.SampleExtractor, x *syntax.RangeAggregationExpr, rng, off int64) ([]*rangeAcc, error) {
	set := ev.newAccSet(x.Operation)
	m, stop, err := ev.mergeSamples(its, ex, x, rng, off)
	if err != nil {
		return nil, err
	}
	// Stop the readers and wait for them before the caller closes the
	// iterators they read.
	defer stop()
	return ev.foldMerged(m, set, x, rng, off)
}

// foldMerged folds samples merged in time order (streams read live, or
// blocks' samples kept in the cache) into set.
func (ev *evaluator) foldMerged(m *merge[*sampleCursor], set *accSet, x *syntax.RangeAggregationExpr, rng, off int64) ([]*rangeAcc, error) {
	// Functions that need a window's samples (quantile, rate_counter) keep
	// one sliding buffer per series instead of a copy of each sample in
	// every window that holds it: samples arrive in time order, so a step
	// is complete once a later sample arrives.
	windowed := x.Operation == syntax.OpRangeTypeQuantile || x.Operation == syntax.OpRangeTypeRateCounter
	var q float64
	if x.Params != nil {
		q = *x.Params
	}
	next := 0
	finishUpTo := func(ts int64) {
		for next < len(ev.steps) && ev.steps[next] < ts {
			for _, a := range set.all {
				a.finishWindow(x.Operation, next, ev.steps[next], rng, q)
			}
			next++
		}
	}
	for !m.empty() {
		c := m.top()
		shifted := c.ts + off
		lo, hi := ev.stepSpan(shifted, rng)
		if lo <= hi {
			a, err := set.get(c.ls, c.hash)
			if err != nil {
				return nil, err
			}
			if windowed {
				finishUpTo(shifted)
				c0 := cap(a.win)
				a.win = append(a.win, tv{shifted, c.v})
				if d := cap(a.win) - c0; d != 0 && !ev.held.add(int64(d)*tvBytes) {
					held := 0
					for _, a := range set.all {
						held += len(a.win) - a.wHead
					}
					return nil, ev.windowsOverBudget(x, len(set.all), held)
				}
			} else {
				for k := lo; k <= hi; k++ {
					a.add(x.Operation, k, c.ts, c.v)
				}
			}
		}
		if err := m.next(ev.ctx); err != nil {
			return nil, err
		}
	}
	if windowed {
		finishUpTo(math.MaxInt64)
		for _, a := range set.all {
			a.win = nil
		}
	}
	return set.all, nil
}

// absent returns 1 at every step where no series has a sample, labelled
// with the selector's equality matchers (a name matched twice is dropped),
// as Loki does.
func (ev *evaluator) absent(accs []*rangeAcc, sel syntax.LogSelectorExpr) *value {
	n := len(ev.steps)
	present := make([]bool, n)
	for _, a := range accs {
		for i, ok := range a.ok {
			if ok {
				present[i] = true
			}
		}
	}
	counts := map[string]int{}
	for _, m := range sel.Matchers() {
		counts[m.Name]++
	}
	var ls []labels.Label
	for _, m := range sel.Matchers() {
		if m.Type == labels.MatchEqual && counts[m.Name] == 1 {
			ls = append(ls, labels.Label{Name: m.Name, Value: m.Value})
		}
	}
	s := newStepSeries(labels.New(ls...), n)
	for i := range s.v {
		if !present[i] {
			s.v[i], s.ok[i] = 1, true
		}
	}
	return &value{series: []*stepSeries{s}}
}

// quantile is the φ-quantile of the values, interpolating linearly between
// the nearest ranks, as Prometheus and Loki compute it.
func quantile(q float64, pts []tv) float64 {
	if len(pts) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(+1)
	}
	vs := make([]float64, len(pts))
	for i, p := range pts {
		vs[i] = p.v
	}
	sort.Float64s(vs)
	n := float64(len(vs))
	rank := q * (n - 1)
	lower := math.Max(0, math.Floor(rank))
	upper := math.Min(n-1, lower+1)
	w := rank - math.Floor(rank)
	return vs[int(lower)]*(1-w) + vs[int(upper)]*w
}

// extrapolatedRate is Prometheus's rate() over a counter, which Loki's
// rate_counter applies to unwrapped values: resets are compensated and the
// increase is extrapolated towards the window's edges.
func extrapolatedRate(pts []tv, end, rng int64) float64 {
	if len(pts) < 2 {
		return 0
	}
	start := end - rng
	first, last := pts[0], pts[len(pts)-1]
	result := last.v - first.v
	prev := 0.0
	for _, p := range pts {
		if p.v < prev {
			result += prev
		}
		prev = p.v
	}
	durToStart := float64(first.t-start) / 1e9
	durToEnd := float64(end-last.t) / 1e9
	sampled := float64(last.t-first.t) / 1e9
	avgGap := sampled / float64(len(pts)-1)
	if result > 0 && first.v >= 0 {
		durToZero := sampled * (first.v / result)
		if durToZero < durToStart {
			durToStart = durToZero
		}
	}
	threshold := avgGap * 1.1
	interval := sampled
	if durToStart < threshold {
		interval += durToStart
	} else {
		interval += avgGap / 2
	}
	if durToEnd < threshold {
		interval += durToEnd
	} else {
		interval += avgGap / 2
	}
	if sampled == 0 {
		return 0
	}
	return result * (interval / sampled) / (float64(rng) / 1e9)
}
