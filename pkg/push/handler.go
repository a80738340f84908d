package push

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/lokal-logs/lokal/pkg/labels"
	logql "github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/push/pushpb"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Loki's defaults for the limits the push endpoint enforces
// (limits_config and the distributor's max_recv_msg_size).
const (
	DefaultMaxBodyBytes                 = 100 << 20 // distributor max_recv_msg_size
	DefaultMaxLineSize                  = 256 << 10 // max_line_size: 256KB
	DefaultMaxLabelNamesPerSeries       = 15
	DefaultMaxLabelNameLength           = 1024
	DefaultMaxLabelValueLength          = 2048
	DefaultMaxStructuredMetadataSize    = 64 << 10 // max_structured_metadata_size: 64KB
	DefaultMaxStructuredMetadataEntries = 128
	// DefaultOutOfOrderWindow is half of Loki's max_chunk_age (2h): how far
	// behind its stream's newest entry an entry may be.
	DefaultOutOfOrderWindow = time.Hour
	// DefaultRejectOldSamplesMaxAge is Loki's reject_old_samples_max_age
	// (reject_old_samples is on by default).
	DefaultRejectOldSamplesMaxAge = 7 * 24 * time.Hour
	// DefaultCreationGracePeriod is Loki's creation_grace_period: how far
	// in the future an entry may be.
	DefaultCreationGracePeriod = 10 * time.Minute
)

// DetectedLevelLabel is the structured metadata Loki 3's
// discover_log_levels adds to entries of streams without a level label.
const DetectedLevelLabel = "detected_level"

// levelLabels are the names Loki treats as a level: a stream labelled with
// one gets no detected_level, and structured metadata named so gives its
// value.
var levelLabels = []string{"level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl", "severity_text"}

// HandlerOptions tune the push endpoint; zero values mean Loki's defaults.
// A negative limit turns that check off.
type HandlerOptions struct {
	// MaxBodyBytes bounds the request body, both as sent and decompressed.
	MaxBodyBytes int64
	// MaxLineSize bounds one line (Loki's max_line_size).
	MaxLineSize int
	// MaxLabelNamesPerSeries bounds a stream's labels.
	MaxLabelNamesPerSeries int
	MaxLabelNameLength     int
	MaxLabelValueLength    int
	// MaxStructuredMetadataSize bounds an entry's metadata names and values
	// together; MaxStructuredMetadataEntries their count.
	MaxStructuredMetadataSize    int
	MaxStructuredMetadataEntries int
	// OutOfOrderWindow: an entry older than its stream's newest entry by
	// more than this is rejected, as Loki rejects what is "too far behind".
	OutOfOrderWindow time.Duration
	// RejectOldSamplesMaxAge rejects entries older than now minus this;
	// CreationGracePeriod entries newer than now plus this.
	RejectOldSamplesMaxAge time.Duration
	CreationGracePeriod    time.Duration
	// Now is the clock of those two checks (time.Now when nil).
	Now func() time.Time
	// DisableLevelDetection turns off Loki 3's discover_log_levels.
	DisableLevelDetection bool
	// Reader lets the handler see what a stream already holds (its newest
	// entries, and entries a retried push sends again) after a restart.
	// When nil and the Appender is also a store.Reader, that is used;
	// otherwise only what this handler appended is known.
	Reader store.Reader
}

