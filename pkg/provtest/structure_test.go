package provtest

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// The seed's rule, as issue 4 words it.
const (
	oomRuleTitle    = "CUDA out of memory"
	oomExpr         = `count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])`
	silentRuleTitle = "No logs for 10 minutes"
	maintainers     = "cosyvoice-maintainers"
)

// parseGrafanaDuration reads a rule's or group's duration ("1m", "30s").
func parseGrafanaDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("missing duration")
	}
	d, err := syntax.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// unescapedDollar reports a `$` that Grafana's provisioning would take for
// an environment variable: it expands $NAME and ${NAME} in rule labels,
// contact point settings and policies, and `$$` is a literal `$`. (Query
// models are passed through raw since Grafana 9.1.)
func unescapedDollar(s string) bool {
	return strings.Contains(strings.ReplaceAll(s, "$$", ""), "$")
}

// modelStrings walks a decoded YAML/JSON value and calls fn for every
// string in it with its path.
func modelStrings(prefix string, v any, fn func(path, s string)) {
	switch x := v.(type) {
	case string:
		fn(prefix, x)
	case map[string]any:
		for k, e := range x {
			modelStrings(prefix+"."+k, e, fn)
		}
	case []any:
		for i, e := range x {
			modelStrings(fmt.Sprintf("%s[%d]", prefix, i), e, fn)
		}
	}
}

