package log

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"text/template/parse"
)

// A fast template is a line_format/label_format template made only of
// text, single-name fields ({{.text_len}}), string and plain decimal
// constants, parenthesised pipes and the integer functions and printf,
// evaluated without text/template's reflection and without a map of all
// labels: it reads just the labels it names. Anything it cannot evaluate
// the way text/template would (an error, a wrong argument type, output
// over the limit) makes it hand the line to text/template, so results and
// error messages are text/template's own.

// errFastFallback asks for the line to be run by text/template.
var errFastFallback = errors.New("fast template: fall back to text/template")

type fastFunc uint8

const (
	fastNone fastFunc = iota
	fastAdd
	fastSub
	fastMul
	fastDiv
	fastMod
	fastMax
	fastMin
	fastPrintf
)

// fastFuncs maps the supported functions to their minimum and maximum
// argument counts (-1: variadic), as their Go signatures accept them.
var fastFuncs = map[string]struct {
	fn       fastFunc
	min, max int
}{
	"add":    {fastAdd, 0, -1},
	"sub":    {fastSub, 2, 2},
	"mul":    {fastMul, 1, -1},
	"div":    {fastDiv, 2, 2},
	"mod":    {fastMod, 2, 2},
	"max":    {fastMax, 1, -1},
	"min":    {fastMin, 1, -1},
	"printf": {fastPrintf, 1, -1},
}

// fastExpr is a field (field >= 0), a constant (fn == fastNone and
// field < 0) or a call of fn with args.
type fastExpr struct {
	field int
	konst any
	fn    fastFunc
	args  []*fastExpr
}

// fastPart is literal text, or an action when expr is set.
type fastPart struct {
	text string
	expr *fastExpr
}

type fastTemplate struct {
	parts []fastPart
	// fields are the label names the template reads, each once.
	fields []string
}

// compileFast returns the fast form of a parsed and guarded (guardTree)
// template, or nil when it uses anything else.
func compileFast(trees []*parse.Tree) *fastTemplate {
	if len(trees) != 1 || trees[0] == nil || trees[0].Root == nil {
		return nil
	}
	ft := &fastTemplate{}
	nodes := trees[0].Root.Nodes
	if len(nodes) > 0 && isStepAction(nodes[0]) {
		nodes = nodes[1:] // guardTree's, counted by execute
	}
	for _, n := range nodes {
		switch x := n.(type) {
		case *parse.TextNode:
			ft.parts = append(ft.parts, fastPart{text: string(x.Text)})
		case *parse.ActionNode:
			e := ft.compilePipe(x.Pipe)
			if e == nil {
				return nil
			}
			ft.parts = append(ft.parts, fastPart{expr: e})
		default:
			return nil
		}
	}
	return ft
}

func (ft *fastTemplate) compilePipe(p *parse.PipeNode) *fastExpr {
	if p == nil || p.IsAssign || len(p.Decl) > 0 || len(p.Cmds) == 0 {
		return nil
	}
	var prev *fastExpr
	for i, cmd := range p.Cmds {
		if len(cmd.Args) == 0 {
			return nil
		}
		id, isFunc := cmd.Args[0].(*parse.IdentifierNode)
		if !isFunc {
			// a non-function takes no arguments and cannot be piped into
			if len(cmd.Args) != 1 || i > 0 {
				return nil
			}
			prev = ft.compileArg(cmd.Args[0])
			if prev == nil {
				return nil
			}
			continue
		}
		f, ok := fastFuncs[id.Ident]
		if !ok {
			return nil
		}
		call := &fastExpr{field: -1, fn: f.fn}
		for _, a := range cmd.Args[1:] {
			e := ft.compileArg(a)
			if e == nil {
				return nil
			}
			call.args = append(call.args, e)
		}
		if prev != nil {
			call.args = append(call.args, prev)
		}
		if len(call.args) < f.min || (f.max >= 0 && len(call.args) > f.max) {
			return nil
		}
		prev = call
	}
	return prev
}

