package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	logql "github.com/lokal-logs/lokal/pkg/logql/log"
)

// Stage is one entry of pipeline_stages: exactly one of its fields is set,
// named by the stage's type as in Promtail ("- regex: {expression: ...}").
type Stage struct {
	Regex        *RegexStage       `yaml:"regex,omitempty" json:"regex,omitempty"`
	Logfmt       *LogfmtStage      `yaml:"logfmt,omitempty" json:"logfmt,omitempty"`
	JSON         *JSONStage        `yaml:"json,omitempty" json:"json,omitempty"`
	Labels       map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	StaticLabels map[string]string `yaml:"static_labels,omitempty" json:"static_labels,omitempty"`
	LabelDrop    []string          `yaml:"labeldrop,omitempty" json:"labeldrop,omitempty"`
	LabelAllow   []string          `yaml:"labelallow,omitempty" json:"labelallow,omitempty"`
	Timestamp    *TimestampStage   `yaml:"timestamp,omitempty" json:"timestamp,omitempty"`
	Multiline    *MultilineStage   `yaml:"multiline,omitempty" json:"multiline,omitempty"`
	Drop         *DropStage        `yaml:"drop,omitempty" json:"drop,omitempty"`
	Match        *MatchStage       `yaml:"match,omitempty" json:"match,omitempty"`
	Template     *TemplateStage    `yaml:"template,omitempty" json:"template,omitempty"`
	Output       *OutputStage      `yaml:"output,omitempty" json:"output,omitempty"`
	Replace      *ReplaceStage     `yaml:"replace,omitempty" json:"replace,omitempty"`
	// Decolorize removes ANSI colour codes from the line (it takes no options).
	Decolorize *struct{} `yaml:"decolorize,omitempty" json:"decolorize,omitempty"`
}

// Type returns the stage's type name, "" when none is set.
func (s Stage) Type() string {
	names := s.types()
	if len(names) == 1 {
		return names[0]
	}
	return ""
}

func (s Stage) types() []string {
	var n []string
	add := func(set bool, name string) {
		if set {
			n = append(n, name)
		}
	}
	add(s.Regex != nil, "regex")
	add(s.Logfmt != nil, "logfmt")
	add(s.JSON != nil, "json")
	add(s.Labels != nil, "labels")
	add(s.StaticLabels != nil, "static_labels")
	add(s.LabelDrop != nil, "labeldrop")
	add(s.LabelAllow != nil, "labelallow")
	add(s.Timestamp != nil, "timestamp")
	add(s.Multiline != nil, "multiline")
	add(s.Drop != nil, "drop")
	add(s.Match != nil, "match")
	add(s.Template != nil, "template")
	add(s.Output != nil, "output")
	add(s.Replace != nil, "replace")
	add(s.Decolorize != nil, "decolorize")
	return n
}

// stageTypes lists what Lokal supports, for error messages.
const stageTypes = "regex, logfmt, json, labels, static_labels, labeldrop, labelallow, timestamp, multiline, drop, match, template, output, replace, decolorize"

// unknownKeyHint makes the decoder say "unknown stage type" for a Stage.
func (Stage) unknownKeyHint(key string) string {
	return fmt.Sprintf("unknown stage type %q (Lokal supports %s)", key, stageTypes)
}

// RegexStage extracts named capture groups of Expression from Source.
type RegexStage struct {
	Expression string  `yaml:"expression" json:"expression"`
	Source     *string `yaml:"source,omitempty" json:"source,omitempty"`
}

// LogfmtStage extracts logfmt keys: Mapping maps an extracted name to the
// logfmt key (empty: the same name). An empty mapping extracts every key.
type LogfmtStage struct {
	Mapping map[string]string `yaml:"mapping" json:"mapping"`
	Source  *string           `yaml:"source,omitempty" json:"source,omitempty"`
}

// JSONStage extracts JSON values: Expressions maps an extracted name to a
// path (JMESPath subset: a.b, a.b[0], "quoted key"; empty: the same name).
type JSONStage struct {
	Expressions   map[string]string `yaml:"expressions" json:"expressions"`
	Source        *string           `yaml:"source,omitempty" json:"source,omitempty"`
	DropMalformed bool              `yaml:"drop_malformed,omitempty" json:"drop_malformed,omitempty"`
}

// TimestampStage sets the entry's time from an extracted value.
type TimestampStage struct {
	Source          string   `yaml:"source" json:"source"`
	Format          string   `yaml:"format" json:"format"`
	FallbackFormats []string `yaml:"fallback_formats,omitempty" json:"fallback_formats,omitempty"`
	Location        string   `yaml:"location,omitempty" json:"location,omitempty"`
	// ActionOnFailure is fudge (keep the read time, as Promtail) or skip.
	ActionOnFailure string `yaml:"action_on_failure,omitempty" json:"action_on_failure,omitempty"`
}

// MultilineStage joins lines into one entry, each entry starting at a line
// matching FirstLine (ANSI colour codes ignored when matching).
type MultilineStage struct {
	FirstLine   string   `yaml:"firstline" json:"firstline"`
	MaxWaitTime Duration `yaml:"max_wait_time,omitempty" json:"max_wait_time,omitempty"`
	MaxLines    int      `yaml:"max_lines,omitempty" json:"max_lines,omitempty"`
}

