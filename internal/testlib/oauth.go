package testlib

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// OAuthServer is a local OAuth 2.0 authorization server for tests, on
// loopback: the device grant (RFC 8628: the first poll answers
// authorization_pending), the authorization-code grant with PKCE S256
// (RFC 7636: /authorize redirects at once, as if the user approved; the
// token endpoint checks code_verifier against the challenge) and the
// refresh grant with rotation (a refresh token works once; a revoked one
// gets invalid_grant). Its error answers echo the request, as careless
// servers do, so that tests can prove no secret leaks.
type OAuthServer struct {
	URL          string
	ClientID     string
	ClientSecret string
	// Username is what /introspect (RFC 7662, for Dovecot's oauth2 passdb)
	// says a valid access token belongs to.
	Username string

	mu        sync.Mutex
	access    map[string]bool // valid access tokens
	n         int
	polls     int
	codes     map[string]string // code → code_challenge
	refreshes map[string]bool   // valid refresh tokens
	// Issued is every refresh token issued, in order.
	Issued []string
}

// NewOAuthServer starts one; it stops when the test ends.
func NewOAuthServer(t testing.TB) *OAuthServer {
	s := newOAuthServer()
	srv := httptest.NewServer(s.Handler())
	s.URL = srv.URL
	t.Cleanup(srv.Close)
	return s
}

// NewOAuthServerOn serves on l until it is closed (for test tools that run
// beside a real smarthost); URL is set from l's address.
func NewOAuthServerOn(l net.Listener) *OAuthServer {
	s := newOAuthServer()
	s.URL = "http://" + l.Addr().String()
	go (&http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}).Serve(l)
	return s
}

func newOAuthServer() *OAuthServer {
	return &OAuthServer{ClientID: "relayq-test-client", ClientSecret: "client-secret-XYZ", Username: "relayq",
		access: map[string]bool{}, codes: map[string]string{}, refreshes: map[string]bool{}}
}

// Handler serves /device, /authorize, /token, /introspect and
// /admin/revoke (every token issued stops working).
func (s *OAuthServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/device", s.device)
	mux.HandleFunc("/authorize", s.authorize)
	mux.HandleFunc("/token", s.token)
	mux.HandleFunc("/introspect", s.introspect)
	mux.HandleFunc("/admin/revoke", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.access, s.refreshes = map[string]bool{}, map[string]bool{}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"revoked": true})
	})
	return mux
}

// introspect is RFC 7662: active and username for a token issued here.
func (s *OAuthServer) introspect(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	ok := s.access[r.PostForm.Get("token")]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "username": s.Username})
}

// AddRefresh makes rt a valid refresh token (as if issued earlier).
func (s *OAuthServer) AddRefresh(rt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes[rt] = true
}

// Revoke makes a refresh token invalid.
func (s *OAuthServer) Revoke(rt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refreshes, rt)
}

func (s *OAuthServer) device(w http.ResponseWriter, r *http.Request) {
	if r.FormValue("client_id") != s.ClientID {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device_code": "dev-code-1", "user_code": "WDJB-MJHT",
		"verification_uri": s.URL + "/verify", "expires_in": 600, "interval": 1})
}

func (s *OAuthServer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.n++
	code := fmt.Sprintf("auth-code-%d", s.n)
	s.codes[code] = q.Get("code_challenge")
	s.mu.Unlock()
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// fail answers an RFC 6749 error, with the request echoed in an extra
// field (a careless server).
func fail(w http.ResponseWriter, r *http.Request, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": code, "error_description": "refused", "request": r.PostForm.Encode()})
}

func (s *OAuthServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID || (secret != "" && secret != s.ClientSecret) {
		fail(w, r, "invalid_client")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.PostForm.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:device_code":
		if r.PostForm.Get("device_code") != "dev-code-1" {
			fail(w, r, "invalid_grant")
			return
		}
		if s.polls++; s.polls == 1 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "authorization_pending"})
			return
		}
	case "authorization_code":
		ch, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != ch {
			fail(w, r, "invalid_grant")
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !s.refreshes[rt] {
			fail(w, r, "invalid_grant")
			return
		}
		delete(s.refreshes, rt) // rotation: each refresh token works once
	default:
		fail(w, r, "unsupported_grant_type")
		return
	}
	s.n++
	rt := fmt.Sprintf("refresh-token-%d", s.n)
	s.refreshes[rt] = true
	s.Issued = append(s.Issued, rt)
	s.access[fmt.Sprintf("access-token-%d", s.n)] = true
	writeJSON(w, http.StatusOK, map[string]any{"access_token": fmt.Sprintf("access-token-%d", s.n), "token_type": "Bearer",
		"expires_in": 3600, "refresh_token": rt})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
