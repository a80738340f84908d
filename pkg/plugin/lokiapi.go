package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/lokal-logs/lokal/pkg/lokihttp"
)

// isLokiAPIPath reports whether a resource call is for Loki's HTTP API
// (loki/api/v1/..., ready), which Grafana's built-in Loki datasource sends
// when its URL is this datasource's resources URL.
func isLokiAPIPath(p string) bool {
	p = strings.TrimPrefix(p, "/")
	return strings.HasPrefix(p, "loki/api/") || p == "ready"
}

// lokiAPI is Loki's HTTP API over this datasource's store. Grafana has
// authenticated the caller (a user's session or a service account token).
func (ds *Datasource) lokiAPI() *lokihttp.Handler {
	return lokihttp.New(lokihttp.Options{
		Acquire: func() (lokihttp.Backend, func(), error) {
			if err := ds.unavailable(); err != nil {
				return lokihttp.Backend{}, nil, err
			}
			st, eng, done := ds.shared.Use()
			return lokihttp.Backend{Reader: st, Engine: eng}, done, nil
		},
		Admit:           ds.shared.Admit,
		Push:            http.HandlerFunc(ds.push),
		TailUnsupported: "tail needs a websocket, which Grafana's resource calls cannot hold: use Explore's live tail with the Lokal datasource, or /loki/api/v1/tail of `lokal serve`",
	})
}

// callLokiAPI serves one resource call with Loki's HTTP API.
func (ds *Datasource) callLokiAPI(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	u, err := url.Parse(req.URL)
	if err != nil {
		return sender.Send(&backend.CallResourceResponse{Status: http.StatusBadRequest, Body: []byte("bad resource URL: " + err.Error() + "\n")})
	}
	if strings.TrimPrefix(req.Path, "/") == "loki/api/v1/push" {
		if err := mayPush(req.PluginContext.User); err != nil {
			return sender.Send(&backend.CallResourceResponse{Status: http.StatusForbidden, Body: []byte(err.Error() + "\n")})
		}
	}
	target := &url.URL{Path: "/" + strings.TrimPrefix(req.Path, "/"), RawQuery: u.RawQuery}
	hr, err := http.NewRequestWithContext(ctx, req.Method, target.String(), bytes.NewReader(req.Body))
	if err != nil {
		return sender.Send(&backend.CallResourceResponse{Status: http.StatusBadRequest, Body: []byte(err.Error() + "\n")})
	}
	for k, vs := range req.Headers {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	rec := &resourceRecorder{header: http.Header{}}
	ds.lokiAPI().ServeHTTP(rec, hr)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return sender.Send(&backend.CallResourceResponse{Status: rec.status, Headers: rec.header, Body: rec.body.Bytes()})
}

// mayPush says whether the caller may write into the store. Grafana lets
// every user who can query a datasource call its resources, Viewers too;
// writing log lines (which alert rules count) is an Editor's or Admin's
// act, as in Grafana's own model, so a shipper uses a service account
// token with one of those roles and a read-only Loki datasource a Viewer's.
func mayPush(u *backend.User) error {
	switch {
	case u == nil:
		return errors.New("pushing logs through Grafana needs a signed-in user or service account with the Editor or Admin role")
	case u.Role == "Editor" || u.Role == "Admin":
		return nil
	default:
		role := u.Role
		if role == "" {
			role = "no role"
		}
		return fmt.Errorf("pushing logs through Grafana needs the Editor or Admin role; %s has %s (Viewers may query, not write)", u.Login, role)
	}
}

// resourceRecorder keeps what a handler writes for one resource response.
type resourceRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *resourceRecorder) Header() http.Header { return r.header }

func (r *resourceRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *resourceRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// push serves Loki's push endpoint into this datasource's store; the
// host keeps one push handler per opened store, so concurrent requests and
// later ones share its duplicate and out-of-order checks.
func (ds *Datasource) push(w http.ResponseWriter, r *http.Request) {
	if err := ds.unavailable(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	ds.shared.ServePush(w, r)
}
