package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lokal-logs/lokal/pkg/config"
)

var (
	// errUsage: the flag package already printed what was wrong.
	errUsage = errors.New("usage")
	// errReported: the command already printed its error.
	errReported = errors.New("reported")
)

// parseFlags parses flags that may come before or after positional
// arguments (`lokal query '{a="b"}' --since 1h`) and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errUsage
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// loaded is a config file with the operator controls that apply to it.
type loaded struct {
	path     string
	settings *config.Settings
	op       *config.Operator
	storeDir string
}

// loadConfig reads the config file and resolves the operator controls and
// the store directory the way the package documentation describes.
func loadConfig(path string, e env) (*loaded, error) {
	if path == "" {
		return nil, fmt.Errorf("--config is required: a file in the datasource settings schema (YAML or JSON)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	s, err := config.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfgDir := filepath.Dir(abs)
	// A relative storage.path is relative to the config file when the
	// operator has not named a data path (then it is below the data path).
	if s.Storage.Path != "" && !filepath.IsAbs(s.Storage.Path) && e.getenv(config.EnvDataPath) == "" {
		s.Storage.Path = filepath.Join(cfgDir, s.Storage.Path)
	}
	getenv := func(k string) string {
		v := e.getenv(k)
		switch {
		case k == config.EnvAllowedPaths && v == "":
			return strings.Join(configDirs(s), ",")
		case k == config.EnvDataPath && v == "" && s.Storage.Path != "":
			return filepath.Dir(filepath.Clean(s.Storage.Path))
		}
		return v
	}
	op, err := config.OperatorFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	uid := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	dir, err := op.StoreDir(s, uid)
	if err != nil {
		return nil, err
	}
	return &loaded{path: path, settings: s, op: op, storeDir: dir}, nil
}

// configDirs are the absolute directories the config's globs start in.
func configDirs(s *config.Settings) []string {
	var out []string
	seen := map[string]bool{}
	for _, sc := range s.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			p := st.Path()
			if p == "" {
				continue
			}
			if i := strings.IndexAny(p, "*?[{"); i >= 0 {
				p = p[:i]
				if j := strings.LastIndexByte(p, filepath.Separator); j >= 0 {
					p = p[:j+1]
				}
			} else {
				p = filepath.Dir(p)
			}
			if p == "" {
				p = "."
			}
			a, err := filepath.Abs(p)
			if err != nil || seen[a] {
				continue
			}
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
