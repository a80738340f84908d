package config

import (
	"testing"
)

// FuzzParse: any input gives settings or an error, never a panic, and
// accepted settings validate.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullYAML))
	f.Add([]byte(`{"scrape_configs_yaml":"- job_name: a\n  static_configs: [{labels: {__path__: /x}}]"}`))
	f.Add([]byte("storage: {retention: 7d}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted settings that do not validate: %v", err)
		}
	})
}

// FuzzSelector: parsing never panics, and a parsed selector can be evaluated.
func FuzzSelector(f *testing.F) {
	for _, s := range []string{`{job="a"}`, `{a=~"x|y", b!="c"} |= "d" !~ "e"`, "{a=`raw`}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		sel.Matches(nil, s)
	})
}
