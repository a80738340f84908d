package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A damaged manifest makes every command fail with what is wrong (never
// "0 entries", exit 0) and deletes nothing; repair rebuilds it.
func TestRepairDamagedManifest(t *testing.T) {
	c := newCLI(t)
	c.pushFixture()
	code, before, stderr := c.run("", "stats", "--config", c.config)
	if code != 0 || !strings.Contains(before, "manifest") {
		t.Fatalf("stats: exit %d: %s%s", code, before, stderr)
	}
	man := filepath.Join(c.dir, "store", "MANIFEST")
	b, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	b[30] ^= 0xff
	if err := os.WriteFile(man, b, 0o644); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(c.dir, "store", "data", "*", "*.seg"))
	for _, args := range [][]string{
		{"stats", "--config", c.config},
		{"push", "--config", c.config, filepath.Join("testdata", "push.json")},
		{"query", "--config", c.config, `{job="cosyvoice3"}`},
	} {
		code, out, stderr := c.run("", args...)
		if code != 1 || !strings.Contains(stderr, "manifest is damaged") || !strings.Contains(stderr, "lokal repair") ||
			strings.Contains(stderr, "read-only: open store") {
			t.Errorf("%s on a damaged manifest: exit %d, stdout %q, stderr %q", args[0], code, out, stderr)
		}
	}
	if after, _ := filepath.Glob(filepath.Join(c.dir, "store", "data", "*", "*.seg")); len(after) != len(segs) {
		t.Fatalf("segments %d -> %d", len(segs), len(after))
	}
	code, out, stderr := c.run("", "repair", "--config", c.config)
	if code != 0 || !strings.Contains(out, "entries lost: 0") || !strings.Contains(stderr, "found: ") {
		t.Fatalf("repair: exit %d: %s%s", code, out, stderr)
	}
	code, after, stderr := c.run("", "stats", "--config", c.config, "--verify")
	if code != 0 {
		t.Fatalf("stats after repair: exit %d: %s", code, stderr)
	}
	entries := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "entries") {
				return l
			}
		}
		return ""
	}
	if entries(before) == "" || entries(before) != entries(after) || !strings.Contains(after, "0 (every block checked)") {
		t.Fatalf("before:\n%s\nafter:\n%s", before, after)
	}
	code, out, _ = c.run("", "repair", "--config", c.config)
	if code != 0 || !strings.Contains(out, "is sound") {
		t.Fatalf("second repair: exit %d: %s", code, out)
	}
}