func (ft *fastTemplate) compileArg(n parse.Node) *fastExpr {
	switch x := n.(type) {
	case *parse.FieldNode:
		if len(x.Ident) != 1 {
			return nil
		}
		return &fastExpr{field: ft.fieldIndex(x.Ident[0])}
	case *parse.StringNode:
		return &fastExpr{field: -1, konst: x.Text}
	case *parse.NumberNode:
		if k, ok := fastNumber(x.Text); ok {
			return &fastExpr{field: -1, konst: k}
		}
		return nil
	case *parse.PipeNode:
		return ft.compilePipe(x)
	}
	return nil
}

// fastNumber is the value text/template gives a numeric constant passed
// as an interface: an int for plain decimal digits, a float64 for
// digits.digits; other spellings (hex, runes, exponents) are not handled.
func fastNumber(text string) (any, bool) {
	digits, dot := 0, -1
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case '0' <= c && c <= '9':
			digits++
		case c == '.' && dot < 0 && i > 0:
			dot = i
		case (c == '-' || c == '+') && i == 0:
		default:
			return nil, false
		}
	}
	if digits == 0 || dot == len(text)-1 {
		return nil, false
	}
	if dot < 0 {
		if text[0] == '0' && len(text) > 1 { // octal in Go's syntax
			return nil, false
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || int64(int(n)) != n {
			return nil, false
		}
		return int(n), true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, false
	}
	return f, true
}

func (ft *fastTemplate) fieldIndex(name string) int {
	for i, f := range ft.fields {
		if f == name {
			return i
		}
	}
	ft.fields = append(ft.fields, name)
	return len(ft.fields) - 1
}

// execute writes the template's output for field values vals (in the
// order of fields) into buf, or returns errFastFallback.
func (ft *fastTemplate) execute(buf *bytes.Buffer, st *templateState, vals []string) error {
	// what the step guard at the top of the template counts
	if _, err := st.step(); err != nil {
		return errFastFallback
	}
	for _, p := range ft.parts {
		if p.expr == nil {
			buf.WriteString(p.text)
			continue
		}
		v, err := p.expr.eval(st, vals)
		if err != nil {
			return errFastFallback
		}
		switch x := v.(type) {
		case string:
			buf.WriteString(x)
		case int64:
			buf.Write(strconv.AppendInt(buf.AvailableBuffer(), x, 10))
		case int:
			buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(x), 10))
		default:
			buf.Write(fmt.Append(buf.AvailableBuffer(), x))
		}
		if buf.Len() > st.limit {
			return errFastFallback
		}
	}
	return nil
}

func (e *fastExpr) eval(st *templateState, vals []string) (any, error) {
	if e.field >= 0 {
		return vals[e.field], nil
	}
	if e.fn == fastNone {
		return e.konst, nil
	}
	var store [4]any
	args := store[:0]
	for _, a := range e.args {
		v, err := a.eval(st, vals)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	switch e.fn {
	case fastAdd:
		return tplAdd(args...), nil
	case fastSub:
		return tplSub(args[0], args[1]), nil
	case fastMul:
		return tplMul(args[0], args[1:]...), nil
	case fastDiv:
		return tplDiv(args[0], args[1])
	case fastMod:
		return tplMod(args[0], args[1])
	case fastMax:
		return tplMax(args[0], args[1:]...), nil
	case fastMin:
		return tplMin(args[0], args[1:]...), nil
	case fastPrintf:
		format, ok := args[0].(string)
		if !ok {
			return nil, errFastFallback
		}
		return st.printf(format, args[1:]...)
	}
	return nil, errFastFallback
}

// isStepAction reports whether n is the call guardTree puts first.
func isStepAction(n parse.Node) bool {
	a, ok := n.(*parse.ActionNode)
	if !ok || a.Pipe == nil || len(a.Pipe.Decl) > 0 || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return false
	}
	id, ok := a.Pipe.Cmds[0].Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == stepFunc
}
