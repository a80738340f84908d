package main

import (
	"strings"
	"testing"
)

// Compaction must leave every entry answerable exactly as before.
func TestCompactKeepsEveryEntry(t *testing.T) {
	c := newCLI(t)
	c.pushFixture()
	q := []string{"query", "--config", c.config, "-o", "json", "--limit", "1000", "--from", "2024-12-17T00:00:00Z", "--to", "2024-12-18T00:00:00Z", `{job="cosyvoice3"}`}
	code, before, stderr := c.run("", q...)
	if code != 0 {
		t.Fatalf("query before: exit %d: %s", code, stderr)
	}
	if n := strings.Count(before, `"values"`); n == 0 {
		t.Fatalf("the pushed entries are not there before compaction: %.300s", before)
	}
	code, out, stderr := c.run("", "compact", "--config", c.config)
	if code != 0 {
		t.Fatalf("compact: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "compacted in ") {
		t.Errorf("compact printed %q, want a summary line", out)
	}
	code, after, stderr := c.run("", q...)
	if code != 0 {
		t.Fatalf("query after: exit %d: %s", code, stderr)
	}
	// stats (the last part of Loki's body) carry timings; the result must match.
	strip := func(s string) string {
		if i := strings.Index(s, `"stats"`); i >= 0 {
			return s[:i]
		}
		return s
	}
	if strip(before) != strip(after) {
		t.Errorf("compaction changed the answer:\nbefore: %.300s\nafter:  %.300s", before, after)
	}
	if code, _, _ := c.run("", "compact"); code == 0 {
		t.Error("compact without --config succeeded")
	}
}