func (o HandlerOptions) withDefaults() HandlerOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	def(&o.MaxLineSize, DefaultMaxLineSize)
	def(&o.MaxLabelNamesPerSeries, DefaultMaxLabelNamesPerSeries)
	def(&o.MaxLabelNameLength, DefaultMaxLabelNameLength)
	def(&o.MaxLabelValueLength, DefaultMaxLabelValueLength)
	def(&o.MaxStructuredMetadataSize, DefaultMaxStructuredMetadataSize)
	def(&o.MaxStructuredMetadataEntries, DefaultMaxStructuredMetadataEntries)
	if o.OutOfOrderWindow == 0 {
		o.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if o.RejectOldSamplesMaxAge == 0 {
		o.RejectOldSamplesMaxAge = DefaultRejectOldSamplesMaxAge
	}
	if o.CreationGracePeriod == 0 {
		o.CreationGracePeriod = DefaultCreationGracePeriod
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// over reports whether n breaks a limit (a negative limit is off).
func over[T int | int64](n, limit T) bool { return limit >= 0 && n > limit }

// Handler serves Loki's POST /loki/api/v1/push.
type Handler struct {
	app  store.Appender
	rd   store.Reader
	opts HandlerOptions

	// mu serialises the check-and-append of pushes, so two pushes of the
	// same entry cannot both pass the duplicate check.
	mu      sync.Mutex
	streams map[string]*streamState // by labelsKey

	parsedMu sync.Mutex
	parsed   map[string]labels.Labels // protobuf labels strings already parsed
}

// streamState is what the handler knows of a stream's newest entries.
type streamState struct {
	newest   int64   // newest entry's time; math.MinInt64 when none
	atNewest lineSet // lines of the entries at newest
	nextSeq  uint64
}

// lineSet holds the lines of the entries at a stream's newest time: usually
// one, but many when a client stamps whole seconds.
type lineSet struct {
	lines []string
	idx   map[string]struct{} // built once lines is long
}

const lineSetIndexAt = 16

func (s *lineSet) has(line string) bool {
	if s.idx != nil {
		_, ok := s.idx[line]
		return ok
	}
	for _, l := range s.lines {
		if l == line {
			return true
		}
	}
	return false
}

func (s *lineSet) add(line string) {
	s.lines = append(s.lines, line)
	if s.idx != nil {
		s.idx[line] = struct{}{}
	} else if len(s.lines) > lineSetIndexAt {
		s.idx = make(map[string]struct{}, 2*len(s.lines))
		for _, l := range s.lines {
			s.idx[l] = struct{}{}
		}
	}
}

func (s *lineSet) reset() {
	s.lines = s.lines[:0]
	s.idx = nil
}

// clone copies the set; owned copies the lines too, so a kept state does not
// pin the request they came from.
func (s *lineSet) clone(owned bool) lineSet {
	var c lineSet
	for _, l := range s.lines {
		if owned {
			l = strings.Clone(l)
		}
		c.add(l)
	}
	return c
}

// maxParsedLabels bounds the cache of parsed protobuf label strings.
const maxParsedLabels = 4096

// maxStreamStates bounds the streams whose newest entries the handler
// remembers. Forgetting is safe: a stream's state is read back from the
// store the next time it is pushed to.
const maxStreamStates = 20000

// NewHandler returns the push endpoint appending to app.
func NewHandler(app store.Appender, opts HandlerOptions) http.Handler {
	return newHandler(app, opts)
}

func newHandler(app store.Appender, opts HandlerOptions) *Handler {
	h := &Handler{app: app, opts: opts.withDefaults(), streams: map[string]*streamState{}, parsed: map[string]labels.Labels{}}
	h.rd = h.opts.Reader
	if h.rd == nil {
		h.rd, _ = app.(store.Reader)
	}
	return h
}

// httpError is a response other than 204.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// inStream is one stream of a decoded request, before Loki's checks.
type inStream struct {
	labels  string        // as sent (protobuf) or nil with ls set (JSON)
	ls      labels.Labels // parsed labels; nil until parsed
	entries []store.Entry
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: the push endpoint takes POST", http.StatusMethodNotAllowed)
		return
	}
	streams, err := h.decode(r)
	if err == nil {
		err = h.push(r.Context(), streams)
	}
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var he *httpError
	if !errors.As(err, &he) {
		he = errorf(http.StatusInternalServerError, "%v", err)
	}
	if he.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	http.Error(w, he.msg, he.status)
}

// decode reads the body in either of Loki's encodings.
func (h *Handler) decode(r *http.Request) ([]inStream, error) {
	limit := h.opts.MaxBodyBytes
	if over(r.ContentLength, limit) {
		return nil, tooLarge(r.ContentLength, limit)
	}
	ct := r.Header.Get("Content-Type")
	mediaType := ""
	if ct != "" {
		var err error
		if mediaType, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: %v", ct, err)
		}
	}
	switch mediaType {
	case "application/json", "application/x-protobuf", "":
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: the push endpoint takes application/json or application/x-protobuf (snappy-compressed)", ct)
	}
	var body io.Reader = r.Body
	var sent, decoded *limitReader
	if limit >= 0 {
		sent = &limitReader{r: body, left: limit}
		body = sent
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, bodyError(err, limit, "gzip body: %v", err)
		}
		defer gz.Close()
		body = gz
	case "deflate":
		fr := flate.NewReader(body)
		defer fr.Close()
		body = fr
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "Content-Encoding %q not supported", enc)
	}
	if limit >= 0 {
		// The decompressed body has the same bound.
		decoded = &limitReader{r: body, left: limit}
		body = decoded
	}
	var streams []inStream
	var err error
	if mediaType == "application/json" {
		streams, err = h.decodeJSON(body, limit)
	} else {
		streams, err = h.decodeProto(body, r.ContentLength, limit)
	}
	if err != nil && (sent.tripped() || decoded.tripped()) {
		// Whatever the decoder made of the cut body, it was too large.
		return nil, tooLarge(-1, limit)
	}
	return streams, err
}

