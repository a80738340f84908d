package config

import (
	"testing"
	"time"
)

func TestParseClients(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Client
	}{
		{"defaults", "clients: [{url: 'http://loki:3100/loki/api/v1/push'}]\n", Client{
			URL: "http://loki:3100/loki/api/v1/push", BatchWait: Duration(time.Second), BatchSize: 1 << 20,
			Timeout:       Duration(10 * time.Second),
			BackoffConfig: BackoffConfig{MinPeriod: Duration(500 * time.Millisecond), MaxPeriod: Duration(30 * time.Second), MaxRetries: 10},
		}},
		{"promtail block", `clients:
  - url: https://logs.example/loki/api/v1/push
    tenant_id: t1
    headers: {X-Extra: v}
    external_labels: {host: gpu-07}
    basic_auth: {username: u, password_file: /run/secret}
    batchwait: 2s
    batchsize: 512KiB
    timeout: 30s
    backoff_config: {min_period: 1s, max_period: 1m, max_retries: 3}
    tls_config: {ca_file: ca.pem, insecure_skip_verify: true}
    drop_rate_limited_batches: false
`, Client{
			URL: "https://logs.example/loki/api/v1/push", TenantID: "t1", Headers: map[string]string{"X-Extra": "v"},
			ExternalLabels: map[string]string{"host": "gpu-07"}, BasicAuth: &BasicAuth{Username: "u", PasswordFile: "/run/secret"},
			BatchWait: Duration(2 * time.Second), BatchSize: 512 << 10, Timeout: Duration(30 * time.Second),
			BackoffConfig: BackoffConfig{MinPeriod: Duration(time.Second), MaxPeriod: Duration(time.Minute), MaxRetries: 3},
			TLSConfig:     &TLSConfig{CAFile: "ca.pem", InsecureSkipVerify: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Clients) != 1 {
				t.Fatalf("clients: %+v", s.Clients)
			}
			got := s.Clients[0]
			if got.URL != tc.want.URL || got.TenantID != tc.want.TenantID || got.BatchWait != tc.want.BatchWait ||
				got.BatchSize != tc.want.BatchSize || got.Timeout != tc.want.Timeout || got.BackoffConfig != tc.want.BackoffConfig ||
				len(got.Headers) != len(tc.want.Headers) || len(got.ExternalLabels) != len(tc.want.ExternalLabels) ||
				(got.BasicAuth == nil) != (tc.want.BasicAuth == nil) || (got.TLSConfig == nil) != (tc.want.TLSConfig == nil) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if got.BasicAuth != nil && *got.BasicAuth != *tc.want.BasicAuth {
				t.Fatalf("basic_auth %+v", *got.BasicAuth)
			}
			if got.TLSConfig != nil && *got.TLSConfig != *tc.want.TLSConfig {
				t.Fatalf("tls_config %+v", *got.TLSConfig)
			}
			for k, v := range tc.want.ExternalLabels {
				if got.ExternalLabels[k] != v {
					t.Fatalf("external_labels %v", got.ExternalLabels)
				}
			}
		})
	}
}
