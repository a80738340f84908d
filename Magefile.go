//go:build mage

// Magefile builds and tests Lokal: `go tool mage -v` builds the plugin's
// backend for every platform into dist/ (the SDK's build targets) together
// with plugin.json and the CLI; `go tool mage test` runs every test.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	//mage:import sdk
	"github.com/grafana/grafana-plugin-sdk-go/build"
	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"
)

// Default builds the backend for every platform, the CLI, and copies plugin.json.
var Default = All

func init() {
	// plugin.json lives at the repository root, not in src/ as the SDK assumes.
	_ = build.SetBeforeBuildCallback(func(cfg build.Config) (build.Config, error) {
		cfg.PluginJSONPath = "."
		return cfg, nil
	})
}

// All builds the backend for every supported platform, the CLI, and copies
// plugin.json into dist/. Windows is not among them: the store locks with
// flock(2) and the ingester knows files by device and inode.
func All() error {
	b := build.Build{}
	mg.Deps(b.Linux, b.LinuxARM64, b.LinuxARM, b.Darwin, b.DarwinARM64)
	mg.Deps(CLI)
	return copyPluginJSON()
}

// Backend builds the backend for this machine's platform only.
func Backend() error {
	if err := (build.Build{}).Backend(); err != nil {
		return err
	}
	return copyPluginJSON()
}

// CLI builds dist/lokal for this machine, statically linked so it runs on
// any Linux (the Docker sample writer uses a slim image).
func CLI() error {
	return sh.RunWithV(map[string]string{"CGO_ENABLED": "0"}, "go", "build", "-o", filepath.Join("dist", exeName("lokal")), "./pkg/cmd/lokal")
}

// Frontend installs the frontend's packages and builds dist/module.js.
func Frontend() error {
	if err := needNpm(); err != nil {
		return err
	}
	if err := sh.RunV("npm", "ci"); err != nil {
		return err
	}
	return sh.RunV("npm", "run", "build")
}

// Test runs every test: Go with -race, then the frontend's typecheck, lint and jest.
func Test() error {
	// ./pkg/... rather than ./...: node_modules holds stray Go packages.
	if err := sh.RunV("go", "test", "-race", "./pkg/..."); err != nil {
		return err
	}
	if _, err := os.Stat("package.json"); err != nil {
		fmt.Println("frontend tests skipped: no package.json in", mustWd())
		return nil
	}
	if err := needNpm(); err != nil {
		fmt.Println("frontend tests skipped:", err)
		return nil
	}
	if _, err := os.Stat("node_modules"); err != nil {
		if err := sh.RunV("npm", "ci"); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"run", "typecheck"},
		{"run", "lint"},
		{"test", "--", "--ci"},
	}
	// The editors' browser check, when the frontend defines it (it skips
	// with a message when no Chromium is installed).
	if hasNpmScript("e2e") {
		steps = append(steps, []string{"run", "e2e"})
	}
	for _, args := range steps {
		if err := sh.RunV("npm", args...); err != nil {
			return err
		}
	}
	return nil
}

// Demo builds the CLI, writes sample CosyVoice3 logs, ingests them and runs
// the seed's queries.
func Demo() error {
	mg.Deps(CLI)
	return sh.RunV(filepath.Join("dist", exeName("lokal")), "demo")
}

// Bench runs the benchmark suite on a 1 GiB corpus written by the project's
// sample generator (or on the directory LOKAL_BENCH_CORPUS names, e.g. one
// written by ../shared/bin/loggen), prints the table and writes
// bench-results.json.
func Bench() error {
	return runBench("1GiB", "5")
}

// BenchShort is Bench on 32 MiB: it proves the suite works, in CI too.
func BenchShort() error {
	return runBench("32MiB", "3")
}

func runBench(size, runs string) error {
	mg.Deps(CLI)
	args := []string{"bench", "--size", size, "--runs", runs}
	if dir := os.Getenv("LOKAL_BENCH_CORPUS"); dir != "" {
		args = append(args, "--corpus", dir)
	}
	return sh.RunV(filepath.Join("dist", exeName("lokal")), args...)
}

