package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/host"
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/lokihttp"
	"github.com/lokal-logs/lokal/pkg/push"
	"github.com/lokal-logs/lokal/pkg/store"
)

// serveShutdownTimeout bounds how long in-flight requests may finish after
// SIGINT/SIGTERM.
const serveShutdownTimeout = 10 * time.Second

// tokenEnv holds `lokal serve`'s bearer token when --token-file is not given
// (a token on the command line would show in ps).
const tokenEnv = "LOKAL_SERVE_TOKEN"

// cmdServe serves Loki's HTTP API over the config's store while following
// its sources, until SIGINT/SIGTERM.
func cmdServe(ctx context.Context, args []string, e env) (err error) {
	fs := newFlags("serve", e)
	cfg := fs.String("config", "", "config file (datasource settings schema)")
	listen := fs.String("listen", "127.0.0.1:3100", "address to listen on")
	htpasswd := fs.String("htpasswd", "", "Basic Auth users: an htpasswd file of bcrypt hashes (htpasswd -B)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token clients must send (or set "+tokenEnv+")")
	tlsCert := fs.String("tls-cert", "", "TLS certificate (PEM); with --tls-key, serve HTTPS")
	tlsKey := fs.String("tls-key", "", "TLS private key (PEM)")
	maxConcurrent := fs.Int("max-concurrent", host.DefaultMaxConcurrent, "queries run at once (Loki's querier max_concurrent); later ones wait in arrival order")
	resultCache := resultCacheFlag(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	budget, err := resultCache()
	if err != nil {
		return err
	}
	if *maxConcurrent < 1 {
		return fmt.Errorf("--max-concurrent %d: give a positive number of queries, such as %d", *maxConcurrent, host.DefaultMaxConcurrent)
	}
	queries := host.NewLimiter(*maxConcurrent)
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
	}
	auth, err := serveAuth(*htpasswd, *tokenFile, e)
	if err != nil {
		return err
	}
	if err := checkExposure(*listen, auth); err != nil {
		return err
	}
	l, st, in, err := openFollower(*cfg, e)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	hub := lokihttp.NewHub()
	defer hub.Close()
	eng := engine.New(st, engine.Options{}.WithDiskCache(budget))
	defer eng.FlushResultCache() // before the store closes
	h := lokihttp.New(lokihttp.Options{
		Acquire: func() (lokihttp.Backend, func(), error) {
			return lokihttp.Backend{Reader: st, Engine: eng}, func() {}, nil
		},
		Admit: queries.Admit,
		// The hub sees pushed entries too, for tails; the handler reads
		// what a stream holds from the store itself.
		Push: push.NewHandler(hub.Appender(st), push.HandlerOptions{Reader: st}),
		Tail: hub,
	})
	var handler http.Handler = h
	if auth.Enabled() {
		handler = auth.Wrap(h)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	runCtx, stopIngest := context.WithCancel(ctx)
	defer stopIngest()
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- in.Run(runCtx) }()
	notes, unsubscribe := in.Subscribe()
	defer unsubscribe()
	go func() {
		for n := range notes {
			hub.Publish(n.Streams)
		}
	}()

	serveDone := make(chan error, 1)
	scheme := "http"
	go func() {
		if *tlsCert != "" {
			serveDone <- srv.ServeTLS(ln, *tlsCert, *tlsKey)
			return
		}
		serveDone <- srv.Serve(ln)
	}()
	if *tlsCert != "" {
		scheme = "https"
	}
	authNote := "no authentication (loopback only)"
	if auth.Enabled() {
		authNote = "authentication required"
	}
	fmt.Fprintf(e.stderr, "serving Loki's API on %s://%s (%s), following %d sources into %s; stop with Ctrl-C or SIGTERM\n",
		scheme, ln.Addr(), authNote, len(l.settings.ScrapeConfigs), l.storeDir)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveDone:
		runErr = fmt.Errorf("serve: %w", runErr)
	case runErr = <-ingestDone:
		if runErr == nil {
			runErr = errors.New("ingestion stopped")
		}
		ingestDone <- nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), serveShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("shut down: %w", err)
	}
	stopIngest()
	if err := <-ingestDone; err != nil && runErr == nil {
		runErr = err
	}
	if err := st.Flush(context.Background()); err != nil && runErr == nil {
		runErr = fmt.Errorf("flush: %w", err)
	}
	if runErr != nil {
		return runErr
	}
	return reportProblems(e.stderr, in.Health())
}

// openFollower loads the config, opens its store as the writer and
// returns an ingester following its sources into it (not yet running); the
// caller closes the store with closeStore.
func openFollower(path string, e env) (*loaded, *store.Store, *ingest.Ingester, error) {
	l, st, err := openConfigStore(path, e, true)
	if err != nil {
		return nil, nil, nil, err
	}
	in, err := ingest.New(l.settings, l.op, st, ingest.Options{})
	if err != nil {
		var cerr error
		closeStore(st, &cerr)
		return nil, nil, nil, errors.Join(err, cerr)
	}
	return l, st, in, nil
}

// serveAuth builds the server's authentication from its flags.
func serveAuth(htpasswd, tokenFile string, e env) (*lokihttp.Auth, error) {
	var users map[string][]byte
	if htpasswd != "" {
		var err error
		if users, err = lokihttp.LoadHtpasswd(htpasswd); err != nil {
			return nil, err
		}
	}
	token := e.getenv(tokenEnv)
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("token file %s is empty", tokenFile)
		}
	}
	return lokihttp.NewAuth(users, token), nil
}

// checkExposure refuses to serve without authentication on an address
// other machines can reach. A host name is resolved: every address it
// names must be loopback, since Listen binds whichever one comes first.
func checkExposure(listen string, auth *lokihttp.Auth) error {
	return checkExposureWith(listen, auth, func(host string) ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), exposureLookupTimeout)
		defer cancel()
		return net.DefaultResolver.LookupHost(ctx, host)
	})
}

// exposureLookupTimeout bounds the resolution of --listen's host name.
const exposureLookupTimeout = 10 * time.Second

// checkExposureWith is checkExposure resolving host names with lookup.
func checkExposureWith(listen string, auth *lokihttp.Auth, lookup func(host string) ([]string, error)) error {
	if auth.Enabled() {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	refuse := func(where string) error {
		return fmt.Errorf("refusing to serve on %s (%s) without authentication: anyone who can reach it could read every stored line and push new ones; "+
			"give --htpasswd FILE (bcrypt users) or --token-file FILE (or %s), or listen on 127.0.0.1", listen, where, tokenEnv)
	}
	if host == "" {
		return refuse("every interface")
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return nil
		}
		return refuse(host)
	}
	addrs, err := lookup(host)
	if err != nil {
		return fmt.Errorf("--listen %q: resolve %s to check it is loopback-only: %w", listen, host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("--listen %q: %s resolves to no address", listen, host)
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return refuse(host + " resolves to " + a)
		}
	}
	return nil
}
