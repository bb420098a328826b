package smarthost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// RFC 2195 §2 example.
func TestCRAMMD5Vector(t *testing.T) {
	c := &cramMD5{user: "tim", secret: "tanstaaftanstaaf"}
	mech, ir, err := c.Start()
	if mech != "CRAM-MD5" || ir != nil || err != nil {
		t.Fatalf("Start = %q %q %v", mech, ir, err)
	}
	resp, err := c.Next([]byte("<1896.697170952@postoffice.reston.mci.net>"))
	if err != nil || string(resp) != "tim b913a602c7eda7a495b4e6e7334d3890" {
		t.Errorf("Next = %q, %v", resp, err)
	}
	if _, err := c.Next([]byte("again")); err == nil {
		t.Error("second challenge accepted")
	}
}

func TestChooseMech(t *testing.T) {
	pw := Credential{User: "u", Password: "p"}
	oa := Credential{User: "u", OAuth: &OAuth{AccessToken: "t"}}
	cases := []struct {
		name    string
		offered []string
		cred    Credential
		conf    []string
		want    string
	}{
		{"strongest", []string{"PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "CRAM-MD5"}, pw, nil, "SCRAM-SHA-256"},
		{"scram-1", []string{"PLAIN", "SCRAM-SHA-1"}, pw, nil, "SCRAM-SHA-1"},
		{"cram", []string{"LOGIN", "CRAM-MD5", "PLAIN"}, pw, nil, "CRAM-MD5"},
		{"plain over login", []string{"LOGIN", "PLAIN"}, pw, nil, "PLAIN"},
		{"login only", []string{"LOGIN"}, pw, nil, "LOGIN"},
		{"M: pins", []string{"PLAIN", "SCRAM-SHA-256"}, Credential{User: "u", Mechs: []string{"plain"}}, nil, "PLAIN"},
		{"M: no downgrade", []string{"PLAIN", "LOGIN"}, Credential{User: "u", Mechs: []string{"SCRAM-SHA-256"}}, nil, ""},
		{"config restricts", []string{"CRAM-MD5", "PLAIN"}, pw, []string{"PLAIN", "LOGIN"}, "PLAIN"},
		{"config and M: disjoint", []string{"CRAM-MD5", "PLAIN"}, Credential{Mechs: []string{"CRAM-MD5"}}, []string{"PLAIN"}, ""},
		{"oauth bearer", []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}, oa, nil, "OAUTHBEARER"},
		{"xoauth2", []string{"PLAIN", "LOGIN", "XOAUTH2"}, oa, nil, "XOAUTH2"},
		{"oauth never plain", []string{"PLAIN", "LOGIN"}, oa, nil, ""},
		{"password never oauth", []string{"XOAUTH2"}, pw, nil, ""},
		{"none offered", nil, pw, nil, ""},
	}
	for _, tc := range cases {
		got, err := chooseMech(tc.offered, tc.cred, tc.conf)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestMechanismsAgainstServer runs every password mechanism against the
// test relay and checks the one chosen.
func TestMechanismsAgainstServer(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"} {
		t.Run(mech, func(t *testing.T) {
			for _, pass := range []string{"s3cret", "wrong"} {
				srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"user@example.org": "s3cret"},
					mechs: []string{"LOGIN", "PLAIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"}})
				cred := credMap{"relay.test": {User: "user@example.org", Password: Secret(pass), Mechs: []string{mech}}}
				c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = cred })
				out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
				auths, _, _, _, _ := srv.got.snapshot()
				if len(auths) != 1 || auths[0] != mech+" user@example.org" {
					t.Errorf("server saw AUTH %q", auths)
				}
				if pass == "s3cret" && (err != nil || out.Recipients[0].Status != Delivered) {
					t.Errorf("good password: %v %+v", err, out.Recipients[0])
				}
				if pass == "wrong" && (err == nil || !out.AuthFailed) {
					t.Errorf("wrong password: %v %+v", err, out)
				}
			}
		})
	}
}

// tokenEndpoint is an in-process OAuth 2.0 token endpoint (RFC 6749).
type tokenEndpoint struct {
	mu       sync.Mutex
	n        int
	grants   []string
	expires  int
	refresh  string // refresh token it expects
	issued   []string
	rotateRT bool
}

