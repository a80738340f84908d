package log

import (
	"bytes"
	"fmt"
)

// NewLineFormatter returns `| line_format "template"`: the line becomes the
// template's output, with the line's labels as data (a missing label is
// ""), __line__ the current line and __timestamp__ the entry's time. A
// template that fails on a line keeps the line unchanged and sets
// __error__=TemplateFormatErr with the error in __error_details__.
func NewLineFormatter(text string) (Stage, error) {
	t, err := parseTemplate("line", text)
	if err != nil {
		return nil, fmt.Errorf("invalid line template: %w", err)
	}
	return &lineFormatter{t: t}, nil
}

type lineFormatter struct {
	t     *compiledTemplate
	owned bool
	// buf keeps its capacity from line to line: a template's output is
	// the stage's result until the next line.
	buf  bytes.Buffer
	data map[string]string
	vals []string // the fast template's field values
}

func (f *lineFormatter) ForStream() Stage {
	return &lineFormatter{t: f.t.clone(), owned: true, data: map[string]string{}}
}

func (f *lineFormatter) Process(ts int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	if !f.owned {
		// the shared instance keeps no state: work on a private copy
		return f.ForStream().Process(ts, line, lbs)
	}
	f.buf.Reset()
	var err error
	if f.t.fast != nil {
		f.vals = fastValues(f.vals, f.t.fast.fields, lbs)
		err = f.t.executeFast(&f.buf, ts, line, f.vals, f.data)
	} else {
		fillTemplateData(f.data, lbs)
		err = f.t.execute(&f.buf, ts, line, f.data)
	}
	if err != nil {
		lbs.SetErr(ErrTemplateFormat, err.Error())
		return line, true
	}
	return f.buf.Bytes(), true
}

func fillTemplateData(m map[string]string, lbs *LabelsBuilder) {
	clear(m)
	lbs.Range(func(name, value string) { m[name] = value })
}

// LabelFormat is one `dst=src` (Rename) or `dst="template"` of label_format.
type LabelFormat struct {
	Name   string
	Value  string // source label for a rename, template text otherwise
	Rename bool
}

// NewLabelsFormatter returns `| label_format a=b, c="{{...}}"`. A rename
// moves the source label's value to the destination (and drops the
// source) when the source exists; a template sets the destination to its
// output, all templates of the stage reading the labels as they were before
// it. A label may appear only once as a destination. Template errors set
// __error__=TemplateFormatErr and leave that label unchanged.
func NewLabelsFormatter(formats []LabelFormat) (Stage, error) {
	seen := map[string]bool{}
	lf := &labelsFormatter{}
	for _, f := range formats {
		if f.Name == ErrorLabel {
			return nil, fmt.Errorf("%s cannot be formatted", f.Name)
		}
		if !IsValidLabelName(f.Name) {
			return nil, fmt.Errorf("invalid label name %q in label_format", f.Name)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("multiple label name '%s' not allowed in a single format operation", f.Name)
		}
		seen[f.Name] = true
		lf.formats = append(lf.formats, f)
		if f.Rename {
			if !IsValidLabelName(f.Value) {
				return nil, fmt.Errorf("invalid label name %q in label_format", f.Value)
			}
			lf.templates = append(lf.templates, nil)
			continue
		}
		t, err := parseTemplate("label", f.Value)
		if err != nil {
			return nil, fmt.Errorf("invalid template for label '%s': %w", f.Name, err)
		}
		lf.templates = append(lf.templates, t)
	}
	return lf, nil
}

type labelsFormatter struct {
	formats   []LabelFormat
	templates []*compiledTemplate
	owned     bool
	buf       bytes.Buffer
	data      map[string]string
	// vals[i] holds the field values of templates[i] when it is fast,
	// fastData is its fallback's data, and slow tells whether some
	// template needs all labels in data.
	vals     [][]string
	fastData map[string]string
	slow     bool
}

func (lf *labelsFormatter) ForStream() Stage {
	out := &labelsFormatter{formats: lf.formats, owned: true, data: map[string]string{}, fastData: map[string]string{}}
	for _, t := range lf.templates {
		if t != nil {
			t = t.clone()
			out.slow = out.slow || t.fast == nil
		}
		out.templates = append(out.templates, t)
	}
	out.vals = make([][]string, len(lf.templates))
	return out
}

func (lf *labelsFormatter) Process(ts int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	if !lf.owned {
		return lf.ForStream().Process(ts, line, lbs)
	}
	filled := false
	for i, f := range lf.formats {
		if f.Rename {
			// Loki deletes the source after setting the destination, so
			// `a=a` removes a.
			if v, ok := lbs.Get(f.Value); ok {
				lbs.Set(f.Name, v)
				lbs.Del(f.Value)
			}
			continue
		}
		if !filled {
			// every template reads the labels as they are here
			if lf.slow {
				fillTemplateData(lf.data, lbs)
			}
			for j, t := range lf.templates {
				if t != nil && t.fast != nil {
					lf.vals[j] = fastValues(lf.vals[j], t.fast.fields, lbs)
				}
			}
			filled = true
		}
		lf.buf.Reset()
		var err error
		if t := lf.templates[i]; t.fast != nil {
			err = t.executeFast(&lf.buf, ts, line, lf.vals[i], lf.fastData)
		} else {
			err = t.execute(&lf.buf, ts, line, lf.data)
		}
		if err != nil {
			lbs.SetErr(ErrTemplateFormat, err.Error())
			continue
		}
		lbs.Set(f.Name, lf.buf.String())
	}
	return line, true
}
