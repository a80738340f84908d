// Package stages turns the lines of one log file into entries: Promtail's
// pipeline stages (regex, logfmt, json, labels, timestamp, multiline, drop,
// match, template, output, static_labels, labeldrop, labelallow, replace,
// decolorize),
// plus the defaults Lokal applies when stages don't say otherwise: a level
// label detected from the line, the timestamp the line starts with, and
// Python tracebacks kept with the log line they belong to.
//
// One Pipeline serves one file (multiline state is per file) and is used by
// one goroutine; Stats may be read from any goroutine. The zero-stage path
// runs for every line of every file, so its detectors scan bytes by hand and
// allocate nothing beyond what an entry needs.
package stages

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/labels"
	logql "github.com/lokal-logs/lokal/pkg/logql/log"
)

// Limits, with why.
const (
	// DefaultMaxLabelValues caps distinct values of one label per pipeline: a
	// stage that turns request ids into labels would otherwise create a
	// stream per request and wreck the store's index.
	DefaultMaxLabelValues = 1000
	// DefaultTracebackWait is how long a line is held for a traceback that may
	// follow it. Python's logging formats a record and its traceback into one
	// string and writes it with one write call, so they arrive together; the
	// hold only covers writers that buffer and split a record across
	// flushes (print to a piped stdout, tee). Every held line is late by this
	// much on a live tail, so it is kept well under the 1 s target.
	DefaultTracebackWait = 250 * time.Millisecond
	// maxTracebackLines and maxJoinedBytes bound a joined entry so a runaway
	// recursion traceback cannot hold unbounded memory.
	maxTracebackLines = 1000
	maxJoinedBytes    = 1 << 20
	// maxWarnings keeps the health check's list readable.
	maxWarnings = 20
	// MaxLabelValueBytes is Loki's default max_label_value_length: a longer
	// value would be rejected by Loki, and bloats the index here.
	MaxLabelValueBytes = 2048
	// LevelLabel is the label the default level detection sets.
	LevelLabel = "level"
)

// Entry is a line (or joined lines) on its way to the store.
type Entry struct {
	// Labels of the entry. Leave nil on input to use Options.Labels, which is
	// the allocation-free path.
	Labels labels.Labels
	// Ts is, on input, the time the line was read (zero if unknown); on
	// output, the timestamp found in the line or set by a timestamp stage,
	// else the input's value.
	Ts time.Time
	// Line is the text; joined lines are separated by "\n".
	Line string
	// Offset is where the entry starts in its file.
	Offset int64
	// Extracted holds values extracted by stages, allocated when first used.
	Extracted map[string]any
	// tsSet records that a stage set Ts, so the defaults leave it alone.
	tsSet bool
}

// ReadTime reports whether the entry's Ts is still the time its line was
// read: neither the line nor a timestamp stage gave it a time.
func (e *Entry) ReadTime() bool { return !e.tsSet }

// Options configure a pipeline.
type Options struct {
	// Labels are the file's labels (job, instance, filename, ...).
	Labels labels.Labels
	// Location is the zone of timestamps written without one (nil: Local,
	// as Promtail does).
	Location *time.Location
	// MaxLabelValues caps distinct values per label (0: DefaultMaxLabelValues).
	MaxLabelValues int
	// Now is the clock for drop's older_than (nil: time.Now).
	Now func() time.Time
}

// Stats are a pipeline's counters for the health check.
type Stats struct {
	Entries           int64 // entries emitted
	Lines             int64 // lines processed
	Dropped           int64 // entries dropped by drop and match stages
	DroppedByReason   map[string]int64
	TimestampFailures int64 // timestamp stage failures and malformed leading stamps
	NoTimestamp       int64 // entries that kept their read time
	LabelValuesCapped int64 // label values replaced because of MaxLabelValues
	StageErrors       int64 // e.g. malformed JSON for a json stage
	Warnings          []string
}

// Pipeline processes the entries of one file.
type Pipeline struct {
	opts      Options
	pre, post []stage // stages before and after the multiline stage
	joiner    joiner  // the configured multiline stage, else the traceback joiner
	// haveTimestampStage turns default time detection off.
	haveTimestampStage bool
	// levelSets are Options.Labels plus each level: the zero-stage path
	// picks one instead of building a label set per entry.
	levelSets [logql.LevelCritical + 1]labels.Labels
	baseLevel bool // Options.Labels already has a level label
	values    map[string]map[string]struct{}
	lastTs    time.Time // for timestamp's action_on_failure: fudge
	ctr       counters
	st        state                      // reused by applyStages
	work      labels.Labels              // scratch for building label sets
	interned  map[uint64][]labels.Labels // see intern
	// emit is the caller's callback during Process and Flush; out is the
	// bound p.deliver, made once so that no closure is allocated per line.
	emit func(Entry)
	out  func(Entry)
}

