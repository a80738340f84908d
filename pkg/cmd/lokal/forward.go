package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/forward"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

const forwardUsage = `usage: lokal forward --config F --to URL [--from T] [--to-time T] [SELECTOR]

Backfill what the store holds into a Loki: every stream SELECTOR matches
(default: all), from --from (default: the oldest entry) to --to-time
(default: now), window by window in time order. Interrupted, it resumes at
the first window the remote has not acknowledged completely (--state).
At the end it prints the count sent beside the count the store holds.
When the config's clients name the same url, their tenant_id, auth,
headers, external_labels, batchsize, timeout, backoff and TLS are used.
`

func cmdForward(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("forward", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	to := fs.String("to", "", "push URL of the Loki, e.g. http://loki:3100/loki/api/v1/push")
	from := fs.String("from", "", "start: RFC3339, Unix seconds or now-7d (default: the store's oldest entry)")
	toTime := fs.String("to-time", "", "end (exclusive), like --from (default: now)")
	tenant := fs.String("tenant-id", "", "X-Scope-OrgID to send (default: the matching client's tenant_id)")
	tokenFile := fs.String("bearer-token-file", "", "file holding a bearer token")
	statePath := fs.String("state", "", "resume file (default: one per url, selector and range in the user's cache directory)")
	window := fs.Duration("window", forward.DefaultBackfillWindow, "time one resumable step covers")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() { fmt.Fprint(e.stderr, forwardUsage); fs.PrintDefaults() }
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *to == "" || len(pos) > 1 {
		fs.Usage()
		return errUsage
	}
	selector := ""
	var ms []*labels.Matcher
	if len(pos) == 1 {
		selector = pos[0]
		expr, err := syntax.ParseExpr(selector)
		if err != nil {
			return err
		}
		sel, ok := expr.(syntax.LogSelectorExpr)
		if !ok || strings.Contains(strings.TrimSpace(selector[strings.LastIndex(selector, "}")+1:]), "|") {
			return fmt.Errorf("%s is not a stream selector: forward sends whole streams ({job=\"x\"})", selector)
		}
		ms = sel.Matchers()
	}
	l, st, err := openConfigStore(*cfg, e, false)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	client := config.Client{URL: *to}
	for _, c := range l.settings.Clients {
		if c.URL == *to && (*tenant == "" || c.TenantID == *tenant) {
			client = c
			break
		}
	}
	if *tenant != "" {
		client.TenantID = *tenant
	}
	if *tokenFile != "" {
		client.BasicAuth, client.BearerToken, client.BearerTokenFile = nil, "", *tokenFile
	}
	client.ApplyDefaults()
	check := config.Settings{Clients: []config.Client{client}}
	if err := check.Validate(); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	now := e.clock()
	var fromT, toT time.Time
	in := st.Info()
	if in.Entries == 0 {
		return fmt.Errorf("the store %s holds no entries", l.storeDir)
	}
	if *from == "" {
		fromT = time.Unix(0, in.MinTime)
	} else if fromT, err = parseTime(*from, now); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if *toTime == "" {
		toT = now
	} else if toT, err = parseTime(*toTime, now); err != nil {
		return fmt.Errorf("--to-time: %w", err)
	}
	if !toT.After(fromT) {
		return fmt.Errorf("--to-time %s is not after --from %s", toT.UTC().Format(time.RFC3339), fromT.UTC().Format(time.RFC3339))
	}
	if *statePath == "" {
		// Named after the command line, not the times its defaults
		// give, so the same command finds its resume file again.
		*statePath, err = defaultStatePath(client, selector, *from, *toTime, l.storeDir)
		if err != nil {
			return err
		}
	}
	snd, err := forward.NewSender(client, func(f string, a ...any) { fmt.Fprintf(e.stderr, "\n"+f+"\n", a...) })
	if err != nil {
		return err
	}
	bar := &progressBar{w: e.stderr, quiet: *quiet}
	fmt.Fprintf(e.stderr, "forwarding %s %s to %s from %s to %s (resume file %s)\n", l.storeDir, orAll(selector), client.URL,
		fromT.UTC().Format(time.RFC3339), toT.UTC().Format(time.RFC3339), *statePath)
	res, err := forward.Backfill(ctx, st, snd, forward.BackfillOptions{Selector: selector, Matchers: ms,
		From: fromT.UnixNano(), To: toT.UnixNano(), DataFrom: in.MinTime, DataTo: in.MaxTime,
		Window: *window, StatePath: *statePath, AdoptRange: *from == "" || *toTime == "", Progress: bar.show})
	bar.end()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: run the same command again to resume (%s)", *statePath)
		}
		return err
	}
	switch {
	case res.WasComplete:
		fmt.Fprintf(e.stdout, "this backfill had finished (%s); nothing was sent again: give --from/--to-time for another range\n", *statePath)
	case res.Resumed:
		fmt.Fprintln(e.stdout, "resumed an interrupted backfill")
	}
	fmt.Fprintf(e.stdout, "sent %d entries (%s) to %s; the store holds %d in the range for %s\n",
		res.Entries, config.HumanBytes(res.Bytes), client.URL, res.Stored, orAll(selector))
	switch {
	case res.Dropped > 0:
		return fmt.Errorf("the remote refused %d entries (see the messages above); they are not sent again", res.Dropped)
	case res.Entries != res.Stored:
		return fmt.Errorf("the counts differ: entries arrived in the range while forwarding (a live store): forward the rest with a later --from")
	}
	fmt.Fprintln(e.stdout, "counts match")
	return nil
}

