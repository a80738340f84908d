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
}

// NewLineSampleExtractor extracts 1 or the line's length from every line the
// pipeline keeps.
func NewLineSampleExtractor(kind LineExtraction, p *Pipeline) *SampleExtractor {
	return &SampleExtractor{pipeline: p, kind: kind}
}

// NewLabelSampleExtractor extracts the value of label (unwrap) after the
// pipeline, converted by conv. A value that does not convert gives 0 with
// __error__=SampleExtractionErr and the conversion error in
// __error_details__, as Loki does; post stages (the label filters written
// after unwrap, typically `| __error__=""`) then run. The unwrapped label
// itself is removed from the sample's labels.
func NewLabelSampleExtractor(label string, conv Conversion, p *Pipeline, post ...Stage) *SampleExtractor {
	ps := make([]Stage, 0, len(post))
	for _, s := range post {
		if s != nil {
			ps = append(ps, s)
		}
	}
	return &SampleExtractor{pipeline: p, unwrap: true, label: label, conv: conv, post: ps}
}

// ForStream returns the per-stream extractor for the stream labels lbs.
func (e *SampleExtractor) ForStream(lbs labels.Labels) *StreamSampleExtractor {
	return &StreamSampleExtractor{e: e, sp: e.pipeline.ForStream(lbs), post: stagesForStream(e.post)}
}

// LineOnly reports whether samples depend only on line count or size and on
// stream labels: with a no-op pipeline counting lines or bytes, the engine can
// skip reading line content altogether.
func (e *SampleExtractor) LineOnly() bool {
	return !e.unwrap && e.pipeline.IsNoop()
}

// Kind returns the line extraction of a line extractor.
func (e *SampleExtractor) Kind() LineExtraction { return e.kind }

// StreamSampleExtractor extracts samples from the lines of one stream. It is
// not safe for concurrent use.
type StreamSampleExtractor struct {
	e    *SampleExtractor
	sp   *StreamPipeline
	post []Stage
}

// BaseLabels returns the stream labels.
func (s *StreamSampleExtractor) BaseLabels() labels.Labels { return s.sp.BaseLabels() }

// Process extracts a sample from one line: its value, labels and their hash,
// or ok=false when the pipeline drops the line.
func (s *StreamSampleExtractor) Process(ts int64, line []byte) (v float64, res labels.Labels, hash uint64, ok bool) {
	if !s.e.unwrap {
		out, res, hash, ok := s.sp.Process(ts, line)
		if !ok {
			return 0, nil, 0, false
		}
		if s.e.kind == LineBytes {
			return float64(len(out)), res, hash, true
		}
		return 1, res, hash, true
	}
	// Run the stages by hand: the builder must stay open for the conversion
	// error and the post stages.
	b := s.sp.builder
	b.Reset()
	for i, st := range s.sp.stages {
		b.enterStage(i + 1)
		line, ok = st.Process(ts, line, b)
		if !ok {
			return 0, nil, 0, false
		}
	}
	raw, _ := b.Get(s.e.label)
	v, err := convert(s.e.conv, raw)
	if err != nil {
		v = 0
		b.SetErr(ErrSampleExtraction, err.Error())
	}
	for i, st := range s.post {
		b.enterStage(len(s.sp.stages) + i + 1)
		line, ok = st.Process(ts, line, b)
		if !ok {
			return 0, nil, 0, false
		}
	}
	b.Del(s.e.label)
	res, hash = b.LabelsWithHash()
	return v, res, hash, true
}

// ProcessString is Process for a string line.
func (s *StreamSampleExtractor) ProcessString(ts int64, line string) (float64, labels.Labels, uint64, bool) {
	return s.Process(ts, unsafeBytes(line))
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