// errTooLarge marks a body over the limit.
var errTooLarge = errors.New("request body too large")

// limitReader fails with errTooLarge once more than left bytes are read.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) tripped() bool { return l != nil && l.left < 0 }

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

func tooLarge(n, limit int64) *httpError {
	if n < 0 {
		return errorf(http.StatusRequestEntityTooLarge, "request body too large: over the limit of %d bytes", limit)
	}
	return errorf(http.StatusRequestEntityTooLarge, "request body too large: %d bytes, limit %d bytes", n, limit)
}

// bodyError turns a read error into 413 when the body was too large and
// 400 otherwise.
func bodyError(err error, limit int64, format string, args ...any) *httpError {
	if errors.Is(err, errTooLarge) {
		return tooLarge(-1, limit)
	}
	return errorf(http.StatusBadRequest, format, args...)
}

func (h *Handler) decodeJSON(body io.Reader, limit int64) ([]inStream, error) {
	var out []inStream
	idx := map[string]int{}
	err := Read(body, Options{RawLabels: true, BatchEntries: math.MaxInt}, func(b store.AppendBatch) error {
		for _, s := range b.Streams {
			key := labelsKey(s.Labels)
			i, ok := idx[key]
			if !ok {
				i = len(out)
				idx[key] = i
				out = append(out, inStream{ls: s.Labels})
			}
			out[i].entries = append(out[i].entries, s.Entries...)
		}
		return nil
	})
	if err != nil {
		return nil, bodyError(err, limit, "%v", err)
	}
	return out, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (h *Handler) decodeProto(body io.Reader, contentLength, limit int64) ([]inStream, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if n := contentLength; n > 0 && !over(n, limit) {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, bodyError(err, limit, "read body: %v", err)
	}
	n, err := pushpb.DecodedLen(buf.Bytes())
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if over(int64(n), limit) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body too large: %d bytes decompressed, limit %d bytes", n, limit)
	}
	raw := rawPool.Get().(*[]byte)
	defer rawPool.Put(raw)
	dec, err := pushpb.DecodeSnappy((*raw)[:cap(*raw)], buf.Bytes())
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	*raw = dec
	var req pushpb.PushRequest
	if err := pushpb.Unmarshal(dec, &req); err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	out := make([]inStream, 0, len(req.Streams))
	idx := map[string]int{}
	for _, s := range req.Streams {
		i, ok := idx[s.Labels]
		if !ok {
			i = len(out)
			idx[s.Labels] = i
			out = append(out, inStream{labels: s.Labels})
		}
		in := &out[i]
		if in.entries == nil {
			in.entries = make([]store.Entry, 0, len(s.Entries))
		}
		for _, e := range s.Entries {
			ts := e.Timestamp
			if ts.Year() < 1678 || ts.Year() > 2261 {
				return nil, errorf(http.StatusBadRequest, "entry for stream '%s' has timestamp %s, outside the range of Unix nanoseconds", s.Labels, ts)
			}
			se := store.Entry{Ts: ts.UnixNano(), Line: e.Line}
			if len(e.StructuredMetadata) > 0 {
				md := make([]labels.Label, 0, len(e.StructuredMetadata))
				for _, p := range e.StructuredMetadata {
					if p.Value != "" {
						md = append(md, labels.Label{Name: p.Name, Value: p.Value})
					}
				}
				se.Metadata = labels.New(md...)
			}
			in.entries = append(in.entries, se)
		}
	}
	return out, nil
}