// copyPluginJSON copies plugin.json into dist/, filling in the version
// and date placeholders the way the frontend's webpack build does.
func copyPluginJSON() error {
	b, err := os.ReadFile("plugin.json")
	if err != nil {
		return fmt.Errorf("read plugin.json: %w", err)
	}
	version := "0.0.0"
	if pj, err := os.ReadFile("package.json"); err == nil {
		var p struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(pj, &p) == nil && p.Version != "" {
			version = p.Version
		}
	}
	b = bytes.ReplaceAll(b, []byte("%VERSION%"), []byte(version))
	b = bytes.ReplaceAll(b, []byte("%TODAY%"), []byte(time.Now().UTC().Format("2006-01-02")))
	if err := os.MkdirAll("dist", 0o755); err != nil {
		return fmt.Errorf("create dist: %w", err)
	}
	if err := os.WriteFile(filepath.Join("dist", "plugin.json"), b, 0o644); err != nil {
		return fmt.Errorf("copy plugin.json to dist: %w", err)
	}
	return nil
}

// hasNpmScript reports whether package.json defines script name.
func hasNpmScript(name string) bool {
	b, err := os.ReadFile("package.json")
	if err != nil {
		return false
	}
	var p struct {
		Scripts map[string]string `json:"scripts"`
	}
	if json.Unmarshal(b, &p) != nil {
		return false
	}
	_, ok := p.Scripts[name]
	return ok
}

func needNpm() error {
	if _, err := exec.LookPath("npm"); err != nil {
		return errors.New("npm is not installed (install Node.js LTS to build and test the frontend)")
	}
	return nil
}

func exeName(name string) string {
	if runtime.GOOS == "windows" {
		return name + ".exe"
	}
	return name
}

func mustWd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

// GrafanaE2E is the real-Grafana check: it builds the plugin (backend for
// this machine and frontend), installs dist/ into a Grafana 12.4 the way a
// user does, provisions provisioning/ as shipped and checks queries,
// dashboards, resources, alerting, live tail, a SIGKILL of Grafana and the
// UI in headless Chromium (pkg/grafanae2e). LOKAL_GRAFANA_HOME names the
// Grafana that pkg/grafanae2e/build-grafana.sh built; without it the check
// says so and skips, as in CI, which cannot fetch Grafana's source.
func GrafanaE2E() error {
	home := os.Getenv("LOKAL_GRAFANA_HOME")
	if home == "" {
		fmt.Println("grafanaE2E skipped: LOKAL_GRAFANA_HOME is not set (pkg/grafanae2e/build-grafana.sh builds Grafana 12.4 and prints the value)")
		return nil
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "grafana")); err != nil {
		fmt.Printf("grafanaE2E skipped: no Grafana binary at %s/bin/grafana\n", home)
		return nil
	}
	mg.Deps(Backend)
	if err := frontendIfStale(); err != nil {
		return err
	}
	return sh.RunV("go", "test", "-tags", "grafanae2e", "-count=1", "-v", "-timeout", "20m", "./pkg/grafanae2e")
}

// frontendIfStale builds dist/module.js when it is missing or older than a
// file under src/.
func frontendIfStale() error {
	built, err := os.Stat(filepath.Join("dist", "module.js"))
	stale := err != nil
	if !stale {
		_ = filepath.WalkDir("src", func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil && fi.ModTime().After(built.ModTime()) {
					stale = true
					return filepath.SkipAll
				}
			}
			return nil
		})
	}
	if !stale {
		return nil
	}
	if err := needNpm(); err != nil {
		return err
	}
	if _, err := os.Stat("node_modules"); err != nil {
		if err := sh.RunV("npm", "ci"); err != nil {
			return err
		}
	}
	return sh.RunV("npm", "run", "build")
}
