package log

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/template/parse"
	"unicode"
	"unicode/utf8"
)

// The bounded template functions: each computes the size of its result
// from its arguments and fails (a TemplateFormatErr on the line) before
// allocating when the result would pass the execution's limit.

const (
	// maxTemplateWork bounds the bytes all functions of one execution may
	// produce together, results that are never printed included, so a
	// template of thousands of discarded repeats stays cheap per line.
	maxTemplateWork = 16 * MaxTemplateOutput
	// maxTemplateSteps bounds range iterations plus template invocations of
	// one execution: text/template ranges over integers and recurses
	// through {{template}}, neither of which calls a function that could
	// count. An iteration costs about 1.5 µs, so this keeps a line under
	// 0.1 s; a range over a parsed JSON array of a line Loki accepts
	// (256 KiB) stays far below it.
	maxTemplateSteps = 1 << 16
	// stepFunc is the hidden function guardTree inserts.
	stepFunc = "__step__"
)

// begin resets the per-execution budgets for a line of lineLen bytes.
func (s *templateState) begin(lineLen int) {
	s.limit = MaxTemplateOutput + lineLen
	s.work, s.steps = 0, 0
}

// produce records size bytes a function is about to return and fails when
// the result, or all results of this execution, would pass the limits.
func (s *templateState) produce(what string, size uint64) error {
	if err := s.check(what, size); err != nil {
		return err
	}
	s.work += size
	if s.work > uint64(maxTemplateWork+s.limit) {
		return fmt.Errorf("%s: the template's functions produced more than %d KiB for one line", what, (maxTemplateWork+s.limit)>>10)
	}
	return nil
}

func (s *templateState) step() (string, error) {
	s.steps++
	if s.steps > maxTemplateSteps {
		return "", fmt.Errorf("more than %d range iterations and template calls for one line", maxTemplateSteps)
	}
	return "", nil
}

func (s *templateState) repeat(n int, str string) (string, error) {
	if n <= 0 || str == "" {
		return "", nil
	}
	if err := s.produce("repeat", mulSize(uint64(n), uint64(len(str)))); err != nil {
		return "", err
	}
	return strings.Repeat(str, n), nil
}

// indent pads every line of str with n spaces, after prefix.
func (s *templateState) indent(what, prefix string, n int, str string) (string, error) {
	n = max(n, 0)
	lines := uint64(strings.Count(str, "\n")) + 1
	size := uint64(len(prefix)) + uint64(len(str)) + mulSize(lines, uint64(n))
	if err := s.produce(what, size); err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", n)
	return prefix + pad + strings.ReplaceAll(str, "\n", "\n"+pad), nil
}

// replaceN is strings.Replace with its result's size checked first.
func (s *templateState) replaceN(str, old, repl string, n int) (string, error) {
	if n == 0 || old == repl {
		return str, nil
	}
	var m uint64
	if old == "" {
		m = uint64(utf8.RuneCountInString(str)) + 1
	} else {
		m = uint64(strings.Count(str, old))
	}
	if n > 0 && uint64(n) < m {
		m = uint64(n)
	}
	if len(repl) > len(old) {
		size := uint64(len(str)) + mulSize(m, uint64(len(repl)-len(old)))
		if err := s.produce("replace", size); err != nil {
			return "", err
		}
	}
	return strings.Replace(str, old, repl, n), nil
}

// mapCase changes case rune by rune, as strings.ToUpper/ToLower do
// (invalid bytes become U+FFFD), after sizing the result.
func (s *templateState) mapCase(what, str string, f func(rune) rune) (string, error) {
	if err := s.produce(what, mappedSize(str, f)); err != nil {
		return "", err
	}
	return strings.Map(f, str), nil
}

func mappedSize(str string, f func(rune) rune) uint64 {
	var n uint64
	for _, r := range str {
		if r < utf8.RuneSelf {
			n++
			continue
		}
		n += uint64(utf8.RuneLen(f(r)))
	}
	return n
}

// titleCase upper-cases the first letter of every word.
func (s *templateState) titleCase(str string) (string, error) {
	if err := s.produce("title", mappedSize(str, unicode.ToTitle)); err != nil {
		return "", err
	}
	prev := ' '
	return strings.Map(func(r rune) rune {
		sep := isWordSeparator(prev)
		prev = r
		if sep {
			return unicode.ToTitle(r)
		}
		return r
	}, str), nil
}

