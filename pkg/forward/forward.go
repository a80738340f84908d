// Package forward pushes every entry Lokal stores to remote Lokis (the
// settings' clients, Promtail's schema), with the store as the write-ahead
// log: each client walks the store's committed blocks in commit order from
// its durable cursor (store.ForwardPos, pkg/store/forward.go), sends them in
// batches with Loki's push protocol (protobuf, snappy) and moves the cursor
// only after the remote acknowledged a batch.
//
// Replies, as Promtail treats them: 2xx acknowledges; 429 waits for
// Retry-After (or the backoff) and sends the same batch again; 5xx, timeouts
// and connection errors back off (backoff_config) and send it again, for as
// long as it takes, since the store keeps the entries; any other 4xx drops
// the batch, logs the remote's reason and counts it. A crash re-sends from
// the last durable cursor: whole batches, which Loki stores once.
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
	"github.com/lokal-logs/lokal/pkg/store"
)

// UserAgent is what Lokal sends as its HTTP User-Agent.
const UserAgent = "lokal-forward/1"

// Logf logs one line.
type Logf func(format string, args ...any)

// Forwarder runs one Client per configured remote.
type Forwarder struct {
	dir     string // the store's, for the status file
	clients []*Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Start registers each client with the store, forgets the cursors of
// clients no longer configured, and starts sending. Stop it before closing
// the store.
func Start(st *store.Store, cfgs []config.Client, logf Logf) (*Forwarder, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	names := make([]string, len(cfgs))
	for i, c := range cfgs {
		names[i] = c.Name()
	}
	for _, gone := range st.ForwardForget(names) {
		logf("forward: client %s is no longer configured: its cursor is forgotten", gone)
	}
	f := &Forwarder{}
	for _, cfg := range cfgs {
		c, err := NewClient(st, cfg, logf)
		if err != nil {
			for _, c := range f.clients {
				c.close()
			}
			return nil, err
		}
		f.clients = append(f.clients, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for _, c := range f.clients {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c.Run(ctx)
		}()
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := writeStatus(st.Dir(), f.Status()); err != nil {
					logf("%v", err)
				}
			}
		}
	}()
	f.dir = st.Dir()
	return f, nil
}

// Stop stops every client (a batch in flight is abandoned; it is sent
// again next time) and unregisters them.
func (f *Forwarder) Stop() {
	if f == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
	_ = writeStatus(f.dir, f.Status()) // lokal stats shows the last counters
	for _, c := range f.clients {
		c.close()
	}
}

// Status reports every client.
func (f *Forwarder) Status() []Status {
	if f == nil {
		return nil
	}
	out := make([]Status, len(f.clients))
	for i, c := range f.clients {
		out[i] = c.Status()
	}
	return out
}

// Status is a client's health.
type Status struct {
	Name string // url, or url#tenant
	URL  string
	// Sent: acknowledged by the remote.
	EntriesSent, BytesSent, BatchesSent int64
	// BatchesRetried counts sends repeated after 429, 5xx or no answer.
	BatchesRetried int64
	// BatchesDropped/EntriesDropped: refused by the remote with a 4xx
	// other than 429 (LastDrop says why).
	BatchesDropped, EntriesDropped int64
	LastDrop                       string
	// EntriesLost were in blocks that retention's size limit deleted (or
	// that were damaged) before they were sent.
	EntriesLost int64
	// Lag: entries stored but not acknowledged, and how long the oldest
	// has waited.
	LagEntries int64
	LagBytes   int64
	Lag        time.Duration
	// Failing is set after backoff_config.max_retries failed sends in a
	// row; LastError is the latest failure.
	Failing   bool
	LastError string
}

// Client sends the store's entries to one remote.
type Client struct {
	cfg  config.Client
	name string
	st   *store.Store
	hc   *http.Client
	logf Logf
	ext  labels.Labels

	start store.ForwardPos

	entries, bytes, batches, retried, dropped, droppedEntries, lost atomic.Int64
	failures                                                        atomic.Int64
	mu                                                              sync.Mutex
	lastErr, lastDrop                                               string
}

