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
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
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
	Forget(st, cfgs, logf)
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

// Forget deletes the store's cursors of clients not in cfgs (with the next
// commit), so retention and recompaction stop waiting for them; a client
// configured again later starts afresh.
func Forget(st *store.Store, cfgs []config.Client, logf Logf) {
	names := make([]string, len(cfgs))
	for i, c := range cfgs {
		names[i] = c.Name()
	}
	for _, gone := range st.ForwardForget(names) {
		if logf != nil {
			logf("forward: client %s is no longer configured: its cursor is forgotten", gone)
		}
	}
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
	*Sender
	name  string
	st    *store.Store
	start store.ForwardPos
}

// NewClient registers cfg's client with the store.
func NewClient(st *store.Store, cfg config.Client, logf Logf) (*Client, error) {
	snd, err := NewSender(cfg, logf)
	if err != nil {
		return nil, err
	}
	pos, err := st.ForwardRegister(cfg.Name())
	if err != nil {
		return nil, err
	}
	return &Client{Sender: snd, name: cfg.Name(), st: st, start: pos}, nil
}

func (c *Client) close() { c.st.ForwardUnregister(c.name) }

// Status reports the client's counters and the store's view of its lag.
func (c *Client) Status() Status {
	s := c.Counters()
	if fs, err := c.st.ForwardStatus(c.name, time.Now()); err == nil {
		s.LagEntries, s.LagBytes, s.Lag = fs.LagEntries, fs.LagBytes, fs.Lag
		s.EntriesLost += fs.Dropped
	}
	return s
}

// cursorCommitAge bounds how long an acknowledged position waits to
// become durable while the client catches up.
const cursorCommitAge = time.Second

// commitAge is how long the forwarder lets entries wait in the store's
// head before committing it, so they can be sent: batchwait, capped so the
// live lag stays well under two seconds.
func (c *Client) commitAge() time.Duration {
	return min(c.cfg.BatchWait.D(), 500*time.Millisecond)
}

// Run sends until ctx is done. One goroutine builds batches while another
// sends: reading and encoding the next batch overlaps the remote's work on
// the current one. Batches are sent and acknowledged in order.
func (c *Client) Run(ctx context.Context) {
	// Two batches: one being sent while the next is built. More buy no
	// speed on two cores and cost a batch's memory each.
	free := make(chan *batch, 2)
	free <- &batch{}
	free <- &batch{}
	ready := make(chan *batch)
	go func() {
		defer close(ready)
		c.build(ctx, free, ready)
	}()
	for b := range ready {
		if _, err := c.Send(ctx, b.body, b.n, b.raw); err != nil {
			break // ctx is done
		}
		if err := c.st.ForwardAck(c.name, b.end); err != nil {
			c.setErr(err)
			c.logf("forward to %s: %v", c.cfg.URL, err)
			break
		}
		// Make the cursor durable about once a second while catching up
		// (the head's age would wait 15 s): a crash then re-sends at most
		// a second's batches.
		if _, err := c.st.CommitOlderThan(cursorCommitAge); err != nil {
			c.setErr(fmt.Errorf("commit the cursor: %w", err))
		}
		free <- b
	}
	for range ready { // let the builder see ctx and finish
	}
}

// batch is one encoded push request and the position after its last entry.
type batch struct {
	body []byte
	end  store.ForwardPos
	n    int
	raw  int64
}

// build fills free batches from the store into ready until ctx is done.
func (c *Client) build(ctx context.Context, free <-chan *batch, ready chan<- *batch) {
	r := &runner{c: c, pos: c.start}
	for {
		var b *batch
		select {
		case <-ctx.Done():
			return
		case b = <-free:
		}
		for ctx.Err() == nil {
			n, err := r.fill(b)
			if err != nil {
				// Start again from the batch's start, not from where
				// its blocks stopped.
				r.blocks, r.cur, r.curOK = nil, nil, false
				c.setErr(err)
				c.logf("forward to %s: %v", c.cfg.URL, err)
				sleep(ctx, time.Second)
				continue
			}
			if n > 0 {
				break
			}
			// Caught up: commit the head once it is old enough, or wait
			// for a commit.
			done := c.st.CommitNotify()
			if _, err := c.st.CommitOlderThan(c.commitAge()); err != nil {
				c.setErr(fmt.Errorf("commit the head: %w", err))
			}
			select {
			case <-ctx.Done():
			case <-done:
			case <-time.After(c.commitAge() / 2):
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case ready <- b:
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

// runner is the builder's state: where the next batch starts.
type runner struct {
	c   *Client
	pos store.ForwardPos

	blocks []store.ForwardBlock // handed out, not yet fully batched
	cur    []store.Entry        // entries of blocks[0]
	curOK  bool

	req     pushpb.PushRequest
	scratch []byte // the protobuf before snappy
}

// fill builds the next batch into b and moves r.pos past it; it returns
// the batch's entry count (0: nothing to send).
func (r *runner) fill(b *batch) (int, error) {
	body, end, n, raw, err := r.build(b)
	if err != nil || n == 0 {
		return 0, err
	}
	b.body, b.end, b.n, b.raw = body, end, n, raw
	r.pos = end
	return n, nil
}

// build fills a request with up to batchsize line bytes from r.pos in
// commit order, returning the encoded body, the position after its last
// entry and its entry count. A batch is a function of its start position
// and the blocks committed by then, so a batch re-sent after a crash holds
// the same entries (or more, never a part).
func (r *runner) build(b *batch) ([]byte, store.ForwardPos, int, int64, error) {
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
	b.body, r.scratch = Encode(b.body, r.scratch, &r.req)
	// The entries point into blocks read from the store: drop them, so
	// the reused slices do not keep those blocks alive.
	for i := range r.req.Streams {
		clear(r.req.Streams[i].Entries)
	}
	return b.body, pos, n, raw, nil
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
