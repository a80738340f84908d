package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lokal-logs/lokal/pkg/config"
)

// The provisioned datasource must carry settings the plugin accepts.
func TestProvisionedSettingsParse(t *testing.T) {
	path := filepath.Join("..", "..", "provisioning", "datasources", "lokal.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no provisioning file: %v", err)
	}
	var doc struct {
		Datasources []struct {
			Type     string         `yaml:"type"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Datasources) == 0 {
		t.Fatalf("%s provisions no datasource", path)
	}
	for _, ds := range doc.Datasources {
		if ds.Type != ID {
			t.Errorf("datasource type %q, want %q", ds.Type, ID)
		}
		j, err := json.Marshal(ds.JSONData)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(j); err != nil {
			t.Errorf("provisioned jsonData rejected: %v", err)
		}
	}
}
