package log

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestLineFilters(t *testing.T) {
	cases := []struct {
		op    LineFilterOp
		value string
		line  string
		want  bool
	}{
		{OpContains, "error", "an error occurred", true},
		{OpContains, "error", "an ERROR occurred", false},
		{OpContains, "", "anything", true},
		{OpNotContains, "error", "all good", true},
		{OpNotContains, "error", "error!", false},
		{OpRegexp, "timeout|fail", "request failed", true},
		{OpRegexp, "timeout|fail", "ok", false},
		{OpRegexp, "err(or)?", "err", true},
		{OpRegexp, "^start", "start here", true},
		{OpRegexp, "^start", "not start", false},
		{OpRegexp, `(?i)cuda`, "CUDA out of memory", true},
		{OpRegexp, `(?i)cuda`, "cpu", false},
		{OpRegexp, `(?i)k`, "\u212a", true}, // Kelvin sign folds to k in RE2
		{OpRegexp, `(?i)s`, "\u017f", true}, // long s folds to s
		{OpRegexp, `.*needle.*`, "a needle b", true},
		{OpRegexp, `.*needle.*`, "a need b", false},
		{OpRegexp, `a.b`, "a\nb", false}, // . does not match newline without (?s)
		{OpRegexp, `(?s)a.b`, "a\nb", true},
		{OpRegexp, `.*`, "", true},
		{OpNotRegexp, "timeout|fail", "fine", true},
		{OpNotRegexp, "timeout|fail", "timeout", false},
		{OpRegexp, `error.*timeout`, "error: upstream timeout", true},
		{OpRegexp, `error.*timeout`, "timeout then error", false},
		{OpPattern, "<_>Generating audio<_>", "2024 DEBUG Generating audio: x", true},
		{OpPattern, "<_>Generating audio<_>", "2024 DEBUG Loading model", false},
		{OpPattern, "<_> foo", "x foo", true},
		{OpPattern, "<_> foo", "x foo bar", false}, // a trailing literal ends the line
		{OpPattern, "GET <path> 200", "GET /x 200", true},
		{OpPattern, "GET <path> 200", "POST /x 200", false},
		{OpPattern, "GET <path>", "xx GET /x", true},                     // like Loki, the filter does not anchor a leading literal
		{OpPattern, "<_>Generating audio<_>", "Generating audio", false}, // captures may not be empty
		{OpPattern, "<_> bar <_>", " bar ", false},
		{OpPattern, "<_>bar<_>", " bar ", true},
		{OpPattern, "foo <_>", "foo bar baz", true},
		{OpNotPattern, "<_>Generating audio<_>", "other", true},
		{OpPattern, "<_>", "", false}, // an empty line never matches a pattern
	}
	for _, tc := range cases {
		f, err := NewLineFilter(tc.op, tc.value)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.op, tc.value, err)
		}
		if got := f.Match([]byte(tc.line)); got != tc.want {
			t.Errorf("%s %q on %q = %v, want %v (%T)", tc.op, tc.value, tc.line, got, tc.want, f)
		}
	}
}

func TestLineFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		op    LineFilterOp
		value string
	}{
		{OpRegexp, "("},
		{OpNotRegexp, "a[b"},
		{OpPattern, "<a><b>"},
		{OpPattern, ""},
	} {
		if _, err := NewLineFilter(tc.op, tc.value); err == nil {
			t.Errorf("%s %q: want an error", tc.op, tc.value)
		}
	}
}

func TestRegexpSimplification(t *testing.T) {
	cases := []struct {
		expr string
		want string // type of the resulting filter
	}{
		{"foo", "log.containsFilter"},
		{".*foo.*", "log.containsFilter"},
		{"(foo)", "log.containsFilter"},
		{"timeout|fail", "log.multiContains"},
		{"abc|abd", "log.multiContains"}, // factored by the parser to ab[c-d]
		{"(?i)cuda", "log.foldContains"},
		{"", "log.TrueFilter"},
		{".*", "log.TrueFilter"},
		{"^foo", "log.regexpFilter"},
		{"fo+", "log.regexpFilter"},
		{"(?i)é", "log.regexpFilter"},
		{"(?i)(timeout|fail)", "log.foldContains"},
		{"(?i)abc|abd", "log.foldContains"},
		{"(?i)error: 42", "log.foldContains"},
		{"(?i)a|B", "log.multiContains"}, // the parser makes it [ABab]
		{"(?i)x|[0-9]", "log.regexpFilter"},
	}
	for _, tc := range cases {
		f, err := NewLineFilter(OpRegexp, tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := reflect.TypeOf(f).String(); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.expr, got, tc.want)
		}
	}
}

