package stages

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	logql "github.com/lokal-logs/lokal/pkg/logql/log"
)

// stage is one compiled pipeline stage (multiline excepted: it holds
// entries, so it is a joiner).
type stage interface {
	apply(p *Pipeline, st *state)
}

func (p *Pipeline) compile(sc config.Stage, path string) (stage, error) {
	typ := sc.Type()
	if typ == "" {
		return nil, fmt.Errorf("%s: give exactly one stage type per list item", path)
	}
	path += "." + typ
	switch {
	case sc.Regex != nil:
		re, err := regexp.Compile(sc.Regex.Expression)
		if err != nil {
			return nil, fmt.Errorf("%s.expression: invalid regular expression: %w", path, err)
		}
		return &regexStage{re: re, source: sc.Regex.Source}, nil
	case sc.Logfmt != nil:
		want := map[string]string{} // logfmt key -> extracted name
		for name, key := range sc.Logfmt.Mapping {
			if key == "" {
				key = name
			}
			want[key] = name
		}
		return &logfmtStage{want: want, source: sc.Logfmt.Source}, nil
	case sc.JSON != nil:
		js := &jsonStage{source: sc.JSON.Source, dropMalformed: sc.JSON.DropMalformed}
		for name, expr := range sc.JSON.Expressions {
			if expr == "" {
				expr = name
			}
			jp, err := logql.ParsePromtailJSONPath(expr)
			if err != nil {
				return nil, fmt.Errorf("%s.expressions.%s: %w", path, name, err)
			}
			js.names = append(js.names, name)
			js.paths = append(js.paths, jp)
		}
		return js, nil
	case sc.Labels != nil:
		return labelsStage(sc.Labels), nil
	case sc.StaticLabels != nil:
		return staticLabelsStage(sc.StaticLabels), nil
	case sc.LabelDrop != nil:
		return labelDropStage(sc.LabelDrop), nil
	case sc.LabelAllow != nil:
		return labelAllowStage(sc.LabelAllow), nil
	case sc.Timestamp != nil:
		ts, err := newTimestampStage(sc.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p.haveTimestampStage = true
		return ts, nil
	case sc.Drop != nil:
		d := sc.Drop
		ds := &dropStage{source: d.Source, separator: ";", value: d.Value, olderThan: d.OlderThan.D(), longerThan: int64(d.LongerThan), reason: d.DropCounterReason}
		if d.Separator != nil {
			ds.separator = *d.Separator
		}
		if ds.reason == "" {
			ds.reason = "drop_stage"
		}
		if d.Expression != "" {
			re, err := regexp.Compile(d.Expression)
			if err != nil {
				return nil, fmt.Errorf("%s.expression: invalid regular expression: %w", path, err)
			}
			ds.re = re
		}
		return ds, nil
	case sc.Match != nil:
		m := sc.Match
		sel, err := config.ParseSelector(m.Selector)
		if err != nil {
			return nil, fmt.Errorf("%s.selector: %w", path, err)
		}
		ms := &matchStage{sel: sel, drop: m.Action == "drop", reason: m.DropCounterReason}
		if ms.reason == "" {
			ms.reason = "match_stage"
		}
		switch m.Action {
		case "", "keep", "drop":
		default:
			return nil, fmt.Errorf("%s.action: %q is not keep or drop", path, m.Action)
		}
		for i, sub := range m.Stages {
			if sub.Multiline != nil {
				return nil, fmt.Errorf("%s.stages[%d]: multiline is not allowed inside match (it must see every line of the file)", path, i)
			}
			s, err := p.compile(sub, fmt.Sprintf("%s.stages[%d]", path, i))
			if err != nil {
				return nil, err
			}
			ms.stages = append(ms.stages, s)
		}
		return ms, nil
	case sc.Template != nil:
		t, err := logql.ParsePromtailTemplate("template", sc.Template.Template)
		if err != nil {
			return nil, fmt.Errorf("%s.template: %w", path, err)
		}
		return &templateStage{source: sc.Template.Source, t: t}, nil
	case sc.Output != nil:
		return outputStage(sc.Output.Source), nil
	case sc.Replace != nil:
		re, err := regexp.Compile(sc.Replace.Expression)
		if err != nil {
			return nil, fmt.Errorf("%s.expression: invalid regular expression: %w", path, err)
		}
		t, err := logql.ParsePromtailTemplate("replace", sc.Replace.Replace)
		if err != nil {
			return nil, fmt.Errorf("%s.replace: %w", path, err)
		}
		return &replaceStage{re: re, source: sc.Replace.Source, t: t}, nil
	}
	if sc.Decolorize != nil {
		return decolorizeStage{}, nil
	}
	return nil, fmt.Errorf("%s: stage type %q cannot be used here", path, typ)
}

// sourceValue is the line, or the extracted value named by source.
func (p *Pipeline) sourceValue(st *state, source *string) (string, bool) {
	if source == nil || *source == "" {
		return st.e.Line, true
	}
	return p.get(st, *source)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return string(x)
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}

type regexStage struct {
	re     *regexp.Regexp
	source *string
}

func (s *regexStage) apply(p *Pipeline, st *state) {
	v, ok := p.sourceValue(st, s.source)
	if !ok {
		return
	}
	m := s.re.FindStringSubmatchIndex(v)
	if m == nil {
		return
	}
	for i, name := range s.re.SubexpNames() {
		if name == "" || m[2*i] < 0 {
			continue
		}
		p.setExtracted(st, name, v[m[2*i]:m[2*i+1]])
	}
}

type logfmtStage struct {
	want   map[string]string // logfmt key -> extracted name; empty: every key
	source *string
}

func (s *logfmtStage) apply(p *Pipeline, st *state) {
	v, ok := p.sourceValue(st, s.source)
	if !ok {
		return
	}
	want := s.want
	logql.ScanLogfmt(v, logql.LogfmtPromtail, func(k, val string) {
		if len(want) == 0 {
			p.setExtracted(st, k, val)
			return
		}
		if name, ok := want[k]; ok {
			p.setExtracted(st, name, val)
		}
	})
}

type jsonStage struct {
	names         []string
	paths         [][]logql.JSONPathElem
	source        *string
	dropMalformed bool
}

func (s *jsonStage) apply(p *Pipeline, st *state) {
	v, ok := p.sourceValue(st, s.source)
	if !ok {
		return
	}
	doc, err := logql.DecodePromtailJSON(v)
	if err != nil {
		p.ctr.stageErr.Add(1)
		if s.dropMalformed {
			p.drop(st, "malformed_json")
		}
		return
	}
	for i, path := range s.paths {
		if val, ok := logql.EvalJSONPath(doc, path); ok {
			p.setExtracted(st, s.names[i], val)
		}
	}
}

type labelsStage map[string]string

func (s labelsStage) apply(p *Pipeline, st *state) {
	for name, src := range s {
		if src == "" {
			src = name
		}
		if v, ok := p.get(st, src); ok {
			p.setLabel(st, name, v)
		}
	}
}

type staticLabelsStage map[string]string

func (s staticLabelsStage) apply(p *Pipeline, st *state) {
	for k, v := range s {
		p.setLabel(st, k, v)
	}
}

type labelDropStage []string

func (s labelDropStage) apply(p *Pipeline, st *state) {
	p.filterLabels(st, func(name string) bool { return !contains(s, name) })
}

type labelAllowStage []string

func (s labelAllowStage) apply(p *Pipeline, st *state) {
	p.filterLabels(st, func(name string) bool { return contains(s, name) })
}

type timestampStage struct {
	source  string
	formats []string // layouts or epoch names
	loc     *time.Location
	skip    bool
}

func newTimestampStage(c *config.TimestampStage) (*timestampStage, error) {
	ts := &timestampStage{source: c.Source, skip: c.ActionOnFailure == "skip"}
	if c.Source == "" {
		return nil, fmt.Errorf("source: missing")
	}
	for _, f := range append([]string{c.Format}, c.FallbackFormats...) {
		if f == "" {
			return nil, fmt.Errorf("format: missing")
		}
		l, _ := config.TimeLayout(f)
		ts.formats = append(ts.formats, l)
	}
	if c.Location != "" {
		loc, err := time.LoadLocation(c.Location)
		if err != nil {
			return nil, fmt.Errorf("location: unknown time zone %q", c.Location)
		}
		ts.loc = loc
	}
	return ts, nil
}

func (s *timestampStage) apply(p *Pipeline, st *state) {
	v, ok := p.get(st, s.source)
	if !ok {
		return // Promtail leaves the time alone when the value is absent
	}
	loc := s.loc
	if loc == nil {
		loc = p.opts.Location
	}
	for _, f := range s.formats {
		if t, err := ParseTime(f, v, loc, st.e.Ts); err == nil {
			st.e.Ts = t
			st.e.tsSet = true
			p.lastTs = t
			return
		}
	}
	p.ctr.tsFail.Add(1)
	p.ctr.warn(fmt.Sprintf("timestamp stage: cannot parse %q from %s with format %q", truncate(v, 64), s.source, s.formats[0]))
	if !s.skip && !p.lastTs.IsZero() {
		// fudge: keep entries in order right after the last good time
		st.e.Ts = p.lastTs.Add(time.Nanosecond)
		st.e.tsSet = true
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ParseTime parses v with a timestamp stage format: a Go layout (named
// layouts already resolved) or Unix, UnixMs, UnixUs, UnixNs. A layout
// without a year takes ref's year (or the current one).
func ParseTime(format, v string, loc *time.Location, ref time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	switch format {
	case "Unix":
		sec, frac, _ := strings.Cut(v, ".")
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("not Unix seconds: %q", v)
		}
		var ns int64
		if frac != "" {
			if len(frac) > 9 {
				frac = frac[:9]
			}
			n, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("not Unix seconds: %q", v)
			}
			ns = n
		}
		return time.Unix(s, ns), nil
	case "UnixMs", "UnixUs", "UnixNs":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("not an integer: %q", v)
		}
		switch format {
		case "UnixMs":
			return time.UnixMilli(n), nil
		case "UnixUs":
			return time.UnixMicro(n), nil
		}
		return time.Unix(0, n), nil
	}
	t, err := time.ParseInLocation(format, v, loc)
	if err != nil {
		return time.Time{}, err
	}
	if t.Year() == 0 {
		if ref.IsZero() {
			ref = time.Now()
		}
		t = t.AddDate(ref.In(loc).Year(), 0, 0)
	}
	return t, nil
}

type dropStage struct {
	source     config.StringList
	separator  string
	re         *regexp.Regexp
	value      *string
	olderThan  time.Duration
	longerThan int64
	reason     string
}

func (s *dropStage) apply(p *Pipeline, st *state) {
	var val string
	if len(s.source) > 0 {
		parts := make([]string, 0, len(s.source))
		for _, src := range s.source {
			v, ok := p.get(st, src)
			if !ok {
				return // a missing source never drops
			}
			parts = append(parts, v)
		}
		val = strings.Join(parts, s.separator)
	} else {
		val = st.e.Line
	}
	if s.re != nil && !s.re.MatchString(val) {
		return
	}
	if s.value != nil && val != *s.value {
		return
	}
	if s.olderThan > 0 && (st.e.Ts.IsZero() || !st.e.Ts.Before(p.opts.Now().Add(-s.olderThan))) {
		return
	}
	if s.longerThan > 0 && int64(len(st.e.Line)) <= s.longerThan {
		return
	}
	p.drop(st, s.reason)
}

type matchStage struct {
	sel    *config.Selector
	drop   bool
	reason string
	stages []stage
}

func (s *matchStage) apply(p *Pipeline, st *state) {
	if !s.sel.Matches(p.currentLabels(st), st.e.Line) {
		return
	}
	if s.drop {
		p.drop(st, s.reason)
		return
	}
	p.run(s.stages, st)
}

type templateStage struct {
	source string
	t      *logql.PromtailTemplate
}

func (s *templateStage) apply(p *Pipeline, st *state) {
	data := map[string]any{}
	for k, v := range st.e.Extracted {
		data[k] = toString(v)
	}
	base := len(st.e.Line)
	if v, ok := p.get(st, s.source); ok {
		data["Value"] = v
		base += len(v)
	}
	data["Entry"] = st.e.Line
	out, err := s.t.Execute(data, base)
	if err != nil {
		p.ctr.stageErr.Add(1)
		p.ctr.warn(fmt.Sprintf("template stage for %s: %v", s.source, err))
		return
	}
	p.setExtracted(st, s.source, out)
}

type outputStage string

func (s outputStage) apply(p *Pipeline, st *state) {
	if v, ok := p.get(st, string(s)); ok {
		st.e.Line = v
	}
}

type replaceStage struct {
	re     *regexp.Regexp
	source *string
	t      *logql.PromtailTemplate
}

func (s *replaceStage) apply(p *Pipeline, st *state) {
	v, ok := p.sourceValue(st, s.source)
	if !ok {
		return
	}
	all := s.re.FindAllStringSubmatchIndex(v, -1)
	if all == nil {
		return
	}
	names := s.re.SubexpNames()
	render := func(match string) (string, bool) {
		data := map[string]any{"Value": match}
		for k, x := range st.e.Extracted {
			data[k] = toString(x)
		}
		r, err := s.t.Execute(data, len(v))
		if err != nil {
			p.ctr.stageErr.Add(1)
			p.ctr.warn(fmt.Sprintf("replace stage: %v", err))
			return "", false
		}
		return r, true
	}
	var out strings.Builder
	last := 0
	for _, m := range all {
		for i, name := range names {
			if i > 0 && name != "" && m[2*i] >= 0 {
				p.setExtracted(st, name, v[m[2*i]:m[2*i+1]])
			}
		}
		// with capture groups, each group's text is replaced; else the match
		spans := [][2]int{}
		if len(names) > 1 {
			for i := 1; i < len(names); i++ {
				if m[2*i] >= 0 {
					spans = append(spans, [2]int{m[2*i], m[2*i+1]})
				}
			}
		} else {
			spans = append(spans, [2]int{m[0], m[1]})
		}
		for _, sp := range spans {
			if sp[0] < last {
				continue
			}
			r, ok := render(v[sp[0]:sp[1]])
			if !ok {
				return
			}
			out.WriteString(v[last:sp[0]])
			out.WriteString(r)
			last = sp[1]
		}
	}
	out.WriteString(v[last:])
	if s.source == nil || *s.source == "" {
		st.e.Line = out.String()
	} else {
		p.setExtracted(st, *s.source, out.String())
	}
}

type decolorizeStage struct{}

func (decolorizeStage) apply(p *Pipeline, st *state) { st.e.Line = logql.StripANSI(st.e.Line) }