func (e *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	e.mu.Lock()
	defer e.mu.Unlock()
	gt := r.Form.Get("grant_type")
	e.grants = append(e.grants, gt)
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	if id != "client-id" || secret != "client-secret" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	if gt == "refresh_token" && r.Form.Get("refresh_token") != e.refresh {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
		return
	}
	e.n++
	tok := fmt.Sprintf("token-%d", e.n)
	e.issued = append(e.issued, tok)
	resp := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": e.expires}
	if e.rotateRT && gt == "refresh_token" {
		e.refresh = fmt.Sprintf("rt-%d", e.n)
		resp["refresh_token"] = e.refresh
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func TestOAuth(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	cases := []struct {
		name string
		mech string
		flow string
	}{
		{"bearer refresh", "OAUTHBEARER", "refresh_token"},
		{"xoauth2 client credentials", "XOAUTH2", "client_credentials"},
		{"xoauth2 refresh", "XOAUTH2", "refresh_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ep := &tokenEndpoint{expires: 3600, refresh: "rt-0", rotateRT: true}
			hs := httptest.NewServer(ep)
			defer hs.Close()
			st := &oauthState{valid: map[string]bool{}}
			srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"u": ""}, mechs: []string{"PLAIN", tc.mech}, oauth: st})
			cred := credMap{"relay.test": {User: "user@example.org", Source: "t:1", OAuth: &OAuth{
				TokenURL: hs.URL + "/token", ClientID: "client-id", ClientSecret: "client-secret",
				RefreshToken: "rt-0", Flow: tc.flow, Scope: "https://mail.example/.default"}}}
			c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = cred; o.HTTPClient = hs.Client() })

			// 1. The first token is accepted.
			st.mu.Lock()
			st.valid["token-1"] = true
			st.mu.Unlock()
			out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			if err != nil || out.Recipients[0].Status != Delivered {
				t.Fatalf("Deliver: %v %+v", err, out)
			}
			// 2. Cached: a second message on a new connection fetches no token.
			c.Close()
			c = newTestClientShared(t, c, relayFor(srv), ca, cred, hs)
			if _, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil {
				t.Fatal(err)
			}
			ep.mu.Lock()
			if len(ep.grants) != 1 {
				t.Errorf("token endpoint called %d times, want 1 (cached)", len(ep.grants))
			}
			ep.mu.Unlock()
			// 3. The relay revokes token-1: one error reply, a fresh token,
			// AUTH again on the same connection.
			st.mu.Lock()
			st.valid = map[string]bool{"token-2": true}
			st.responses = nil
			st.mu.Unlock()
			c.Close()
			c = newTestClientShared(t, c, relayFor(srv), ca, cred, hs)
			out, err = c.Deliver(context.Background(), testMessage("b@example.com"))
			if err != nil || out.Recipients[0].Status != Delivered {
				t.Fatalf("after revocation: %v %+v", err, out)
			}
			st.mu.Lock()
			seen := append([]string{}, st.seen...)
			resps := append([][]byte{}, st.responses...)
			st.mu.Unlock()
			last := seen[len(seen)-2:]
			if !strings.HasSuffix(last[0], " token-1") || !strings.HasSuffix(last[1], " token-2") {
				t.Errorf("relay saw %q", seen)
			}
			// RFC 7628 §3.2.3: after the error challenge the client sends %x01
			// (OAUTHBEARER); XOAUTH2 sends an empty response.
			wantAbort := "\x01"
			if tc.mech == "XOAUTH2" {
				wantAbort = ""
			}
			if len(resps) < 2 || string(resps[1]) != wantAbort {
				t.Errorf("client responses %q, want the second to be %q", resps, wantAbort)
			}
			if tc.mech == "OAUTHBEARER" && !strings.HasPrefix(string(resps[0]), "n,a=user@example.org,\x01host=relay.test\x01port=") {
				t.Errorf("OAUTHBEARER initial response %q", resps[0])
			}
			// 4. The relay refuses every token: deferred, AuthFailed, only one renewal.
			st.mu.Lock()
			st.valid = map[string]bool{}
			st.mu.Unlock()
			c.Close()
			c = newTestClientShared(t, c, relayFor(srv), ca, cred, hs)
			ep.mu.Lock()
			before := len(ep.grants)
			ep.mu.Unlock()
			out, err = c.Deliver(context.Background(), testMessage("b@example.com"))
			if err == nil || !out.AuthFailed || out.Recipients[0].Status != Deferred {
				t.Errorf("all tokens refused: %v %+v", err, out)
			}
			ep.mu.Lock()
			if n := len(ep.grants) - before; n != 1 {
				t.Errorf("%d token requests after refusal, want 1", n)
			}
			if ep.grants[0] != tc.flow {
				t.Errorf("grant %q, want %q", ep.grants[0], tc.flow)
			}
			ep.mu.Unlock()
		})
	}
}