// DropStage drops entries that satisfy all its given conditions.
type DropStage struct {
	Source            StringList `yaml:"source,omitempty" json:"source,omitempty"`
	Separator         *string    `yaml:"separator,omitempty" json:"separator,omitempty"`
	Expression        string     `yaml:"expression,omitempty" json:"expression,omitempty"`
	Value             *string    `yaml:"value,omitempty" json:"value,omitempty"`
	OlderThan         Duration   `yaml:"older_than,omitempty" json:"older_than,omitempty"`
	LongerThan        ByteSize   `yaml:"longer_than,omitempty" json:"longer_than,omitempty"`
	DropCounterReason string     `yaml:"drop_counter_reason,omitempty" json:"drop_counter_reason,omitempty"`
}

// MatchStage runs Stages (or drops, with action: drop) for entries whose
// labels match Selector, a LogQL stream selector with optional line filters.
type MatchStage struct {
	Selector          string  `yaml:"selector" json:"selector"`
	PipelineName      string  `yaml:"pipeline_name,omitempty" json:"pipeline_name,omitempty"`
	Action            string  `yaml:"action,omitempty" json:"action,omitempty"`
	DropCounterReason string  `yaml:"drop_counter_reason,omitempty" json:"drop_counter_reason,omitempty"`
	Stages            []Stage `yaml:"stages,omitempty" json:"stages,omitempty"`
}

// TemplateStage sets extracted value Source from a Go text/template.
type TemplateStage struct {
	Source   string `yaml:"source" json:"source"`
	Template string `yaml:"template" json:"template"`
}

// OutputStage replaces the line with an extracted value.
type OutputStage struct {
	Source string `yaml:"source" json:"source"`
}

// ReplaceStage replaces the matches (or their capture groups) of Expression
// in Source (default: the line) with the template Replace.
type ReplaceStage struct {
	Expression string  `yaml:"expression" json:"expression"`
	Source     *string `yaml:"source,omitempty" json:"source,omitempty"`
	Replace    string  `yaml:"replace" json:"replace"`
}

// StringList accepts one string or a list of strings.
type StringList []string

// Timestamp formats known by name, as in Promtail.
var namedTimeFormats = map[string]string{
	"ANSIC": time.ANSIC, "UnixDate": time.UnixDate, "RubyDate": time.RubyDate,
	"RFC822": time.RFC822, "RFC822Z": time.RFC822Z, "RFC850": time.RFC850,
	"RFC1123": time.RFC1123, "RFC1123Z": time.RFC1123Z, "RFC3339": time.RFC3339,
	"RFC3339Nano": time.RFC3339Nano, "Kitchen": time.Kitchen, "Stamp": time.Stamp,
	"StampMilli": time.StampMilli, "StampMicro": time.StampMicro, "StampNano": time.StampNano,
	"DateTime": time.DateTime, "DateOnly": time.DateOnly, "TimeOnly": time.TimeOnly,
}

// TimeLayout resolves a timestamp stage format: a Go layout, a named layout,
// or one of the epoch names Unix, UnixMs, UnixUs, UnixNs (returned as is).
func TimeLayout(format string) (layout string, epoch bool) {
	switch format {
	case "Unix", "UnixMs", "UnixUs", "UnixNs":
		return format, true
	}
	if l, ok := namedTimeFormats[format]; ok {
		return l, false
	}
	return format, false
}

