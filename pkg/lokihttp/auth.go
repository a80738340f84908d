package lokihttp

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Auth checks a request's credentials: HTTP Basic Auth against bcrypt
// hashes (an htpasswd file), or a bearer token. Either may be configured,
// or both.
type Auth struct {
	users map[string][]byte // user → bcrypt hash
	token string

	// bcrypt is slow on purpose (tens of milliseconds a check): a password
	// once verified is remembered by its SHA-256, so a client sending the
	// same credentials with every request pays it once.
	mu       sync.Mutex
	verified map[string][sha256.Size]byte
}

// NewAuth returns an Auth for the users of an htpasswd file's content
// (may be nil) and a bearer token (may be empty).
func NewAuth(users map[string][]byte, token string) *Auth {
	return &Auth{users: users, token: token, verified: map[string][sha256.Size]byte{}}
}

// Enabled reports whether any credentials are configured.
func (a *Auth) Enabled() bool { return a != nil && (len(a.users) > 0 || a.token != "") }

// LoadHtpasswd reads an htpasswd-style file of user:bcrypt-hash lines
// (as `htpasswd -B` writes them). Blank lines and # comments are skipped;
// any other hash scheme is rejected, since only bcrypt is safe to keep.
func LoadHtpasswd(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file: %w", err)
	}
	defer f.Close()
	users := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd %s:%d: want user:hash", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("htpasswd %s:%d: user %q: only bcrypt hashes ($2y$, e.g. `htpasswd -B`) are accepted: %w", path, n, user, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("htpasswd %s:%d: user %q appears twice", path, n, user)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("htpasswd %s: no users", path)
	}
	return users, nil
}

// Wrap answers 401 to requests without valid credentials and passes the
// others to h.
func (a *Auth) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowed(r) {
			if len(a.users) > 0 {
				w.Header().Set("WWW-Authenticate", `Basic realm="lokal", charset="UTF-8"`)
			}
			writeError(w, http.StatusUnauthorized, fmt.Errorf("unauthorized"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *Auth) allowed(r *http.Request) bool {
	if a.token != "" {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			return subtle.ConstantTimeCompare([]byte(tok), []byte(a.token)) == 1
		}
	}
	if len(a.users) == 0 {
		return false
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, known := a.users[user]
	if !known {
		return false
	}
	sum := sha256.Sum256([]byte(pass))
	a.mu.Lock()
	prev, seen := a.verified[user]
	a.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(prev[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	a.verified[user] = sum
	a.mu.Unlock()
	return true
}
