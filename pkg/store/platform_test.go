package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// TestManifestRewriteWhileOpen rewrites the manifest while the writer holds
// it open (Windows refuses to rename over an open file, so the handle is
// closed first), once with the rename succeeding and once failing: either
// way the next commit lands and a reopened store has every entry and the
// last cursor.
func TestManifestRewriteWhileOpen(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failRename bool
	}{
		{"rename succeeds", false},
		{"rename fails", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			ls := labels.FromStrings("job", "x")
			before := []Entry{{Ts: day0, Line: "before"}}
			appendAll(t, s, []streamData{{ls, before}}, map[string][]byte{"f": []byte("1")})
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, manifestName)
			if tc.failRename {
				// A directory where the manifest was: no rename replaces it.
				// Only the in-memory state still knows the first commit.
				if err := os.Remove(path); err != nil {
					t.Skipf("the open manifest cannot be removed on this platform: %v", err)
				}
				if err := os.MkdirAll(filepath.Join(path, "blocker"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			s.commitMu.Lock()
			err := s.rewriteManifest()
			s.commitMu.Unlock()
			if tc.failRename != (err != nil) {
				t.Fatalf("rewrite: %v (want failure: %v)", err, tc.failRename)
			}
			if tc.failRename {
				if err := os.RemoveAll(path); err != nil {
					t.Fatal(err)
				}
			}
			after := []Entry{{Ts: day0 + 1, Line: "after"}}
			appendAll(t, s, []streamData{{ls, after}}, map[string][]byte{"f": []byte("2")})
			if err := s.Flush(context.Background()); err != nil {
				t.Fatalf("commit after the rewrite: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir)
			defer s.Close()
			p := allParams(t)
			diff(t, readAll(t, s, p), expected([]streamData{{ls, append(before, after...)}}, p))
			if got := string(s.Cursors()["f"]); got != "2" {
				t.Errorf("cursor after reopen: %q, want 2", got)
			}
		})
	}
}