var rawPool = sync.Pool{New: func() any { b := []byte(nil); return &b }}

// parseLabels parses a protobuf stream's labels string, with a cache: a
// client sends the same few strings in every request.
func (h *Handler) parseLabels(s string) (labels.Labels, error) {
	h.parsedMu.Lock()
	ls, ok := h.parsed[s]
	h.parsedMu.Unlock()
	if ok {
		return ls, nil
	}
	ms, err := syntax.ParseMatchers(s)
	if err != nil {
		return nil, err
	}
	out := make([]labels.Label, 0, len(ms))
	for _, m := range ms {
		if m.Type != labels.MatchEqual {
			return nil, fmt.Errorf("label %s uses %s; stream labels are name=\"value\" pairs", m.Name, m.Type)
		}
		out = append(out, labels.Label{Name: m.Name, Value: m.Value})
	}
	ls = labels.Labels(out)
	ls = sortedLabels(ls)
	h.parsedMu.Lock()
	if len(h.parsed) >= maxParsedLabels {
		clear(h.parsed)
	}
	h.parsed[s] = ls
	h.parsedMu.Unlock()
	return ls, nil
}

// sortedLabels sorts ls by name, keeping duplicates (which the checks
// reject with Loki's message).
func sortedLabels(ls labels.Labels) labels.Labels {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].Name < ls[j-1].Name; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
	return ls
}

func labelsKey(ls labels.Labels) string { return ls.String() }

// checkLabels applies Loki's stream label rules, returning the labels
// without empty values.
func (h *Handler) checkLabels(ls labels.Labels, shown string) (labels.Labels, error) {
	ls = ls.WithoutEmpty()
	if len(ls) == 0 {
		return nil, errors.New("error at least one label pair is required per stream")
	}
	if shown == "" {
		shown = ls.String()
	}
	if over(len(ls), h.opts.MaxLabelNamesPerSeries) {
		return nil, fmt.Errorf("entry for stream '%s' has %d label names; limit %d", shown, len(ls), h.opts.MaxLabelNamesPerSeries)
	}
	for i, l := range ls {
		if !validName(l.Name) {
			return nil, fmt.Errorf("Error parsing labels '%s' with error: invalid label name %q", shown, l.Name)
		}
		if over(len(l.Name), h.opts.MaxLabelNameLength) {
			return nil, fmt.Errorf("stream '%s' has label name too long: '%s'", shown, l.Name)
		}
		if over(len(l.Value), h.opts.MaxLabelValueLength) {
			return nil, fmt.Errorf("stream '%s' has label value too long: '%s'", shown, l.Value)
		}
		if i > 0 && ls[i-1].Name == l.Name {
			return nil, fmt.Errorf("stream '%s' has duplicate label name: '%s'", shown, l.Name)
		}
	}
	return ls, nil
}

