package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of a client, Promtail's.
const (
	DefaultClientBatchWait  = time.Second
	DefaultClientBatchSize  = 1 << 20
	DefaultClientTimeout    = 10 * time.Second
	DefaultClientMinBackoff = 500 * time.Millisecond
	// DefaultClientMaxBackoff is 30 s where Promtail's is 5 m: a retry
	// resends one batch, and lag must recover within a minute of the remote
	// coming back.
	DefaultClientMaxBackoff = 30 * time.Second
	DefaultClientMaxRetries = 10
	// MaxClientBatchSize keeps one batch's memory bounded.
	MaxClientBatchSize = 64 << 20
)

// Client is Promtail's clients entry: a Loki (or Grafana Cloud Logs) push
// endpoint that receives every entry Lokal stores. Lokal's store is the
// client's write-ahead log (see pkg/forward), so nothing is dropped for a
// slow or absent remote.
type Client struct {
	URL      string            `yaml:"url" json:"url"`
	TenantID string            `yaml:"tenant_id,omitempty" json:"tenant_id,omitempty"`
	Headers  map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// ExternalLabels are added to every stream sent to this client (the
	// stream's own label of the same name wins, as in Promtail).
	ExternalLabels map[string]string `yaml:"external_labels,omitempty" json:"external_labels,omitempty"`
	BasicAuth      *BasicAuth        `yaml:"basic_auth,omitempty" json:"basic_auth,omitempty"`
	BearerToken    string            `yaml:"bearer_token,omitempty" json:"bearer_token,omitempty"`
	// BearerTokenFile is read at each request, so a rotated token is used.
	BearerTokenFile string        `yaml:"bearer_token_file,omitempty" json:"bearer_token_file,omitempty"`
	BatchWait       Duration      `yaml:"batchwait,omitempty" json:"batchwait,omitempty"`
	BatchSize       ByteSize      `yaml:"batchsize,omitempty" json:"batchsize,omitempty"`
	Timeout         Duration      `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	BackoffConfig   BackoffConfig `yaml:"backoff_config,omitempty" json:"backoff_config,omitempty"`
	TLSConfig       *TLSConfig    `yaml:"tls_config,omitempty" json:"tls_config,omitempty"`
	// DropRateLimitedBatches is accepted only as false: Lokal keeps a
	// rate-limited batch and sends it again after Retry-After.
	DropRateLimitedBatches bool `yaml:"drop_rate_limited_batches,omitempty" json:"drop_rate_limited_batches,omitempty"`
}

// BasicAuth is Promtail's basic_auth.
type BasicAuth struct {
	Username     string `yaml:"username" json:"username"`
	Password     string `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
}

// BackoffConfig is Promtail's backoff_config. Lokal never drops a batch
// after MaxRetries (the store keeps it, so retrying loses nothing); past
// MaxRetries consecutive failures the client is reported failing in health.
type BackoffConfig struct {
	MinPeriod  Duration `yaml:"min_period,omitempty" json:"min_period,omitempty"`
	MaxPeriod  Duration `yaml:"max_period,omitempty" json:"max_period,omitempty"`
	MaxRetries int      `yaml:"max_retries,omitempty" json:"max_retries,omitempty"`
}

// TLSConfig is Prometheus' tls_config, as Promtail takes it.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// clientHints explain Promtail client keys Lokal does not take.
var clientHints = map[string]string{
	"oauth2":            "OAuth2 is not supported: use bearer_token(_file) or basic_auth",
	"proxy_url":         "a proxy is not supported: Lokal honours HTTPS_PROXY/HTTP_PROXY from the environment",
	"authorization":     "use bearer_token(_file) or basic_auth",
	"follow_redirects":  "Lokal follows redirects as Go's HTTP client does",
	"enable_http2":      "not supported",
	"stream_lag_labels": "lag is reported per client in health and lokal stats",
}

func (Client) unknownKeyHint(key string) string {
	if h, ok := clientHints[key]; ok {
		return "unknown key (Promtail's " + key + ": " + h + ")"
	}
	return "unknown key: a client takes url, tenant_id, headers, external_labels, basic_auth, bearer_token, bearer_token_file, batchwait, batchsize, timeout, backoff_config, tls_config"
}

