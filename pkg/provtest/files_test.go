// Package provtest checks what Lokal ships for Grafana's file
// provisioning (the repository's provisioning/ directory): that Grafana can
// read every file, that every reference between them resolves, and that
// every dashboard and alert query parses and answers on sample logs the
// way the panels and rules expect. It holds tests only.
package provtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// lokalType is the plugin id in plugin.json, the type of Lokal datasources.
const lokalType = "lokal-logql-datasource"

// exprDatasource is the uid of Grafana's server-side expressions.
const exprDatasource = "__expr__"

// repoRoot finds the module root by walking up to go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := testshared.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// provisioningFiles lists every file under provisioning/, relative to the
// repository root, sorted.
func provisioningFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, "provisioning"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk provisioning/: %v", err)
	}
	sort.Strings(out)
	return out
}

// decodeYAMLStrict decodes one YAML document into v, rejecting keys v does
// not declare: Grafana ignores a misspelt key silently, so a typo
// ("datasourceUID", "noDataSate") would otherwise pass unnoticed.
func decodeYAMLStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("more than one YAML document (Grafana reads the first only)")
	}
	return nil
}

// ---- provisioning/datasources ----

type datasourcesFile struct {
	APIVersion  int          `yaml:"apiVersion"`
	Datasources []datasource `yaml:"datasources"`
	// Grafana's other top-level key, accepted so a strict decode does not
	// reject a valid file.
	DeleteDatasources []map[string]any `yaml:"deleteDatasources"`
}

type datasource struct {
	Name      string         `yaml:"name"`
	UID       string         `yaml:"uid"`
	Type      string         `yaml:"type"`
	Access    string         `yaml:"access"`
	OrgID     int64          `yaml:"orgId"`
	URL       string         `yaml:"url"`
	IsDefault bool           `yaml:"isDefault"`
	Editable  bool           `yaml:"editable"`
	Version   int            `yaml:"version"`
	JSONData  map[string]any `yaml:"jsonData"`
	// SecureJSONData is accepted, never read.
	SecureJSONData map[string]any `yaml:"secureJsonData"`
}

// ---- provisioning/alerting ----

type alertingFile struct {
	APIVersion    int            `yaml:"apiVersion"`
	Groups        []ruleGroup    `yaml:"groups"`
	ContactPoints []contactPoint `yaml:"contactPoints"`
	Policies      []route        `yaml:"policies"`
	// Grafana's other top-level keys, accepted and not checked.
	Templates           []map[string]any `yaml:"templates"`
	MuteTimes           []map[string]any `yaml:"muteTimes"`
	DeleteRules         []map[string]any `yaml:"deleteRules"`
	DeleteContactPoints []map[string]any `yaml:"deleteContactPoints"`
	ResetPolicies       []any            `yaml:"resetPolicies"`
	DeleteTemplates     []map[string]any `yaml:"deleteTemplates"`
	DeleteMuteTimes     []map[string]any `yaml:"deleteMuteTimes"`
}

type ruleGroup struct {
	OrgID    int64  `yaml:"orgId"`
	Name     string `yaml:"name"`
	Folder   string `yaml:"folder"`
	Interval string `yaml:"interval"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	UID                  string            `yaml:"uid"`
	Title                string            `yaml:"title"`
	Condition            string            `yaml:"condition"`
	Data                 []ruleQuery       `yaml:"data"`
	NoDataState          string            `yaml:"noDataState"`
	ExecErrState         string            `yaml:"execErrState"`
	For                  string            `yaml:"for"`
	KeepFiringFor        string            `yaml:"keepFiringFor"`
	Annotations          map[string]string `yaml:"annotations"`
	Labels               map[string]string `yaml:"labels"`
	IsPaused             bool              `yaml:"isPaused"`
	DashboardUID         string            `yaml:"dashboardUid"`
	PanelID              int64             `yaml:"panelId"`
	NotificationSettings map[string]any    `yaml:"notification_settings"`
}

type ruleQuery struct {
	RefID             string `yaml:"refId"`
	QueryType         string `yaml:"queryType"`
	RelativeTimeRange struct {
		From int64 `yaml:"from"`
		To   int64 `yaml:"to"`
	} `yaml:"relativeTimeRange"`
	DatasourceUID string         `yaml:"datasourceUid"`
	Model         map[string]any `yaml:"model"`
}

type contactPoint struct {
	OrgID     int64      `yaml:"orgId"`
	Name      string     `yaml:"name"`
	Receivers []receiver `yaml:"receivers"`
}

type receiver struct {
	UID                   string         `yaml:"uid"`
	Type                  string         `yaml:"type"`
	DisableResolveMessage bool           `yaml:"disableResolveMessage"`
	Settings              map[string]any `yaml:"settings"`
}

// route is a notification policy: the root of a policy tree or a route in it.
type route struct {
	OrgID             int64      `yaml:"orgId"`
	Receiver          string     `yaml:"receiver"`
	GroupBy           []string   `yaml:"group_by"`
	GroupWait         string     `yaml:"group_wait"`
	GroupInterval     string     `yaml:"group_interval"`
	RepeatInterval    string     `yaml:"repeat_interval"`
	ObjectMatchers    [][]string `yaml:"object_matchers"`
	Continue          bool       `yaml:"continue"`
	MuteTimeIntervals []string   `yaml:"mute_time_intervals"`
	Routes            []route    `yaml:"routes"`
}

// ---- provisioning/dashboards ----

type dashboardProvidersFile struct {
	APIVersion int                 `yaml:"apiVersion"`
	Providers  []dashboardProvider `yaml:"providers"`
}

type dashboardProvider struct {
	Name                  string `yaml:"name"`
	OrgID                 int64  `yaml:"orgId"`
	Folder                string `yaml:"folder"`
	FolderUID             string `yaml:"folderUid"`
	Type                  string `yaml:"type"`
	DisableDeletion       bool   `yaml:"disableDeletion"`
	AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
	UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
	Options               struct {
		Path                      string `yaml:"path"`
		FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
	} `yaml:"options"`
}

// dashboard holds the parts of a dashboard JSON model the tests check; the
// JSON is decoded leniently (panels carry many options) but must be valid.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int     `json:"id"`
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource *dsRef  `json:"datasource"`
	Targets    []query `json:"targets"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	// Panels are a collapsed row's panels.
	Panels []panel `json:"panels"`
}