// newTestClientShared makes a new client that shares old's token cache
// (as a long-running daemon's single client would).
func newTestClientShared(t *testing.T, old *Client, relay string, ca *testCA, cred credMap, hs *httptest.Server) *Client {
	c := newTestClient(t, relay, ca, func(o *Options) { o.Credentials = cred; o.HTTPClient = hs.Client() })
	c.tokens = old.tokens
	return c
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	ep := &tokenEndpoint{expires: 60, refresh: "rt-0"} // expires within tokenEarly
	hs := httptest.NewServer(ep)
	defer hs.Close()
	tc := newTokenCache(hs.Client(), newSecretSet(), nil, slog.New(slog.DiscardHandler))
	cr := Credential{User: "u", OAuth: &OAuth{TokenURL: hs.URL, ClientID: "client-id", ClientSecret: "client-secret", RefreshToken: "rt-0"}}
	a, err := tc.token(context.Background(), cr, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tc.token(context.Background(), cr, false)
	if err != nil || a == b {
		t.Errorf("token about to expire was reused: %q %q %v", a, b, err)
	}
	ep.expires = 3600
	c, _ := tc.token(context.Background(), cr, false)
	d, _ := tc.token(context.Background(), cr, false)
	if c != d {
		t.Errorf("valid token not cached: %q %q", c, d)
	}
	// Endpoint errors carry the OAuth error code, never the secret.
	bad := Credential{User: "v", OAuth: &OAuth{TokenURL: hs.URL, ClientID: "client-id", ClientSecret: "wrong-secret", RefreshToken: "rt-0"}}
	_, err = tc.token(context.Background(), bad, false)
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("err = %v", err)
	}
	if _, err := oauthFlow(&OAuth{}); err == nil {
		t.Error("empty OAuth credential accepted")
	}
	if f, _ := oauthFlow(&OAuth{AccessToken: "x"}); f != "static" {
		t.Errorf("flow %q", f)
	}
}

// TestTraceRedactsAuth: the protocol trace never shows what AUTH sends.
func TestTraceRedactsAuth(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"user@example.org": "s3cret"}})
		var lines []string
		var mu sync.Mutex
		cred := credMap{"relay.test": {User: "user@example.org", Password: "s3cret", Mechs: []string{mech}}}
		c := newTestClient(t, relayFor(srv), ca, func(o *Options) {
			o.Credentials = cred
			o.Trace = func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() }
		})
		if _, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		tr := strings.Join(lines, "\n")
		mu.Unlock()
		for _, secret := range []string{"s3cret", base64.StdEncoding.EncodeToString([]byte("s3cret")),
			base64.StdEncoding.EncodeToString([]byte("\x00user@example.org\x00s3cret"))} {
			if strings.Contains(tr, secret) {
				t.Errorf("%s: trace shows %q:\n%s", mech, secret, tr)
			}
		}
		if !strings.Contains(tr, "> AUTH "+mech) || !strings.Contains(tr, "<redacted>") {
			t.Errorf("%s: trace lacks the redacted AUTH:\n%s", mech, tr)
		}
	}
}

// TestLoginAnyPrompts: AUTH LOGIN answers the first challenge with the
// user name and the second with the password whatever the prompts say
// (Exim's server_prompts = User Name : Password broke go-sasl's client),
// sends no initial response, and gives up on a third challenge.
func TestLoginAnyPrompts(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	for _, prompts := range [][]string{
		{"Username:", "Password:"},
		{"User Name", "Password"},
		{"", ""},
		{"Password:", "Username:"}, // swapped: the order counts, not the words
		{"VXNlcm5hbWU6", "\x00\xff odd"},
	} {
		srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"user@example.org": "s3cret"},
			mechs: []string{"LOGIN"}, prompts: prompts})
		cred := credMap{"relay.test": {User: "user@example.org", Password: "s3cret"}}
		c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = cred })
		out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
		if err != nil || out.Recipients[0].Status != Delivered {
			t.Errorf("prompts %q: %v %+v", prompts, err, out)
		}
		auths, _, _, _, _ := srv.got.snapshot()
		if len(auths) != 1 || auths[0] != "LOGIN user@example.org" {
			t.Errorf("prompts %q: server saw %q", prompts, auths)
		}
		if tr := srv.got.transcript(); !strings.Contains(tr, "AUTH LOGIN\r\n") {
			t.Errorf("prompts %q: AUTH LOGIN sent with an initial response:\n%s", prompts, tr)
		}
	}
	l := &loginClient{user: "u", password: "p"}
	if m, ir, err := l.Start(); m != "LOGIN" || ir != nil || err != nil {
		t.Errorf("Start = %q %q %v", m, ir, err)
	}
	for i, want := range []string{"u", "p"} {
		if got, err := l.Next([]byte("anything")); string(got) != want || err != nil {
			t.Errorf("challenge %d: %q %v", i+1, got, err)
		}
	}
	if _, err := l.Next([]byte("more?")); err == nil {
		t.Error("third challenge answered")
	}
}
