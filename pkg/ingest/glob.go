package ingest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// maxBraceExpansions bounds {a,b} expansion so a hostile pattern such as
// "{a,b}{a,b}{a,b}..." cannot make discovery allocate without limit.
const maxBraceExpansions = 1024

// maxGlobDepth bounds how deep "**" descends, so a directory loop made of
// bind mounts (symlinked directories are never followed) cannot recurse
// forever.
const maxGlobDepth = 64

// globPattern is a compiled path glob in Promtail's dialect: path.Match
// syntax per segment, "**" as a whole segment for zero or more directories,
// and {a,b} alternatives.
type globPattern struct {
	raw  string
	alts [][]string // brace-expanded alternatives, each split into segments
}

// compileGlob validates a pattern. Patterns must be absolute: a relative one
// would depend on the working directory of whatever process runs Lokal.
func compileGlob(pattern string) (*globPattern, error) {
	if pattern == "" {
		return nil, errors.New("empty path pattern")
	}
	if !strings.HasPrefix(pattern, "/") {
		if filepath.IsAbs(pattern) { // C:\logs\*.log: only reachable on Windows
			return nil, fmt.Errorf("path pattern %q: tailing files by Windows paths is not supported yet (Lokal tails files on Linux and macOS)", pattern)
		}
		return nil, fmt.Errorf("path pattern %q is not absolute", pattern)
	}
	expanded, err := expandBraces(pattern)
	if err != nil {
		return nil, fmt.Errorf("path pattern %q: %w", pattern, err)
	}
	g := &globPattern{raw: pattern}
	for _, e := range expanded {
		segs := splitSegments(path.Clean(e))
		for _, s := range segs {
			if s == "**" {
				continue
			}
			if strings.Contains(s, "**") {
				return nil, fmt.Errorf("path pattern %q: \"**\" must be a whole path segment", pattern)
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("path pattern %q: segment %q: %w", pattern, s, err)
			}
		}
		g.alts = append(g.alts, segs)
	}
	return g, nil
}

func splitSegments(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// expandBraces turns "a{b,c}d" into ["abd", "acd"], recursively.
func expandBraces(p string) ([]string, error) {
	out := []string{}
	var rec func(s string) error
	rec = func(s string) error {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return errors.New("unbalanced '}'")
			}
			if len(out) >= maxBraceExpansions {
				return fmt.Errorf("more than %d alternatives", maxBraceExpansions)
			}
			out = append(out, s)
			return nil
		}
		depth, end := 0, -1
		var commas []int
		for i := open; i < len(s) && end < 0; i++ {
			switch s[i] {
			case '{':
				depth++
			case '}':
				depth--
				if depth == 0 {
					end = i
				}
			case ',':
				if depth == 1 {
					commas = append(commas, i)
				}
			}
		}
		if end < 0 {
			return errors.New("unbalanced '{'")
		}
		prefix, suffix := s[:open], s[end+1:]
		start := open + 1
		for _, c := range append(commas, end) {
			if err := rec(prefix + s[start:c] + suffix); err != nil {
				return err
			}
			start = c + 1
		}
		return nil
	}
	if err := rec(p); err != nil {
		return nil, err
	}
	return out, nil
}

// Match reports whether the absolute, cleaned path p matches the pattern.
func (g *globPattern) Match(p string) bool {
	segs := splitSegments(path.Clean(p))
	for _, alt := range g.alts {
		if matchSegments(alt, segs) {
			return true
		}
	}
	return false
}

func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(segs); i++ {
				if matchSegments(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

func hasMeta(s string) bool { return strings.ContainsAny(s, "*?[\\") }

// Glob lists the existing non-directory paths the pattern matches, sorted and
// without duplicates. Symlinked directories are not descended by "**" (a link
// loop would never end); a symlink named directly by a literal segment is.
// Unreadable directories are reported through onErr and skipped.
func (g *globPattern) Glob(onErr func(dir string, err error)) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, alt := range g.alts {
		walkGlob("/", alt, 0, add, onErr)
	}
	sort.Strings(out)
	return out
}

func walkGlob(dir string, pat []string, depth int, add func(string), onErr func(string, error)) {
	if depth > maxGlobDepth {
		return
	}
	// Literal segments need no directory listing.
	for len(pat) > 0 && pat[0] != "**" && !hasMeta(pat[0]) {
		dir = filepath.Join(dir, pat[0])
		pat = pat[1:]
	}
	if len(pat) == 0 {
		fi, err := os.Stat(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && onErr != nil {
				onErr(dir, err)
			}
			return
		}
		if !fi.IsDir() {
			add(dir)
		}
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) && onErr != nil {
			onErr(dir, err)
		}
		return
	}
	if pat[0] == "**" {
		// Zero directories...
		walkGlob(dir, pat[1:], depth+1, add, onErr)
		// ...or one more, then "**" again.
		for _, e := range entries {
			if e.IsDir() { // DirEntry.IsDir is false for symlinks: never followed
				walkGlob(filepath.Join(dir, e.Name()), pat, depth+1, add, onErr)
			}
		}
		return
	}
	for _, e := range entries {
		if ok, _ := path.Match(pat[0], e.Name()); !ok {
			continue
		}
		child := filepath.Join(dir, e.Name())
		if len(pat) == 1 {
			if e.IsDir() {
				continue
			}
			if e.Type()&fs.ModeSymlink != 0 {
				if fi, err := os.Stat(child); err == nil && fi.IsDir() {
					continue
				}
			}
			add(child)
			continue
		}
		if e.IsDir() || e.Type()&fs.ModeSymlink != 0 {
			walkGlob(child, pat[1:], depth+1, add, onErr)
		}
	}
}