// align pads or cuts str to n characters, keeping its start (or its end
// when right is set).
func (s *templateState) align(what string, n int, str string, right bool) (string, error) {
	c := utf8.RuneCountInString(str)
	if n < 0 || n == c {
		return str, nil
	}
	if c > n {
		if right {
			return validRunes(str[runeOffset(str, c-n):]), nil
		}
		return validRunes(str[:runeOffset(str, n)]), nil
	}
	if err := s.produce(what, uint64(len(str))+uint64(n-c)); err != nil {
		return "", err
	}
	if right {
		return strings.Repeat(" ", n-c) + str, nil
	}
	return str + strings.Repeat(" ", n-c), nil
}

// runeOffset is the byte offset of the i-th character of str (len(str)
// past the end), counting invalid bytes as one character each as a
// conversion to []rune does.
func runeOffset(str string, i int) int {
	off := 0
	for ; i > 0 && off < len(str); i-- {
		_, w := utf8.DecodeRuneInString(str[off:])
		off += w
	}
	return off
}

// validRunes replaces every invalid byte with U+FFFD, as cutting through a
// []rune conversion does, without making the 4-bytes-a-character copy.
func validRunes(str string) string {
	return strings.Map(func(r rune) rune { return r }, str)
}

// urlencode is url.QueryEscape, sized first: every byte outside the
// unreserved set but space becomes %XX.
func (s *templateState) urlencode(str string) (string, error) {
	n := uint64(len(str))
	for i := 0; i < len(str); i++ {
		c := str[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~ ", c) >= 0) {
			n += 2
		}
	}
	if err := s.produce("urlencode", n); err != nil {
		return "", err
	}
	return url.QueryEscape(str), nil
}

func (s *templateState) urlquery(args []any) (string, error) {
	str, err := s.argString("urlquery", args)
	if err != nil {
		return "", err
	}
	return s.urlencode(str)
}

// argString is the string text/template's escaping builtins work on: the
// one string argument, or the arguments printed together.
func (s *templateState) argString(what string, args []any) (string, error) {
	if len(args) == 1 {
		if str, ok := args[0].(string); ok {
			return str, nil
		}
	}
	return s.sprint(what, fmt.Sprint, args)
}

// sprint prints args with fn (fmt.Sprint or fmt.Sprintln) once their
// printed sizes, one at a time, fit the limit.
func (s *templateState) sprint(what string, fn func(...any) string, args []any) (string, error) {
	var size uint64
	for _, a := range args {
		n, err := s.printedSize(what, a, size)
		if err != nil {
			return "", err
		}
		size += n + 1 // a separating space at most
	}
	if err := s.produce(what, size); err != nil {
		return "", err
	}
	return fn(args...), nil
}

// printedSize is the length of fmt.Sprint(a), found without printing a
// string and checked against what is left of the limit after used bytes.
func (s *templateState) printedSize(what string, a any, used uint64) (uint64, error) {
	var n uint64
	switch x := a.(type) {
	case string:
		n = uint64(len(x))
	case int64:
		n = uint64(len(strconv.AppendInt(make([]byte, 0, 24), x, 10)))
	case int:
		n = uint64(len(strconv.AppendInt(make([]byte, 0, 24), int64(x), 10)))
	default:
		var c countWriter
		fmt.Fprint(&c, a)
		n = c.n
	}
	if err := s.check(what, used+n); err != nil {
		return 0, err
	}
	return n, nil
}

// printf is fmt.Sprintf with every width and precision (literal or taken
// from an argument with *) checked against the limit before formatting.
func (s *templateState) printf(format string, args ...any) (string, error) {
	size := uint64(len(format))
	star := false
	for _, w := range formatNumbers(format, &star) {
		size += w
	}
	if star {
		for _, a := range args {
			if n, ok := a.(int); ok {
				size += uint64(max(n, -n))
			}
		}
	}
	for _, a := range args {
		n, err := s.printedSize("printf", a, size)
		if err != nil {
			return "", err
		}
		size += n
	}
	if err := s.produce("printf", size); err != nil {
		return "", err
	}
	return fmt.Sprintf(format, args...), nil
}

