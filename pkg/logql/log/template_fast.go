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

// fastVal is a value of a fast template, unboxed: a string, an int (a
// constant), an int64 (what the integer functions return) or a float64.
type fastVal struct {
	kind fastKind
	s    string
	n    int64
	f    float64
}

type fastKind uint8

const (
	fastString fastKind = iota
	fastInt
	fastInt64
	fastFloat
)

// int64 is toInt64 of the value.
func (v fastVal) int64() int64 {
	switch v.kind {
	case fastString:
		return stringToInt64(v.s)
	case fastFloat:
		return int64(v.f)
	}
	return v.n
}

// boxed is the value as text/template would pass it to a function.
func (v fastVal) boxed() any {
	switch v.kind {
	case fastString:
		return v.s
	case fastInt:
		return int(v.n)
	case fastInt64:
		return v.n
	}
	return v.f
}

// fastExpr is a field (field >= 0), a constant (fn == fastNone and
// field < 0) or a call of fn with args.
type fastExpr struct {
	field int
	konst fastVal
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
		return &fastExpr{field: -1, konst: fastVal{kind: fastString, s: x.Text}}
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
func fastNumber(text string) (fastVal, bool) {
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
			return fastVal{}, false
		}
	}
	if digits == 0 || dot == len(text)-1 {
		return fastVal{}, false
	}
	if dot < 0 {
		if text[0] == '0' && len(text) > 1 { // octal in Go's syntax
			return fastVal{}, false
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || int64(int(n)) != n {
			return fastVal{}, false
		}
		return fastVal{kind: fastInt, n: n}, true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return fastVal{}, false
	}
	return fastVal{kind: fastFloat, f: f}, true
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
		switch v.kind {
		case fastString:
			buf.WriteString(v.s)
		case fastInt, fastInt64:
			buf.Write(strconv.AppendInt(buf.AvailableBuffer(), v.n, 10))
		default:
			buf.Write(fmt.Append(buf.AvailableBuffer(), v.f))
		}
		if buf.Len() > st.limit {
			return errFastFallback
		}
	}
	return nil
}

func (e *fastExpr) eval(st *templateState, vals []string) (fastVal, error) {
	if e.field >= 0 {
		return fastVal{kind: fastString, s: vals[e.field]}, nil
	}
	if e.fn == fastNone {
		return e.konst, nil
	}
	var store [4]fastVal
	args := store[:0]
	for _, a := range e.args {
		v, err := a.eval(st, vals)
		if err != nil {
			return fastVal{}, err
		}
		args = append(args, v)
	}
	if e.fn == fastPrintf {
		if args[0].kind != fastString {
			return fastVal{}, errFastFallback
		}
		boxed := make([]any, len(args)-1)
		for i, a := range args[1:] {
			boxed[i] = a.boxed()
		}
		out, err := st.printf(args[0].s, boxed...)
		return fastVal{kind: fastString, s: out}, err
	}
	var n int64
	switch e.fn {
	case fastAdd:
		for _, a := range args {
			n += a.int64()
		}
	case fastSub:
		n = args[0].int64() - args[1].int64()
	case fastMul:
		n = args[0].int64()
		for _, a := range args[1:] {
			n *= a.int64()
		}
	case fastDiv, fastMod:
		d := args[1].int64()
		if d == 0 { // text/template reports the error
			return fastVal{}, errFastFallback
		}
		if e.fn == fastDiv {
			n = args[0].int64() / d
		} else {
			n = args[0].int64() % d
		}
	case fastMax, fastMin:
		n = args[0].int64()
		for _, a := range args[1:] {
			if e.fn == fastMax {
				n = max(n, a.int64())
			} else {
				n = min(n, a.int64())
			}
		}
	default:
		return fastVal{}, errFastFallback
	}
	return fastVal{kind: fastInt64, n: n}, nil
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
