package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartProfiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-dir", "out")
	tests := []struct {
		name      string
		cpu, tr   string // env values; "" leaves the variable unset
		wantErr   string
		wantFiles []string
	}{
		{name: "none"},
		{name: "cpu", cpu: filepath.Join(dir, "cpu.prof"), wantFiles: []string{"cpu.prof"}},
		{name: "trace", tr: filepath.Join(dir, "t.trace"), wantFiles: []string{"t.trace"}},
		{name: "both", cpu: filepath.Join(dir, "cpu2.prof"), tr: filepath.Join(dir, "t2.trace"), wantFiles: []string{"cpu2.prof", "t2.trace"}},
		{name: "bad cpu path", cpu: missing, wantErr: "LOKAL_CPUPROFILE"},
		// The CPU profile started first must be stopped when the trace fails,
		// or the next case could not start one.
		{name: "bad trace path", cpu: filepath.Join(dir, "cpu3.prof"), tr: missing, wantErr: "LOKAL_TRACE"},
		{name: "cpu after failure", cpu: filepath.Join(dir, "cpu4.prof"), wantFiles: []string{"cpu4.prof"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LOKAL_CPUPROFILE", tc.cpu)
			t.Setenv("LOKAL_TRACE", tc.tr)
			stop, err := startProfiles()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("startProfiles() error = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("startProfiles(): %v", err)
			}
			if err := stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			for _, f := range tc.wantFiles {
				fi, err := os.Stat(filepath.Join(dir, f))
				if err != nil {
					t.Fatalf("profile not written: %v", err)
				}
				if fi.Size() == 0 {
					t.Errorf("%s is empty", f)
				}
			}
		})
	}
}
