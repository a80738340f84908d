package main

import (
	"strings"
	"testing"
)

// TestBenchFlagErrors: a scaling run's flags are checked before anything is
// generated or measured.
func TestBenchFlagErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad size", []string{"--size", "1GiB,lots"}, "--size lots"},
		{"zero size", []string{"--size", "0"}, "above 0"},
		{"sizes out of order", []string{"--size", "4GiB,1GiB"}, "smallest first"},
		{"a corpus per size", []string{"--size", "1GiB,4GiB", "--corpus", "/tmp/only-one"}, "1 directories for 2 sizes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newCLI(t)
			args := append([]string{"bench", "--work", t.TempDir()}, c.args...)
			code, _, stderr := cl.run("", args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Errorf("lokal %s: exit %d, stderr %q; want a failure naming %q", strings.Join(args, " "), code, stderr, c.want)
			}
		})
	}
}