func checkTimeFormat(f string) error {
	if f == "" {
		return fmt.Errorf("missing")
	}
	if _, epoch := TimeLayout(f); epoch {
		return nil
	}
	l, known := TimeLayout(f)
	_, named := namedTimeFormats[f]
	known = known || named
	// A single word that is not a known name is a typo of one (e.g.
	// "RFC3399", "UnixMS"), not a layout; and a layout must contain at least
	// one reference-time element, or it would never parse anything.
	word := isLetter(f[0])
	for i := 0; i < len(f) && word; i++ {
		word = isLetter(f[i]) || (f[i] >= '0' && f[i] <= '9')
	}
	other := time.Date(2017, 11, 23, 9, 8, 7, 0, time.UTC)
	if (word && !known) || other.Format(l) == l {
		return fmt.Errorf("%q is neither a Go layout (e.g. 2006-01-02 15:04:05) nor a known name (RFC3339, RFC3339Nano, Unix, UnixMs, UnixUs, UnixNs, ANSIC, ...)", f)
	}
	return nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// ValidateStages checks a pipeline_stages list on its own, with the same
// messages Settings.Validate gives, for code that builds stages directly.
func ValidateStages(st []Stage) error {
	var errs errList
	validateStages(&errs, "pipeline_stages", st)
	return errs.err()
}

func validateStages(errs *errList, path string, st []Stage) {
	for i, s := range st {
		p := fmt.Sprintf("%s[%d]", path, i)
		types := s.types()
		if len(types) == 0 {
			errs.addf("%s: empty stage: give one of %s", p, stageTypes)
			continue
		}
		if len(types) > 1 {
			errs.addf("%s: one stage per list item, found %s", p, strings.Join(types, " and "))
			continue
		}
		p += "." + types[0]
		checkRe := func(key, re string, required bool) {
			if re == "" {
				if required {
					errs.addf("%s.%s: missing", p, key)
				}
				return
			}
			if _, err := regexp.Compile(re); err != nil {
				errs.addf("%s.%s: invalid regular expression: %v", p, key, err)
			}
		}
		switch {
		case s.Regex != nil:
			checkRe("expression", s.Regex.Expression, true)
			if re, err := regexp.Compile(s.Regex.Expression); err == nil && s.Regex.Expression != "" {
				named := false
				for _, n := range re.SubexpNames() {
					named = named || n != ""
				}
				if !named {
					errs.addf("%s.expression: has no named capture group such as (?P<level>\\w+): nothing would be extracted", p)
				}
			}
		case s.JSON != nil:
			if len(s.JSON.Expressions) == 0 {
				errs.addf("%s.expressions: missing: name the values to extract, e.g. {level: level, depth: queue.depth}", p)
			}
			for name, expr := range s.JSON.Expressions {
				if expr == "" {
					expr = name
				}
				if _, err := logql.ParsePromtailJSONPath(expr); err != nil {
					errs.addf("%s.expressions.%s: %v", p, name, err)
				}
			}
		case s.Labels != nil:
			for k := range s.Labels {
				if err := CheckLabelName(k); err != nil {
					errs.addf("%s.%s: %v", p, k, err)
				}
			}
		case s.StaticLabels != nil:
			for k := range s.StaticLabels {
				if err := CheckLabelName(k); err != nil {
					errs.addf("%s.%s: %v", p, k, err)
				}
			}
		case s.Timestamp != nil:
			t := s.Timestamp
			if t.Source == "" {
				errs.addf("%s.source: missing: name the extracted value holding the time", p)
			}
			if err := checkTimeFormat(t.Format); err != nil {
				errs.addf("%s.format: %v", p, err)
			}
			for j, f := range t.FallbackFormats {
				if err := checkTimeFormat(f); err != nil {
					errs.addf("%s.fallback_formats[%d]: %v", p, j, err)
				}
			}
			if t.Location != "" {
				if _, err := time.LoadLocation(t.Location); err != nil {
					errs.addf("%s.location: unknown time zone %q (use an IANA name such as Asia/Shanghai)", p, t.Location)
				}
			}
			switch t.ActionOnFailure {
			case "", "fudge", "skip":
			default:
				errs.addf("%s.action_on_failure: %q is not fudge or skip", p, t.ActionOnFailure)
			}
		case s.Multiline != nil:
			checkRe("firstline", s.Multiline.FirstLine, true)
			if s.Multiline.MaxLines < 0 {
				errs.addf("%s.max_lines: must not be negative", p)
			}
		case s.Drop != nil:
			d := s.Drop
			checkRe("expression", d.Expression, false)
			if d.Expression != "" && d.Value != nil {
				errs.addf("%s: expression and value are mutually exclusive", p)
			}
			if d.Value != nil && len(d.Source) == 0 {
				errs.addf("%s.value: needs a source", p)
			}
			if len(d.Source) == 0 && d.Expression == "" && d.Value == nil && d.OlderThan == 0 && d.LongerThan == 0 {
				errs.addf("%s: no condition: give source, expression, value, older_than or longer_than", p)
			}
		case s.Match != nil:
			m := s.Match
			if m.Selector == "" {
				errs.addf("%s.selector: missing", p)
			} else if _, err := ParseSelector(m.Selector); err != nil {
				errs.addf("%s.selector: %v", p, err)
			}
			switch m.Action {
			case "", "keep":
				if len(m.Stages) == 0 {
					errs.addf("%s.stages: missing: a keep match needs stages (or use action: drop)", p)
				}
			case "drop":
				if len(m.Stages) > 0 {
					errs.addf("%s.stages: not allowed with action: drop", p)
				}
			default:
				errs.addf("%s.action: %q is not keep or drop", p, m.Action)
			}
			validateStages(errs, p+".stages", m.Stages)
		case s.Template != nil:
			if s.Template.Source == "" {
				errs.addf("%s.source: missing", p)
			}
			if _, err := logql.ParsePromtailTemplate("t", s.Template.Template); err != nil {
				errs.addf("%s.template: %v", p, err)
			}
		case s.Output != nil:
			if s.Output.Source == "" {
				errs.addf("%s.source: missing", p)
			}
		case s.Replace != nil:
			checkRe("expression", s.Replace.Expression, true)
			if _, err := logql.ParsePromtailTemplate("t", s.Replace.Replace); err != nil {
				errs.addf("%s.replace: %v", p, err)
			}
		case s.LabelDrop != nil, s.LabelAllow != nil:
			for _, n := range append(append([]string{}, s.LabelDrop...), s.LabelAllow...) {
				if err := CheckLabelName(n); err != nil {
					errs.addf("%s: %v", p, err)
				}
			}
		}
	}
}
