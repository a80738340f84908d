package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse reads settings from YAML or JSON (JSON is read as YAML, which it is
// a subset of), strictly: an unknown key anywhere is an error naming its
// path. Defaults are applied and the result is validated.
func Parse(data []byte) (*Settings, error) {
	s := &Settings{}
	if strings.TrimSpace(string(data)) != "" {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("parse settings: %w", err)
		}
		if len(doc.Content) == 1 && !isNull(doc.Content[0]) {
			dropGrafanaKeys(doc.Content[0])
			if err := decodeNode(doc.Content[0], reflect.ValueOf(s).Elem(), ""); err != nil {
				return nil, fmt.Errorf("parse settings: %w", err)
			}
		}
	}
	if s.ScrapeConfigsYAML != "" {
		// Both may be given (the editor's form plus its advanced box): the
		// YAML's jobs come after the form's, and job names must differ.
		sc, err := parseScrapeConfigsYAML(s.ScrapeConfigsYAML)
		if err != nil {
			return nil, fmt.Errorf("parse settings: %w", err)
		}
		s.ScrapeConfigs, s.ScrapeConfigsYAML = append(s.ScrapeConfigs, sc...), ""
	}
	s.ApplyDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// parseScrapeConfigsYAML accepts either the list itself or a document with a
// scrape_configs key (a pasted promtail.yaml section).
func parseScrapeConfigsYAML(text string) ([]ScrapeConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("scrape_configs_yaml: %w", err)
	}
	if len(doc.Content) != 1 || isNull(doc.Content[0]) {
		return nil, nil
	}
	n := doc.Content[0]
	path := "scrape_configs_yaml"
	if n.Kind == yaml.MappingNode {
		var inner *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value != "scrape_configs" {
				return nil, fmt.Errorf("%s.%s: unknown key: only a scrape_configs list belongs here%s", path, n.Content[i].Value, promtailHint(n.Content[i].Value))
			}
			inner = n.Content[i+1]
		}
		if inner == nil {
			return nil, nil
		}
		n, path = inner, path+".scrape_configs"
	}
	var out []ScrapeConfig
	if err := decodeNode(n, reflect.ValueOf(&out).Elem(), path); err != nil {
		return nil, err
	}
	return out, nil
}

// grafanaKeys are jsonData keys Grafana itself may store for any datasource
// (DataSourceJsonData); they are Grafana's business, not settings of Lokal.
var grafanaKeys = map[string]bool{
	"authType": true, "defaultRegion": true, "profile": true, "manageAlerts": true,
	"alertmanagerUid": true, "disableGrafanaCache": true, "timeInterval": true,
}

// dropGrafanaKeys removes Grafana's own keys from the top-level mapping.
func dropGrafanaKeys(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if grafanaKeys[n.Content[i].Value] {
			continue
		}
		kept = append(kept, n.Content[i], n.Content[i+1])
	}
	n.Content = kept
}

type keyHinter interface{ unknownKeyHint(key string) string }

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeNode decodes n into v, rejecting unknown struct keys with their path.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	where := path
	if where == "" {
		where = "settings"
	}
	if v.CanAddr() && reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		// An empty string from a cleared form field means "not set", so the
		// default applies (for retention, "" must not mean 0 = keep all).
		if isNull(n) || (n.Kind == yaml.ScalarNode && n.Value == "" && n.Tag == "!!str" && v.Type().Elem().Kind() != reflect.Struct) {
			// "- decolorize:" names an option-less stage: present, not absent
			if et := v.Type().Elem(); et.Kind() == reflect.Struct && et.NumField() == 0 {
				v.Set(reflect.New(et))
			}
			return nil
		}
		nv := reflect.New(v.Type().Elem())
		if err := decodeNode(n, nv.Elem(), path); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	case reflect.Struct:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: expected a mapping of keys, found %s", where, describe(n))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if seen[key] {
				return fmt.Errorf("%s: duplicate key", join(path, key))
			}
			seen[key] = true
			f, ok := fieldByTag(v, key)
			if !ok {
				msg := "unknown key" + promtailHint(key)
				if h, ok := v.Interface().(keyHinter); ok {
					msg = h.unknownKeyHint(key)
				}
				return fmt.Errorf("%s: %s", join(path, key), msg)
			}
			if err := decodeNode(n.Content[i+1], f, join(path, key)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if isNull(n) {
			// "labels:" with nothing after it is an empty map, not absent.
			v.Set(reflect.MakeMap(v.Type()))
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: expected a mapping, found %s", where, describe(n))
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if m.MapIndex(reflect.ValueOf(key)).IsValid() {
				return fmt.Errorf("%s: duplicate key", join(path, key))
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := decodeNode(n.Content[i+1], ev, join(path, key)); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(key), ev)
		}
		v.Set(m)
		return nil
	case reflect.Slice:
		if isNull(n) {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return nil
		}
		if n.Kind == yaml.ScalarNode && v.Type() == reflect.TypeOf(StringList{}) {
			v.Set(reflect.ValueOf(StringList{n.Value}))
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: expected a list, found %s", where, describe(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := decodeNode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		if isNull(n) {
			v.SetString("")
			return nil
		}
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: expected a string, found %s", where, describe(n))
		}
		v.SetString(n.Value)
		return nil
	default:
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: expected a %s, found %s", where, v.Kind(), describe(n))
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: expected a %s, found %q", where, v.Kind(), n.Value)
		}
		return nil
	}
}

func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if name, _, _ := strings.Cut(tag, ","); name == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// promtailKeys are Promtail keys users paste that Lokal deliberately does not
// implement; naming them turns "unknown key" into an actionable message.
var promtailKeys = map[string]string{
	"server":                 "Promtail's own server block has no meaning in Lokal",
	"positions":              "Lokal keeps file positions in its store",
	"limits_config":          "not supported",
	"target_config":          "use poll_interval instead",
	"options":                "not supported",
	"tracing":                "not supported",
	"kubernetes_sd_configs":  "Lokal tails local files only: use static_configs with __path__",
	"docker_sd_configs":      "Lokal tails local files only: use static_configs with __path__",
	"file_sd_configs":        "Lokal tails local files only: use static_configs with __path__",
	"consul_sd_configs":      "Lokal tails local files only: use static_configs with __path__",
	"consulagent_sd_configs": "Lokal tails local files only: use static_configs with __path__",
	"journal":                "the systemd journal is not supported: Lokal tails files",
	"syslog":                 "a syslog listener is not supported: Lokal tails files",
	"loki_push_api":          "a push listener is not supported: Lokal tails files",
	"windows_events":         "not supported: Lokal tails files",
	"gelf":                   "not supported: Lokal tails files",
	"kafka":                  "not supported: Lokal tails files",
	"gcplog":                 "not supported: Lokal tails files",
	"cloudflare":             "not supported: Lokal tails files",
	"heroku_drain":           "not supported: Lokal tails files",
	"azure_event_hubs":       "not supported: Lokal tails files",
	"relabel_configs":        "relabelling is not supported: set labels in static_configs or with pipeline stages",
	"encoding":               "only UTF-8 (invalid bytes kept as they are) is supported",
	"decompression":          "not supported: rotated *.gz files are read automatically",
}

func promtailHint(key string) string {
	if h, ok := promtailKeys[key]; ok {
		return " (Promtail's " + key + ": " + h + ")"
	}
	return ""
}
