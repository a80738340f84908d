package ingest

import (
	"github.com/lokal-logs/lokal/pkg/forward"
	"github.com/lokal-logs/lokal/pkg/store"
)

// forwarding runs the settings' clients (package forward) while the
// ingester runs: `lokal tail`, `lokal ingest` and the plugin all forward
// what they store, and a client's cursor lives in the store, so a process
// that stops leaves the rest to the next one. It returns the stop function.
func (in *Ingester) forwarding() func() {
	st, ok := in.app.(*store.Store)
	if len(in.settings.Clients) == 0 {
		if ok {
			// Clients removed from the settings: their cursors would
			// keep retention and recompaction waiting for them.
			forward.Forget(st, nil, in.problem)
		}
		return func() {}
	}
	if !ok {
		in.problem("clients: forwarding needs Lokal's disk store; nothing is forwarded")
		return func() {}
	}
	f, err := forward.Start(st, in.settings.Clients, in.problem)
	if err != nil {
		in.problem("clients: %v; nothing is forwarded", err)
		return func() {}
	}
	in.fwdMu.Lock()
	in.fwd = f
	in.fwdMu.Unlock()
	return func() {
		in.fwdMu.Lock()
		in.fwd = nil
		in.fwdMu.Unlock()
		f.Stop()
	}
}

// forwardStatus reports the running forwarder's clients, if any.
func (in *Ingester) forwardStatus() []forward.Status {
	in.fwdMu.Lock()
	f := in.fwd
	in.fwdMu.Unlock()
	return f.Status()
}