func orAll(selector string) string {
	if selector == "" {
		return "all streams"
	}
	return selector
}

// defaultStatePath names the resume file after what is forwarded, in the
// user's cache directory (the store's directory belongs to its writer).
func defaultStatePath(c config.Client, selector, from, to, storeDir string) (string, error) {
	h := sha256.Sum256([]byte(strings.Join([]string{storeDir, c.URL, c.TenantID, selector, from, to}, "\x00")))
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "lokal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("resume file directory: %w", err)
	}
	return filepath.Join(dir, "forward-"+hex.EncodeToString(h[:8])+".json"), nil
}

// progressBar draws the backfill's progress on one terminal line.
type progressBar struct {
	w     io.Writer
	quiet bool
	last  time.Time
	drawn bool
	p     forward.BackfillProgress // the latest
}

func (b *progressBar) show(p forward.BackfillProgress) {
	b.p = p
	if b.quiet || time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.draw()
}

func (b *progressBar) draw() {
	p := b.p
	b.last = time.Now()
	frac := float64(p.Done-p.From) / float64(p.To-p.From)
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(b.w, "\r%3.0f%% [%s%s] up to %s  %d entries  %s ", 100*frac, strings.Repeat("#", n), strings.Repeat(".", width-n),
		time.Unix(0, p.Done).UTC().Format(time.RFC3339), p.Entries, config.HumanBytes(p.Bytes))
	b.drawn = true
}

func (b *progressBar) end() {
	if b.drawn {
		b.draw() // where it ended
		fmt.Fprintln(b.w)
	}
}

// forwardStats adds each forward client's rows to lokal stats: the
// store's view (its durable cursor, what waits behind it) and the counters
// the forwarding process last wrote.
func forwardStats(tw *tabwriter.Writer, st *store.Store) {
	names, err := st.ForwardClients()
	if err != nil {
		fmt.Fprintf(tw, "forwarding\t%v\n", err)
		return
	}
	counters, written, err := forward.ReadStatus(st.Dir())
	if err != nil {
		fmt.Fprintf(tw, "forwarding\t%v\n", err)
	}
	byName := map[string]forward.Status{}
	for _, c := range counters {
		byName[c.Name] = c
	}
	now := time.Now()
	for _, name := range names {
		fs, err := st.ForwardStatus(name, now)
		if err != nil {
			fmt.Fprintf(tw, "forward %s\t%v\n", name, err)
			continue
		}
		lag := "none"
		if fs.LagEntries > 0 {
			lag = fmt.Sprintf("%d entries (%s), oldest committed %s ago", fs.LagEntries, config.HumanBytes(fs.LagBytes), fs.Lag.Round(100*time.Millisecond))
		}
		fmt.Fprintf(tw, "forward %s\tlag %s\n", name, lag)
		if c, ok := byName[name]; ok {
			fmt.Fprintf(tw, "  sent\t%d entries (%s) in %d batches, %d retried, %d refused batches (%d entries), %d lost to retention (as of %s)\n",
				c.EntriesSent, config.HumanBytes(c.BytesSent), c.BatchesSent, c.BatchesRetried, c.BatchesDropped, c.EntriesDropped, c.EntriesLost,
				written.Local().Format(time.DateTime))
			if c.LastError != "" {
				fmt.Fprintf(tw, "  last error\t%s\n", c.LastError)
			}
		}
	}
}

// startForwarding runs the config's clients while a command that appends
// without the ingester (lokal push) runs, or after one whose ingester has
// stopped (lokal ingest), so what it stored is forwarded and the clients'
// cursors exist; it returns the stop function, which commits the store
// and waits until the clients caught up (at most forwardDrain).
func startForwarding(l *loaded, st *store.Store, e env) func() {
	if len(l.settings.Clients) == 0 {
		return func() {}
	}
	f, err := forward.Start(st, l.settings.Clients, func(format string, a ...any) { fmt.Fprintf(e.stderr, format+"\n", a...) })
	if err != nil {
		fmt.Fprintf(e.stderr, "clients: %v; nothing is forwarded now (the next lokal tail or the plugin will)\n", err)
		return func() {}
	}
	return func() {
		if err := st.Flush(context.Background()); err == nil {
			deadline := time.Now().Add(forwardDrain)
			for time.Now().Before(deadline) && lagging(f.Status()) {
				time.Sleep(20 * time.Millisecond)
			}
		}
		left := f.Status()
		f.Stop()
		for _, s := range left {
			if s.LagEntries > 0 {
				fmt.Fprintf(e.stderr, "%s: %d entries not yet forwarded; lokal tail or the plugin sends them\n", s.URL, s.LagEntries)
			}
		}
	}
}

// forwardDrain bounds how long a command waits for its clients at exit.
const forwardDrain = 10 * time.Second

func lagging(ss []forward.Status) bool {
	for _, s := range ss {
		if s.LagEntries > 0 {
			return true
		}
	}
	return false
}
