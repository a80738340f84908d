package log

import (
	"slices"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// Labels Loki reserves for per-line failures.
const (
	ErrorLabel        = "__error__"
	ErrorDetailsLabel = "__error_details__"
)

// Values of __error__, as Loki names them.
const (
	ErrJSON             = "JSONParserErr"
	ErrLogfmt           = "LogfmtParserErr"
	ErrSampleExtraction = "SampleExtractionErr"
	ErrLabelFilter      = "LabelFilterErr"
	ErrTemplateFormat   = "TemplateFormatErr"
)

// duplicateSuffix is appended to a parsed label whose name is already a
// stream label, so that parsing never silently replaces a stream label.
const duplicateSuffix = "_extracted"

// maxCachedLabelSets bounds the per-stream cache of result label sets. Past
// it the cache starts over: a parser producing a unique set per line (a
// request id label) must not grow memory with the data, and a query may
// hold thousands of streams, so the bound is small (about 100 KB a stream
// at worst).
const maxCachedLabelSets = 128

// LabelsBuilder holds the labels of the line being processed: the stream
// labels (the base), labels set by stages (parsed or formatted), deletions,
// and the __error__/__error_details__ pair. One builder serves all lines of a
// stream; Reset starts a new line.
type LabelsBuilder struct {
	base       labels.Labels
	baseResult labels.Labels // base without empty values: the result when nothing changed
	baseHash   uint64
	// md is the structured metadata of the line being processed (set by
	// the caller before the stages run, not by Reset): labels of this line
	// only, above the stream labels, below what stages set.
	md labels.Labels

	add        []labels.Label // unique names, in order of first Set
	owner      []int          // parallel to add: the stage that set the label
	stage      int            // the stage now running (1-based), set by the pipeline
	del        []string
	err        string
	errDetails string

	scratch labels.Labels
	cache   map[uint64]labels.Labels
	// keptBase is keptLabelsWithHash of a line no stage changed (the
	// stream's own labels cut to the kept names), made on first use: the
	// kept names are the same for every line of a builder.
	keptBase     labels.Labels
	keptBaseHash uint64
}

// NewLabelsBuilder returns a builder over the stream labels base.
func NewLabelsBuilder(base labels.Labels) *LabelsBuilder {
	res := base.WithoutEmpty()
	return &LabelsBuilder{
		base:       base,
		baseResult: res,
		baseHash:   res.Hash(),
	}
}

// Reset forgets everything set for the previous line.
func (b *LabelsBuilder) Reset() {
	b.add = b.add[:0]
	b.owner = b.owner[:0]
	b.stage = 0
	b.del = b.del[:0]
	b.err = ""
	b.errDetails = ""
}

// Base returns the stream labels.
func (b *LabelsBuilder) Base() labels.Labels { return b.base }

// BaseHas reports whether name is a stream label or structured metadata of
// the line; parsers use it to decide on the _extracted suffix (Loki gives
// a parsed label that collides with either the suffix).
func (b *LabelsBuilder) BaseHas(name string) bool { return b.base.Has(name) || b.md.Has(name) }

// Get returns the current value of name and whether it is present. Labels set
// by stages take precedence over stream labels.
func (b *LabelsBuilder) Get(name string) (string, bool) {
	switch name {
	case ErrorLabel:
		return b.err, b.err != ""
	case ErrorDetailsLabel:
		return b.errDetails, b.errDetails != ""
	}
	v, _, ok := b.lookup(name)
	return v, ok
}

// lookup is Get for a name other than the error labels; staged tells
// whether a stage set the value.
func (b *LabelsBuilder) lookup(name string) (v string, staged, ok bool) {
	for i := range b.add {
		if b.add[i].Name == name {
			return b.add[i].Value, true, true
		}
	}
	for _, d := range b.del {
		if d == name {
			return "", false, false
		}
	}
	for _, l := range b.md {
		if l.Name == name {
			return l.Value, false, true
		}
	}
	for _, l := range b.base {
		if l.Name == name {
			return l.Value, false, true
		}
	}
	return "", false, false
}

// Has reports whether name is present (with any value, even empty).
func (b *LabelsBuilder) Has(name string) bool {
	_, ok := b.Get(name)
	return ok
}

// Set sets name to value for this line, replacing any earlier value.
func (b *LabelsBuilder) Set(name, value string) {
	switch name {
	case ErrorLabel:
		b.err = value
		return
	case ErrorDetailsLabel:
		b.errDetails = value
		return
	}
	for i, d := range b.del {
		if d == name {
			b.del = append(b.del[:i], b.del[i+1:]...)
			break
		}
	}
	for i := range b.add {
		if b.add[i].Name == name {
			b.add[i].Value = value
			b.owner[i] = b.stage
			return
		}
	}
	b.add = append(b.add, labels.Label{Name: name, Value: value})
	b.owner = append(b.owner, b.stage)
}

// SetParsed sets a label extracted by a parser. As in Loki, a parser does
// not replace a label an earlier stage of the pipeline set for this line
// (a previous parser, label_format), while within one parser a repeated key
// replaces the value it extracted before (the last occurrence wins).
func (b *LabelsBuilder) SetParsed(name, value string) {
	for i := range b.add {
		if b.add[i].Name == name {
			if b.owner[i] == b.stage {
				b.add[i].Value = value
			}
			return
		}
	}
	for i, d := range b.del {
		if d == name {
			b.del = append(b.del[:i], b.del[i+1:]...)
			break
		}
	}
	b.add = append(b.add, labels.Label{Name: name, Value: value})
	b.owner = append(b.owner, b.stage)
}

// enterStage records which pipeline stage runs next (see SetParsed).
func (b *LabelsBuilder) enterStage(i int) { b.stage = i }

// Del removes names for this line.
func (b *LabelsBuilder) Del(names ...string) {
	for _, name := range names {
		switch name {
		case ErrorLabel:
			b.err = ""
			continue
		case ErrorDetailsLabel:
			b.errDetails = ""
			continue
		}
		for i := range b.add {
			if b.add[i].Name == name {
				b.add = append(b.add[:i], b.add[i+1:]...)
				b.owner = append(b.owner[:i], b.owner[i+1:]...)
				break
			}
		}
		if (b.base.Has(name) || b.md.Has(name)) && !slices.Contains(b.del, name) {
			b.del = append(b.del, name)
		}
	}
}

// SetErr records a per-line failure: __error__=kind, __error_details__=details.
func (b *LabelsBuilder) SetErr(kind, details string) {
	b.err = kind
	b.errDetails = details
}

// GetErr returns the current __error__ value ("" when none).
func (b *LabelsBuilder) GetErr() string { return b.err }

// HasErr reports whether the line carries an __error__.
func (b *LabelsBuilder) HasErr() bool { return b.err != "" }

// Range calls fn for every current label, including __error__ and
// __error_details__ when set, in no particular order. fn must not modify b.
func (b *LabelsBuilder) Range(fn func(name, value string)) {
	for _, l := range b.base {
		if b.overridden(l.Name) || b.md.Has(l.Name) {
			continue
		}
		fn(l.Name, l.Value)
	}
	for _, l := range b.md {
		if b.overridden(l.Name) {
			continue
		}
		fn(l.Name, l.Value)
	}
	for _, l := range b.add {
		fn(l.Name, l.Value)
	}
	if b.err != "" {
		fn(ErrorLabel, b.err)
	}
	if b.errDetails != "" {
		fn(ErrorDetailsLabel, b.errDetails)
	}
}

// overridden reports whether a base label is deleted or replaced.
func (b *LabelsBuilder) overridden(name string) bool {
	for _, d := range b.del {
		if d == name {
			return true
		}
	}
	for i := range b.add {
		if b.add[i].Name == name {
			return true
		}
	}
	return false
}

func (b *LabelsBuilder) unchanged() bool {
	return len(b.add) == 0 && len(b.del) == 0 && b.err == "" && b.errDetails == "" && len(b.md) == 0
}

// SetMetadata sets the structured metadata of the next line (nil for
// none). A name that is also a stream label gets the _extracted suffix, as
// Loki does, so the stream label keeps its value.
func (b *LabelsBuilder) SetMetadata(md labels.Labels) {
	for i, l := range md {
		if b.base.Has(l.Name) {
			out := make([]labels.Label, 0, len(md))
			out = append(out, md[:i]...)
			for _, l := range md[i:] {
				if b.base.Has(l.Name) {
					l.Name += duplicateSuffix
				}
				out = append(out, l)
			}
			md = labels.New(out...)
			break
		}
	}
	b.md = md
}

// Labels returns the line's result label set: stream labels overridden and
// extended by those set by stages, sorted. The result
// is immutable and cached per stream, so equal sets share one slice.
func (b *LabelsBuilder) Labels() labels.Labels {
	ls, _ := b.LabelsWithHash()
	return ls
}

// LabelsWithHash is Labels plus the set's hash (labels.Labels.Hash).
func (b *LabelsBuilder) LabelsWithHash() (labels.Labels, uint64) {
	if b.unchanged() {
		return b.baseResult, b.baseHash
	}
	s := b.scratch[:0]
	for _, l := range b.base {
		if l.Value == "" || b.overridden(l.Name) || b.md.Has(l.Name) {
			continue
		}
		s = append(s, l)
	}
	for _, l := range b.md {
		if l.Value == "" || b.overridden(l.Name) {
			continue
		}
		s = append(s, l)
	}
	// Labels set by stages are kept even when empty: Loki shows
	// `logfmt --keep-empty` keys as key="".
	s = append(s, b.add...)
	if b.err != "" {
		s = append(s, labels.Label{Name: ErrorLabel, Value: b.err})
	}
	if b.errDetails != "" {
		s = append(s, labels.Label{Name: ErrorDetailsLabel, Value: b.errDetails})
	}
	slices.SortFunc(s, func(x, y labels.Label) int { return strings.Compare(x.Name, y.Name) })
	b.scratch = s
	return b.cached(s)
}

// cached returns the immutable cached copy of the sorted set s (which it
// does not keep) and its hash, caching it on first sight.
func (b *LabelsBuilder) cached(s labels.Labels) (labels.Labels, uint64) {
	h := s.Hash()
	if cached, ok := b.cache[h]; ok {
		if labels.Equal(cached, s) {
			return cached, h
		}
		// A hash collision: correct but uncached.
		return slices.Clone(s), h
	}
	if b.cache == nil || len(b.cache) >= maxCachedLabelSets {
		b.cache = make(map[uint64]labels.Labels)
	}
	out := slices.Clone(s)
	b.cache[h] = out
	return out, h
}

// keptLabelsWithHash is LabelsWithHash().Keep(names...) with its hash,
// built from the named labels alone (names sorted and unique), so a line
// whose labels reduce to a few grouping labels costs neither the full set
// nor its sort, and a set seen before no allocation. ok is false, and
// nothing is built, when the line carries __error__ or __error_details__
// (whose set keeps every label), even as a parsed key.
func (b *LabelsBuilder) keptLabelsWithHash(names []string) (ls labels.Labels, hash uint64, ok bool) {
	if b.failed() {
		return nil, 0, false
	}
	unchanged := b.unchanged()
	if unchanged && b.keptBase != nil {
		return b.keptBase, b.keptBaseHash, true
	}
	s := b.scratch[:0]
	for _, n := range names {
		if v, ok := b.resultValue(n); ok {
			s = append(s, labels.Label{Name: n, Value: v})
		}
	}
	b.scratch = s
	ls, hash = b.cached(s)
	if unchanged {
		b.keptBase, b.keptBaseHash = ls, hash
	}
	return ls, hash, true
}

// failed reports whether the line's result carries __error__ or
// __error_details__, set by a stage or parsed from the line as a key.
func (b *LabelsBuilder) failed() bool {
	if b.err != "" || b.errDetails != "" {
		return true
	}
	for i := range b.add {
		if n := b.add[i].Name; n == ErrorLabel || n == ErrorDetailsLabel {
			return true
		}
	}
	return false
}

// resultValue is the value of name in the line's result set (see
// LabelsWithHash) of a line without an error: a label set by a stage, even
// empty, or else a non-empty structured metadata or stream label not deleted.
func (b *LabelsBuilder) resultValue(name string) (string, bool) {
	v, staged, ok := b.lookup(name)
	return v, ok && (staged || v != "")
}