// ApplyDefaults fills a client's unset options with Promtail's defaults.
func (c *Client) ApplyDefaults() {
	if c.BatchWait == 0 {
		c.BatchWait = Duration(DefaultClientBatchWait)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultClientBatchSize
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultClientTimeout)
	}
	if c.BackoffConfig.MinPeriod == 0 {
		c.BackoffConfig.MinPeriod = Duration(DefaultClientMinBackoff)
	}
	if c.BackoffConfig.MaxPeriod == 0 {
		c.BackoffConfig.MaxPeriod = Duration(DefaultClientMaxBackoff)
	}
	if c.BackoffConfig.MaxRetries == 0 {
		c.BackoffConfig.MaxRetries = DefaultClientMaxRetries
	}
}

// Name identifies a client across restarts (its forward cursor in the
// store): its URL and tenant. Changing either starts a new cursor.
func (c Client) Name() string {
	if c.TenantID == "" {
		return c.URL
	}
	return c.URL + "#" + c.TenantID
}

// validateClients checks every clients entry.
func validateClients(errs *errList, cs []Client) {
	names := map[string]int{}
	for i, c := range cs {
		p := fmt.Sprintf("clients[%d]", i)
		if c.URL == "" {
			errs.addf("%s.url: missing: give the push endpoint, e.g. http://loki:3100/loki/api/v1/push", p)
		} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.addf("%s.url: %q is not an http(s) URL with a host", p, c.URL)
		} else if j, dup := names[c.Name()]; dup {
			errs.addf("%s: same url and tenant_id as clients[%d]: each remote once", p, j)
		} else {
			names[c.Name()] = i
		}
		if c.BatchWait < 0 {
			errs.addf("%s.batchwait: must not be negative", p)
		}
		if c.BatchSize < 0 || c.BatchSize > MaxClientBatchSize {
			errs.addf("%s.batchsize: %d is outside 1 byte to %d bytes", p, int64(c.BatchSize), MaxClientBatchSize)
		}
		if c.Timeout < 0 {
			errs.addf("%s.timeout: must not be negative", p)
		}
		b := c.BackoffConfig
		if b.MinPeriod < 0 || b.MaxPeriod < 0 {
			errs.addf("%s.backoff_config: periods must not be negative", p)
		} else if b.MinPeriod != 0 && b.MaxPeriod != 0 && b.MinPeriod > b.MaxPeriod {
			errs.addf("%s.backoff_config: min_period %s is above max_period %s", p, b.MinPeriod, b.MaxPeriod)
		}
		if b.MaxRetries < 0 {
			errs.addf("%s.backoff_config.max_retries: must not be negative", p)
		}
		if c.DropRateLimitedBatches {
			errs.addf("%s.drop_rate_limited_batches: Lokal never drops a rate-limited batch: it keeps it in the store and sends it again after Retry-After; remove the key", p)
		}
		auth := 0
		if c.BasicAuth != nil {
			auth++
			if c.BasicAuth.Username == "" {
				errs.addf("%s.basic_auth.username: missing", p)
			}
			if c.BasicAuth.Password != "" && c.BasicAuth.PasswordFile != "" {
				errs.addf("%s.basic_auth: give password or password_file, not both", p)
			}
		}
		if c.BearerToken != "" {
			auth++
		}
		if c.BearerTokenFile != "" {
			auth++
		}
		if auth > 1 {
			errs.addf("%s: give one of basic_auth, bearer_token and bearer_token_file", p)
		}
		for k := range c.ExternalLabels {
			if err := CheckLabelName(k); err != nil {
				errs.addf("%s.external_labels.%s: %v", p, k, err)
			}
		}
		for k := range c.Headers {
			if strings.EqualFold(k, "X-Scope-OrgID") && c.TenantID != "" {
				errs.addf("%s.headers.%s: set by tenant_id already", p, k)
			}
			if strings.EqualFold(k, "Authorization") && auth > 0 {
				errs.addf("%s.headers.%s: set by the client's authentication already", p, k)
			}
		}
		if t := c.TLSConfig; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
			errs.addf("%s.tls_config: cert_file and key_file go together", p)
		}
	}
}