func modelString(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// thresholdOf reads a threshold expression's evaluator.
func thresholdOf(m map[string]any) (typ string, params []float64, err error) {
	conds, _ := m["conditions"].([]any)
	if len(conds) == 0 {
		return "", nil, fmt.Errorf("threshold without conditions")
	}
	c0, _ := conds[0].(map[string]any)
	ev, _ := c0["evaluator"].(map[string]any)
	typ, _ = ev["type"].(string)
	ps, _ := ev["params"].([]any)
	for _, p := range ps {
		switch n := p.(type) {
		case int:
			params = append(params, float64(n))
		case float64:
			params = append(params, n)
		default:
			return "", nil, fmt.Errorf("threshold param %v is not a number", p)
		}
	}
	want := map[string]int{"gt": 1, "lt": 1, "eq": 1, "ne": 1, "ge": 1, "le": 1, "within_range": 2, "outside_range": 2}
	n, ok := want[typ]
	if !ok || len(params) != n {
		return "", nil, fmt.Errorf("threshold evaluator %q with %d params", typ, len(params))
	}
	return typ, params, nil
}

func findRule(t *testing.T, p *provisioned, title string) rule {
	t.Helper()
	for _, r := range p.rules {
		if r.Title == title {
			return r
		}
	}
	t.Fatalf("no alert rule titled %q under provisioning/alerting", title)
	return rule{}
}

func (r rule) query(refID string) (ruleQuery, bool) {
	for _, q := range r.Data {
		if q.RefID == refID {
			return q, true
		}
	}
	return ruleQuery{}, false
}

func TestFilesDecode(t *testing.T) {
	p := loadProvisioned(t)
	if len(p.datasources) == 0 {
		t.Error("provisioning/datasources provisions no datasource")
	}
	if len(p.rules) == 0 || len(p.contacts) == 0 || len(p.policies) == 0 {
		t.Errorf("provisioning/alerting: %d rules, %d contact points, %d policy trees; want each", len(p.rules), len(p.contacts), len(p.policies))
	}
	if len(p.providers) == 0 || len(p.dashboards) == 0 {
		t.Errorf("provisioning/dashboards: %d providers, %d dashboards; want each", len(p.providers), len(p.dashboards))
	}
}

// checkLokalRef says why a datasource reference does not name a
// provisioned Lokal datasource.
func (p *provisioned) checkLokalRef(uid, typ string) error {
	ds, ok := p.datasources[uid]
	if !ok {
		return fmt.Errorf("datasource uid %q is not provisioned in provisioning/datasources", uid)
	}
	if ds.Type != lokalType {
		return fmt.Errorf("datasource uid %q is a %q, not Lokal", uid, ds.Type)
	}
	if typ != "" && typ != lokalType {
		return fmt.Errorf("datasource uid %q referenced with type %q, want %q", uid, typ, lokalType)
	}
	return nil
}

func TestAlertRules(t *testing.T) {
	p := loadProvisioned(t)
	noData := map[string]bool{"Alerting": true, "NoData": true, "OK": true, "KeepLast": true}
	execErr := map[string]bool{"Alerting": true, "Error": true, "OK": true, "KeepLast": true}
	for _, r := range p.rules {
		t.Run(r.Title, func(t *testing.T) {
			f := p.ruleFiles[r.UID]
			if r.UID == "" || len(r.UID) > 40 || r.Title == "" {
				t.Errorf("%s: rule %q: uid (at most 40 characters) and title are required", f, r.Title)
			}
			if !noData[r.NoDataState] || !execErr[r.ExecErrState] {
				t.Errorf("%s: noDataState %q / execErrState %q", f, r.NoDataState, r.ExecErrState)
			}
			if _, err := parseGrafanaDuration(r.For); err != nil {
				t.Errorf("%s: for: %v", f, err)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: want a severity label and a summary annotation", f)
			}
			for k, v := range r.Annotations {
				// Recent Grafana expands ${NAME} (braced) in annotations.
				if strings.Contains(v, "${") {
					t.Errorf("%s: annotation %s=%q: Grafana would expand ${...} as an environment variable", f, k, v)
				}
			}
			for k, v := range r.Labels {
				if unescapedDollar(v) {
					t.Errorf("%s: label %s=%q: Grafana would expand its $ as an environment variable (write $$)", f, k, v)
				}
			}
			refs := map[string]bool{}
			for _, q := range r.Data {
				if refs[q.RefID] || q.RefID == "" {
					t.Fatalf("%s: refId %q empty or repeated", f, q.RefID)
				}
				refs[q.RefID] = true
				if got := modelString(q.Model, "refId"); got != q.RefID {
					t.Errorf("%s: %s: model.refId %q", f, q.RefID, got)
				}
			}
			if !refs[r.Condition] {
				t.Fatalf("%s: condition %q names no query", f, r.Condition)
			}
			lokal := 0
			for _, q := range r.Data {
				if q.DatasourceUID == exprDatasource {
					typ := modelString(q.Model, "type")
					switch typ {
					case "reduce", "threshold", "math", "resample", "classic_conditions", "sql":
					default:
						t.Errorf("%s: %s: expression type %q", f, q.RefID, typ)
					}
					if in := modelString(q.Model, "expression"); typ != "math" && typ != "classic_conditions" && !refs[in] {
						t.Errorf("%s: %s: expression %q names no query", f, q.RefID, in)
					}
					if typ == "threshold" {
						if _, _, err := thresholdOf(q.Model); err != nil {
							t.Errorf("%s: %s: %v", f, q.RefID, err)
						}
					}
					continue
				}
				lokal++
				if err := p.checkLokalRef(q.DatasourceUID, ""); err != nil {
					t.Errorf("%s: %s: %v", f, q.RefID, err)
					continue
				}
				// Alert rules evaluate one point: an instant query, whose
				// numeric-multi frames the expressions take directly.
				if q.QueryType != "instant" || modelString(q.Model, "queryType") != "instant" {
					t.Errorf("%s: %s: queryType %q, model.queryType %q; alert queries must be instant", f, q.RefID, q.QueryType, modelString(q.Model, "queryType"))
				}
				if q.RelativeTimeRange.From <= q.RelativeTimeRange.To || q.RelativeTimeRange.To < 0 {
					t.Errorf("%s: %s: relativeTimeRange %+v", f, q.RefID, q.RelativeTimeRange)
				}
				expr := modelString(q.Model, "expr")
				rng := time.Duration(q.RelativeTimeRange.From-q.RelativeTimeRange.To) * time.Second
				e, err := syntax.ParseExpr(syntax.ExpandGrafanaVariables(expr, syntax.GrafanaVars{Interval: time.Second, Range: rng, Auto: rng}))
				if err != nil {
					t.Errorf("%s: %s: %q: %v", f, q.RefID, expr, err)
					continue
				}
				if _, ok := e.(syntax.SampleExpr); !ok {
					t.Errorf("%s: %s: %q is a log query; alert rules need a metric query", f, q.RefID, expr)
				}
				// The rule's time range should cover the window it counts,
				// so that Grafana's preview shows the lines behind a value.
				if w := longestRange(e); w > rng {
					t.Errorf("%s: %s: the query counts over %s but relativeTimeRange covers only %s", f, q.RefID, w, rng)
				}
			}
			if lokal == 0 {
				t.Errorf("%s: no query on a Lokal datasource", f)
			}
		})
	}

	oom := findRule(t, p, oomRuleTitle)
	a, _ := oom.query("A")
	if got := modelString(a.Model, "expr"); got != oomExpr {
		t.Errorf("OOM rule expr %q, want the seed's %q", got, oomExpr)
	}
	if a.RelativeTimeRange.From != 300 || a.RelativeTimeRange.To != 0 {
		t.Errorf("OOM rule time range %+v, want 300 s to now", a.RelativeTimeRange)
	}
	if oom.For != "1m" || oom.Labels["severity"] != "critical" || oom.NoDataState != "OK" || oom.ExecErrState != "Error" {
		t.Errorf("OOM rule: for %q, severity %q, noDataState %q, execErrState %q; want 1m, critical, OK, Error", oom.For, oom.Labels["severity"], oom.NoDataState, oom.ExecErrState)
	}
	for _, want := range []string{"{{ $labels.instance }}", "{{ $values.B }}"} {
		if !strings.Contains(oom.Annotations["summary"]+oom.Annotations["description"], want) {
			t.Errorf("OOM rule annotations do not use %s", want)
		}
	}
	if typ, params, err := thresholdOf(mustQuery(t, oom, oom.Condition).Model); err != nil || typ != "gt" || params[0] != 5 {
		t.Errorf("OOM rule condition: %s %v (%v), want gt 5", typ, params, err)
	}
	silent := findRule(t, p, silentRuleTitle)
	sa, _ := silent.query("A")
	if expr := modelString(sa.Model, "expr"); !strings.HasSuffix(expr, "or vector(0)") {
		t.Errorf("silence rule expr %q does not end in `or vector(0)`", expr)
	}
	if typ, params, err := thresholdOf(mustQuery(t, silent, silent.Condition).Model); err != nil || typ != "lt" || params[0] != 1 {
		t.Errorf("silence rule condition: %s %v (%v), want lt 1", typ, params, err)
	}
}

func mustQuery(t *testing.T, r rule, refID string) ruleQuery {
	t.Helper()
	q, ok := r.query(refID)
	if !ok {
		t.Fatalf("rule %q has no query %s", r.Title, refID)
	}
	return q
}

// longestRange is the longest [range] in an expression.
func longestRange(e syntax.Expr) time.Duration {
	var longest time.Duration
	re := regexp.MustCompile(`\[([0-9][0-9a-zµ.]*)\]`)
	for _, m := range re.FindAllStringSubmatch(e.String(), -1) {
		if d, err := syntax.ParseDuration(m[1]); err == nil && d > longest {
			longest = d
		}
	}
	return longest
}

var matcherOps = map[string]labels.MatchType{"=": labels.MatchEqual, "!=": labels.MatchNotEqual, "=~": labels.MatchRegexp, "!~": labels.MatchNotRegexp}

// routeFor returns the receiver of an alert with the given labels, walking
// the tree as Grafana's Alertmanager does: the deepest matching route, the
// first matching sibling unless it says continue (only the first receiver
// is returned).
func routeFor(r route, ls map[string]string, inherited string) (string, error) {
	recv := r.Receiver
	if recv == "" {
		recv = inherited
	}
	for _, child := range r.Routes {
		ok := true
		for _, m := range child.ObjectMatchers {
			if len(m) != 3 {
				return "", fmt.Errorf("object matcher %q: want [name, operator, value]", m)
			}
			typ, known := matcherOps[m[1]]
			if !known {
				return "", fmt.Errorf("object matcher %q: operator %q", m, m[1])
			}
			lm, err := labels.NewMatcher(typ, m[0], m[2])
			if err != nil {
				return "", fmt.Errorf("object matcher %q: %w", m, err)
			}
			if !lm.Matches(ls[m[0]]) {
				ok = false
			}
		}
		if ok {
			return routeFor(child, ls, recv)
		}
	}
	return recv, nil
}

// receivers lists every receiver named in a policy tree.
func receivers(r route, out map[string]bool) {
	if r.Receiver != "" {
		out[r.Receiver] = true
	}
	for _, c := range r.Routes {
		receivers(c, out)
	}
}

func TestContactPointsAndPolicies(t *testing.T) {
	p := loadProvisioned(t)
	uids := map[string]bool{}
	for _, c := range p.contacts {
		if len(c.Receivers) == 0 {
			t.Errorf("contact point %q has no integration", c.Name)
		}
		for _, rc := range c.Receivers {
			if rc.UID == "" || uids[rc.UID] {
				t.Errorf("contact point %q: integration uid %q empty or repeated", c.Name, rc.UID)
			}
			uids[rc.UID] = true
			modelStrings("settings", rc.Settings, func(at, s string) {
				if unescapedDollar(s) && !regexp.MustCompile(`^\$\{?[A-Z_][A-Z0-9_]*\}?$`).MatchString(s) {
					t.Errorf("contact point %q: %s = %q: Grafana would expand its $ as an environment variable", c.Name, at, s)
				}
			})
		}
	}
	cp, ok := p.contacts[maintainers]
	if !ok {
		t.Fatalf("no contact point %q", maintainers)
	}
	var wecom *receiver
	for i := range cp.Receivers {
		if cp.Receivers[i].Type == "wecom" {
			wecom = &cp.Receivers[i]
		}
	}
	if wecom == nil {
		t.Fatalf("contact point %q has no wecom integration", maintainers)
	}
	// Grafana's WeCom notifier in group-robot mode needs `url`; msgtype is
	// markdown or text.
	url, _ := wecom.Settings["url"].(string)
	if !strings.HasPrefix(url, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=") {
		t.Errorf("wecom url %q is not a group robot webhook", url)
	}
	if mt, _ := wecom.Settings["msgtype"].(string); mt != "" && mt != "markdown" && mt != "text" {
		t.Errorf("wecom msgtype %q: want markdown or text", mt)
	}
	for k := range wecom.Settings {
		switch k {
		case "url", "msgtype", "message", "title", "touser", "secret", "agent_id", "corp_id", "endpointUrl":
		default:
			t.Errorf("wecom setting %q is not one of Grafana's WeCom notifier settings", k)
		}
	}

	orgs := map[int64]bool{}
	for _, root := range p.policies {
		if orgs[root.OrgID] {
			t.Errorf("two policy trees for org %d: each replaces the other", root.OrgID)
		}
		orgs[root.OrgID] = true
		if root.Receiver == "" {
			t.Error("a policy tree's root needs a receiver")
		}
		if len(root.ObjectMatchers) > 0 {
			t.Error("the root policy cannot have matchers")
		}
		names := map[string]bool{}
		receivers(root, names)
		for n := range names {
			// Only contact points provisioned beside the policy: Grafana's
			// own default one is named differently across versions
			// (grafana-default-email is gone in 12.4), and a missing one
			// stops Grafana from starting.
			if _, ok := p.contacts[n]; !ok {
				t.Errorf("policy receiver %q is not a contact point provisioned in provisioning/alerting", n)
			}
		}
		for _, r := range p.rules {
			got, err := routeFor(root, r.Labels, "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Title == oomRuleTitle && got != maintainers {
				t.Errorf("rule %q (labels %v) is routed to %q, want %q", r.Title, r.Labels, got, maintainers)
			}
		}
		if got, _ := routeFor(root, map[string]string{"severity": "critical"}, ""); got != maintainers {
			t.Errorf("severity=critical is routed to %q, want %q", got, maintainers)
		}
	}
}

// composeMounts reads docker-compose.yaml's grafana volumes as container
// path -> host path (relative to the repository root).
func composeMounts(t *testing.T, root string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yaml"))
	if err != nil {
		t.Skipf("no docker-compose.yaml to check the provider path against: %v", err)
	}
	var doc struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	g, ok := doc.Services["grafana"]
	if !ok {
		t.Fatal("docker-compose.yaml has no grafana service")
	}
	out := map[string]string{}
	for _, v := range g.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue // named volumes
		}
		out[path.Clean(parts[1])] = path.Clean(parts[0])
	}
	return out
}

