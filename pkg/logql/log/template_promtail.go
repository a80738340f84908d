package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"text/template"

	"crypto/sha3"
)

// promtailSharedFuncs are the functions of Promtail's template and replace
// stages that line_format has too: the ingest stages run line_format's own
// implementations, bounded the same way (MaxTemplateOutput), plus
// text/template's printing and escaping builtins in their bounded form.
var promtailSharedFuncs = []string{
	"ToLower", "ToUpper", "Replace", "Trim", "TrimLeft", "TrimRight", "TrimPrefix", "TrimSuffix", "TrimSpace",
	"regexReplaceAll", "regexReplaceAllLiteral",
	"print", "println", "printf", "html", "js", "urlquery", stepFunc,
}

// promtailTemplateFuncs is the function set of the ingest template and
// replace stages. It differs from line_format's (TestTemplateDialects):
// only promtailSharedFuncs are offered, there is no __line__ or
// __timestamp__ (the stages pass .Entry and .Value instead), and Hash and
// Sha2Hash, which only Promtail has, pseudonymise values with a salt.
func promtailTemplateFuncs(st *templateState) template.FuncMap {
	all := templateFuncs(st)
	m := make(template.FuncMap, len(promtailSharedFuncs)+2)
	for _, name := range promtailSharedFuncs {
		m[name] = all[name]
	}
	m["Hash"] = func(s, salt string) string {
		h := sha3.Sum256([]byte(salt + s))
		return hex.EncodeToString(h[:])
	}
	m["Sha2Hash"] = func(s, salt string) string {
		h := sha256.Sum256([]byte(salt + s))
		return hex.EncodeToString(h[:])
	}
	return m
}

// PromtailTemplate is a compiled template of an ingest template or replace
// stage. It is not safe for concurrent use: a pipeline serves one
// goroutine.
type PromtailTemplate struct {
	tmpl *template.Template
	st   *templateState
}

// ParsePromtailTemplate parses a template stage's text (missing keys give
// their zero value, as in Promtail); name shows in its errors.
func ParsePromtailTemplate(name, text string) (*PromtailTemplate, error) {
	st := &templateState{}
	t, err := parseGuarded(template.New(name).Option("missingkey=zero").Funcs(promtailTemplateFuncs(st)), text)
	if err != nil {
		return nil, err
	}
	return &PromtailTemplate{tmpl: t, st: st}, nil
}

// Execute runs the template on data into a string. Its output, and that of
// each function, may exceed base (the size of what it formats) by at most
// MaxTemplateOutput.
func (p *PromtailTemplate) Execute(data map[string]any, base int) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("template panic: %v", r)
		}
	}()
	p.st.begin(base)
	var b bytes.Buffer
	if err := p.tmpl.Execute(limitWriter{b: &b, max: p.st.limit}, data); err != nil {
		return "", err
	}
	return b.String(), nil
}