// query is a Lokal query as the frontend saves it: Loki's field names.
type query struct {
	RefID        string          `json:"refId"`
	Datasource   *dsRef          `json:"datasource"`
	Expr         string          `json:"expr"`
	QueryType    string          `json:"queryType"`
	LegendFormat string          `json:"legendFormat"`
	MaxLines     json.RawMessage `json:"maxLines"`
	Step         string          `json:"step"`
	Direction    string          `json:"direction"`
	Hide         bool            `json:"hide"`
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Datasource *dsRef `json:"datasource"`
	Query      any    `json:"query"`
	IncludeAll bool   `json:"includeAll"`
	Multi      bool   `json:"multi"`
	AllValue   string `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// provisioned is everything under provisioning/, decoded.
type provisioned struct {
	root        string
	datasources map[string]datasource // by uid
	rules       []rule                // with their file in ruleFiles
	ruleFiles   map[string]string     // rule uid -> file
	contacts    map[string]contactPoint
	policies    []route
	providers   []dashboardProvider
	dashboards  map[string]dashboard // by file
}

// loadProvisioned reads and strictly decodes every file under
// provisioning/; any problem fails the test with the file's name.
func loadProvisioned(t testing.TB) *provisioned {
	t.Helper()
	root := repoRoot(t)
	p := &provisioned{
		root:        root,
		datasources: map[string]datasource{},
		ruleFiles:   map[string]string{},
		contacts:    map[string]contactPoint{},
		dashboards:  map[string]dashboard{},
	}
	files := provisioningFiles(t, root)
	if len(files) == 0 {
		t.Fatal("provisioning/ holds no file")
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		dir := strings.Split(f, "/")[1]
		ext := filepath.Ext(f)
		switch {
		case ext == ".md" || ext == ".txt":
			continue // notes for people
		case dir == "datasources" && (ext == ".yaml" || ext == ".yml"):
			var d datasourcesFile
			if err := decodeYAMLStrict(b, &d); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			checkAPIVersion(t, f, d.APIVersion)
			for _, ds := range d.Datasources {
				if ds.UID == "" {
					t.Fatalf("%s: datasource %q has no uid: dashboards and rules cannot name it", f, ds.Name)
				}
				if _, dup := p.datasources[ds.UID]; dup {
					t.Fatalf("%s: datasource uid %q provisioned twice", f, ds.UID)
				}
				p.datasources[ds.UID] = ds
			}
		case dir == "alerting" && (ext == ".yaml" || ext == ".yml" || ext == ".json"):
			var a alertingFile
			if err := decodeYAMLStrict(b, &a); err != nil { // YAML is a superset of JSON
				t.Fatalf("%s: %v", f, err)
			}
			checkAPIVersion(t, f, a.APIVersion)
			for _, g := range a.Groups {
				for _, r := range g.Rules {
					if prev, dup := p.ruleFiles[r.UID]; dup {
						t.Fatalf("%s: rule uid %q already used in %s", f, r.UID, prev)
					}
					p.ruleFiles[r.UID] = f
					p.rules = append(p.rules, r)
				}
			}
			if len(a.Groups) > 0 {
				checkGroups(t, f, a.Groups)
			}
			for _, c := range a.ContactPoints {
				if _, dup := p.contacts[c.Name]; dup {
					t.Fatalf("%s: contact point %q provisioned twice", f, c.Name)
				}
				p.contacts[c.Name] = c
			}
			p.policies = append(p.policies, a.Policies...)
		case dir == "dashboards" && (ext == ".yaml" || ext == ".yml"):
			var d dashboardProvidersFile
			if err := decodeYAMLStrict(b, &d); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			checkAPIVersion(t, f, d.APIVersion)
			p.providers = append(p.providers, d.Providers...)
		case dir == "dashboards" && ext == ".json":
			if !json.Valid(b) {
				var v any
				t.Fatalf("%s: invalid JSON: %v", f, json.Unmarshal(b, &v))
			}
			var d dashboard
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			p.dashboards[f] = d
		default:
			t.Fatalf("%s: Grafana's provisioning reads YAML in datasources/, alerting/ and dashboards/ and dashboard JSON in dashboards/; this file is neither", f)
		}
	}
	return p
}

func checkAPIVersion(t testing.TB, f string, v int) {
	t.Helper()
	if v != 1 {
		t.Fatalf("%s: apiVersion %d, want 1", f, v)
	}
}

// checkGroups checks what Grafana requires of a rule group.
func checkGroups(t testing.TB, f string, gs []ruleGroup) {
	t.Helper()
	for _, g := range gs {
		if g.OrgID < 1 || g.Name == "" || g.Folder == "" {
			t.Errorf("%s: rule group %q needs orgId, name and folder", f, g.Name)
		}
		if _, err := parseGrafanaDuration(g.Interval); err != nil {
			t.Errorf("%s: group %q interval: %v", f, g.Name, err)
		}
	}
}
