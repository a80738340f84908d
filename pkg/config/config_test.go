package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

const fullYAML = `
storage: {path: /var/lib/grafana/lokal/cosyvoice, retention: 168h, max_bytes: 10GiB}
poll_interval: 2s
max_line_bytes: 64KiB
scrape_configs:
  - job_name: cosyvoice3
    static_configs:
      - targets: [localhost]
        labels: {job: cosyvoice3, instance: localhost, __path__: /root/CosyVoice/logs/*.log, __path_exclude__: /root/CosyVoice/logs/*.gz}
    pipeline_stages:
      - multiline: {firstline: '^\[\w+\]', max_wait_time: 3s}
      - regex: {expression: '^\[(?P<level>\w+)\] (?P<ts>\S+)'}
      - labels: {level: }
      - timestamp: {source: ts, format: RFC3339, fallback_formats: [UnixMs], location: Asia/Shanghai}
      - drop: {source: level, value: DEBUG, drop_counter_reason: debug}
      - match:
          selector: '{job="cosyvoice3"} |= "CUDA"'
          stages:
            - static_labels: {oom: "yes"}
      - json: {expressions: {q: queue.depth, first: 'items[0].name'}, source: payload}
      - logfmt: {mapping: {dur: duration}}
      - template: {source: level, template: '{{ ToLower .Value }}'}
      - output: {source: msg}
      - labeldrop: [filename]
      - labelallow: [job, level]
      - replace: {expression: 'password=(\S+)', replace: '****'}
`

func TestParseFullYAML(t *testing.T) {
	s, err := Parse([]byte(fullYAML))
	if err != nil {
		t.Fatal(err)
	}
	if s.Storage.Path != "/var/lib/grafana/lokal/cosyvoice" || s.Storage.RetentionOrDefault() != 168*time.Hour || s.Storage.MaxBytesOrDefault() != 10<<30 {
		t.Errorf("storage %+v", s.Storage)
	}
	if s.PollInterval.D() != 2*time.Second || s.MaxLineBytes != 64<<10 {
		t.Errorf("options %v %v", s.PollInterval, s.MaxLineBytes)
	}
	sc := s.ScrapeConfigs[0]
	if sc.StaticConfigs[0].Path() != "/root/CosyVoice/logs/*.log" || sc.StaticConfigs[0].PathExclude() != "/root/CosyVoice/logs/*.gz" {
		t.Errorf("static config %+v", sc.StaticConfigs[0])
	}
	if got := sc.StaticConfigs[0].StreamLabels(); len(got) != 2 || got["job"] != "cosyvoice3" {
		t.Errorf("stream labels %v", got)
	}
	var types []string
	for _, st := range sc.PipelineStages {
		types = append(types, st.Type())
	}
	want := "multiline regex labels timestamp drop match json logfmt template output labeldrop labelallow replace"
	if strings.Join(types, " ") != want {
		t.Errorf("stage types %v, want %s", types, want)
	}
	if _, ok := sc.PipelineStages[2].Labels["level"]; !ok {
		t.Errorf("labels stage lost its null-valued key: %v", sc.PipelineStages[2].Labels)
	}
	if sc.PipelineStages[5].Match.Action != "keep" || sc.PipelineStages[4].Drop.Value == nil || *sc.PipelineStages[4].Drop.Value != "DEBUG" {
		t.Error("defaults of match/drop not applied")
	}
	if sc.PipelineStages[3].Timestamp.ActionOnFailure != "fudge" || sc.PipelineStages[0].Multiline.MaxLines != DefaultMultilineMaxLines {
		t.Error("stage defaults not applied")
	}
}

// JSON as Grafana's jsonData sends it must give the same settings.
func TestParseJSONEqualsYAML(t *testing.T) {
	y, err := Parse([]byte(fullYAML))
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(j)
	if err != nil {
		t.Fatalf("%v\n%s", err, j)
	}
	j2, _ := json.Marshal(back)
	if string(j) != string(j2) {
		t.Errorf("round trip through JSON changed settings:\n%s\n%s", j, j2)
	}
}