func TestRequiredLiterals(t *testing.T) {
	mk := func(op LineFilterOp, v string) Filter {
		f, err := NewLineFilter(op, v)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	cases := []struct {
		name string
		f    Filter
		want [][]string
	}{
		{"contains", mk(OpContains, "CUDA out of memory"), [][]string{{"CUDA out of memory"}}},
		{"not contains", mk(OpNotContains, "x"), nil},
		{"alternation", mk(OpRegexp, "timeout|fail"), [][]string{{"timeout", "fail"}}},
		{"factors", mk(OpRegexp, "error.*timeout"), [][]string{{"error"}, {"timeout"}}},
		{"plus", mk(OpRegexp, "(ab)+c"), [][]string{{"ab"}, {"c"}}},
		{"anything", mk(OpRegexp, ".*"), nil},
		{"fold", mk(OpRegexp, "(?i)cuda"), nil},
		{"pattern", mk(OpPattern, "<_> GET <p> 200"), [][]string{{" GET "}, {" 200"}}},
		{"ip", func() Filter { f, _ := NewIPLineFilter("1.2.3.4", false); return f }(), nil},
		{"and", NewAndFilter(mk(OpContains, "a"), mk(OpNotContains, "b"), mk(OpContains, "c")), [][]string{{"a"}, {"c"}}},
		{"or", NewOrFilter(mk(OpContains, "a"), mk(OpContains, "b")), [][]string{{"a", "b"}}},
		{"or with unknown", NewOrFilter(mk(OpContains, "a"), mk(OpRegexp, "(?i)b")), nil},
	}
	for _, tc := range cases {
		if got := RequiredLiterals(tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIPLineFilter(t *testing.T) {
	cases := []struct {
		pattern string
		line    string
		want    bool
	}{
		{"127.0.0.1", `INFO:     127.0.0.1:32726 - "GET /health HTTP/1.1" 200 OK`, true},
		{"3.180.71.3", `93.180.71.3 - - [17/May/2015:08:05:26 +0000] "GET /downloads/product_1"`, false},
		{"3.180.71.3", `3.180.71.3 - - [17/May/2015:08:05:32 +0000]`, true},
		{"192.168.4.5/16", "from 192.168.200.1 to x", true},
		{"192.168.4.5/16", "from 192.169.0.1 to x", false},
		{"192.168.0.1-192.189.10.12", "addr=192.170.0.0 ok", true},
		{"192.168.0.1-192.189.10.12", "addr=192.190.0.0 ok", false},
		{"::1", "client [::1]:8080 connected", true},
		{"2001:db8::/32", "src=2001:db8:0:1::5 dst", true},
		{"2001:db8::1-2001:db8::8", "src=2001:db8::9 dst", false},
		{"10.0.0.1", "no address here", false},
		{"10.0.0.1", "", false},
	}
	for _, tc := range cases {
		f, err := NewIPLineFilter(tc.pattern, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match([]byte(tc.line)); got != tc.want {
			t.Errorf("ip(%q) on %q = %v, want %v", tc.pattern, tc.line, got, tc.want)
		}
		nf, _ := NewIPLineFilter(tc.pattern, true)
		if got := nf.Match([]byte(tc.line)); got == tc.want {
			t.Errorf("!= ip(%q) on %q = %v", tc.pattern, tc.line, got)
		}
	}
	for _, bad := range []string{"", "foo", "1.2.3.4-1.2.3.1", "1.2.3.4-::1", "1.2.3.4/40"} {
		if _, err := NewIPLineFilter(bad, false); err == nil {
			t.Errorf("ip(%q): want an error", bad)
		}
	}
}

// differentialLines are the seed lines of the differential checks.
var differentialLines = []string{
	"", "a", "timeout", "TIMEOUT", "TimeOut after 3s", "request failed", "fail", "Fai",
	"k", "K", "\u212a", "s", "S", "\u017f", "ſtream", "kelvin \u212aelvin", "ab\xffcd", "\xc3\xa9t\xc3\xa9",
	"CUDA out of memory", "cuda OUT of Memory", "line\nwith\nnewlines", "errortimeout",
	"aaab", "b", "aaa", "x aa\nb", "timeout error", "eerrr", "rror",
}

// checkFilterAgainstRegexp compares an optimised filter with the regexp
// package on one line.
func checkFilterAgainstRegexp(t *testing.T, expr, line string) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return
	}
	for _, op := range []LineFilterOp{OpRegexp, OpNotRegexp} {
		f, err := NewLineFilter(op, expr)
		if err != nil {
			t.Fatalf("%q compiles with regexp but not as a filter: %v", expr, err)
		}
		want := re.MatchString(line)
		if op == OpNotRegexp {
			want = !want
		}
		if got := f.Match([]byte(line)); got != want {
			t.Fatalf("%s %q on %q: filter %T says %v, regexp says %v", op, expr, line, f, got, want)
		}
	}
	// A line the filter keeps must satisfy the hint groups.
	f, _ := NewLineFilter(OpRegexp, expr)
	if f.Match([]byte(line)) {
		for _, g := range RequiredLiterals(f) {
			ok := false
			for _, l := range g {
				if strings.Contains(line, l) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("%q matches %q but misses required group %q", expr, line, g)
			}
		}
	}
}

func TestFiltersAgainstRegexp(t *testing.T) {
	exprs := []string{
		"timeout|fail", "(?i)timeout", "(?i)k", "(?i)s", "(?i)kelvin", "(?i)stream", "abc|abd", "a(b|c)d",
		"err(or)?", ".*fail.*", "(?i)cuda out", "é", "(?i)É", "\\x{FFFD}", "[ab]", "(?s).*", "x?",
		"error.*timeout", "(fail)+ure", "(?i)(timeout|fail)", "(?i)abc|abd", "(?i)sk|ks", "(?i)k(?-i)s", "(?i)a|B",
		"(?i)stream|kelvin", "(?i)err(or)?", "(?i)[kK]", "(?i)timeout: 1",
		// reduced before matching: nested repetitions, captures, optional ends
		"((((((((((a*)*)*)*)*)*)*)*)*)*)*b", "(a+)+$", "(a|aa)+$", "^a*b", "a*b$", "t*(i)(m)e?", "(?m)^a*$",
		"\\ba*", "a*\\b", "(?:x*)*", "(e{0,3})rr(o)?r", "(?s)a.*", "(?i)(t*)out",
	}
	for _, e := range exprs {
		for _, l := range differentialLines {
			checkFilterAgainstRegexp(t, e, l)
		}
	}
}

func FuzzRegexpFilter(f *testing.F) {
	for _, e := range []string{"timeout|fail", "(?i)k", "abc|abd", ".*x.*", "(?i)cuda", "(?i)(timeout|fail)", "(?i)sk|ks", "(?i)abc|abd"} {
		for _, l := range differentialLines[:6] {
			f.Add(e, l)
		}
	}
	f.Fuzz(func(t *testing.T, expr, line string) {
		if len(expr) > 64 {
			return
		}
		checkFilterAgainstRegexp(t, expr, line)
	})
}

func FuzzContainsFilter(f *testing.F) {
	f.Add("needle", "hay needle stack")
	f.Add("", "x")
	f.Add("é", "\xc3\xa9")
	f.Fuzz(func(t *testing.T, lit, line string) {
		fl, err := NewLineFilter(OpContains, lit)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fl.Match([]byte(line)), strings.Contains(line, lit); got != want {
			t.Fatalf("|= %q on %q: %v, want %v", lit, line, got, want)
		}
		// the same literal through the regexp path, quoted
		checkFilterAgainstRegexp(t, regexp.QuoteMeta(lit), line)
		checkFilterAgainstRegexp(t, "(?i)"+regexp.QuoteMeta(lit), line)
	})
}

// Hostile expressions reduce to what Go's matcher runs fast: nested
// repetitions fold, and optional ends drop down to a substring search.
func TestRegexpReduction(t *testing.T) {
	cases := map[string]string{
		"((((((((((a*)*)*)*)*)*)*)*)*)*)*b": "containsFilter",
		"(a+)+$":                            "regexpFilter (?-m:a+$)",
		"x*(error)y?":                       "containsFilter",
		"(a*)*":                             "log.TrueFilter",
	}
	for expr, want := range cases {
		f, err := NewLineFilter(OpRegexp, expr)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%T", f)
		if rf, ok := f.(regexpFilter); ok {
			got = "regexpFilter " + rf.re.String()
		}
		if !strings.HasSuffix(got, want) {
			t.Errorf("%s: %s, want %s", expr, got, want)
		}
	}
}
