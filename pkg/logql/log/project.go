package log

import (
	"slices"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// Label projection: a query rarely looks at every label a parser can
// extract. A metric query grouped `by (level)` observes only level (and the
// labels its filters, templates and unwrap read); a log query with a label
// filter after a parser drops most lines on one label. Parsers told which
// labels are needed still read the whole line (so syntax errors are found
// exactly as before) but materialise only those labels. Whenever the
// projected result could differ from the full one where it matters (a line
// that ends with __error__, whose series is reported with all its labels,
// or a log query, whose result carries every label), the line is processed
// again by the original stages, so answers never change.

// needSet is a set of label names; nil stands for every label.
type needSet map[string]struct{}

func (n needSet) has(name string) bool {
	if n == nil {
		return true
	}
	_, ok := n[name]
	return ok
}

// with returns a copy of n with names added (nil stays nil: all).
func (n needSet) with(names ...string) needSet {
	if n == nil {
		return nil
	}
	out := make(needSet, len(n)+len(names))
	for k := range n {
		out[k] = struct{}{}
	}
	for _, name := range names {
		out[name] = struct{}{}
	}
	return out
}

// newNeedSet is the set of names plus the error labels, which every reader
// of a result can observe (a failed line fails a metric query).
func newNeedSet(names ...string) needSet {
	return needSet{}.with(append([]string{ErrorLabel, ErrorDetailsLabel}, names...)...)
}

// projectable is a parser that can extract only the labels in a needSet.
// project returns nil when projection would change nothing.
type projectable interface {
	project(need needSet) Stage
}

// stageReads returns the labels a stage reads (observes) to decide what to
// do with a line, or all=true when it may read any label. Unknown stages
// read everything, so they are never projected past.
func stageReads(s Stage) (names []string, all bool) {
	switch x := s.(type) {
	case filterStage, decolorizeStage:
		return nil, false
	case *logfmtParser, *jsonStage, *jsonExprStage, *regexpParser, *patternParser, *unpackParser:
		// Parsers consult only the stream labels (for _extracted), which
		// projection never changes.
		return nil, false
	case stringLabelFilter:
		return []string{x.m.Name}, false
	case typedFilter:
		return []string{x.name}, false
	case ipLabelFilter:
		return []string{x.name}, false
	case binaryLabelFilter:
		l, lall := stageReads(x.left)
		r, rall := stageReads(x.right)
		return append(l, r...), lall || rall
	case dropStage:
		return matcherNames(x.matchers), false
	case *keepStage:
		return matcherNames(x.matchers), false
	case *lineFormatter:
		if x.t.fast == nil {
			return nil, true
		}
		return x.t.fast.fields, false
	case *labelsFormatter:
		for i, f := range x.formats {
			if f.Rename {
				names = append(names, f.Value)
				continue
			}
			t := x.templates[i]
			if t == nil || t.fast == nil {
				return nil, true
			}
			names = append(names, t.fast.fields...)
		}
		return names, false
	}
	return nil, true
}

// canDrop reports whether a stage may drop a line.
func canDrop(s Stage) bool {
	switch s.(type) {
	case filterStage, stringLabelFilter, typedFilter, ipLabelFilter, binaryLabelFilter:
		return true
	}
	return false
}

// projectStages returns stages whose parsers extract only what the stages
// after them and the final reader (need) observe, and the index of the first
// projected parser (-1 when none is).
func projectStages(stages []Stage, need needSet) ([]Stage, int) {
	out := make([]Stage, len(stages))
	first := -1
	for i := len(stages) - 1; i >= 0; i-- {
		s := stages[i]
		out[i] = s
		if need == nil {
			continue
		}
		if p, ok := s.(projectable); ok {
			if ps := p.project(need); ps != nil {
				out[i] = ps
				first = i
			}
		}
		names, all := stageReads(s)
		if all {
			need = nil
			continue
		}
		need = need.with(names...)
	}
	return out, first
}

// Prefiltered returns a pipeline with the same results as p that, when a
// parser is followed by stages that may drop the line, first runs parsers
// extracting only the labels those stages read, and processes in full only
// the lines that pass. Lines most of which pass are processed in full
// directly (see StreamPipeline.Process), so a filter that drops little costs
// little. Without such a parser it returns p.
func (p *Pipeline) Prefiltered() *Pipeline {
	if p.IsNoop() || p.full != nil {
		return p
	}
	stages, first := projectStages(p.stages, newNeedSet())
	if first < 0 {
		return p
	}
	drops := false
	for _, s := range p.stages[first+1:] {
		drops = drops || canDrop(s)
	}
	if !drops {
		return p
	}
	return &Pipeline{stages: stages, full: p.stages, exact: true}
}

// original returns the stages p was built with, before any projection.
func (p *Pipeline) original() []Stage {
	if p == nil {
		return nil
	}
	if p.full != nil {
		return p.full
	}
	return p.stages
}

// ProjectLabels returns an extractor whose samples carry only the labels
// named in keep, as a range aggregation grouped `by (keep)` observes them:
// parsers extract only those and the labels that later stages and the
// unwrap read, and the sample's label set is built from keep alone. A
// sample with an error (__error__ or __error_details__) is extracted again
// in full and carries every label as before.
func (e *SampleExtractor) ProjectLabels(keep []string) *SampleExtractor {
	if e.grouped && e.without {
		return e
	}
	need := newNeedSet(keep...)
	if e.grouped {
		need = need.with(e.groups...)
	}
	if e.unwrap {
		need = need.with(e.label)
	}
	for i := len(e.post) - 1; i >= 0; i-- {
		names, all := stageReads(e.post[i])
		if all {
			return e
		}
		need = need.with(names...)
	}
	c := *e
	c.keep = slices.Compact(slices.Sorted(slices.Values(keep)))
	if c.keep == nil {
		c.keep = []string{}
	}
	orig := e.pipeline.original()
	if stages, first := projectStages(orig, need); first >= 0 {
		c.pipeline = &Pipeline{stages: stages, full: orig}
	}
	return &c
}

func matcherNames(ms []*labels.Matcher) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}
