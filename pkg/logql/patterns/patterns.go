// Package patterns mines line patterns from stored lines, as Loki's pattern
// ingester shows them to Logs Drilldown through /loki/api/v1/patterns: each
// pattern is a line with its varying tokens replaced by "<_>", a level when
// the lines' level is known, and a count of its lines per time step.
//
// Unlike Loki, which mines patterns as lines arrive, Detect mines them at
// query time from the lines of a time range, reading at most
// Options.MaxLines lines spread over the range and over the streams, and
// keeping at most Options.MaxClusters patterns in memory. Counts are of the
// lines read: when the range holds more lines than MaxLines, they undercount.
package patterns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// ErrBadRequest is matched by errors.Is for a query or time range the
// client must fix (a parse error also matches syntax.ErrParse).
var ErrBadRequest = errors.New("bad patterns request")

// Defaults for Options.
const (
	DefaultMaxLines    = 100_000
	DefaultMaxClusters = 1000
	DefaultDepth       = 4
	DefaultMaxChildren = 100
	DefaultMaxTokens   = 64
	DefaultMaxBytes    = 4096
	DefaultSimilarity  = 0.3
	// MaxPoints is Loki's limit on the points of one series.
	MaxPoints = 11000
	// windows is how many slices of the range the line budget is split into,
	// so that a busy start of the range cannot use it all.
	windows = 8
)

// Options bound the work of Detect. Zero values take the defaults.
type Options struct {
	// MaxLines is the number of lines read at most.
	MaxLines int
	// MaxClusters is the number of patterns kept in memory at most; past
	// it the least recently matched one is dropped.
	MaxClusters int
	// Depth is the number of leading tokens that place a line in the tree.
	Depth int
	// MaxChildren is the number of branches per tree node.
	MaxChildren int
	// MaxTokens and MaxBytes bound the part of a line that is tokenized.
	MaxTokens, MaxBytes int
	// Similarity is the share of equal tokens a line needs to join a pattern.
	Similarity float64
	// Limit returns only the Limit most frequent patterns (0: all).
	Limit int
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxLines, DefaultMaxLines)
	def(&o.MaxClusters, DefaultMaxClusters)
	def(&o.Depth, DefaultDepth)
	def(&o.MaxChildren, DefaultMaxChildren)
	def(&o.MaxTokens, DefaultMaxTokens)
	def(&o.MaxBytes, DefaultMaxBytes)
	if o.Similarity <= 0 || o.Similarity > 1 {
		o.Similarity = DefaultSimilarity
	}
	return o
}

// Pattern is one mined pattern.
type Pattern struct {
	Pattern string
	// Level is the lines' level (from the stream's detected_level or level
	// label, else detected from the line); empty when unknown.
	Level   string
	Samples []Sample
}

// Sample counts the lines of a pattern in the step starting at T.
type Sample struct {
	T     int64 // unix seconds
	Count int64
}

// Detect mines the patterns of the lines that query selects in [start, end)
// (unix ns), counted per step (ns; 0 picks Loki's default resolution). The
// query is a stream selector with optional line filters, as Drilldown
// sends it. Patterns come most frequent first.
func Detect(ctx context.Context, r store.Reader, query string, start, end, step int64, opts Options) ([]Pattern, error) {
	if end <= start {
		return nil, fmt.Errorf("%w: end (%d) must be after start (%d)", ErrBadRequest, end, start)
	}
	if step < 0 {
		return nil, fmt.Errorf("%w: zero or negative query resolution step widths are not accepted. Try a positive integer", ErrBadRequest)
	}
	if step == 0 {
		step = defaultStep(start, end)
	}
	if (end-start)/step > MaxPoints {
		return nil, fmt.Errorf("%w: exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)", ErrBadRequest)
	}
	ms, filters, err := parseQuery(query)
	if err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	d := &detector{
		step:   step,
		filter: filters,
		m: newMiner(minerOptions{depth: o.Depth, maxChildren: o.MaxChildren, maxClusters: o.MaxClusters,
			maxTokens: o.MaxTokens, maxBytes: o.MaxBytes, similarity: o.Similarity}),
	}
	// The budget is shared out over the windows; what a quiet window does
	// not use goes to the ones after it.
	nw := min(int64(windows), (end-start+step-1)/step)
	left := o.MaxLines
	for w := range nw {
		if left <= 0 {
			break
		}
		ws := start + (end-start)*w/nw
		we := start + (end-start)*(w+1)/nw
		n, err := d.readWindow(ctx, r, ms, ws, we, max(left/int(nw-w), 1))
		if err != nil {
			return nil, err
		}
		left -= n
	}
	return d.patterns(o.Limit), nil
}

// defaultStep is Loki's default resolution for a range: a 250th of it,
// at least one second.
func defaultStep(start, end int64) int64 {
	const sec = int64(1e9)
	s := (end - start) / 250
	s = (s + sec - 1) / sec * sec
	return max(s, sec)
}

// parseQuery takes a stream selector with optional line filters.
func parseQuery(q string) ([]*labels.Matcher, []log.Filter, error) {
	sel, err := syntax.ParseLogSelector(q)
	if err != nil {
		return nil, nil, err
	}
	p, ok := sel.(*syntax.PipelineExpr)
	if !ok {
		return sel.Matchers(), nil, nil
	}
	var fs []log.Filter
	for _, st := range p.Stages {
		lf, ok := st.(*syntax.LineFilterExpr)
		if !ok {
			return nil, nil, fmt.Errorf("%w: patterns take a stream selector with optional line filters, not %s", ErrBadRequest, st)
		}
		f, err := lf.Filter()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		fs = append(fs, f)
	}
	return p.Matchers(), fs, nil
}

