package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/push/pushpb"
)

// Sender pushes batches to one remote with the client's settings: its
// authentication, timeout, backoff and reply rules, and counters. Clients
// and lokal forward's backfill both send with one.
type Sender struct {
	cfg  config.Client
	hc   *http.Client
	logf Logf
	ext  labels.Labels

	entries, bytes, batches, retried, dropped, droppedEntries, lost atomic.Int64
	failures                                                        atomic.Int64
	mu                                                              sync.Mutex
	lastErr, lastDrop                                               string
}

// NewSender checks cfg's TLS files and makes a sender.
func NewSender(cfg config.Client, logf Logf) (*Sender, error) {
	cfg.ApplyDefaults()
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", cfg.URL, err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Sender{cfg: cfg, hc: hc, logf: logf, ext: labels.FromMap(cfg.ExternalLabels)}, nil
}

// Counters reports what the sender sent, retried and dropped (the lag
// fields are the caller's).
func (c *Sender) Counters() Status {
	s := Status{Name: c.cfg.Name(), URL: c.cfg.URL,
		EntriesSent: c.entries.Load(), BytesSent: c.bytes.Load(), BatchesSent: c.batches.Load(),
		BatchesRetried: c.retried.Load(), BatchesDropped: c.dropped.Load(), EntriesDropped: c.droppedEntries.Load(),
		EntriesLost: c.lost.Load(), Failing: c.failures.Load() > int64(c.cfg.BackoffConfig.MaxRetries)}
	c.mu.Lock()
	s.LastError, s.LastDrop = c.lastErr, c.lastDrop
	c.mu.Unlock()
	return s
}

// Decode reads a push body as Encode writes it (and Loki takes it): a
// snappy block holding the protobuf.
func Decode(body []byte) (*pushpb.PushRequest, error) {
	raw, err := pushpb.DecodeSnappy(nil, body)
	if err != nil {
		return nil, fmt.Errorf("push body: %w", err)
	}
	var req pushpb.PushRequest
	if err := pushpb.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("push body: %w", err)
	}
	return &req, nil
}

// Encode appends req's protobuf, snappy-framed as Loki's push takes it, to
// dst, using pb as scratch; it returns both buffers for reuse.
func Encode(dst, pb []byte, req *pushpb.PushRequest) (body, scratch []byte) {
	pb = req.MarshalAppend(pb[:0])
	return pushpb.EncodeSnappy(dst[:0], pb), pb
}

func httpClient(cfg config.Client) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if t := cfg.TLSConfig; t != nil {
		tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user's choice, as in Promtail
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls_config.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls_config.ca_file %s: no PEM certificate in it", t.CAFile)
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("tls_config: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout.D()}, nil
}

func (c *Sender) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// streamLabels is the stream's label set with the client's external labels
// added (the stream's own value wins), in Loki's text form.
func (c *Sender) streamLabels(ls labels.Labels) string {
	if len(c.ext) == 0 {
		return ls.String()
	}
	m := ls.Map()
	for _, l := range c.ext {
		if _, ok := m[l.Name]; !ok {
			m[l.Name] = l.Value
		}
	}
	return labels.FromMap(m).String()
}

// errDropped is a batch the remote refused for good.
type errDropped struct {
	status int
	reason string
}

func (e *errDropped) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.reason) }

// Send posts a batch of n entries (raw line bytes) until the remote
// acknowledges or refuses it for good, counting it either way. A refusal
// (a 4xx other than 429) is logged and reported as dropped.
func (c *Sender) Send(ctx context.Context, body []byte, n int, raw int64) (dropped bool, err error) {
	dropped, err = c.send(ctx, body, n)
	if err == nil && !dropped {
		c.entries.Add(int64(n))
		c.bytes.Add(raw)
		c.batches.Add(1)
	}
	return dropped, err
}

func (c *Sender) send(ctx context.Context, body []byte, n int) (dropped bool, err error) {
	backoff := c.cfg.BackoffConfig.MinPeriod.D()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.retried.Add(1)
		}
		wait, err := c.post(ctx, body)
		var drop *errDropped
		switch {
		case err == nil:
			c.failures.Store(0)
			return false, nil
		case errors.As(err, &drop):
			c.failures.Store(0)
			c.dropped.Add(1)
			c.droppedEntries.Add(int64(n))
			c.mu.Lock()
			c.lastDrop = drop.Error()
			c.mu.Unlock()
			c.logf("forward to %s: batch of %d entries dropped: the remote refused it: %v", c.cfg.URL, n, drop)
			return true, nil
		case ctx.Err() != nil:
			return false, ctx.Err()
		}
		c.failures.Add(1)
		c.setErr(err)
		if wait <= 0 {
			// Jitter so many Lokals do not retry in step.
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, c.cfg.BackoffConfig.MaxPeriod.D())
		}
		if attempt == 0 || c.failures.Load() == int64(c.cfg.BackoffConfig.MaxRetries)+1 {
			c.logf("forward to %s: %v; retrying in %s", c.cfg.URL, err, wait.Round(time.Millisecond))
		}
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
}

// post sends one request. It returns errDropped for a refusal, or an error
// to retry with the wait the remote asked for (0: use the backoff).
func (c *Sender) post(ctx context.Context, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, &errDropped{0, err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", UserAgent)
	if c.cfg.TenantID != "" {
		req.Header.Set("X-Scope-OrgID", c.cfg.TenantID)
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	if err := c.auth(req); err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("push: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	reason := strings.TrimSpace(string(msg))
	switch {
	case resp.StatusCode/100 == 2:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return retryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("push: rate limited (HTTP 429): %s", reason)
	case resp.StatusCode/100 == 4:
		return 0, &errDropped{resp.StatusCode, reason}
	default:
		return 0, fmt.Errorf("push: HTTP %d: %s", resp.StatusCode, reason)
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable (the backoff applies).
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		return max(0, time.Duration(s)*time.Second)
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, t.Sub(now))
	}
	return 0
}

func (c *Sender) auth(req *http.Request) error {
	switch {
	case c.cfg.BasicAuth != nil:
		pw := c.cfg.BasicAuth.Password
		if f := c.cfg.BasicAuth.PasswordFile; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("basic_auth.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		req.SetBasicAuth(c.cfg.BasicAuth.Username, pw)
	case c.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+c.cfg.BearerToken)
	case c.cfg.BearerTokenFile != "":
		b, err := os.ReadFile(c.cfg.BearerTokenFile)
		if err != nil {
			return fmt.Errorf("bearer_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	}
	return nil
}
