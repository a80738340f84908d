package syntax

import "testing"

func TestParseFilteredSelector(t *testing.T) {
	ok := []struct{ q, want string }{
		{`{app=~".*"}`, `{app=~".*"}`},
		{`{app!="x"}`, `{app!="x"}`},
		{`{job="a", level=~"error|critical"} |= "CUDA" != "retry" |~ "GiB$" !~ "^ok"`, `{job="a", level=~"error|critical"} |= "CUDA" != "retry" |~ "GiB$" !~ "^ok"`},
		{"{a=`raw`} |> \"<_> ms\" or \"x\"", `{a="raw"} |> "<_> ms" or "x"`},
		{`{a="b"} != ip("10.0.0.0/8")`, `{a="b"} != ip("10.0.0.0/8")`},
		{"  {a=\"b\"}\n  |= \"x\"  # a comment\n", `{a="b"} |= "x"`},
	}
	for _, tt := range ok {
		e, err := ParseFilteredSelector(tt.q)
		if err != nil {
			t.Errorf("%q: %v", tt.q, err)
			continue
		}
		if got := e.String(); got != tt.want {
			t.Errorf("%q: printed %q, want %q", tt.q, got, tt.want)
		}
	}
	bad := []struct{ q, want, span string }{
		{``, `parse error at line 1, col 1: syntax error: unexpected $end, expecting OPEN_BRACE`, ``},
		{`{}`, `parse error : a selector needs at least one label matcher`, `{}`},
		{`{job}`, `parse error at line 1, col 5: syntax error: unexpected CLOSE_BRACE, expecting EQ, NEQ, RE or NRE`, `}`},
		{`{job="a"`, `parse error at line 1, col 9: syntax error: unexpected $end, expecting COMMA or CLOSE_BRACE`, ``},
		{`{job="a"} | json`, `parse error at line 1, col 11: syntax error: unexpected PIPE, expecting a line filter (|=, !=, |~, !~, |> or !>): only line filters may follow the selector here`, `|`},
		{`{job=~"("}`, "parse error at line 1, col 5: invalid regular expression \"(\" for label job: error parsing regexp: missing closing ): `^(?s:()$`", `=~"("`},
		{"{job=\"a\"}\n |~ \"(\"", "parse error at line 2, col 5: invalid regular expression \"(\" in line filter: missing closing ): `(`", `"("`},
		{`{job="a" level="b"}`, `parse error at line 1, col 10: syntax error: unexpected IDENTIFIER, expecting COMMA or CLOSE_BRACE`, `level`},
		{`{job="a} `, `parse error at line 1, col 6: literal not terminated`, `"a} `},
	}
	for _, tt := range bad {
		_, err := ParseFilteredSelector(tt.q)
		checkParseError(t, tt.q, err, tt.want, tt.span)
	}
}
