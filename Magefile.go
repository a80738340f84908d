//go:build mage

// Magefile builds and tests Lokal: `go tool mage -v` builds the plugin's
// backend for every platform into dist/ (the SDK's build targets) together
// with plugin.json and the CLI; `go tool mage test` runs every test.
package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
// plugin.json into dist/. Windows' backend runs stores and queries but
// does not tail files yet (see the README's Platforms).
func All() error {
	b := build.Build{}
	mg.Deps(b.Linux, b.LinuxARM64, b.LinuxARM, b.Darwin, b.DarwinARM64, b.Windows)
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
	b = bytes.ReplaceAll(b, []byte("%VERSION%"), []byte(packageVersion()))
	b = bytes.ReplaceAll(b, []byte("%TODAY%"), []byte(time.Now().UTC().Format("2006-01-02")))
	if err := os.MkdirAll("dist", 0o755); err != nil {
		return fmt.Errorf("create dist: %w", err)
	}
	if err := os.WriteFile(filepath.Join("dist", "plugin.json"), b, 0o644); err != nil {
		return fmt.Errorf("copy plugin.json to dist: %w", err)
	}
	return nil
}

// packageVersion is package.json's version, the plugin's version.
func packageVersion() string {
	if pj, err := os.ReadFile("package.json"); err == nil {
		var p struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(pj, &p) == nil && p.Version != "" {
			return p.Version
		}
	}
	return "0.0.0"
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
	return exeFor(name, runtime.GOOS == "windows")
}

