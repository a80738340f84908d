package labels

import "testing"

func TestNewSortsAndKeepsLastDuplicate(t *testing.T) {
	got := New(Label{"b", "1"}, Label{"a", "x"}, Label{"b", "2"})
	want := Labels{{"a", "x"}, {"b", "2"}}
	if !Equal(got, want) {
		t.Fatalf("New = %v, want %v", got, want)
	}
	if s := got.String(); s != `{a="x", b="2"}` {
		t.Errorf("String = %s", s)
	}
	if s := FromStrings("q", `say "hi"`).String(); s != `{q="say \"hi\""}` {
		t.Errorf("String escapes: %s", s)
	}
}

func TestSetOperations(t *testing.T) {
	ls := FromMap(map[string]string{"job": "j", "level": "", "instance": "i"})
	if got := ls.WithoutEmpty(); !Equal(got, FromStrings("instance", "i", "job", "j")) {
		t.Errorf("WithoutEmpty = %v", got)
	}
	if got := ls.Keep("job", "missing"); !Equal(got, FromStrings("job", "j")) {
		t.Errorf("Keep = %v", got)
	}
	if got := ls.Drop("job"); !Equal(got, FromStrings("instance", "i", "level", "")) {
		t.Errorf("Drop = %v", got)
	}
	if ls.Get("missing") != "" || !ls.Has("level") || ls.Has("missing") {
		t.Error("Get/Has disagree with the set")
	}
	if ls.Hash() != FromMap(ls.Map()).Hash() {
		t.Error("equal sets hash differently")
	}
	if ls.Hash() == ls.Drop("job").Hash() {
		t.Error("different sets hash alike")
	}
	cases := []struct {
		a, b Labels
		sign int
	}{
		{FromStrings("a", "1"), FromStrings("a", "2"), -1},
		{FromStrings("a", "1"), FromStrings("a", "1", "b", "1"), -1},
		{FromStrings("b", "1"), FromStrings("a", "9"), 1},
		{FromStrings("a", "1"), FromStrings("a", "1"), 0},
	}
	for _, c := range cases {
		if got := Compare(c.a, c.b); sign(got) != c.sign {
			t.Errorf("Compare(%v, %v) = %d, want sign %d", c.a, c.b, got, c.sign)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestMatchers(t *testing.T) {
	ls := FromStrings("job", "cosyvoice3", "filename", "/logs/host-1/run.log")
	cases := []struct {
		t     MatchType
		name  string
		value string
		want  bool
	}{
		{MatchEqual, "job", "cosyvoice3", true},
		{MatchEqual, "job", "cosy", false},
		{MatchNotEqual, "job", "x", true},
		{MatchRegexp, "job", "cosy", false}, // anchored: a prefix is not a match
		{MatchRegexp, "job", "cosy.*", true},
		{MatchRegexp, "filename", ".*/run.log", true},
		{MatchNotRegexp, "filename", ".*/access.log", true},
		{MatchEqual, "missing", "", true}, // a missing label matches as ""
		{MatchRegexp, "missing", ".+", false},
		{MatchNotEqual, "missing", "", false},
	}
	for _, c := range cases {
		m, err := NewMatcher(c.t, c.name, c.value)
		if err != nil {
			t.Fatalf("%s%s%q: %v", c.name, c.t, c.value, err)
		}
		if got := MatchLabels(ls, m); got != c.want {
			t.Errorf("%s on %v = %v, want %v", m, ls, got, c.want)
		}
	}
	if _, err := NewMatcher(MatchRegexp, "job", "("); err == nil {
		t.Error("an invalid regular expression was accepted")
	}
	if s := MustNewMatcher(MatchNotRegexp, "a", `b"c`).String(); s != `a!~"b\"c"` {
		t.Errorf("String = %s", s)
	}
}