// checkEntry applies Loki's per-entry rules.
func (h *Handler) checkEntry(e *store.Entry, shown string, oldest, newest int64) error {
	if e.Ts < oldest {
		return fmt.Errorf("entry for stream '%s' has timestamp too old: %s, oldest acceptable timestamp is: %s", shown, fmtTime(e.Ts), fmtTime(oldest))
	}
	if e.Ts > newest {
		return fmt.Errorf("entry for stream '%s' has timestamp too new: %s", shown, fmtTime(e.Ts))
	}
	if over(len(e.Line), h.opts.MaxLineSize) {
		return fmt.Errorf("Max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes", h.opts.MaxLineSize, shown, len(e.Line))
	}
	if len(e.Metadata) == 0 {
		return nil
	}
	if over(len(e.Metadata), h.opts.MaxStructuredMetadataEntries) {
		return fmt.Errorf("stream '%s' has too many structured metadata labels: '%d', limit: '%d'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it.", shown, len(e.Metadata), h.opts.MaxStructuredMetadataEntries)
	}
	size := 0
	for _, l := range e.Metadata {
		size += len(l.Name) + len(l.Value)
		if !validName(l.Name) {
			return fmt.Errorf("stream '%s' has an invalid structured metadata name %q", shown, l.Name)
		}
	}
	if over(size, h.opts.MaxStructuredMetadataSize) {
		return fmt.Errorf("stream '%s' has structured metadata too large: '%d' bytes, limit: '%d' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it.", shown, size, h.opts.MaxStructuredMetadataSize)
	}
	return nil
}

// hasLevelLabel reports whether a stream carries its level as a label.
func hasLevelLabel(ls labels.Labels) bool {
	for _, n := range levelLabels {
		if ls.Has(n) {
			return true
		}
	}
	return false
}

// detectLevel adds detected_level to an entry's metadata as Loki 3 does: from
// a level-named metadata field when there is one, else from the line.
func detectLevel(e *store.Entry) {
	if e.Metadata.Has(DetectedLevelLabel) {
		return
	}
	var lvl logql.Level
	found := false
	for _, n := range levelLabels {
		if v := e.Metadata.Get(n); v != "" {
			lvl, found = logql.DetectLevel(v), true
			break
		}
	}
	if !found {
		lvl = logql.DetectLevel(e.Line)
	}
	add := labels.Label{Name: DetectedLevelLabel, Value: lvl.String()}
	if len(e.Metadata) == 0 {
		e.Metadata = levelMetadata[lvl]
		return
	}
	md := make(labels.Labels, 0, len(e.Metadata)+1)
	md = append(md, e.Metadata...)
	md = append(md, add)
	e.Metadata = labels.New(md...)
}

// levelMetadata are the shared one-pair metadata sets of each level (most
// entries have no other metadata; the store copies what it keeps).
var levelMetadata = func() map[logql.Level]labels.Labels {
	m := map[logql.Level]labels.Labels{}
	for l := logql.LevelUnknown; l <= logql.LevelCritical; l++ {
		m[l] = labels.Labels{{Name: DetectedLevelLabel, Value: l.String()}}
	}
	return m
}()

// rejection lists the entries of a stream Loki's ingester would ignore.
type rejection struct {
	stream   string
	total    int
	ignored  int
	messages []string
}

// maxListedRejections bounds the lines a response lists per stream.
const maxListedRejections = 10

func (r *rejection) add(ts int64, reason string) {
	r.ignored++
	if len(r.messages) < maxListedRejections {
		r.messages = append(r.messages, fmt.Sprintf("entry with timestamp %s ignored, reason: '%s',", time.Unix(0, ts).UTC(), reason))
	}
}

func (r *rejection) String() string {
	return strings.Join(r.messages, "\n") + fmt.Sprintf("\nuser 'fake', total ignored: %d out of %d for stream: %s", r.ignored, r.total, r.stream)
}

// accepted is one stream's entries that pass the checks.
type accepted struct {
	ls    labels.Labels
	key   string
	state streamState // the stream's state once these are appended
	ents  []store.Entry
}

// push checks the streams, appends what passes and reports the rest.
func fmtTime(ts int64) string { return time.Unix(0, ts).UTC().Format(time.RFC3339) }