func TestParseScrapeConfigsYAMLKey(t *testing.T) {
	for _, text := range []string{
		"- job_name: a\n  static_configs:\n    - labels: {__path__: /var/log/*.log}\n",
		"scrape_configs:\n- job_name: a\n  static_configs:\n    - labels: {__path__: /var/log/*.log}\n",
	} {
		b, _ := json.Marshal(map[string]any{"storage": map[string]any{"retention": "0s"}, "scrape_configs_yaml": text})
		s, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.ScrapeConfigs) != 1 || s.ScrapeConfigs[0].JobName != "a" || s.ScrapeConfigsYAML != "" {
			t.Errorf("scrape_configs_yaml not moved: %+v", s)
		}
		if s.Storage.RetentionOrDefault() != 0 {
			t.Errorf("retention 0s must keep everything, got %v", s.Storage.RetentionOrDefault())
		}
	}
}

func TestParseBothScrapeFormsAndGrafanaKeys(t *testing.T) {
	s, err := Parse([]byte(`{"manageAlerts":true,"timeInterval":"15s","scrape_configs":[{"job_name":"a","static_configs":[{"labels":{"__path__":"/x"}}]}],"scrape_configs_yaml":"- {job_name: b, static_configs: [{labels: {__path__: /y}}]}"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ScrapeConfigs) != 2 || s.ScrapeConfigs[0].JobName != "a" || s.ScrapeConfigs[1].JobName != "b" {
		t.Errorf("%+v", s.ScrapeConfigs)
	}
	if _, err := Parse([]byte(`{"scrape_configs":[{"manageAlerts":true}]}`)); err == nil {
		t.Error("Grafana's keys are accepted only at the top level")
	}
}

func TestParseDefaults(t *testing.T) {
	for _, in := range []string{"", "{}", "null", "# nothing\n", `{"storage":{"path":"","retention":"","max_bytes":""},"poll_interval":"","max_line_bytes":""}`} {
		s, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if s.Storage.RetentionOrDefault() != DefaultRetention || s.Storage.MaxBytesOrDefault() != DefaultMaxBytes ||
			s.PollInterval.D() != DefaultPollInterval || int64(s.MaxLineBytes) != DefaultMaxLineBytes {
			t.Errorf("%q: defaults not applied: %+v", in, s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	base := func(extra string) string {
		return "scrape_configs:\n  - job_name: a\n    static_configs:\n      - labels: {__path__: /l/*.log}\n" + extra
	}
	cases := []struct {
		name, in string
		want     []string // substrings the error must hold
	}{
		{"unknown top key", "retention: 7d\n", []string{"retention", "unknown key"}},
		{"promtail server", "server: {http_listen_port: 9080}\n", []string{"server", "Promtail"}},
		{"client url", "clients: [{url: x}]\n", []string{"clients[0].url", "not an http(s) URL"}},
		{"client no url", "clients: [{tenant_id: a}]\n", []string{"clients[0].url: missing"}},
		{"client oauth2", "clients: [{url: 'http://l:3100/loki/api/v1/push', oauth2: {}}]\n", []string{"clients[0].oauth2", "OAuth2 is not supported"}},
		{"client unknown key", "clients: [{url: 'http://l/p', batch_wait: 1s}]\n", []string{"clients[0].batch_wait", "a client takes url"}},
		{"client drop rate limited", "clients: [{url: 'http://l/p', drop_rate_limited_batches: true}]\n", []string{"drop_rate_limited_batches", "never drops"}},
		{"client two auths", "clients: [{url: 'http://l/p', bearer_token: t, basic_auth: {username: u}}]\n", []string{"clients[0]", "one of basic_auth"}},
		{"client dup", "clients: [{url: 'http://l/p'}, {url: 'http://l/p'}]\n", []string{"clients[1]", "same url"}},
		{"client backoff", "clients: [{url: 'http://l/p', backoff_config: {min_period: 1m, max_period: 1s}}]\n", []string{"backoff_config", "above max_period"}},
		{"client batchsize", "clients: [{url: 'http://l/p', batchsize: 1GiB}]\n", []string{"clients[0].batchsize"}},
		{"client bad label", "clients: [{url: 'http://l/p', external_labels: {1x: a}}]\n", []string{"external_labels.1x", "invalid label name"}},
		{"client bad duration", "clients: [{url: 'http://l/p', batchwait: soon}]\n", []string{"clients[0].batchwait", "invalid duration"}},
		{"kubernetes_sd", "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: [{role: pod}]\n", []string{"scrape_configs[0].kubernetes_sd_configs", "static_configs"}},
		{"relabel", base("    relabel_configs: []\n"), []string{"scrape_configs[0].relabel_configs", "relabel"}},
		{"unknown stage", base("    pipeline_stages:\n      - docker: {}\n"), []string{"pipeline_stages[0].docker", "unknown stage type"}},
		{"unknown stage key", base("    pipeline_stages:\n      - regex: {expresion: x}\n"), []string{"pipeline_stages[0].regex.expresion", "unknown key"}},
		{"two stages in one", base("    pipeline_stages:\n      - {regex: {expression: '(?P<a>.)'}, output: {source: a}}\n"), []string{"pipeline_stages[0]", "regex and output"}},
		{"bad regex", base("    pipeline_stages:\n      - regex: {expression: '(?P<a>'}\n"), []string{"pipeline_stages[0].regex.expression", "invalid regular expression"}},
		{"no named group", base("    pipeline_stages:\n      - regex: {expression: 'a+'}\n"), []string{"named capture group"}},
		{"bad duration", "poll_interval: 5 minutes\n", []string{"poll_interval", "invalid duration"}},
		{"negative duration", "storage: {retention: -1h}\n", []string{"storage.retention"}},
		{"bad size", "storage: {max_bytes: lots}\n", []string{"storage.max_bytes", "invalid size"}},
		{"missing path", "scrape_configs:\n  - job_name: a\n    static_configs:\n      - labels: {job: a}\n", []string{"__path__", "missing"}},
		{"missing job", "scrape_configs:\n  - static_configs:\n      - labels: {__path__: /x}\n", []string{"job_name: missing"}},
		{"duplicate job", "scrape_configs:\n  - {job_name: a, static_configs: [{labels: {__path__: /x}}]}\n  - {job_name: a, static_configs: [{labels: {__path__: /y}}]}\n", []string{"also the name"}},
		{"bad label name", "scrape_configs:\n  - {job_name: a, static_configs: [{labels: {__path__: /x, 1bad: v}}]}\n", []string{"1bad", "invalid label name"}},
		{"bad time format", base("    pipeline_stages:\n      - timestamp: {source: ts, format: RFC3399}\n"), []string{"format", "RFC3399"}},
		{"bad location", base("    pipeline_stages:\n      - timestamp: {source: ts, format: RFC3339, location: Mars/Olympus}\n"), []string{"location", "Mars/Olympus"}},
		{"bad action", base("    pipeline_stages:\n      - timestamp: {source: ts, format: Unix, action_on_failure: panic}\n"), []string{"action_on_failure"}},
		{"bad selector", base("    pipeline_stages:\n      - match: {selector: 'job=\"a\"', action: drop}\n"), []string{"selector", "must start with {"}},
		{"selector parser", base("    pipeline_stages:\n      - match: {selector: '{job=\"a\"} | json', action: drop}\n"), []string{"only line filters"}},
		{"keep without stages", base("    pipeline_stages:\n      - match: {selector: '{job=\"a\"}'}\n"), []string{"needs stages"}},
		{"unsupported jmespath", base("    pipeline_stages:\n      - json: {expressions: {a: 'items[*].name'}}\n"), []string{"expressions.a", "not supported"}},
		{"jmespath pipe", base("    pipeline_stages:\n      - json: {expressions: {a: 'a | b'}}\n"), []string{"not supported"}},
		{"bad template", base("    pipeline_stages:\n      - template: {source: a, template: '{{ .Value '}\n"), []string{"template"}},
		{"drop without condition", base("    pipeline_stages:\n      - drop: {drop_counter_reason: x}\n"), []string{"no condition"}},
		{"both scrape forms same job", `{"scrape_configs":[{"job_name":"a","static_configs":[{"labels":{"__path__":"/x"}}]}],"scrape_configs_yaml":"- {job_name: a, static_configs: [{labels: {__path__: /y}}]}"}`, []string{"also the name of scrape_configs[0]"}},
		{"yaml key in yaml text", `{"scrape_configs_yaml":"server: {}"}`, []string{"scrape_configs_yaml.server"}},
		{"list for map", "storage: [1, 2]\n", []string{"storage", "expected a mapping"}},
		{"syntax", "storage: {path: [\n", []string{"parse settings"}},
		{"tiny poll", "poll_interval: 1ms\n", []string{"poll_interval", "minimum"}},
		{"duplicate key", "poll_interval: 1s\npoll_interval: 2s\n", []string{"poll_interval"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if err == nil {
				t.Fatalf("no error for\n%s", c.in)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	_, err := Parse([]byte("scrape_configs:\n  - static_configs:\n      - labels: {job: a}\n"))
	if err == nil || !strings.Contains(err.Error(), "2 problems") {
		t.Fatalf("want both problems reported, got %v", err)
	}
}

func TestDurationsAndSizes(t *testing.T) {
	durs := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1s", time.Second, true}, {"168h", 168 * time.Hour, true}, {"7d", 7 * 24 * time.Hour, true},
		{"1w2d", 9 * 24 * time.Hour, true}, {"1h30m", 90 * time.Minute, true}, {"0", 0, true}, {"0s", 0, true},
		{"", 0, false}, {"5", 0, false}, {"d", 0, false}, {"-1s", 0, false}, {"1x", 0, false}, {"1.5d", 36 * time.Hour, true},
	}
	for _, d := range durs {
		got, err := ParseDuration(d.in)
		if (err == nil) != d.ok || (d.ok && got != d.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", d.in, got, err, d.want, d.ok)
		}
	}
	sizes := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10GiB", 10 << 30, true}, {"256KiB", 256 << 10, true}, {"100MB", 100e6, true}, {"4096", 4096, true},
		{"1.5GiB", 3 << 29, true}, {"10 MiB", 10 << 20, true}, {"", 0, false}, {"GiB", 0, false}, {"-1", 0, false}, {"ten", 0, false},
	}
	for _, s := range sizes {
		got, err := ParseByteSize(s.in)
		if (err == nil) != s.ok || (s.ok && got != s.want) {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v ok=%v", s.in, got, err, s.want, s.ok)
		}
	}
	if ByteSize(10<<30).String() != "10GiB" || ByteSize(1000).String() != "1000" {
		t.Error("ByteSize.String")
	}
}

func TestSelector(t *testing.T) {
	s, err := ParseSelector(`{job="cosyvoice3", level=~"error|critical", instance!="x"} |= "CUDA" != "retry" |~ "GiB$" !~ "^ok"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Matchers) != 3 || len(s.LineFilters) != 4 {
		t.Fatalf("%d matchers, %d filters", len(s.Matchers), len(s.LineFilters))
	}
	for _, bad := range []string{``, `{}`, `{job}`, `{job="a"`, `{job="a"} | json`, `{job=~"("}`, `{job="a"} |~ "("`, `{job="a" level="b"}`, `{job="a} `} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q): no error", bad)
		}
	}
}

func TestOperatorFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	op, err := OperatorFromEnv(env(map[string]string{EnvAllowedPaths: " /var/log , /root/CosyVoice/logs/,", EnvDataPath: "/data/lokal"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(op.AllowedPaths) != 2 || op.AllowedPaths[1] != "/root/CosyVoice/logs" || op.DataPath != "/data/lokal" {
		t.Errorf("%+v", op)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvGrafanaData: "/var/lib/grafana"}, "/var/lib/grafana/lokal"},
		{map[string]string{"XDG_CACHE_HOME": "/c"}, "/c/lokal"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.cache/lokal"},
	} {
		op, err := operatorFrom(env(c.env), "")
		if err != nil || op.DataPath != c.want {
			t.Errorf("%v: data path %q (%v), want %q", c.env, op.DataPath, err, c.want)
		}
	}
	if op, _ := operatorFrom(env(map[string]string{"HOME": "/h"}), "/var/lib/grafana/plugins/lokal-logql-datasource/gpx_lokal_linux_amd64"); op.DataPath != "/var/lib/grafana/lokal" {
		t.Errorf("data path beside Grafana's plugins directory: %q", op.DataPath)
	}
	if op, _ := operatorFrom(env(map[string]string{"HOME": "/h"}), "/work/dist/lokal"); op.DataPath != "/h/.cache/lokal" {
		t.Errorf("a CLI outside a plugins directory: %q", op.DataPath)
	}
	for _, c := range []struct {
		value string
		want  time.Duration
		err   bool
	}{
		{"", 0, false},
		{"2m", 2 * time.Minute, false},
		{" 90s ", 90 * time.Second, false},
		{"0s", 0, true},
		{"-1m", 0, true},
		{"soon", 0, true},
	} {
		op, err := operatorFrom(env(map[string]string{EnvDataPath: "/d", EnvQueryTimeout: c.value}), "")
		if (err != nil) != c.err || (err == nil && op.QueryTimeout != c.want) {
			t.Errorf("%s=%q: timeout %v, error %v; want %v, error %v", EnvQueryTimeout, c.value, op.QueryTimeout, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), EnvQueryTimeout) {
			t.Errorf("%s=%q: the error does not name the setting: %v", EnvQueryTimeout, c.value, err)
		}
	}
	for _, c := range []struct {
		value string
		want  int
		err   bool
	}{
		{"", 0, false},
		{"4", 4, false},
		{" 1 ", 1, false},
		{"0", 0, true},
		{"-2", 0, true},
		{"two", 0, true},
		{"2.5", 0, true},
	} {
		op, err := operatorFrom(env(map[string]string{EnvDataPath: "/d", EnvMaxConcurrent: c.value}), "")
		if (err != nil) != c.err || (err == nil && op.MaxConcurrent != c.want) {
			t.Errorf("%s=%q: limit %d, error %v; want %d, error %v", EnvMaxConcurrent, c.value, op.MaxConcurrent, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), EnvMaxConcurrent) {
			t.Errorf("%s=%q: the error does not name the setting: %v", EnvMaxConcurrent, c.value, err)
		}
	}
	if _, err := OperatorFromEnv(env(map[string]string{EnvAllowedPaths: "logs", EnvDataPath: "/d"})); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative allowed path: %v", err)
	}
	if _, err := OperatorFromEnv(env(map[string]string{EnvDataPath: "rel"})); err == nil {
		t.Error("relative data path accepted")
	}
}

