package log

import (
	"fmt"
	"strconv"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// LineExtraction is what a metric query over log lines counts.
type LineExtraction int

const (
	// LineCount gives 1 per line (count_over_time, rate, absent_over_time).
	LineCount LineExtraction = iota
	// LineBytes gives the byte length of the processed line (bytes_over_time, bytes_rate).
	LineBytes
)

// Conversion is how an unwrapped label value becomes a number.
type Conversion int

const (
	// ConvNone parses the value as a float (unwrap label).
	ConvNone Conversion = iota
	// ConvDuration parses a Go duration and gives seconds (unwrap duration(label)).
	ConvDuration
	// ConvDurationSeconds is the same as ConvDuration (unwrap duration_seconds(label)).
	ConvDurationSeconds
	// ConvBytes parses a humanized byte size such as 20MB or 1.5KiB (unwrap bytes(label)).
	ConvBytes
)

// SampleExtractor turns log lines into samples for metric queries. It is
// built once per query and shared; ForStream gives a per-stream processor.
type SampleExtractor struct {
	pipeline *Pipeline
	kind     LineExtraction

	unwrap bool
	label  string
	conv   Conversion
	post   []Stage

	// grouping of a range aggregation (`... by (a)` / `without (a)`)
	groups  []string
	without bool
	grouped bool

	// keep, when not nil, are the only labels (sorted, unique) samples
	// without an error carry (ProjectLabels).
	keep []string
}

// NewLineSampleExtractor extracts 1 or the line's length from every line the
// pipeline keeps.
func NewLineSampleExtractor(kind LineExtraction, p *Pipeline) *SampleExtractor {
	return &SampleExtractor{pipeline: p, kind: kind}
}

// NewLabelSampleExtractor extracts the value of label (unwrap) after the
// pipeline, converted by conv. As in Loki 3, a line whose label is missing
// or empty gives no sample; a value that does not convert gives 0 with
// __error__=SampleExtractionErr and the conversion error in
// __error_details__; post stages (the label filters written after unwrap,
// typically `| __error__=""`) then run. The unwrapped label itself is
// removed from the sample's labels, except on a sample with an error.
func NewLabelSampleExtractor(label string, conv Conversion, p *Pipeline, post ...Stage) *SampleExtractor {
	ps := make([]Stage, 0, len(post))
	for _, s := range post {
		if s != nil {
			ps = append(ps, s)
		}
	}
	return &SampleExtractor{pipeline: p, unwrap: true, label: label, conv: conv, post: ps}
}

// WithGrouping returns a copy that labels samples as Loki's range
// aggregation grouping does: `by (groups)` keeps only those labels,
// `without (groups)` drops them (and, for unwrap, the unwrapped label).
// Samples carrying __error__ keep all their labels so the error stays
// visible.
func (e *SampleExtractor) WithGrouping(groups []string, without bool) *SampleExtractor {
	c := *e
	c.groups = append([]string(nil), groups...)
	c.without = without
	c.grouped = true
	return &c
}

// ForStream returns the per-stream extractor for the stream labels lbs.
func (e *SampleExtractor) ForStream(lbs labels.Labels) *StreamSampleExtractor {
	return &StreamSampleExtractor{e: e, sp: e.pipeline.ForStream(lbs), post: stagesForStream(e.post)}
}

// LineOnly reports whether samples depend only on line count or size and on
// stream labels: with a no-op pipeline counting lines or bytes, the engine can
// skip reading line content altogether.
func (e *SampleExtractor) LineOnly() bool {
	return !e.unwrap && e.pipeline.IsNoop() && !e.grouped
}

// Kind returns the line extraction of a line extractor.
func (e *SampleExtractor) Kind() LineExtraction { return e.kind }

// StreamSampleExtractor extracts samples from the lines of one stream. It is
// not safe for concurrent use.
type StreamSampleExtractor struct {
	e       *SampleExtractor
	sp      *StreamPipeline
	post    []Stage
	scratch []string
}

// BaseLabels returns the stream labels.
func (s *StreamSampleExtractor) BaseLabels() labels.Labels { return s.sp.BaseLabels() }

// Process extracts a sample from one line: its value, labels and their hash,
// or ok=false when the line gives no sample.
func (s *StreamSampleExtractor) Process(ts int64, line []byte) (v float64, res labels.Labels, hash uint64, ok bool) {
	b := s.sp.builder
	if !s.e.unwrap && !s.e.grouped && s.e.keep == nil {
		out, res, hash, ok := s.sp.Process(ts, line)
		if !ok {
			return 0, nil, 0, false
		}
		if s.e.kind == LineBytes {
			return float64(len(out)), res, hash, true
		}
		return 1, res, hash, true
	}
	ok = s.sp.run(func(stages []Stage) bool {
		v, ok = s.extract(ts, line, stages)
		return ok
	})
	if !ok {
		return 0, nil, 0, false
	}
	s.group(b)
	if s.e.keep != nil {
		if res, hash, ok = b.keptLabelsWithHash(s.e.keep); ok {
			return v, res, hash, true
		}
	}
	res, hash = b.LabelsWithHash()
	return v, res, hash, true
}

// extract runs stages, the unwrap and the post stages over one line,
// leaving the sample's labels in the builder. The builder stays open
// (unlike StreamPipeline.Process) for the conversion error, the post stages
// and the grouping.
func (s *StreamSampleExtractor) extract(ts int64, line []byte, stages []Stage) (v float64, ok bool) {
	b := s.sp.builder
	if line, ok = s.sp.runStages(ts, line, stages); !ok {
		return 0, false
	}
	if !s.e.unwrap {
		if s.e.kind == LineBytes {
			return float64(len(line)), true
		}
		return 1, true
	}
	raw, _ := b.Get(s.e.label)
	if raw == "" {
		return 0, false
	}
	var err error
	if v, err = convert(s.e.conv, raw); err != nil {
		v = 0
		b.SetErr(ErrSampleExtraction, err.Error())
	}
	for i, st := range s.post {
		b.enterStage(len(stages) + i + 1)
		if line, ok = st.Process(ts, line, b); !ok {
			return 0, false
		}
	}
	return v, true
}

// group applies the grouping to the builder (see WithGrouping).
func (s *StreamSampleExtractor) group(b *LabelsBuilder) {
	if b.HasErr() {
		return
	}
	e := s.e
	if !e.grouped || e.without || len(e.groups) == 0 {
		b.Del(e.groups...)
		if e.unwrap {
			b.Del(e.label)
		}
		return
	}
	drop := s.scratch[:0]
	b.Range(func(name, _ string) {
		for _, g := range e.groups {
			if g == name {
				return
			}
		}
		drop = append(drop, name)
	})
	b.Del(drop...)
	s.scratch = drop
}

// ProcessString is Process for a string line.
func (s *StreamSampleExtractor) ProcessString(ts int64, line string) (float64, labels.Labels, uint64, bool) {
	return s.Process(ts, unsafeBytes(line))
}

// ProcessStringMetadata is ProcessString for a line with structured
// metadata md (nil for none), which the pipeline sees as labels of the line.
func (s *StreamSampleExtractor) ProcessStringMetadata(ts int64, line string, md labels.Labels) (float64, labels.Labels, uint64, bool) {
	s.sp.builder.SetMetadata(md)
	v, res, hash, ok := s.Process(ts, unsafeBytes(line))
	s.sp.builder.SetMetadata(nil)
	return v, res, hash, ok
}

func convert(c Conversion, v string) (float64, error) {
	switch c {
	case ConvDuration, ConvDurationSeconds:
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, err
		}
		return d.Seconds(), nil
	case ConvBytes:
		n, err := ParseBytes(v)
		if err != nil {
			return 0, err
		}
		return float64(n), nil
	default:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, err
		}
		return f, nil
	}
}

// String names the conversion as LogQL writes it.
func (c Conversion) String() string {
	switch c {
	case ConvNone:
		return ""
	case ConvDuration:
		return "duration"
	case ConvDurationSeconds:
		return "duration_seconds"
	case ConvBytes:
		return "bytes"
	}
	return fmt.Sprintf("Conversion(%d)", int(c))
}
