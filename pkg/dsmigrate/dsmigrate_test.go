package dsmigrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRewrite(t *testing.T) {
	o := Options{FromUID: "lokal", ToUID: "loki-prod"}
	cases := []struct {
		name, file, in string
		want           []string // substrings of the output
		notWant        []string
		refs           int
	}{
		{"panel and target objects", "d.json",
			`{"b":1,"a":{"datasource":{"type":"lokal-logql-datasource","uid":"lokal"},"targets":[{"datasource":{"type":"lokal-logql-datasource","uid":"lokal"},"expr":"{job=\"x\"}"}]}}`,
			[]string{`"uid": "loki-prod"`, `"type": "loki"`, "{\n  \"b\": 1,\n  \"a\": {"}, []string{`"lokal"`, "lokal-logql-datasource"}, 2},
		{"other datasources untouched", "d.json",
			`{"datasource":{"type":"grafana","uid":"-- Grafana --"},"x":{"datasource":{"type":"prometheus","uid":"lokal"}}}`,
			[]string{`"-- Grafana --"`, `"prometheus"`, `"uid": "lokal"`}, nil, 0},
		{"string form, datasource variable, inputs, requires", "d.json",
			`{"__inputs":[{"type":"datasource","pluginId":"lokal-logql-datasource"}],"__requires":[{"type":"datasource","id":"lokal-logql-datasource","name":"Lokal"}],"panels":[{"datasource":"lokal"}],"templating":{"list":[{"type":"datasource","query":"lokal-logql-datasource"}]}}`,
			[]string{`"pluginId": "loki"`, `"id": "loki"`, `"name": "Loki"`, `"datasource": "loki-prod"`, `"query": "loki"`}, []string{"lokal"}, 4},
		{"numbers kept", "d.json", `{"n":1.50,"big":12345678901234567890,"datasource":"lokal"}`,
			[]string{`"n": 1.50`, `"big": 12345678901234567890`}, nil, 1},
		{"rule YAML keeps comments", "r.yaml",
			"# rules\ngroups:\n  - rules:\n      - data:\n          - datasourceUid: lokal # the source\n            model: {expr: 'rate({a=\"b\"}[5m])'}\n          - datasourceUid: __expr__\n",
			[]string{"# rules", "datasourceUid: loki-prod # the source", "datasourceUid: __expr__"}, []string{"datasourceUid: lokal"}, 1},
		{"rule YAML keeps blank lines, folded text and quotes", "r.yaml",
			"a:\n\n  - {datasourceUid: \"lokal\", x: 1}\n  - datasourceUid: 'lokal'\n    text: >\n      one\n      two\n",
			[]string{"a:\n\n  - {datasourceUid: \"loki-prod\", x: 1}\n  - datasourceUid: 'loki-prod'\n    text: >\n      one\n      two\n"}, nil, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, n, err := Rewrite(tc.file, []byte(tc.in), o)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.refs {
				t.Errorf("%d references rewritten, want %d", n, tc.refs)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(out), w) {
					t.Errorf("output still has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestRewriteYAMLQuotesWhatWouldNotReadAsAString(t *testing.T) {
	out, _, err := RewriteYAML([]byte("datasourceUid: lokal\n"), Options{FromUID: "lokal", ToUID: "123"})
	if err != nil || string(out) != "datasourceUid: \"123\"\n" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestRewriteErrors(t *testing.T) {
	cases := []struct {
		name, file, in string
		o              Options
		want           string
	}{
		{"no uids", "d.json", `{}`, Options{}, "uid"},
		{"bad JSON", "d.json", `{"a":`, Options{FromUID: "a", ToUID: "b"}, "parse JSON"},
		{"two values", "d.json", `{} {}`, Options{FromUID: "a", ToUID: "b"}, "more than one"},
		{"bad YAML", "d.yaml", "a: [", Options{FromUID: "a", ToUID: "b"}, "parse YAML"},
	}
	for _, tc := range cases {
		_, _, err := Rewrite(tc.file, []byte(tc.in), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// The provisioned dashboard rewritten with the same uid and type is the
// same document: the rewrite changes references only (and Grafana's own
// two-space layout is kept).
func TestRewriteIdentity(t *testing.T) {
	path := filepath.Join("..", "..", "provisioning", "dashboards", "cosyvoice3.json")
	in, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no provisioned dashboard: %v", err)
	}
	out, n, err := Rewrite(path, in, Options{FromUID: "lokal", ToUID: "lokal", ToType: LokalType})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || string(out) != string(in) {
		t.Fatalf("identity rewrite changed the dashboard (%d refs)", n)
	}
}
