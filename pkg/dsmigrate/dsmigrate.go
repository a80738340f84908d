// Package dsmigrate points Grafana dashboards and alert rules at another
// datasource. Lokal's queries are Loki's (same fields: expr, queryType,
// legendFormat, maxLines; same LogQL), so moving a dashboard or a rule
// from Lokal to a Loki is a change of datasource references only:
//
//   - "datasource": {"type": ..., "uid": FROM} objects (panels, targets,
//     variables, annotations, rule models) get the new uid and type;
//   - "datasource": "FROM" (the old string form) gets the new uid;
//   - "datasourceUid": "FROM" (provisioned and exported alert rules);
//   - datasource variables ("type": "datasource", "query": FROMTYPE), and an
//     export's __inputs (pluginId) and __requires (id) entries get the type.
//
// JSON keeps its key order (re-indented with two spaces, as Grafana
// exports); YAML is patched in place, so comments and layout stay.
package dsmigrate

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LokalType is the Lokal datasource's plugin id; LokiType Grafana's Loki.
const (
	LokalType = "lokal-logql-datasource"
	LokiType  = "loki"
)

// Options say what to rewrite into what.
type Options struct {
	FromUID  string
	FromType string // default LokalType
	ToUID    string
	ToType   string // default LokiType
}

func (o *Options) defaults() error {
	if o.FromType == "" {
		o.FromType = LokalType
	}
	if o.ToType == "" {
		o.ToType = LokiType
	}
	if o.FromUID == "" || o.ToUID == "" {
		return errors.New("both the old and the new datasource uid are needed")
	}
	return nil
}

// Rewrite rewrites a dashboard or rule file, JSON or YAML by its name's
// extension, returning the new bytes and how many references changed.
func Rewrite(name string, data []byte, o Options) ([]byte, int, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return RewriteYAML(data, o)
	default:
		return RewriteJSON(data, o)
	}
}

// node is a JSON value that remembers its keys' order.
type node struct {
	obj  []member // object (isObj)
	arr  []*node  // array (isArr)
	lit  json.RawMessage
	kind byte // '{', '[' or 0 for a literal
}

type member struct {
	key string
	val *node
}

func (n *node) str() (string, bool) {
	if n.kind != 0 || len(n.lit) == 0 || n.lit[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(n.lit, &s); err != nil {
		return "", false
	}
	return s, true
}

func (n *node) setStr(s string) { n.lit = marshal(s) }

// marshal encodes a literal as Grafana writes it: no HTML escaping.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (n *node) get(key string) *node {
	for _, m := range n.obj {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

func parseJSON(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: '{'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := parseJSON(dec)
				if err != nil {
					return nil, err
				}
				n.obj = append(n.obj, member{k, v})
			}
			_, err := dec.Token()
			return n, err
		case '[':
			n := &node{kind: '['}
			for dec.More() {
				v, err := parseJSON(dec)
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, v)
			}
			_, err := dec.Token()
			return n, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return &node{lit: marshal(t)}, nil
	}
}

func (n *node) write(b *bytes.Buffer, indent string) {
	switch n.kind {
	case '{':
		writeItems(b, indent, "{", "}", len(n.obj), func(i int, inner string) {
			b.Write(marshal(n.obj[i].key))
			b.WriteString(": ")
			n.obj[i].val.write(b, inner)
		})
	case '[':
		writeItems(b, indent, "[", "]", len(n.arr), func(i int, inner string) {
			n.arr[i].write(b, inner)
		})
	default:
		b.Write(n.lit)
	}
}

