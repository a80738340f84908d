package config

import "testing"

func TestParseResultCache(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "", want: 0},
		{in: "on", want: 0},
		{in: " Auto ", want: 0},
		{in: "off", want: -1},
		{in: "OFF", want: -1},
		{in: "0", want: -1},
		{in: "32MiB", want: 32 << 20},
		{in: "4096", want: 4096},
		{in: "-5MiB", wantErr: true},
		{in: "lots", wantErr: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseResultCache(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseResultCache(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("ParseResultCache(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
	op, err := operatorFrom(func(k string) string {
		return map[string]string{EnvDataPath: "/var/lib/lokal", EnvResultCache: "8MiB"}[k]
	}, "")
	if err != nil || op.ResultCacheBytes != 8<<20 {
		t.Errorf("operator with %s=8MiB: %d, %v", EnvResultCache, op.ResultCacheBytes, err)
	}
	if _, err := operatorFrom(func(k string) string {
		return map[string]string{EnvDataPath: "/var/lib/lokal", EnvResultCache: "lots"}[k]
	}, ""); err == nil {
		t.Errorf("operator with %s=lots: no error", EnvResultCache)
	}
}