// NewClient registers cfg's client with the store.
func NewClient(st *store.Store, cfg config.Client, logf Logf) (*Client, error) {
	cfg.ApplyDefaults()
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", cfg.URL, err)
	}
	pos, err := st.ForwardRegister(cfg.Name())
	if err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Client{cfg: cfg, name: cfg.Name(), st: st, hc: hc, logf: logf, start: pos,
		ext: labels.FromMap(cfg.ExternalLabels)}, nil
}

func (c *Client) close() { c.st.ForwardUnregister(c.name) }

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

// Status reports the client's counters and the store's view of its lag.
func (c *Client) Status() Status {
	s := Status{Name: c.name, URL: c.cfg.URL,
		EntriesSent: c.entries.Load(), BytesSent: c.bytes.Load(), BatchesSent: c.batches.Load(),
		BatchesRetried: c.retried.Load(), BatchesDropped: c.dropped.Load(), EntriesDropped: c.droppedEntries.Load(),
		EntriesLost: c.lost.Load(), Failing: c.failures.Load() > int64(c.cfg.BackoffConfig.MaxRetries)}
	c.mu.Lock()
	s.LastError, s.LastDrop = c.lastErr, c.lastDrop
	c.mu.Unlock()
	if fs, err := c.st.ForwardStatus(c.name, time.Now()); err == nil {
		s.LagEntries, s.LagBytes, s.Lag = fs.LagEntries, fs.LagBytes, fs.Lag
		s.EntriesLost += fs.Dropped
	}
	return s
}

// commitAge is how long the forwarder lets entries wait in the store's
// head before committing it, so they can be sent: batchwait, capped so the
// live lag stays well under two seconds.
func (c *Client) commitAge() time.Duration {
	return min(c.cfg.BatchWait.D(), 500*time.Millisecond)
}

