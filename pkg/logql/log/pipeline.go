package log

import (
	"github.com/lokal-logs/lokal/pkg/labels"
)

// Stage processes one line. It may rewrite the line and the labels; returning
// false drops the line. A stage must never write into line (lines from the
// store are strings viewed as bytes): a rewritten line goes to a buffer the
// stage owns, valid until its next call, or to a fresh slice.
type Stage interface {
	Process(ts int64, line []byte, lbs *LabelsBuilder) ([]byte, bool)
}

// StageFunc adapts a function to Stage.
type StageFunc func(ts int64, line []byte, lbs *LabelsBuilder) ([]byte, bool)

// Process calls f.
func (f StageFunc) Process(ts int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	return f(ts, line, lbs)
}

// Pipeline is an ordered list of stages, shared by all streams of a query.
type Pipeline struct {
	stages []Stage
	// full, when set, are the stages as built and stages their projection
	// (see project.go): a line whose projected result may differ from the
	// full one where it matters is processed again by full. exact asks for
	// that on every line kept (the result must carry every label).
	full  []Stage
	exact bool
}

// NewPipeline chains stages in order. Nil stages are skipped; with no stages
// the pipeline is a no-op that returns lines and stream labels untouched.
func NewPipeline(stages ...Stage) *Pipeline {
	p := &Pipeline{}
	for _, s := range stages {
		if s != nil {
			p.stages = append(p.stages, s)
		}
	}
	return p
}

// Stages returns the pipeline's stages (do not modify).
func (p *Pipeline) Stages() []Stage { return p.stages }

// IsNoop reports whether the pipeline has no stages.
func (p *Pipeline) IsNoop() bool { return p == nil || len(p.stages) == 0 }

// ForStream returns the per-stream processor for the stream labels lbs.
func (p *Pipeline) ForStream(lbs labels.Labels) *StreamPipeline {
	sp := &StreamPipeline{builder: NewLabelsBuilder(lbs)}
	if p != nil {
		sp.stages = stagesForStream(p.stages)
		sp.full, sp.exact = p.full, p.exact
	}
	return sp
}

// StreamPipeline runs a pipeline over the lines of one stream. It is not safe
// for concurrent use.
type StreamPipeline struct {
	stages  []Stage
	builder *LabelsBuilder

	// full are the stages before projection (nil when not projected),
	// made per stream on first use in fullStages; exact is Pipeline.exact.
	full         []Stage
	fullStream   []Stage
	exact        bool
	seen, passed int // prefiltered lines and those that passed the prefilter
}

// prefilterProbe is how many lines a prefiltered stream processes before
// it judges whether the prefilter pays: when at least half of the lines
// pass it, the lines are processed in full directly.
const prefilterProbe = 64

// fullStages returns the per-stream instances of the unprojected stages.
func (sp *StreamPipeline) fullStages() []Stage {
	if sp.fullStream == nil {
		sp.fullStream = stagesForStream(sp.full)
	}
	return sp.fullStream
}

// runStages runs stages over one line with a fresh builder state.
func (sp *StreamPipeline) runStages(ts int64, line []byte, stages []Stage) ([]byte, bool) {
	sp.builder.Reset()
	for i, s := range stages {
		sp.builder.enterStage(i + 1)
		var ok bool
		line, ok = s.Process(ts, line, sp.builder)
		if !ok {
			return nil, false
		}
	}
	return line, true
}

// run processes one line with process, given the stages to run: the
// projected stages, then, when the line is kept and its result must be
// exact (a prefilter, or a line with an error label), the original
// stages again.
// It returns whether the line is kept.
func (sp *StreamPipeline) run(process func(stages []Stage) bool) bool {
	if sp.full == nil {
		return process(sp.stages)
	}
	if sp.exact && !sp.prefilterPays() {
		return process(sp.fullStages())
	}
	ok := process(sp.stages)
	if sp.exact {
		sp.seen++
	}
	if !ok || !sp.exact && !sp.builder.failed() {
		return ok
	}
	if sp.exact {
		sp.passed++
	}
	// The projection dropped labels this result must show: the same line
	// again through the original stages.
	return process(sp.fullStages())
}

// prefilterPays reports whether an exact (prefiltered) stream should still
// run the projected stages first.
func (sp *StreamPipeline) prefilterPays() bool {
	return sp.seen < prefilterProbe || 2*sp.passed < sp.seen
}

// BaseLabels returns the stream labels the processor was made for.
func (sp *StreamPipeline) BaseLabels() labels.Labels { return sp.builder.base }

// Process runs the stages over one line. It returns the (possibly rewritten)
// line, the entry's result labels with their hash, and false when a stage
// dropped the line. The returned line and labels may share memory with
// internal buffers: out is valid until the next call, res is immutable and may
// be kept (identical result sets are returned as the same cached slice).
func (sp *StreamPipeline) Process(ts int64, line []byte) (out []byte, res labels.Labels, hash uint64, ok bool) {
	if len(sp.stages) == 0 && len(sp.builder.md) == 0 {
		return line, sp.builder.baseResult, sp.builder.baseHash, true
	}
	ok = sp.run(func(stages []Stage) bool {
		out, ok = sp.runStages(ts, line, stages)
		return ok
	})
	if !ok {
		return nil, nil, 0, false
	}
	res, hash = sp.builder.LabelsWithHash()
	return out, res, hash, true
}

// ProcessStringMetadata is ProcessString for a line with structured
// metadata md (nil for none): its pairs are labels of this line, as in
// Loki 3, for label filters, formats and the result labels.
func (sp *StreamPipeline) ProcessStringMetadata(ts int64, line string, md labels.Labels) (out string, res labels.Labels, hash uint64, ok bool) {
	sp.builder.SetMetadata(md)
	out, res, hash, ok = sp.ProcessString(ts, line)
	sp.builder.SetMetadata(nil)
	return out, res, hash, ok
}

// ProcessString is Process for a string line; the returned line is a string
// that does not alias internal buffers.
func (sp *StreamPipeline) ProcessString(ts int64, line string) (out string, res labels.Labels, hash uint64, ok bool) {
	if len(sp.stages) == 0 && len(sp.builder.md) == 0 {
		return line, sp.builder.baseResult, sp.builder.baseHash, true
	}
	b, res, hash, ok := sp.Process(ts, unsafeBytes(line))
	if !ok {
		return "", nil, 0, false
	}
	// Stages never write into their input, so an unchanged line can be
	// returned as the original string without a copy.
	if len(b) == len(line) && (len(b) == 0 || &b[0] == unsafeBytesPtr(line)) {
		return line, res, hash, true
	}
	return string(b), res, hash, true
}

// stagesForStream gives stages with per-stream state their own instance.
func stagesForStream(stages []Stage) []Stage {
	out := stages
	copied := false
	for i, s := range stages {
		if ss, ok := s.(streamStage); ok {
			if !copied {
				out = append([]Stage(nil), stages...)
				copied = true
			}
			out[i] = ss.ForStream()
		}
	}
	return out
}

// RewritesLine reports whether a stage can change the line (line_format,
// decolorize, unpack): line filters after it see a different text than the
// one stored, so their literals must not be used to prune blocks.
func RewritesLine(s Stage) bool {
	switch s.(type) {
	case *lineFormatter, decolorizeStage, *unpackParser:
		return true
	}
	return false
}
