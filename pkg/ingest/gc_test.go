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
