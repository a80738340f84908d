package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environment variables of the operator's controls. Grafana hands the keys of
// grafana.ini's [plugin.lokal-logql-datasource] section to the plugin process
// as GF_PLUGIN_<KEY>; the CLI reads the same variables.
const (
	EnvAllowedPaths = "GF_PLUGIN_ALLOWED_PATHS"
	EnvDataPath     = "GF_PLUGIN_DATA_PATH"
	// EnvQueryTimeout bounds how long one query may run in the plugin
	// (a Go duration, e.g. 2m); Grafana's own request deadline can only
	// shorten it.
	EnvQueryTimeout = "GF_PLUGIN_QUERY_TIMEOUT"
	// EnvMaxConcurrent is how many queries the plugin process runs at
	// once (Loki's querier max_concurrent); the others wait in order.
	EnvMaxConcurrent = "GF_PLUGIN_MAX_CONCURRENT"
	// EnvGrafanaData is Grafana's data directory, the first fallback root.
	EnvGrafanaData = "GF_PATHS_DATA"
)

// allowHelp tells an operator exactly how to allow a directory.
const allowHelp = "add it to allowed_paths in grafana.ini's [plugin.lokal-logql-datasource] section (environment variable " + EnvAllowedPaths + ", comma-separated directories)"

// Operator holds what only the server's operator decides: which directories
// Lokal may read, and the root under which stores are written. It comes from
// the environment, never from a datasource's settings, so editing a
// datasource cannot widen what the plugin reads.
type Operator struct {
	// AllowedPaths are cleaned absolute directories; empty allows nothing.
	AllowedPaths []string
	// DataPath is the root for stores.
	DataPath string
	// QueryTimeout is the longest a query may run; 0 means the engine's
	// default.
	QueryTimeout time.Duration
	// MaxConcurrent is how many queries run at once in the process; 0
	// means the host's default.
	MaxConcurrent int
	// ResultCacheBytes bounds the block results kept on disk next to each
	// store (ParseResultCache: -1 off, 0 the engine's default).
	ResultCacheBytes int64
}

// OperatorFromEnv reads the operator's controls. The data path falls back to
// $GF_PATHS_DATA/lokal; then, for a plugin installed in Grafana's plugins
// directory (<data>/plugins/<plugin>/gpx_lokal), <data>/lokal, since Grafana
// 12.4 and later no longer hand host variables such as GF_PATHS_DATA to
// plugins; then $XDG_CACHE_HOME/lokal, $HOME/.cache/lokal, <temp dir>/lokal.
// Relative allowed paths are rejected (they would depend on the working
// directory of whoever started the process).
func OperatorFromEnv(getenv func(string) string) (*Operator, error) {
	exe, _ := os.Executable()
	return operatorFrom(getenv, exe)
}

// pluginsDataPath returns <data>/lokal when exe lies in <data>/plugins/<dir>/.
func pluginsDataPath(exe string) string {
	if exe == "" {
		return ""
	}
	pluginDir := filepath.Dir(exe)
	plugins := filepath.Dir(pluginDir)
	if filepath.Base(plugins) != "plugins" || plugins == pluginDir {
		return ""
	}
	return filepath.Join(filepath.Dir(plugins), "lokal")
}

func operatorFrom(getenv func(string) string, exe string) (*Operator, error) {
	op := &Operator{}
	var bad []string
	for _, p := range strings.Split(getenv(EnvAllowedPaths), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			bad = append(bad, p)
			continue
		}
		op.AllowedPaths = append(op.AllowedPaths, resolveExisting(filepath.Clean(p)))
	}
	switch {
	case getenv(EnvDataPath) != "":
		op.DataPath = getenv(EnvDataPath)
	case getenv(EnvGrafanaData) != "":
		op.DataPath = filepath.Join(getenv(EnvGrafanaData), "lokal")
	case pluginsDataPath(exe) != "":
		op.DataPath = pluginsDataPath(exe)
	case getenv("XDG_CACHE_HOME") != "":
		op.DataPath = filepath.Join(getenv("XDG_CACHE_HOME"), "lokal")
	case getenv("HOME") != "":
		op.DataPath = filepath.Join(getenv("HOME"), ".cache", "lokal")
	default:
		op.DataPath = filepath.Join(os.TempDir(), "lokal")
	}
	if !filepath.IsAbs(op.DataPath) {
		return op, fmt.Errorf("%s: %q is not an absolute directory", EnvDataPath, op.DataPath)
	}
	op.DataPath = resolveExisting(filepath.Clean(op.DataPath))
	if v := strings.TrimSpace(getenv(EnvQueryTimeout)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return op, fmt.Errorf("%s: %q is not a positive duration such as 2m", EnvQueryTimeout, v)
		}
		op.QueryTimeout = d
	}
	if v := strings.TrimSpace(getenv(EnvMaxConcurrent)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return op, fmt.Errorf("%s: %q is not a positive whole number such as 2", EnvMaxConcurrent, v)
		}
		op.MaxConcurrent = n
	}
	if v := getenv(EnvResultCache); v != "" {
		n, err := ParseResultCache(v)
		if err != nil {
			return op, fmt.Errorf("%s: %w", EnvResultCache, err)
		}
		op.ResultCacheBytes = n
	}
	if len(bad) > 0 {
		return op, fmt.Errorf("%s: relative directories %q are ignored: give absolute paths", EnvAllowedPaths, bad)
	}
	return op, nil
}