// Run sends until ctx is done.
func (c *Client) Run(ctx context.Context) {
	r := &runner{c: c, pos: c.start}
	for ctx.Err() == nil {
		sent, err := r.step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setErr(err)
			c.logf("forward to %s: %v", c.cfg.URL, err)
			sleep(ctx, time.Second)
			continue
		}
		if sent {
			continue
		}
		// Caught up: commit the head once it is old enough, or wait for a
		// commit.
		done := c.st.CommitNotify()
		if _, err := c.st.CommitOlderThan(c.commitAge()); err != nil {
			c.setErr(fmt.Errorf("commit the head: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-done:
		case <-time.After(c.commitAge() / 2):
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// runner is one client's sending loop state.
type runner struct {
	c   *Client
	pos store.ForwardPos

	blocks []store.ForwardBlock // handed out, not yet fully batched
	cur    []store.Entry        // entries of blocks[0]
	curOK  bool

	req    pushpb.PushRequest
	pb, sn []byte
}

// step builds one batch from pos and sends it until the remote takes or
// refuses it. It reports whether there was anything to send.
func (r *runner) step(ctx context.Context) (bool, error) {
	b, end, n, raw, err := r.build()
	if err != nil {
		// Start the next batch from r.pos again, not from where this
		// one's blocks stopped.
		r.blocks, r.cur, r.curOK = nil, nil, false
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	dropped, err := r.send(ctx, b, n)
	if err != nil {
		return true, err
	}
	if err := r.c.st.ForwardAck(r.c.name, end); err != nil {
		return true, err
	}
	r.pos = end
	if !dropped {
		r.c.entries.Add(int64(n))
		r.c.bytes.Add(raw)
		r.c.batches.Add(1)
	}
	return true, nil
}

// build fills a request with up to batchsize line bytes from r.pos in
// commit order, returning the encoded body, the position after its last
// entry and its entry count. A batch is a function of its start position
// and the blocks committed by then, so a batch re-sent after a crash holds
// the same entries (or more, never a part).
func (r *runner) build() ([]byte, store.ForwardPos, int, int64, error) {
	c := r.c
	limit := int64(c.cfg.BatchSize)
	pos := r.pos
	r.req.Streams = r.req.Streams[:0]
	var n int
	var raw int64
	streamIdx := map[string]int{}
	for raw < limit {
		if len(r.blocks) == 0 {
			bs, err := c.st.ForwardPending(c.name, pos, 64, uint64(4*limit))
			if err != nil {
				return nil, pos, 0, 0, err
			}
			if len(bs) == 0 {
				break
			}
			r.blocks, r.curOK = bs, false
		}
		blk := r.blocks[0]
		if blk.Seg != pos.Seg || blk.Off != pos.Off {
			pos = blk.Pos(0) // the block pos named is gone (merged before anybody read it, or dropped)
		}
		if !r.curOK {
			es, err := c.st.ForwardRead(blk)
			if errors.Is(err, store.ErrForwardBlockGone) {
				lost := int64(blk.Count - pos.Entry)
				c.lost.Add(lost)
				c.setErr(fmt.Errorf("%d entries not sent: %w", lost, err))
				c.logf("forward to %s: %d entries of %s not sent: %v", c.cfg.URL, lost, blk.Labels, err)
				r.blocks = r.blocks[1:]
				if len(r.blocks) > 0 {
					pos = r.blocks[0].Pos(0)
				} else {
					pos = store.ForwardPos{Seg: blk.Seg, Off: blk.Off + 1}
				}
				continue
			}
			if err != nil {
				return nil, pos, 0, 0, err
			}
			r.cur, r.curOK = es, true
		}
		key := blk.Labels.String()
		si, ok := streamIdx[key]
		if !ok {
			si = len(r.req.Streams)
			streamIdx[key] = si
			r.req.Streams = append(r.req.Streams, pushpb.Stream{Labels: c.streamLabels(blk.Labels), Entries: r.streamEntries(si)})
		}
		s := &r.req.Streams[si]
		i := pos.Entry
		for ; i < len(r.cur) && raw < limit; i++ {
			e := r.cur[i]
			s.Entries = append(s.Entries, pushpb.Entry{Timestamp: time.Unix(0, e.Ts), Line: e.Line})
			raw += int64(len(e.Line))
			n++
		}
		if i < len(r.cur) {
			pos.Entry = i
			break
		}
		r.blocks, r.curOK, r.cur = r.blocks[1:], false, nil
		if len(r.blocks) > 0 {
			pos = r.blocks[0].Pos(0)
		} else {
			pos = store.ForwardPos{Seg: blk.Seg, Off: blk.Off + 1}
		}
	}
	if n == 0 {
		return nil, pos, 0, 0, nil
	}
	r.pb = r.req.MarshalAppend(r.pb[:0])
	r.sn = pushpb.EncodeSnappy(r.sn[:0], r.pb)
	return r.sn, pos, n, raw, nil
}

// streamEntries reuses the entries slice a previous batch had at index i.
func (r *runner) streamEntries(i int) []pushpb.Entry {
	if i < cap(r.req.Streams) {
		if es := r.req.Streams[:i+1][i].Entries; es != nil {
			return es[:0]
		}
	}
	return nil
}

// streamLabels is the stream's label set with the client's external labels
// added (the stream's own value wins), in Loki's text form.
func (c *Client) streamLabels(ls labels.Labels) string {
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

// send posts body until the remote acknowledges or refuses it for good; a
// refusal counts the batch as dropped and reports it.
func (r *runner) send(ctx context.Context, body []byte, n int) (dropped bool, err error) {
	c := r.c
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
func (c *Client) post(ctx context.Context, body []byte) (time.Duration, error) {
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

func (c *Client) auth(req *http.Request) error {
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
