package lokihttp_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lokal-logs/lokal/pkg/lokihttp"
)

func TestAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte("# users\nalice:"+string(hash)+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := lokihttp.LoadHtpasswd(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(lokihttp.NewAuth(users, "tok-123").Wrap(lokihttp.New(staticBackend(fixture(t)))))
	defer srv.Close()
	tests := []struct {
		name string
		set  func(*http.Request)
		code int
	}{
		{"no credentials", func(*http.Request) {}, 401},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("alice", "guess") }, 401},
		{"unknown user", func(r *http.Request) { r.SetBasicAuth("bob", "s3cret") }, 401},
		{"wrong token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-124") }, 401},
		{"right password", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, 200},
		{"right password again (remembered)", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, 200},
		{"wrong password after a right one", func(r *http.Request) { r.SetBasicAuth("alice", "s3cre") }, 401},
		{"right token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-123") }, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/loki/api/v1/labels", nil)
			tt.set(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if tt.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestLoadHtpasswdRejects(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"md5 hash", "alice:$apr1$abc$def\n", "only bcrypt hashes"},
		{"no colon", "alice\n", "want user:hash"},
		{"empty", "# nobody\n", "no users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "htpasswd")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := lokihttp.LoadHtpasswd(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