type counters struct {
	entries, lines, dropped, tsFail, noTs, capped, stageErr atomic.Int64
	mu                                                      sync.Mutex
	byReason                                                map[string]int64
	warnings                                                []string
}

func (c *counters) warn(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.warnings {
		if w == msg {
			return
		}
	}
	if len(c.warnings) < maxWarnings {
		c.warnings = append(c.warnings, msg)
	}
}

// New builds a pipeline from a scrape config's pipeline_stages. It validates
// everything config.Validate does plus what only compiling can check.
func New(cfg []config.Stage, opts Options) (*Pipeline, error) {
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.MaxLabelValues <= 0 {
		opts.MaxLabelValues = DefaultMaxLabelValues
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := config.ValidateStages(cfg); err != nil {
		return nil, err
	}
	p := &Pipeline{opts: opts, values: map[string]map[string]struct{}{}, interned: map[uint64][]labels.Labels{}}
	p.ctr.byReason = map[string]int64{}
	seenMultiline := false
	for i, sc := range cfg {
		path := fmt.Sprintf("pipeline_stages[%d]", i)
		if sc.Multiline != nil {
			if seenMultiline {
				return nil, fmt.Errorf("%s.multiline: only one multiline stage is allowed", path)
			}
			seenMultiline = true
			j, err := newMultiline(sc.Multiline)
			if err != nil {
				return nil, fmt.Errorf("%s.multiline: %w", path, err)
			}
			p.joiner.ml = j
			continue
		}
		st, err := p.compile(sc, path)
		if err != nil {
			return nil, err
		}
		if seenMultiline {
			p.post = append(p.post, st)
		} else {
			p.pre = append(p.pre, st)
		}
	}
	p.out = p.deliver
	if p.joiner.ml == nil {
		p.joiner.tb = &tracebackJoiner{wait: DefaultTracebackWait}
	}
	p.baseLevel = opts.Labels.Has(LevelLabel)
	for l := logql.LevelUnknown; l <= logql.LevelCritical; l++ {
		if p.baseLevel {
			p.levelSets[l] = opts.Labels
			continue
		}
		p.levelSets[l] = labels.New(append(append(labels.Labels{}, opts.Labels...), labels.Label{Name: LevelLabel, Value: l.String()})...)
	}
	return p, nil
}

// Process takes one line. It may hold entries back (multiline) and emits
// entries in input order. A trailing CR (CRLF files) is removed.
func (p *Pipeline) Process(e Entry, emit func(Entry)) {
	p.ctr.lines.Add(1)
	readTs := e.Ts
	// The line's own time is found before the stages so that drop's
	// older_than and match see it; a timestamp stage replaces this.
	if !p.haveTimestampStage {
		t, found, bad := logql.DetectTime(e.Line, p.opts.Location, readTs)
		switch {
		case found:
			e.Ts, e.tsSet = t, true
		case bad:
			p.ctr.tsFail.Add(1)
		}
	}
	if n := len(e.Line); n > 0 && e.Line[n-1] == '\r' {
		e.Line = e.Line[:n-1]
	}
	if len(p.pre) > 0 {
		var ok bool
		if e, ok = p.applyStages(p.pre, e); !ok {
			return
		}
	}
	p.emit = emit
	p.joiner.push(e, readTs, p.out)
	p.emit = nil
}

// Flush emits held entries whose last line arrived max_wait_time or more
// before now; a zero now emits all (at shutdown or end of a catch-up).
func (p *Pipeline) Flush(now time.Time, emit func(Entry)) {
	p.emit = emit
	p.joiner.flush(now, p.out)
	p.emit = nil
}

// Pending reports the offset of the oldest held entry: the ingester may
// commit its file position only before it.
func (p *Pipeline) Pending() (oldestOffset int64, ok bool) {
	return p.joiner.pending()
}

// NextFlush reports when Flush will release the held entry: a follower
// must call Flush at or after that time even if the file stays quiet, or the
// file's last line waits until more is written. A zero time with ok means
// "now": the held entry has no read time, and the first Flush starts its
// clock.
func (p *Pipeline) NextFlush() (at time.Time, ok bool) {
	b, wait := p.joiner.held()
	if !b.active {
		return time.Time{}, false
	}
	if b.since.IsZero() {
		return time.Time{}, true
	}
	return b.since.Add(wait), true
}

// Stats returns a snapshot of the counters; safe from any goroutine.
func (p *Pipeline) Stats() Stats {
	c := &p.ctr
	s := Stats{
		Entries:           c.entries.Load(),
		Lines:             c.lines.Load(),
		Dropped:           c.dropped.Load(),
		TimestampFailures: c.tsFail.Load(),
		NoTimestamp:       c.noTs.Load(),
		LabelValuesCapped: c.capped.Load(),
		StageErrors:       c.stageErr.Load(),
	}
	c.mu.Lock()
	s.DroppedByReason = make(map[string]int64, len(c.byReason))
	for k, v := range c.byReason {
		s.DroppedByReason[k] = v
	}
	s.Warnings = append([]string(nil), c.warnings...)
	c.mu.Unlock()
	return s
}

// Add sums stats of several pipelines (one per file) for a health report.
func (s *Stats) Add(o Stats) {
	s.Entries += o.Entries
	s.Lines += o.Lines
	s.Dropped += o.Dropped
	s.TimestampFailures += o.TimestampFailures
	s.NoTimestamp += o.NoTimestamp
	s.LabelValuesCapped += o.LabelValuesCapped
	s.StageErrors += o.StageErrors
	if len(o.DroppedByReason) > 0 && s.DroppedByReason == nil {
		s.DroppedByReason = map[string]int64{}
	}
	for k, v := range o.DroppedByReason {
		s.DroppedByReason[k] += v
	}
	for _, w := range o.Warnings {
		if len(s.Warnings) < maxWarnings && !contains(s.Warnings, w) {
			s.Warnings = append(s.Warnings, w)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// deliver runs the stages after multiline and the defaults, then emits.
func (p *Pipeline) deliver(e Entry) {
	if len(p.post) > 0 {
		var ok bool
		if e, ok = p.applyStages(p.post, e); !ok {
			return
		}
	}
	if !e.tsSet {
		p.ctr.noTs.Add(1)
	}
	if e.Labels == nil {
		if p.baseLevel {
			e.Labels = p.levelSets[0]
		} else {
			e.Labels = p.levelSets[logql.DetectLevel(firstLine(e.Line))]
		}
	} else if !e.Labels.Has(LevelLabel) {
		lv := logql.DetectLevel(firstLine(e.Line)).String()
		p.work = setLabel(append(p.work[:0], e.Labels...), LevelLabel, lv)
		e.Labels = p.intern(p.work)
	}
	p.ctr.entries.Add(1)
	p.emit(e)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// applyStages runs stages over e; false means e was dropped. It is a
// function of its own so that only entries that meet stages pay for them,
// not every entry of the zero-stage path.
func (p *Pipeline) applyStages(stages []stage, e Entry) (out Entry, ok bool) {
	// Templates and regular expressions run user input through library code:
	// should any of it panic, the entry goes on unchanged and is counted.
	defer func() {
		if r := recover(); r != nil {
			p.ctr.stageErr.Add(1)
			p.ctr.warn(fmt.Sprintf("a stage failed on a line and was skipped: %v", r))
			out, ok = e, true
		}
	}()
	// One state is reused: a pipeline serves one goroutine, and stages
	// (match included) never run two entries at once.
	st := &p.st
	*st = state{e: e, lbl: st.lbl[:0]}
	if !p.run(stages, st) {
		return Entry{}, false
	}
	p.commitLabels(st)
	out = st.e
	st.e = Entry{}
	return out, true
}

// state is one entry's trip through the stages.
type state struct {
	e Entry
	// lbl are the working labels, sorted, valid once have is set: stages
	// that touch labels copy the entry's labels here first. A small sorted
	// slice beats a map for the handful of labels an entry has.
	lbl     labels.Labels
	have    bool
	dropped bool
}

// labelsOf makes the working labels valid.
func (p *Pipeline) labelsOf(st *state) {
	if st.have {
		return
	}
	base := st.e.Labels
	if base == nil {
		base = p.opts.Labels
	}
	st.lbl = append(st.lbl[:0], base...)
	st.have = true
}

// setLabel sets name in a sorted set, in place.
func setLabel(ls labels.Labels, name, value string) labels.Labels {
	i := sort.Search(len(ls), func(i int) bool { return ls[i].Name >= name })
	if i < len(ls) && ls[i].Name == name {
		ls[i].Value = value
		return ls
	}
	ls = append(ls, labels.Label{})
	copy(ls[i+1:], ls[i:])
	ls[i] = labels.Label{Name: name, Value: value}
	return ls
}

func (p *Pipeline) setLabel(st *state, name, value string) {
	p.labelsOf(st)
	st.lbl = setLabel(st.lbl, name, value)
}

// filterLabels keeps the working labels for which keep is true.
func (p *Pipeline) filterLabels(st *state, keep func(name string) bool) {
	p.labelsOf(st)
	w := 0
	for _, l := range st.lbl {
		if keep(l.Name) {
			st.lbl[w] = l
			w++
		}
	}
	st.lbl = st.lbl[:w]
}

// currentLabels is the entry's label set as stages left it so far; it is
// only valid until the next stage changes labels.
func (p *Pipeline) currentLabels(st *state) labels.Labels {
	if st.have {
		return st.lbl
	}
	if st.e.Labels != nil {
		return st.e.Labels
	}
	return p.opts.Labels
}

// get looks a name up in the extracted values, then in the labels (Promtail
// starts the extracted map with the entry's labels).
func (p *Pipeline) get(st *state, name string) (string, bool) {
	if v, ok := st.e.Extracted[name]; ok {
		return toString(v), true
	}
	for _, l := range p.currentLabels(st) {
		if l.Name == name {
			return l.Value, true
		}
	}
	return "", false
}

func (p *Pipeline) setExtracted(st *state, name string, v any) {
	if st.e.Extracted == nil {
		st.e.Extracted = map[string]any{}
	}
	st.e.Extracted[name] = v
}

// run applies stages; false means the entry was dropped.
func (p *Pipeline) run(stages []stage, st *state) bool {
	for _, s := range stages {
		s.apply(p, st)
		if st.dropped {
			return false
		}
	}
	return true
}

func (p *Pipeline) drop(st *state, reason string) {
	st.dropped = true
	p.ctr.dropped.Add(1)
	p.ctr.mu.Lock()
	p.ctr.byReason[reason]++
	p.ctr.mu.Unlock()
}

// commitLabels turns the working labels into the entry's label set,
// dropping empty values and reserved __ names, and capping label values.
func (p *Pipeline) commitLabels(st *state) {
	if !st.have {
		return
	}
	out := p.work[:0]
	for _, l := range st.lbl {
		k, v := l.Name, l.Value
		if v == "" || strings.HasPrefix(k, "__") {
			continue
		}
		if len(v) > MaxLabelValueBytes {
			v = strings.ToValidUTF8(v[:MaxLabelValueBytes], "")
			p.ctr.warn(fmt.Sprintf("label %q: values longer than %d bytes are truncated", k, MaxLabelValueBytes))
		}
		if !utf8.ValidString(v) {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
		if !p.admitValue(k, v) {
			continue
		}
		out = append(out, labels.Label{Name: k, Value: v})
	}
	p.work = out
	st.e.Labels = p.intern(out)
	st.have = false
}

// maxInterned bounds the cache of label sets; label values are capped, so
// it is only reached by many labels with many values each, and then the
// cache simply starts again.
const maxInterned = 1 << 14

// intern returns a stored copy of ls, so that entries with equal labels
// share one set and no set keeps a whole log line alive through a value
// that is a substring of it.
func (p *Pipeline) intern(ls labels.Labels) labels.Labels {
	h := ls.Hash()
	for _, c := range p.interned[h] {
		if labels.Equal(c, ls) {
			return c
		}
	}
	if len(p.interned) >= maxInterned {
		p.interned = map[uint64][]labels.Labels{}
	}
	c := make(labels.Labels, len(ls))
	for i, l := range ls {
		c[i] = labels.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	p.interned[h] = append(p.interned[h], c)
	return c
}

// admitValue enforces MaxLabelValues: a new value beyond the cap is dropped
// from the entry (the entry itself is kept) and counted.
func (p *Pipeline) admitValue(name, value string) bool {
	vs := p.values[name]
	if vs == nil {
		vs = map[string]struct{}{}
		p.values[name] = vs
	}
	if _, ok := vs[value]; ok {
		return true
	}
	if len(vs) >= p.opts.MaxLabelValues {
		p.ctr.capped.Add(1)
		p.ctr.warn(fmt.Sprintf("label %q has more than %d distinct values: new values are dropped from entries (use the value in the line and a LogQL parser instead)", name, p.opts.MaxLabelValues))
		return false
	}
	vs[strings.Clone(value)] = struct{}{}
	return true
}