// CheckPath cleans p, resolves the symbolic links of its existing part and
// reports the resolved path when it lies under an allowed directory. p may be
// a glob: only its directory part before the first wildcard is resolved, and
// the pattern is kept.
func (o *Operator) CheckPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	p = filepath.Clean(p)
	base, pattern := splitGlob(p)
	resolved := resolveExisting(base)
	if pattern != "" {
		resolved = filepath.Join(resolved, pattern)
	}
	if len(o.AllowedPaths) == 0 {
		return "", fmt.Errorf("path %s is not allowed: no directory is allowed yet; %s, e.g. allowed_paths = %s", p, allowHelp, filepath.Dir(base))
	}
	for _, a := range o.AllowedPaths {
		// An Operator built by hand may name a directory through a link.
		if within(a, resolved) || within(resolveExisting(filepath.Clean(a)), resolved) {
			return resolved, nil
		}
	}
	msg := fmt.Sprintf("path %s is not allowed (allowed: %s); %s", p, strings.Join(o.AllowedPaths, ", "), allowHelp)
	if resolved != p {
		// Where the link points is not the editor's business: it may name
		// files the operator never meant to show.
		msg = fmt.Sprintf("path %s is not allowed: through a symbolic link it leaves the allowed directories (allowed: %s); %s", p, strings.Join(o.AllowedPaths, ", "), allowHelp)
	}
	return "", errors.New(msg)
}

// StoreDir resolves the store directory of a datasource: storage.path when
// set (it must lie under the data path, so a datasource editor cannot make
// the plugin write elsewhere), else <data path>/<uid>.
func (o *Operator) StoreDir(s *Settings, uid string) (string, error) {
	if s != nil && s.Storage.Path != "" {
		p := s.Storage.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(o.DataPath, p)
		}
		p = resolveExisting(filepath.Clean(p))
		if !within(o.DataPath, p) || p == o.DataPath {
			return "", fmt.Errorf("storage.path %s is not under the data path %s: choose a directory below it, or have the operator change data_path in grafana.ini's [plugin.lokal-logql-datasource] section (%s)", s.Storage.Path, o.DataPath, EnvDataPath)
		}
		return p, nil
	}
	if uid == "" || uid == "." || uid == ".." || strings.ContainsAny(uid, `/\`+"\x00") {
		return "", fmt.Errorf("datasource uid %q cannot name a directory: set storage.path", uid)
	}
	return filepath.Join(o.DataPath, uid), nil
}

// within reports whether p is dir or below it, comparing whole path elements.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}

// splitGlob splits a cleaned path into the directory part before the first
// element holding a wildcard, and the rest.
func splitGlob(p string) (base, pattern string) {
	i := strings.IndexAny(p, "*?[{")
	if i < 0 {
		return p, ""
	}
	j := strings.LastIndexByte(p[:i], filepath.Separator)
	if j <= 0 {
		return string(filepath.Separator), strings.TrimPrefix(p, string(filepath.Separator))
	}
	return p[:j], p[j+1:]
}

// resolveExisting resolves symbolic links in the longest existing prefix of
// p and appends the rest unchanged: a file that does not exist yet is judged
// by where its existing parent really is.
func resolveExisting(p string) string {
	rest := ""
	cur := p
	for {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			if rest == "" {
				return r
			}
			return filepath.Join(r, rest)
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
			// e.g. a loop of links: judge the path as written
			return p
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		if rest == "" {
			rest = filepath.Base(cur)
		} else {
			rest = filepath.Join(filepath.Base(cur), rest)
		}
		cur = parent
	}
}