// writeItems writes n items between opening and closing, one a line indented two
// spaces deeper than indent, or opening+closing alone when there are none.
func writeItems(b *bytes.Buffer, indent, opening, closing string, n int, item func(i int, inner string)) {
	if n == 0 {
		b.WriteString(opening + closing)
		return
	}
	inner := indent + "  "
	b.WriteString(opening + "\n")
	for i := 0; i < n; i++ {
		b.WriteString(inner)
		item(i, inner)
		if i < n-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(indent + closing)
}

// RewriteJSON rewrites a dashboard (or exported rule) JSON document.
func RewriteJSON(data []byte, o Options) ([]byte, int, error) {
	if err := o.defaults(); err != nil {
		return nil, 0, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := parseJSON(dec)
	if err != nil {
		return nil, 0, fmt.Errorf("parse JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, 0, errors.New("parse JSON: more than one value")
	}
	n := rewriteJSONNode(root, o)
	var b bytes.Buffer
	root.write(&b, "")
	b.WriteByte('\n')
	return b.Bytes(), n, nil
}

// jsonAccess adapts a JSON object to the rewriting rules.
type jsonAccess struct{ n *node }

func (a jsonAccess) str(k string) (string, bool) {
	if v := a.n.get(k); v != nil {
		return v.str()
	}
	return "", false
}

func (a jsonAccess) set(k, v string) { a.n.get(k).setStr(v) }

func (a jsonAccess) child(k string) (access, bool) {
	v := a.n.get(k)
	if v == nil || v.kind != '{' {
		return nil, false
	}
	return jsonAccess{v}, true
}

func rewriteJSONNode(n *node, o Options) int {
	count := 0
	switch n.kind {
	case '{':
		count += rewriteObject(jsonAccess{n}, o)
		for _, m := range n.obj {
			count += rewriteJSONNode(m.val, o)
		}
	case '[':
		for _, v := range n.arr {
			count += rewriteJSONNode(v, o)
		}
	}
	return count
}

// access is an object of either format.
type access interface {
	str(key string) (string, bool)
	set(key, val string)
	child(key string) (access, bool)
}

// rewriteObject applies the rules to one object (not its children).
func rewriteObject(a access, o Options) int {
	count := 0
	if ds, ok := a.child("datasource"); ok {
		uid, _ := ds.str("uid")
		typ, hasType := ds.str("type")
		if uid == o.FromUID && (!hasType || typ == o.FromType) {
			ds.set("uid", o.ToUID)
			if hasType {
				ds.set("type", o.ToType)
			}
			count++
		}
	} else if s, ok := a.str("datasource"); ok && s == o.FromUID {
		a.set("datasource", o.ToUID)
		count++
	}
	if s, ok := a.str("datasourceUid"); ok && s == o.FromUID {
		a.set("datasourceUid", o.ToUID)
		count++
	}
	if t, _ := a.str("type"); t == "datasource" {
		if q, ok := a.str("query"); ok && q == o.FromType {
			a.set("query", o.ToType) // a datasource variable
			count++
		}
		if p, ok := a.str("pluginId"); ok && p == o.FromType {
			a.set("pluginId", o.ToType) // __inputs
			count++
		}
		if id, ok := a.str("id"); ok && id == o.FromType {
			a.set("id", o.ToType) // __requires
			if _, ok := a.str("name"); ok {
				a.set("name", "Loki")
			}
			count++
		}
	}
	return count
}

// yamlAccess adapts a YAML mapping node; changed scalars are collected in
// edits too, so the file can be patched in place.
type yamlAccess struct {
	n     *yaml.Node
	edits *[]yamlEdit
}

// yamlEdit replaces the scalar at a position of the original text.
type yamlEdit struct {
	node     *yaml.Node
	old, new string
}

func (a yamlAccess) val(k string) *yaml.Node {
	for i := 0; i+1 < len(a.n.Content); i += 2 {
		if a.n.Content[i].Value == k {
			return a.n.Content[i+1]
		}
	}
	return nil
}

func (a yamlAccess) str(k string) (string, bool) {
	v := a.val(k)
	if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", false
	}
	return v.Value, true
}

func (a yamlAccess) set(k, s string) {
	v := a.val(k)
	*a.edits = append(*a.edits, yamlEdit{node: v, old: v.Value, new: s})
	v.Value, v.Tag = s, "!!str"
}

func (a yamlAccess) child(k string) (access, bool) {
	v := a.val(k)
	if v == nil || v.Kind != yaml.MappingNode {
		return nil, false
	}
	return yamlAccess{v, a.edits}, true
}

func rewriteYAMLNode(n *yaml.Node, o Options, edits *[]yamlEdit) int {
	count := 0
	if n.Kind == yaml.MappingNode {
		count += rewriteObject(yamlAccess{n, edits}, o)
	}
	for _, c := range n.Content {
		count += rewriteYAMLNode(c, o, edits)
	}
	return count
}

// patchYAML applies edits to the original text, keeping every comment,
// blank line and folded string. It fails (ok false) when a scalar is not
// where the parser said, spelt plainly or in simple quotes.
func patchYAML(data []byte, edits []yamlEdit) ([]byte, bool) {
	lines := strings.SplitAfter(string(data), "\n")
	// Later edits on a line first, so earlier columns stay valid.
	slices.SortFunc(edits, func(a, b yamlEdit) int {
		if c := cmp.Compare(a.node.Line, b.node.Line); c != 0 {
			return c
		}
		return cmp.Compare(b.node.Column, a.node.Column)
	})
	for _, e := range edits {
		li, col := e.node.Line-1, e.node.Column-1
		if li < 0 || li >= len(lines) || col < 0 || col > len(lines[li]) || !isASCII(lines[li][:col]) {
			return nil, false
		}
		var oldTok, newTok string
		switch e.node.Style {
		case 0:
			oldTok, newTok = e.old, e.new
		case yaml.DoubleQuotedStyle:
			oldTok, newTok = strconv.Quote(e.old), strconv.Quote(e.new)
		case yaml.SingleQuotedStyle:
			oldTok, newTok = "'"+strings.ReplaceAll(e.old, "'", "''")+"'", "'"+strings.ReplaceAll(e.new, "'", "''")+"'"
		default:
			return nil, false
		}
		if !strings.HasPrefix(lines[li][col:], oldTok) {
			return nil, false
		}
		if e.node.Style == 0 {
			// A plain scalar that would read differently must be quoted.
			var probe yaml.Node
			if yaml.Unmarshal([]byte(newTok), &probe) != nil || len(probe.Content) != 1 ||
				probe.Content[0].Tag != "!!str" || probe.Content[0].Value != e.new {
				newTok = strconv.Quote(e.new)
			}
		}
		lines[li] = lines[li][:col] + newTok + lines[li][col+len(oldTok):]
	}
	return []byte(strings.Join(lines, "")), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// RewriteYAML rewrites a provisioning or exported rule YAML file (every
// document in it).
func RewriteYAML(data []byte, o Options) ([]byte, int, error) {
	if err := o.defaults(); err != nil {
		return nil, 0, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	count, docs := 0, 0
	var edits []yamlEdit
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("parse YAML: %w", err)
		}
		docs++
		count += rewriteYAMLNode(&doc, o, &edits)
		if err := enc.Encode(&doc); err != nil {
			return nil, 0, fmt.Errorf("write YAML: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, 0, fmt.Errorf("write YAML: %w", err)
	}
	// Patch the original text where possible (line numbers are per file
	// only for a single document); re-encode otherwise.
	if docs == 1 {
		if out, ok := patchYAML(data, edits); ok {
			return out, count, nil
		}
	}
	return b.Bytes(), count, nil
}
