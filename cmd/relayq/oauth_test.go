package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/internal/testlib"
)

// loginArgs are the flags of a login against the test server.
func loginArgs(as *testlib.OAuthServer, file string, extra ...string) []string {
	return append([]string{"login", "-client-id", as.ClientID, "-client-secret", as.ClientSecret,
		"-token-url", as.URL + "/token", "-user", "me@example.com", "-authinfo", file, "-timeout", "30s"}, extra...)
}

// storedOAuth reads the credential stored for relay.
func storedOAuth(t *testing.T, file, relay string) authinfo.Credential {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", err, fi)
	}
	m, err := authinfo.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.Trim(strings.Split(relay, "]")[0], "[")
	c, ok := m.Lookup(authinfo.Query{Host: host, NextHop: relay})
	if !ok || c.OAuth == nil {
		t.Fatalf("no OAuth credential for %s", relay)
	}
	return c
}

// The device flow (RFC 8628) against the local authorization server: the
// code is shown, the first poll is pending, the refresh token is stored in
// the credentials file (0600, the other entries kept) and never printed.
func TestOAuthLoginDevice(t *testing.T) {
	as := testlib.NewOAuthServer(t)
	file := filepath.Join(t.TempDir(), "authinfo")
	os.WriteFile(file, []byte("# mine\n[other.example]:587 u:p\n"), 0o600)
	code, out, errs := runOAuthArgs(t, loginArgs(as, file, "-device-url", as.URL+"/device", "[smtp.office365.com]:587")...)
	if code != exOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "enter the code WDJB-MJHT") {
		t.Errorf("the user code is not shown:\n%s", out)
	}
	if !strings.Contains(out, "signed in; added the OAuth credential for [smtp.office365.com]:587 to "+file) {
		t.Errorf("the output does not say the entry was added:\n%s", out)
	}
	c := storedOAuth(t, file, "[smtp.office365.com]:587")
	if got := string(c.OAuth.RefreshToken); got != as.Issued[0] || c.OAuth.ClientID != as.ClientID || c.User != "me@example.com" || c.OAuth.TokenURL != as.URL+"/token" {
		t.Errorf("stored %+v (refresh token %q, want %q)", c, got, as.Issued[0])
	}
	for _, secret := range []string{as.Issued[0], as.ClientSecret, "access-token"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("output shows a secret (%q)", secret)
		}
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "# mine\n[other.example]:587 u:p\n") {
		t.Errorf("the other lines were not kept:\n%s", b)
	}
	// A second login replaces the entry: one line for the relay, and the
	// output says an entry was replaced (a password there is gone too).
	code, out, errs = runOAuthArgs(t, loginArgs(as, file, "-device-url", as.URL+"/device", "[smtp.office365.com]:587")...)
	if code != exOK {
		t.Fatalf("second login: exit %d %s", code, errs)
	}
	if !strings.Contains(out, "signed in; replaced the entry for [smtp.office365.com]:587 in "+file+" (whatever it held before)") {
		t.Errorf("the output does not say the entry was replaced:\n%s", out)
	}
	b, _ = os.ReadFile(file)
	if n := strings.Count(string(b), "[smtp.office365.com]:587 "); n != 1 {
		t.Errorf("%d entries for the relay after a second login:\n%s", n, b)
	}
}