func TestDashboardProvider(t *testing.T) {
	p := loadProvisioned(t)
	mounts := composeMounts(t, p.root)
	for _, pr := range p.providers {
		if pr.Type != "file" || pr.Name == "" || pr.OrgID < 1 {
			t.Errorf("provider %q: type %q, orgId %d; want a named file provider", pr.Name, pr.Type, pr.OrgID)
		}
		// Map the path Grafana sees back into the repository. Grafana
		// expands environment variables in provider options; its Docker
		// image sets GF_PATHS_PROVISIONING to /etc/grafana/provisioning.
		grafanaPath := strings.ReplaceAll(pr.Options.Path, "${GF_PATHS_PROVISIONING}", "/etc/grafana/provisioning")
		var host string
		for dst, src := range mounts {
			if rel, ok := strings.CutPrefix(path.Clean(grafanaPath), dst); ok && (rel == "" || rel[0] == '/') {
				host = path.Join(src, rel)
			}
		}
		if host == "" {
			t.Errorf("provider %q: path %s is not below any directory docker-compose.yaml mounts into Grafana (%v)", pr.Name, pr.Options.Path, mounts)
			continue
		}
		dir := filepath.Join(p.root, filepath.FromSlash(host))
		for f := range p.dashboards {
			if filepath.Dir(filepath.Join(p.root, filepath.FromSlash(f))) != dir {
				t.Errorf("dashboard %s is not in the provider's directory %s", f, host)
			}
		}
	}
}