// formatNumbers returns the widths and precisions written in a printf
// format's verbs (saturated at MaxUint32), and sets star when one is
// taken from an argument.
func formatNumbers(format string, star *bool) []uint64 {
	var out []uint64
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		// flags, argument indexes, widths and precisions up to the verb
		for ; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				*star = true
			case '0' <= c && c <= '9':
				var n uint64
				for ; i < len(format) && '0' <= format[i] && format[i] <= '9'; i++ {
					n = min(n*10+uint64(format[i]-'0'), math.MaxUint32)
				}
				out = append(out, n)
				i--
			case strings.IndexByte("+-# .[]", c) >= 0:
			default:
				goto verb
			}
		}
	verb:
	}
	return out
}

// escape runs one of text/template's escapers after measuring its output
// with a counting writer.
func (s *templateState) escape(what string, esc func(io.Writer, []byte), args []any) (string, error) {
	str, err := s.argString(what, args)
	if err != nil {
		return "", err
	}
	var c countWriter
	esc(&c, []byte(str))
	if err := s.produce(what, c.n); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(int(c.n))
	esc(&b, []byte(str))
	return b.String(), nil
}

// regexReplace replaces every match of expr in str. The result is sized
// first from the matches: a literal replacement exactly, an expanded one
// by its text plus, for every $ reference in it, the match's length
// (submatches lie within the match), so an expansion can only be
// over-estimated.
func (s *templateState) regexReplace(what, expr, str, repl string, literal bool) (string, error) {
	re, err := s.regexp(expr)
	if err != nil {
		return "", err
	}
	if repl != "" {
		n, matched := matchStats(re, str)
		size := uint64(len(str)) - matched + mulSize(n, uint64(len(repl)))
		if refs := uint64(strings.Count(repl, "$")); !literal && refs > 0 {
			size += mulSize(refs, matched)
		}
		if err := s.produce(what, size); err != nil {
			return "", err
		}
	}
	if literal {
		return re.ReplaceAllLiteralString(str, repl), nil
	}
	return re.ReplaceAllString(str, repl), nil
}

// matchStats counts the matches of re in str and their total length
// without holding their positions (a regexp that matches everywhere would
// otherwise make a slice of pairs as long as the line).
func matchStats(re *regexp.Regexp, str string) (n, total uint64) {
	re.ReplaceAllStringFunc(str, func(m string) string {
		n++
		total += uint64(len(m))
		return ""
	})
	return n, total
}

// countWriter counts bytes written to it.
type countWriter struct{ n uint64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return len(p), nil
}

// limitWriter writes a template's output into b until it would pass max.
type limitWriter struct {
	b   *bytes.Buffer
	max int
}

func (w limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		return 0, errTemplateOutput{what: "the template's output"}
	}
	return w.b.Write(p)
}

// guardTree makes every range body and every template of the set start
// with a call to the step function, so that iterations and template calls
// are counted.
func guardTree(trees []*parse.Tree) {
	for _, t := range trees {
		if t == nil || t.Root == nil {
			continue
		}
		guardList(t.Root)
		t.Root.Nodes = append([]parse.Node{stepAction()}, t.Root.Nodes...)
	}
}

func guardList(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch x := n.(type) {
		case *parse.RangeNode:
			guardList(x.List)
			guardList(x.ElseList)
			if x.List == nil {
				x.List = &parse.ListNode{NodeType: parse.NodeList}
			}
			x.List.Nodes = append([]parse.Node{stepAction()}, x.List.Nodes...)
		case *parse.IfNode:
			guardList(x.List)
			guardList(x.ElseList)
		case *parse.WithNode:
			guardList(x.List)
			guardList(x.ElseList)
		}
	}
}

func stepAction() *parse.ActionNode {
	return &parse.ActionNode{NodeType: parse.NodeAction, Pipe: &parse.PipeNode{
		NodeType: parse.NodePipe,
		Cmds: []*parse.CommandNode{{
			NodeType: parse.NodeCommand,
			Args:     []parse.Node{&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Ident: stepFunc}},
		}},
	}}
}