// The code flow with PKCE: the test plays the browser (it opens the URL
// printed, the server redirects to relayq's loopback listener); the server
// checks the verifier against the challenge.
func TestOAuthLoginCodePKCE(t *testing.T) {
	as := testlib.NewOAuthServer(t)
	file := filepath.Join(t.TempDir(), "authinfo")
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb strings.Builder
	go func() {
		done <- runOAuth(stdio{strings.NewReader(""), pw, &errb}, loginArgs(as, file, "-flow", "code", "-auth-url", as.URL+"/authorize", "[smtp.gmail.com]:587"))
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var rest strings.Builder
	for sc.Scan() {
		line := sc.Text()
		rest.WriteString(line + "\n")
		if strings.HasPrefix(line, as.URL+"/authorize?") {
			if !strings.Contains(line, "code_challenge_method=S256") || !strings.Contains(line, "access_type=offline") {
				t.Errorf("authorization URL without PKCE or offline access: %s", line)
			}
			resp, err := http.Get(line) // the browser: follows the redirect to relayq
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "signed in") {
				t.Errorf("the browser was told: %s", body)
			}
		}
	}
	select {
	case code := <-done:
		if code != exOK {
			t.Fatalf("exit %d: %s\n%s", code, errb.String(), rest.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("login did not finish")
	}
	if c := storedOAuth(t, file, "[smtp.gmail.com]:587"); string(c.OAuth.RefreshToken) != as.Issued[0] {
		t.Errorf("stored refresh token is not the issued one")
	}
	if strings.Contains(rest.String(), as.Issued[0]) {
		t.Error("output shows the refresh token")
	}
}

// A refused client: exit 69, the reason is RFC 6749's error code, and the
// server's echo of the request (client secret) is not shown; nothing is
// written.
func TestOAuthLoginRefused(t *testing.T) {
	as := testlib.NewOAuthServer(t)
	file := filepath.Join(t.TempDir(), "authinfo")
	args := loginArgs(as, file, "-flow", "code", "-auth-url", as.URL+"/authorize", "[smtp.gmail.com]:587")
	for i, a := range args {
		if a == as.ClientSecret {
			args[i] = "wrong-secret-123"
		}
	}
	pr, pw := io.Pipe()
	type result struct {
		code int
		err  string
	}
	done := make(chan result, 1)
	go func() {
		var errb strings.Builder
		code := runOAuth(stdio{strings.NewReader(""), pw, &errb}, args)
		pw.Close()
		done <- result{code, errb.String()}
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, as.URL+"/authorize?") {
			if resp, err := http.Get(line); err == nil {
				resp.Body.Close()
			}
		}
	}
	r := <-done
	if r.code != exUnavail || !strings.Contains(r.err, "invalid_client") || strings.Contains(r.err, "wrong-secret-123") {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("a refused login wrote the credentials file")
	}
}

func runOAuthArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := runOAuth(stdio{strings.NewReader(""), &out, &errb}, args)
	return code, out.String(), errb.String()
}

// relayq check asks the token endpoint of an OAuth credential (through the
// token store): a good refresh token passes; a revoked one fails (78) with
// the endpoint's error code and no secret.
func TestCheckOAuthToken(t *testing.T) {
	as := testlib.NewOAuthServer(t)
	as.AddRefresh("rt-in-file")
	entry := "[smtp.example.com]:587 oauth2:user=me@example.com,client_id=" + as.ClientID + ",client_secret=" + as.ClientSecret +
		",refresh_token=rt-in-file,token_url=" + as.URL + "/token\n"
	relayEnv(t, "[smtp.example.com]:587", entry, "")
	t.Setenv("RELAYQ_SENDER_RELAYHOST_MAP", "")
	code, out, errOut := run(runCheck)
	if code != exOK || !strings.Contains(out, "OAuth: access token obtained (refresh_token flow), valid until") ||
		!strings.Contains(out, "the endpoint rotated the refresh token: the new one is kept") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	// Rotated: the file's token is used up; the next check goes on with the
	// kept one.
	if code, out, errOut := run(runCheck); code != exOK || !strings.Contains(out, "refresh token from the token store") {
		t.Fatalf("second check: exit %d\n%s%s", code, out, errOut)
	}
	for _, rt := range as.Issued {
		as.Revoke(rt)
	}
	code, out, errOut = run(runCheck)
	if code != exConfig || !strings.Contains(errOut, "OAuth: OAuth token from") || !strings.Contains(errOut, "invalid_grant") {
		t.Fatalf("revoked: exit %d\n%s%s", code, out, errOut)
	}
	for _, secret := range append([]string{as.ClientSecret, "rt-in-file"}, as.Issued...) {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("check shows a secret (%q):\n%s%s", secret, out, errOut)
		}
	}
}