func exeFor(name string, windows bool) string {
	if windows {
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

// releasePlatforms are the backends a release archive carries, as
// "<os>_<arch>" in the SDK's executable names (gpx_lokal_<os>_<arch>[.exe]).
var releasePlatforms = []string{"linux_amd64", "linux_arm64", "darwin_arm64", "windows_amd64"}

// Release builds the plugin the way Grafana installs it:
// dist-release/lokal-logql-datasource-<version>.zip holding the folder
// lokal-logql-datasource/ with plugin.json, module.js, the frontend's assets
// and the backend for linux/amd64, linux/arm64, darwin/arm64 and
// windows/amd64, plus the zip's SHA1 (what Grafana's plugin submission asks
// for) beside it. Install it with
// `grafana cli --pluginUrl <zip> plugins install lokal-logql-datasource`.
//
// With GRAFANA_ACCESS_POLICY_TOKEN set, the folder is signed with
// @grafana/sign-plugin before it is zipped: a private signature for the
// Grafana root URLs in LOKAL_SIGN_ROOT_URLS (comma-separated), or the
// plugin's public signature level when that is unset. Without the token
// the archive is unsigned.
func Release() error {
	if err := npmInstalled(); err != nil {
		return err
	}
	// The frontend's build empties dist/ but keeps the backends, so it
	// goes first.
	if err := sh.RunV("npm", "run", "build"); err != nil {
		return err
	}
	b := build.Build{}
	mg.SerialDeps(b.Linux, b.LinuxARM64, b.DarwinARM64, b.Windows)
	// dist/plugin.json is the frontend build's (version filled in, and its
	// buildMode), not copyPluginJSON's.
	var manifest struct {
		ID         string `json:"id"`
		Executable string `json:"executable"`
		Info       struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	pj, err := os.ReadFile(filepath.Join("dist", "plugin.json"))
	if err != nil {
		return fmt.Errorf("read dist/plugin.json: %w", err)
	}
	if err := json.Unmarshal(pj, &manifest); err != nil {
		return fmt.Errorf("dist/plugin.json: %w", err)
	}
	if manifest.ID == "" || manifest.Executable == "" || manifest.Info.Version == "" || bytes.Contains(pj, []byte("%VERSION%")) {
		return fmt.Errorf("dist/plugin.json lacks id, executable or a filled-in info.version")
	}
	files, err := releaseFiles("dist", manifest.Executable)
	if err != nil {
		return err
	}
	// The folder is staged apart from dist/ so that a signature covers
	// exactly the files the archive holds.
	stage := filepath.Join("dist-release", manifest.ID)
	if err := os.RemoveAll(stage); err != nil {
		return fmt.Errorf("clear %s: %w", stage, err)
	}
	for _, rel := range files {
		if err := copyReleaseFile(filepath.Join("dist", filepath.FromSlash(rel)), filepath.Join(stage, filepath.FromSlash(rel))); err != nil {
			return err
		}
	}
	if os.Getenv("GRAFANA_ACCESS_POLICY_TOKEN") != "" {
		args := []string{"@grafana/sign-plugin@latest", "--distDir", stage}
		if roots := os.Getenv("LOKAL_SIGN_ROOT_URLS"); roots != "" {
			args = append(args, "--rootUrls", roots)
		}
		if err := sh.RunV("npx", args...); err != nil {
			return fmt.Errorf("sign %s: %w", stage, err)
		}
		if _, err := os.Stat(filepath.Join(stage, "MANIFEST.txt")); err != nil {
			return fmt.Errorf("sign %s: no MANIFEST.txt written: %w", stage, err)
		}
		files = append(files, "MANIFEST.txt")
	} else {
		fmt.Println("unsigned: Grafana loads it only when allow_loading_unsigned_plugins names", manifest.ID, "(set GRAFANA_ACCESS_POLICY_TOKEN to sign; see the README)")
	}
	zipPath := filepath.Join("dist-release", fmt.Sprintf("%s-%s.zip", manifest.ID, manifest.Info.Version))
	if err := writeReleaseZip(zipPath, manifest.ID, stage, files); err != nil {
		return err
	}
	sum, err := fileSHA1(zipPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(zipPath+".sha1", []byte(sum+"\n"), 0o644); err != nil {
		return fmt.Errorf("write checksum: %w", err)
	}
	fmt.Printf("%s: %d files, sha1 %s\n", zipPath, len(files), sum)
	return nil
}

// releaseFiles lists what dist/ holds for a release, relative to dist:
// every frontend file and the release platforms' backends, but neither the
// CLI nor backends of other platforms left by earlier builds, nor a
// signature made for another set of files. It fails when plugin.json,
// module.js or a release backend is missing.
func releaseFiles(dist, executable string) ([]string, error) {
	want := map[string]bool{"plugin.json": false, "module.js": false}
	for _, p := range releasePlatforms {
		want[exeFor(executable+"_"+p, strings.HasPrefix(p, "windows_"))] = false
	}
	var files []string
	err := filepath.WalkDir(dist, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dist, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := want[rel]; ok {
			want[rel] = true
		} else if strings.HasPrefix(rel, executable+"_") || rel == "lokal" || rel == "lokal.exe" || rel == "MANIFEST.txt" {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dist, err)
	}
	var missing []string
	for name, found := range want {
		if !found {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("%s lacks %s", dist, strings.Join(missing, ", "))
	}
	slices.Sort(files)
	return files, nil
}

// releaseMode is a packaged file's mode: backends (gpx_*, the SDK's
// prefix) must be executable, as Grafana's packaging guide requires (0755).
func releaseMode(name string) os.FileMode {
	if strings.HasPrefix(path.Base(filepath.ToSlash(name)), "gpx_") {
		return 0o755
	}
	return 0o644
}

func copyReleaseFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("stage %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("stage %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, releaseMode(dst)); err != nil {
		return fmt.Errorf("stage %s: %w", src, err)
	}
	return os.Chmod(dst, releaseMode(dst)) // WriteFile's mode is cut by the umask
}

// writeReleaseZip writes files (relative to dir) into a new zip under the
// folder root/.
func writeReleaseZip(zipPath, root, dir string, files []string) (err error) {
	tmp := zipPath + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw := zip.NewWriter(out)
	dirs := map[string]bool{}
	addDir := func(name string) error {
		if dirs[name] {
			return nil
		}
		dirs[name] = true
		h := &zip.FileHeader{Name: name + "/", Method: zip.Store, Modified: time.Now()}
		h.SetMode(os.ModeDir | 0o755)
		_, err := zw.CreateHeader(h)
		return err
	}
	if err := addDir(root); err != nil {
		return fmt.Errorf("write %s: %w", zipPath, err)
	}
	for _, rel := range files {
		name := root + "/" + rel
		for i := len(root) + 1; i < len(name); i++ {
			if name[i] == '/' {
				if err := addDir(name[:i]); err != nil {
					return fmt.Errorf("write %s: %w", zipPath, err)
				}
			}
		}
		if err := addZipFile(zw, name, filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			return fmt.Errorf("write %s: %w", zipPath, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", zipPath, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", zipPath, err)
	}
	return os.Rename(tmp, zipPath)
}

func addZipFile(zw *zip.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h, err := zip.FileInfoHeader(fi)
	if err != nil {
		return err
	}
	h.Name, h.Method = name, zip.Deflate
	h.SetMode(releaseMode(name))
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}

func fileSHA1(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
	if err := npmInstalled(); err != nil {
		return err
	}
	return sh.RunV("npm", "run", "build")
}

// npmInstalled checks for npm and runs `npm ci` when node_modules is
// missing.
func npmInstalled() error {
	if err := needNpm(); err != nil {
		return err
	}
	if _, err := os.Stat("node_modules"); err != nil {
		return sh.RunV("npm", "ci")
	}
	return nil
}