func (h *Handler) push(ctx context.Context, streams []inStream) error {
	now := h.opts.Now().UnixNano()
	oldest, newest := int64(math.MinInt64), int64(math.MaxInt64)
	if d := h.opts.RejectOldSamplesMaxAge; d > 0 {
		oldest = now - d.Nanoseconds()
	}
	if d := h.opts.CreationGracePeriod; d > 0 {
		newest = now + d.Nanoseconds()
	}
	var problems []string
	var checked []accepted
	for i := range streams {
		in := &streams[i]
		ls := in.ls
		shown := in.labels
		if ls == nil {
			var err error
			if ls, err = h.parseLabels(in.labels); err != nil {
				problems = append(problems, fmt.Sprintf("Error parsing labels '%s' with error: %v", in.labels, err))
				continue
			}
		}
		ls, err := h.checkLabels(ls, shown)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if shown == "" {
			shown = ls.String()
		}
		detect := !h.opts.DisableLevelDetection && !hasLevelLabel(ls)
		ents := in.entries[:0]
		for j := range in.entries {
			e := in.entries[j]
			if err := h.checkEntry(&e, shown, oldest, newest); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			if detect {
				detectLevel(&e)
			}
			ents = append(ents, e)
		}
		if len(ents) > 0 {
			checked = append(checked, accepted{ls: ls, key: labelsKey(ls), ents: ents})
		}
	}
	if len(checked) > 0 {
		rejected, err := h.appendChecked(ctx, checked)
		if err != nil {
			return err
		}
		for _, r := range rejected {
			problems = append(problems, r.String())
		}
	}
	if len(problems) > 0 {
		return errorf(http.StatusBadRequest, "%s", strings.Join(problems, "\n"))
	}
	return nil
}

// appendChecked drops duplicates and entries too far behind, appends the
// rest in one atomic batch and, once the store took it, remembers each
// stream's newest entries.
func (h *Handler) appendChecked(ctx context.Context, checked []accepted) ([]*rejection, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var rejected []*rejection
	batch := store.AppendBatch{Streams: make([]store.StreamEntries, 0, len(checked))}
	for i := range checked {
		a := &checked[i]
		st, err := h.state(ctx, a)
		if err != nil {
			return nil, err
		}
		a.state = streamState{newest: st.newest, atNewest: st.atNewest.clone(false), nextSeq: st.nextSeq}
		rej := &rejection{stream: a.ls.String(), total: len(a.ents)}
		kept, err := h.filter(ctx, a, rej)
		if err != nil {
			return nil, err
		}
		if rej.ignored > 0 {
			rejected = append(rejected, rej)
		}
		if len(kept) > 0 {
			batch.Streams = append(batch.Streams, store.StreamEntries{Labels: a.ls, Entries: kept})
		}
	}
	if len(batch.Streams) > 0 {
		if err := h.app.Append(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil, errorf(499, "push cancelled: %v", err)
			}
			return nil, errorf(http.StatusServiceUnavailable, "store: %v; nothing of this push was stored, send it again", err)
		}
	}
	if len(h.streams)+len(checked) > maxStreamStates && h.rd != nil {
		clear(h.streams)
	}
	for i := range checked {
		st := checked[i].state
		st.atNewest = st.atNewest.clone(true)
		h.streams[checked[i].key] = &st
	}
	return rejected, nil
}