func TestCheckPath(t *testing.T) {
	root := t.TempDir()
	root, _ = filepath.EvalSymlinks(root)
	allowed := filepath.Join(root, "logs")
	secret := filepath.Join(root, "secret")
	for _, d := range []string{allowed, secret, filepath.Join(allowed, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(secret, "key"), []byte("x"), 0o600)
	os.Symlink(secret, filepath.Join(allowed, "escape"))                      // dir link out
	os.Symlink(filepath.Join(secret, "key"), filepath.Join(allowed, "a.log")) // file link out
	os.Symlink(filepath.Join(allowed, "sub"), filepath.Join(root, "inlink"))  // link in from outside
	allowedLink := filepath.Join(root, "allowedlink")
	os.Symlink(allowed, allowedLink)

	op := &Operator{AllowedPaths: []string{allowed}}
	cases := []struct {
		in, want string // want "" means rejected
	}{
		{filepath.Join(allowed, "x.log"), filepath.Join(allowed, "x.log")},
		{filepath.Join(allowed, "*.log"), filepath.Join(allowed, "*.log")},
		{filepath.Join(allowed, "**", "*.log"), filepath.Join(allowed, "**", "*.log")},
		{allowed, allowed},
		{filepath.Join(allowed, "sub", "new", "file.log"), filepath.Join(allowed, "sub", "new", "file.log")},
		{filepath.Join(root, "inlink", "y.log"), filepath.Join(allowed, "sub", "y.log")},
		{filepath.Join(allowedLink, "z.log"), filepath.Join(allowed, "z.log")},
		{filepath.Join(allowed, "..", "secret", "key"), ""},
		{allowed + "/../secret/*.log", ""},
		{filepath.Join(allowed, "escape", "key"), ""},
		{filepath.Join(allowed, "escape", "*"), ""},
		{filepath.Join(allowed, "a.log"), ""},
		{allowed + "x/y.log", ""}, // a sibling sharing the prefix
		{"/etc/passwd", ""},
		{"relative/x.log", ""},
		{"", ""},
	}
	for _, c := range cases {
		got, err := op.CheckPath(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("CheckPath(%q) = %q, want rejected", c.in, got)
			} else if c.in != "" && filepath.IsAbs(c.in) && !strings.Contains(err.Error(), "allowed_paths") {
				t.Errorf("CheckPath(%q) error %q does not name the setting", c.in, err)
			} else if strings.Contains(err.Error(), secret) && !strings.Contains(c.in, secret) && !strings.Contains(c.in, "secret") {
				// A link's target is not revealed, only that it leaves.
				t.Errorf("CheckPath(%q) error %q reveals where a link points", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("CheckPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	viaLink := &Operator{AllowedPaths: []string{allowedLink}}
	if got, err := viaLink.CheckPath(filepath.Join(allowed, "x.log")); err != nil || got != filepath.Join(allowed, "x.log") {
		t.Errorf("allowed directory named through a link: %q, %v", got, err)
	}
	none := &Operator{}
	_, err := none.CheckPath(filepath.Join(allowed, "x.log"))
	if err == nil || !strings.Contains(err.Error(), "allowed_paths") || !strings.Contains(err.Error(), EnvAllowedPaths) || !strings.Contains(err.Error(), "no directory is allowed") {
		t.Errorf("with nothing allowed: %v", err)
	}
}

func TestStoreDir(t *testing.T) {
	root := t.TempDir()
	root, _ = filepath.EvalSymlinks(root)
	op := &Operator{DataPath: filepath.Join(root, "data")}
	os.MkdirAll(op.DataPath, 0o755)
	os.Symlink("/tmp", filepath.Join(op.DataPath, "out"))
	cases := []struct {
		path, uid, want string
	}{
		{"", "abc123", filepath.Join(op.DataPath, "abc123")},
		{filepath.Join(op.DataPath, "cosy"), "u", filepath.Join(op.DataPath, "cosy")},
		{"cosy", "u", filepath.Join(op.DataPath, "cosy")},
		{"/var/lib/other", "u", ""},
		{filepath.Join(op.DataPath, "..", "x"), "u", ""},
		{filepath.Join(op.DataPath, "out", "x"), "u", ""},
		{op.DataPath, "u", ""},
		{"", "../x", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		s := &Settings{Storage: Storage{Path: c.path}}
		got, err := op.StoreDir(s, c.uid)
		if c.want == "" {
			if err == nil {
				t.Errorf("StoreDir(%q, %q) = %q, want an error", c.path, c.uid, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("StoreDir(%q, %q) = %q, %v; want %q", c.path, c.uid, got, err, c.want)
		}
	}
}

// TestSelectorLogQL: a match selector is parsed by LogQL's parser, so it
// takes every line filter a query takes, allows a selector that matches
// every stream, and its errors say where.
func TestSelectorLogQL(t *testing.T) {
	ls := labels.FromStrings("app", "api", "job", "x")
	tests := []struct {
		sel, line string
		want      bool
	}{
		{`{app=~".*"}`, "anything", true},
		{`{app!="web"} |= "GiB" or "MiB"`, "used 3 MiB", true},
		{`{app="api"} != "ok" or "fine"`, "all fine", false},
		{`{app="api"} |> "took <_> ms"`, "took 31 ms", true},
		{`{app="api"} |= ip("10.0.0.0/8")`, "from 10.1.2.3", true},
		{`{app="web"}`, "x", false},
	}
	for _, tc := range tests {
		s, err := ParseSelector(tc.sel)
		if err != nil {
			t.Errorf("%s: %v", tc.sel, err)
			continue
		}
		if got := s.Matches(ls, tc.line); got != tc.want {
			t.Errorf("%s on %q: %v, want %v", tc.sel, tc.line, got, tc.want)
		}
	}
	errs := []struct{ sel, want string }{
		{`{}`, `selector "{}": parse error : a selector needs at least one label matcher`},
		{`{job="a"} | json`, `selector "{job=\"a\"} | json": parse error at line 1, col 11: syntax error: unexpected PIPE`},
		{`{job="a"} |~ "("`, `selector "{job=\"a\"} |~ \"(\"": parse error at line 1, col 14: invalid regular expression`},
		{`job="a"`, `selector "job=\"a\"": must start with {: parse error at line 1, col 1:`},
	}
	for _, tc := range errs {
		_, err := ParseSelector(tc.sel)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to start with %s", tc.sel, err, tc.want)
			continue
		}
		if _, ok := syntax.ErrorRange(err); !ok {
			t.Errorf("%s: %v carries no position range", tc.sel, err)
		}
	}
}
