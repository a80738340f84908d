package ingest

import (
	"runtime/debug"
	"testing"
)

func TestSetProcessGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	for _, tc := range []struct {
		name string
		gogc string
		want int
	}{
		{"default", "", ProcessGCPercent},
		{"operator's GOGC wins", "80", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			got := SetProcessGC(func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			})
			now := debug.SetGCPercent(100)
			if got != tc.want || now != tc.want {
				t.Fatalf("SetProcessGC returned %d, runtime has %d; want %d", got, now, tc.want)
			}
		})
	}
}

func TestSetProcessMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(orig)
	const operators = 300 << 20
	for _, tc := range []struct {
		name       string
		gomemlimit string
		want       int64
	}{
		{"default", "", ProcessMemoryLimit},
		// The runtime read GOMEMLIMIT at start; here the test stands in
		// for it by setting the operator's limit first.
		{"operator's GOMEMLIMIT wins", "300MiB", operators},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(operators)
			got := SetProcessMemoryLimit(func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.gomemlimit
				}
				return ""
			})
			if now := debug.SetMemoryLimit(-1); got != tc.want || now != tc.want {
				t.Fatalf("SetProcessMemoryLimit returned %d, runtime has %d; want %d", got, now, tc.want)
			}
		})
	}
}