// state returns what is known of a stream, reading its newest entries from
// the store the first time.
func (h *Handler) state(ctx context.Context, a *accepted) (*streamState, error) {
	if st := h.streams[a.key]; st != nil {
		return st, nil
	}
	st := &streamState{newest: math.MinInt64}
	if h.rd == nil {
		return st, nil
	}
	err := h.scanStream(ctx, a.ls, math.MinInt64, math.MaxInt64, store.Backward, nil, func(b *store.Batch) bool {
		for i, ts := range b.Ts {
			if st.newest == math.MinInt64 {
				st.newest = ts
			}
			if ts != st.newest {
				return false
			}
			st.atNewest.add(strings.Clone(b.Lines[i]))
			st.nextSeq = max(st.nextSeq, b.Seq[i]+1)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func storeErr(err error) error {
	return errorf(http.StatusServiceUnavailable, "store: %v; nothing of this push was stored, send it again", err)
}

// scanStream reads the entries of exactly the stream ls in [start, end),
// batch by batch, until fn returns false.
func (h *Handler) scanStream(ctx context.Context, ls labels.Labels, start, end int64, dir store.Direction, hint *store.LineFilterHint, fn func(*store.Batch) bool) error {
	ms := make([]*labels.Matcher, 0, len(ls))
	for _, l := range ls {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	}
	its, err := h.rd.Select(ctx, store.SelectParams{Matchers: ms, Start: start, End: end, Direction: dir, Lines: true, Hint: hint})
	if err != nil {
		return storeErr(fmt.Errorf("select stream %s: %w", ls, err))
	}
	defer func() {
		for _, it := range its {
			_ = it.Close()
		}
	}()
	for _, it := range its {
		if !labels.Equal(it.Labels(), ls) {
			continue // a stream with more labels
		}
		for it.Next() {
			if !fn(it.At()) {
				break
			}
		}
		if err := it.Err(); err != nil {
			return storeErr(fmt.Errorf("read stream %s: %w", ls, err))
		}
	}
	return nil
}

// filter drops a stream's duplicates and entries too far behind, in order,
// as Loki's ingester appends them one by one, and assigns Seq. Entries newer
// than everything known are the fast path; older ones are checked against
// the store and the request in one pass at the end.
func (h *Handler) filter(ctx context.Context, a *accepted, rej *rejection) ([]store.Entry, error) {
	st := &a.state
	window := h.opts.OutOfOrderWindow.Nanoseconds()
	kept := a.ents[:0]
	var older []int // indexes in kept of entries older than the newest when they came
	for _, e := range a.ents {
		switch {
		case e.Ts > st.newest:
			st.newest = e.Ts
			st.atNewest.reset()
			st.atNewest.add(e.Line)
		case e.Ts == st.newest:
			if st.atNewest.has(e.Line) {
				continue
			}
			st.atNewest.add(e.Line)
		default:
			if h.opts.OutOfOrderWindow >= 0 && st.newest-e.Ts > window {
				cutoff := time.Unix(0, st.newest-window).UTC()
				rej.add(e.Ts, fmt.Sprintf("entry too far behind, entry timestamp is: %s, oldest acceptable timestamp is: %s",
					time.Unix(0, e.Ts).UTC().Format(time.RFC3339), cutoff.Format(time.RFC3339)))
				continue
			}
			older = append(older, len(kept))
		}
		e.Seq = st.nextSeq
		st.nextSeq++
		kept = append(kept, e)
	}
	if len(older) == 0 {
		return kept, nil
	}
	dup, err := h.olderDuplicates(ctx, a.ls, kept, older)
	if err != nil {
		return nil, err
	}
	out := kept[:0]
	for i, e := range kept {
		if !dup[i] {
			out = append(out, e)
		}
	}
	return out, nil
}

// maxHintLines bounds the lines of the token filter hint with which the
// duplicate check reads the store.
const maxHintLines = 256

// olderDuplicates marks the entries of kept at the indexes older that repeat
// an entry of the store or an earlier entry of kept (same time and line).
func (h *Handler) olderDuplicates(ctx context.Context, ls labels.Labels, kept []store.Entry, older []int) (map[int]bool, error) {
	type key struct {
		ts   int64
		line string
	}
	cand := make(map[key]int, len(older)) // first older entry with that key
	dup := map[int]bool{}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, i := range older {
		k := key{kept[i].Ts, kept[i].Line}
		if _, ok := cand[k]; ok {
			dup[i] = true
			continue
		}
		cand[k] = i
		lo, hi = min(lo, k.ts), max(hi, k.ts)
	}
	// Earlier entries of this request.
	for i, e := range kept {
		if j, ok := cand[key{e.Ts, e.Line}]; ok && i < j {
			dup[j] = true
			delete(cand, key{e.Ts, e.Line})
		}
	}
	if h.rd == nil || len(cand) == 0 {
		return dup, nil
	}
	// Blocks holding none of the lines are skipped by their token filters.
	var hint *store.LineFilterHint
	if len(cand) <= maxHintLines {
		group := make([]string, 0, len(cand))
		for k := range cand {
			group = append(group, k.line)
		}
		hint = &store.LineFilterHint{Groups: [][]string{group}}
	}
	err := h.scanStream(ctx, ls, lo, hi+1, store.Forward, hint, func(b *store.Batch) bool {
		for i, ts := range b.Ts {
			if j, ok := cand[key{ts, b.Lines[i]}]; ok {
				dup[j] = true
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return dup, nil
}