type detector struct {
	step   int64
	filter []log.Filter
	m      *miner
}

// cursor is a stream's place in its current batch.
type cursor struct {
	it    store.StreamIterator
	b     *store.Batch
	i     int
	level string // of the stream, "" when it has no level label
}

// readWindow reads up to budget lines of [start, end), in rounds that give
// every stream still holding lines an equal share of what is left, so that
// the streams are sampled alike.
func (d *detector) readWindow(ctx context.Context, r store.Reader, ms []*labels.Matcher, start, end int64, budget int) (read int, err error) {
	its, err := r.Select(ctx, store.SelectParams{Matchers: ms, Start: start, End: end, Direction: store.Forward, Lines: true})
	if err != nil {
		return 0, fmt.Errorf("select streams: %w", err)
	}
	defer func() {
		for _, it := range its {
			it.Close()
		}
	}()
	live := make([]*cursor, len(its))
	for i, it := range its {
		live[i] = &cursor{it: it, level: streamLevel(it.Labels())}
	}
	for len(live) > 0 && read < budget {
		quota := max((budget-read)/len(live), 1)
		next := live[:0]
		for _, c := range live {
			if err := ctx.Err(); err != nil {
				return read, err
			}
			n, err := d.take(c, min(quota, budget-read))
			if err != nil {
				return read, err
			}
			read += n
			if n > 0 || c.b != nil {
				next = append(next, c)
			}
		}
		live = next
	}
	return read, nil
}

// take mines up to n lines of c's stream and returns how many it read; a
// stream at its end is left with c.b nil.
func (d *detector) take(c *cursor, n int) (int, error) {
	read := 0
	for read < n {
		if c.b == nil || c.i == len(c.b.Lines) {
			if !c.it.Next() {
				c.b = nil
				if err := c.it.Err(); err != nil {
					return read, fmt.Errorf("read stream %s: %w", c.it.Labels(), err)
				}
				return read, nil
			}
			c.b, c.i = c.it.At(), 0
			continue
		}
		line, ts := c.b.Lines[c.i], c.b.Ts[c.i]
		c.i++
		read++
		if !d.keep(line) {
			continue
		}
		lv := c.level
		if lv == "" {
			lv = log.DetectLevel(line).String()
		}
		d.m.add(lv, line, ts/d.step*d.step/1e9)
	}
	return read, nil
}

func streamLevel(ls labels.Labels) string {
	if v := ls.Get("detected_level"); v != "" {
		return v
	}
	return ls.Get("level")
}

func (d *detector) keep(line string) bool {
	for _, f := range d.filter {
		if !log.MatchString(f, line) {
			return false
		}
	}
	return true
}

// patterns renders the clusters, merging those that render the same, most
// frequent first.
func (d *detector) patterns(limit int) []Pattern {
	type acc struct {
		p       Pattern
		total   int64
		samples map[int64]int64
	}
	byKey := map[[2]string]*acc{}
	var all []*acc
	for e := d.m.lru.Front(); e != nil; e = e.Next() {
		c := e.Value.(*cluster)
		lv := c.level
		if lv == "unknown" {
			lv = ""
		}
		s, ok := pattern(c.tokens)
		if !ok {
			continue
		}
		k := [2]string{s, lv}
		a := byKey[k]
		if a == nil {
			a = &acc{p: Pattern{Pattern: s, Level: lv}, samples: map[int64]int64{}}
			byKey[k] = a
			all = append(all, a)
		}
		a.total += c.total
		for t, n := range c.samples {
			a.samples[t] += n
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].total != all[j].total {
			return all[i].total > all[j].total
		}
		if all[i].p.Pattern != all[j].p.Pattern {
			return all[i].p.Pattern < all[j].p.Pattern
		}
		return all[i].p.Level < all[j].p.Level
	})
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	out := make([]Pattern, len(all))
	for i, a := range all {
		p := a.p
		p.Samples = make([]Sample, 0, len(a.samples))
		for t, n := range a.samples {
			p.Samples = append(p.Samples, Sample{T: t, Count: n})
		}
		sort.Slice(p.Samples, func(i, j int) bool { return p.Samples[i].T < p.Samples[j].T })
		out[i] = p
	}
	return out
}

// MarshalResponse encodes patterns as Loki's /loki/api/v1/patterns body:
// {"status":"success","data":[{"pattern":"…","level":"…","samples":[[t,n],…]},…]}
// with t in unix seconds; level is left out when unknown.
func MarshalResponse(ps []Pattern) []byte {
	type jsonPattern struct {
		Pattern string     `json:"pattern"`
		Level   string     `json:"level,omitempty"`
		Samples [][2]int64 `json:"samples"`
	}
	body := struct {
		Status string        `json:"status"`
		Data   []jsonPattern `json:"data"`
	}{Status: "success", Data: make([]jsonPattern, len(ps))}
	for i, p := range ps {
		jp := jsonPattern{Pattern: p.Pattern, Level: p.Level, Samples: make([][2]int64, len(p.Samples))}
		for j, s := range p.Samples {
			jp.Samples[j] = [2]int64{s.T, s.Count}
		}
		body.Data[i] = jp
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		// Strings and integers always encode.
		panic(fmt.Sprintf("encode patterns: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