var templateVarRE = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|([A-Za-z_][A-Za-z0-9_]*))`)

// templateVars are the dashboard variables an expression uses (not
// Grafana's built-in $__ ones).
func templateVars(expr string) []string {
	var out []string
	for _, m := range templateVarRE.FindAllStringSubmatch(expr, -1) {
		name := m[1] + m[2]
		if !strings.HasPrefix(name, "__") {
			out = append(out, name)
		}
	}
	return out
}

// replaceTemplateVars replaces a dashboard's variables as Grafana's
// frontend would (values are given already formatted); Grafana's $__ time
// variables are left alone.
func replaceTemplateVars(expr string, vals map[string]string) string {
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	// Longest first, so that $inst cannot eat the start of $instance.
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, n := range names {
		expr = strings.ReplaceAll(expr, "${"+n+"}", vals[n])
		expr = strings.ReplaceAll(expr, "$"+n, vals[n])
	}
	return expr
}

// substitute replaces the dashboard's variables, then Grafana's time
// variables as the backend does.
func substitute(expr string, vals map[string]string, gv syntax.GrafanaVars) string {
	return syntax.ExpandGrafanaVariables(replaceTemplateVars(expr, vals), gv)
}

// labelValuesRE is the variable query the frontend's metricFindQuery takes.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(\{.*\})\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

func TestDashboards(t *testing.T) {
	p := loadProvisioned(t)
	uids := map[string]string{}
	for f, d := range p.dashboards {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if d.UID == "" || len(d.UID) > 40 || d.Title == "" || d.SchemaVersion == 0 {
				t.Errorf("uid %q (at most 40 characters), title %q and schemaVersion %d are required", d.UID, d.Title, d.SchemaVersion)
			}
			if prev, dup := uids[d.UID]; dup {
				t.Errorf("uid %q already used by %s", d.UID, prev)
			}
			uids[d.UID] = f
			vars := map[string]variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
				switch v.Type {
				case "query":
					if v.Datasource == nil {
						t.Errorf("variable %s: no datasource", v.Name)
						break
					}
					if err := p.checkLokalRef(v.Datasource.UID, v.Datasource.Type); err != nil {
						t.Errorf("variable %s: %v", v.Name, err)
					}
					q, _ := v.Query.(string)
					m := labelValuesRE.FindStringSubmatch(q)
					if m == nil {
						t.Errorf("variable %s: query %q is not label_values([{selector},] label)", v.Name, q)
					} else if m[1] != "" {
						if _, err := syntax.ParseMatchers(m[1]); err != nil {
							t.Errorf("variable %s: selector %s: %v", v.Name, m[1], err)
						}
					}
				case "textbox", "custom", "constant", "interval", "datasource", "adhoc":
				default:
					t.Errorf("variable %s: type %q", v.Name, v.Type)
				}
			}
			ids := map[int]string{}
			var boxes []panel
			for _, pn := range allPanels(d.Panels) {
				if pn.ID <= 0 {
					t.Errorf("panel %q: id %d", pn.Title, pn.ID)
				}
				if prev, dup := ids[pn.ID]; dup {
					t.Errorf("panels %q and %q share id %d", prev, pn.Title, pn.ID)
				}
				ids[pn.ID] = pn.Title
				g := pn.GridPos
				if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
					t.Errorf("panel %q: gridPos %+v outside the 24-column grid", pn.Title, g)
				}
				for _, o := range boxes {
					h := o.GridPos
					if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
						t.Errorf("panels %q and %q overlap", o.Title, pn.Title)
					}
				}
				if pn.Type != "row" {
					boxes = append(boxes, pn)
				}
				checkPanelQueries(t, p, pn, vars)
			}
			if len(ids) == 0 {
				t.Error("no panels")
			}
		})
	}
}

// checkPanelQueries checks every query of a panel: it names the Lokal
// datasource, uses known variables, parses, and has the shape its panel
// draws (logs panels log queries, stat and bar gauges instant metrics,
// time series range metrics).
func checkPanelQueries(t *testing.T, p *provisioned, pn panel, vars map[string]variable) {
	t.Helper()
	if pn.Type == "row" || pn.Type == "text" {
		return
	}
	if len(pn.Targets) == 0 {
		t.Errorf("panel %q has no query", pn.Title)
	}
	refs := map[string]bool{}
	for _, q := range pn.Targets {
		where := fmt.Sprintf("panel %q query %s", pn.Title, q.RefID)
		if q.RefID == "" || refs[q.RefID] {
			t.Errorf("%s: refId empty or repeated", where)
		}
		refs[q.RefID] = true
		ref := q.Datasource
		if ref == nil {
			ref = pn.Datasource
		}
		if ref == nil {
			t.Errorf("%s: no datasource", where)
			continue
		}
		if err := p.checkLokalRef(ref.UID, ref.Type); err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		vals := map[string]string{}
		for _, name := range templateVars(q.Expr) {
			v, ok := vars[name]
			if !ok {
				t.Errorf("%s: $%s is not a dashboard variable", where, name)
				continue
			}
			vals[name] = v.AllValue // ".+" or "" (a textbox's empty default)
		}
		expr := substitute(q.Expr, vals, syntax.GrafanaVars{Interval: 15 * time.Second, Range: 6 * time.Hour})
		e, err := syntax.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: %q: %v", where, expr, err)
			continue
		}
		_, metric := e.(syntax.SampleExpr)
		want := map[string]struct {
			metric    bool
			queryType string
		}{
			"logs":       {false, "range"},
			"stat":       {true, "instant"},
			"bargauge":   {true, "instant"},
			"gauge":      {true, "instant"},
			"timeseries": {true, "range"},
		}[pn.Type]
		if want.queryType == "" {
			continue // a panel type without an expectation
		}
		if metric != want.metric || q.QueryType != want.queryType {
			t.Errorf("%s: a %s panel wants a %s %s query; got queryType %q, metric=%v", where, pn.Type, want.queryType,
				map[bool]string{true: "metric", false: "log"}[want.metric], q.QueryType, metric)
		}
	}
}
