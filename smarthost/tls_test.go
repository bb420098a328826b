package smarthost

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/internal/testlib"
)

// TestPostTLSCapabilitiesOnly: what the relay said before STARTTLS is
// forgotten (RFC 3207 §4.2). Before TLS it claims SIZE 10 and AUTH LOGIN;
// after TLS it offers no SIZE and AUTH PLAIN: the 100-octet message goes,
// with PLAIN.
func TestPostTLSCapabilitiesOnly(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("220 relay.test ESMTP\r\n")
		c.Cmd()
		c.Send("250-relay.test\r\n250-SIZE 10\r\n250-AUTH LOGIN\r\n250 STARTTLS\r\n")
		if c.Cmd() != "STARTTLS" {
			return
		}
		c.Send("220 go ahead\r\n")
		c.StartTLS(cert)
		c.Cmd()
		c.Send("250-relay.test\r\n250 AUTH PLAIN\r\n")
		if l := c.Cmd(); !strings.HasPrefix(l, "AUTH PLAIN ") {
			c.Send("504 no\r\n")
			return
		}
		c.Send("235 ok\r\n")
		c.Play()
	})
	c := newTestClient(t, rawRelay(srv), ca, func(o *Options) { o.Credentials = userCred })
	m := testMessage("b@example.com")
	m.Size = 100
	out, err := c.Deliver(context.Background(), m)
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v (%q)", err, out.Recipients[0], srv.Commands())
	}
}

func TestIPv6Relay(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	l.Close()
	ca := newCA(t)
	cert := ca.leaf(t, []string{"::1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"user@example.org": "s3cret"},
		listen: func() (net.Listener, error) { return net.Listen("tcp", "[::1]:0") }})
	c := newTestClient(t, fmt.Sprintf("[::1]:%d", srv.port), ca, func(o *Options) { o.Credentials = credMap{"*": userCred["relay.test"]} })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered || out.Relay != fmt.Sprintf("::1[::1]:%d", srv.port) {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
}

func TestClientCertificate(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	clientCA := newCA(t)
	clientCert := clientCA.leaf(t, []string{"client.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	srv := startServer(t, serverConfig{cert: &cert, tlsMod: func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = clientCA.pool
	}})
	// Without the certificate the handshake fails; with it the mail goes.
	c := newTestClient(t, relayFor(srv), ca, nil)
	if _, err := c.Deliver(context.Background(), testMessage("b@example.com")); err == nil {
		t.Error("delivered without the client certificate the relay requires")
	}
	c = newTestClient(t, relayFor(srv), ca, func(o *Options) { o.ClientCert = &clientCert })
	if out, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil || out.Recipients[0].Status != Delivered {
		t.Errorf("with client certificate: %v %+v", err, out)
	}
}

func TestTLSMinimumVersion(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, tlsMod: func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS10
		c.MaxVersion = tls.VersionTLS11
	}})
	for _, pol := range []Policy{Verify, Encrypt} {
		c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.TLS = pol; o.MinTLS = tls.VersionTLS10 })
		out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
		if err == nil || out.Recipients[0].Enhanced != "4.7.5" {
			t.Errorf("%v: TLS 1.1 relay accepted: %v %+v", pol, err, out.Recipients[0])
		}
	}
	// TLS 1.3 only on our side refuses a 1.2 relay.
	srv12 := startServer(t, serverConfig{cert: &cert, tlsMod: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }})
	c := newTestClient(t, relayFor(srv12), ca, func(o *Options) { o.MinTLS = tls.VersionTLS13 })
	if _, err := c.Deliver(context.Background(), testMessage("b@example.com")); err == nil {
		t.Error("TLS 1.2 relay accepted with minimum 1.3")
	}
}

// TestMayFallsBackToPlaintext: under may a failed handshake leads to a
// plaintext connection; the mail goes but no credential does.
func TestMayFallsBackToPlaintext(t *testing.T) {
	other := newCA(t)
	cert := other.good(t)
	ca := newCA(t)
	srv := startServer(t, serverConfig{cert: &cert, tlsMod: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11; c.MinVersion = tls.VersionTLS10 }})
	c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.TLS = May })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
	if _, _, _, _, conns := srv.got.snapshot(); conns != 2 {
		t.Errorf("%d connections, want 2 (TLS, then plaintext)", conns)
	}
}

func TestRateLimiter(t *testing.T) {
	r := &rateLimiter{every: time.Hour}
	if err := r.wait(context.Background()); err != nil {
		t.Fatalf("first message waited: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.wait(ctx); err == nil {
		t.Error("second message within the interval was not held back")
	}
	// Through Deliver: a held-back message is deferred when its deadline ends.
	srv := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) {
		o.TLS = May
		o.RateLimit = 1.0 / 3600
		o.Deadline = 200 * time.Millisecond
	})
	if out, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("first: %v %+v", err, out)
	}
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err == nil || out.Recipients[0].Status != Deferred {
		t.Errorf("second: %v %+v", err, out)
	}
	if _, mails, _, _, _ := srv.got.snapshot(); len(mails) != 1 {
		t.Errorf("%d MAIL commands, want 1", len(mails))
	}
}

func TestProbe(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	users := map[string]string{"user@example.org": "s3cret"}
	good := startServer(t, serverConfig{cert: &cert, users: users})
	wrongName := ca.leaf(t, []string{"other.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	badCert := startServer(t, serverConfig{cert: &wrongName, users: users})
	noTLS := startServer(t, serverConfig{insecure: true, users: users})
	implicit := startServer(t, serverConfig{cert: &cert, implicit: true, users: users})
	badPass := credMap{"relay.test": {User: "user@example.org", Password: "wrong", Source: "authinfo:3"}}
	cases := []struct {
		name  string
		relay string
		creds credMap
		want  ProbeResult
		out   []string
		not   []string
	}{
		{"ok", relayFor(good), userCred, ProbeOK, []string{
			"banner: 220 relay.test ESMTP Service Ready",
			"EHLO capabilities (before TLS):\n  Hello client.test\n",
			"    STARTTLS\n",
			"STARTTLS: 220 2.0.0 Ready to start TLS",
			"TLS: TLS 1.3",
			"certificate chain:\n  0 subject: CN=relay.test",
			"verification: OK",
			"EHLO capabilities (after TLS):",
			"    AUTH PLAIN LOGIN\n",
			"credential: password user \"user@example.org\" from test:1",
			"AUTH mechanisms offered: PLAIN LOGIN",
			"AUTH PLAIN: 235 2.0.0 Authentication succeeded",
			"result: ok",
		}, []string{"s3cret", "AUTH PLAIN AHVzZX"}},
		{"wrong password", relayFor(good), badPass, ProbeAuth, []string{"AUTH PLAIN refused: 535 5.7.8 Authentication failed", "result: authentication refused"}, []string{"wrong"}},
		{"wrong name", relayFor(badCert), userCred, ProbeTLS, []string{"TLS handshake failed", "verification: FAILED", "other.test", "result: TLS failure"}, []string{"AUTH PLAIN"}},
		{"no STARTTLS", relayFor(noTLS), userCred, ProbeTLS, []string{"STARTTLS not offered", "result: TLS failure"}, []string{"AUTH PLAIN:"}},
		{"implicit", fmt.Sprintf("[relay.test]:%d", implicit.port), userCred, ProbeOK, []string{"TLS: TLS 1.3", "banner: 220", "EHLO capabilities (after TLS)", "AUTH PLAIN: 235"}, []string{"before TLS"}},
		{"encrypt, unverified: no AUTH", relayFor(badCert), userCred, ProbeTLS, []string{"verification: FAILED", "credentials not sent", "result: TLS failure"}, []string{"AUTH PLAIN:"}},
		{"refused", "[127.0.0.1]:1", userCred, ProbeConnect, []string{"connect failed", "result: connect failure"}, nil},
		{"bad relay", "[x", userCred, ProbeConfig, []string{"missing ']'"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, "[relay.test]", ca, func(o *Options) {
				o.Credentials = tc.creds
				if tc.name == "implicit" {
					o.Implicit = ImplicitAlways
				}
				if strings.HasPrefix(tc.name, "encrypt") {
					o.TLS = Encrypt
				}
			})
			var b bytes.Buffer
			got := c.Probe(context.Background(), &b, tc.relay, "")
			out := b.String()
			if got != tc.want {
				t.Errorf("result %v, want %v\n%s", got, tc.want, out)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("output contains %q:\n%s", w, out)
				}
			}
		})
	}
	// No mail is sent by a probe.
	if _, mails, _, _, _ := good.got.snapshot(); len(mails) != 0 {
		t.Errorf("probe sent MAIL: %q", mails)
	}
}

// TestMXRelay: an unbracketed relay is looked up as MX; the certificate is
// checked against the MX host name.
func TestMXRelay(t *testing.T) {
	ca := newCA(t)
	cert := ca.leaf(t, []string{"mx1.example.net"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	srv := startServer(t, serverConfig{cert: &cert})
	res := &fakeResolver{
		mx:    map[string][]*net.MX{"example.net": {{Host: "mx1.example.net.", Pref: 10}}},
		hosts: map[string][]string{"mx1.example.net": {"127.0.0.1"}, "example.net": {"127.0.0.2"}},
	}
	c := newTestClient(t, fmt.Sprintf("example.net:%d", srv.port), ca, func(o *Options) { o.Resolver = res })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered || out.Relay != fmt.Sprintf("mx1.example.net[127.0.0.1]:%d", srv.port) {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
	// [example.net] skips MX: its own address, where nothing listens.
	c = newTestClient(t, fmt.Sprintf("[example.net]:%d", srv.port), ca, func(o *Options) { o.Resolver = res })
	if out, err := c.Deliver(context.Background(), testMessage("b@example.com")); err == nil || out.Recipients[0].Enhanced != "4.4.1" {
		t.Errorf("[example.net]: %v %+v", err, out.Recipients[0])
	}
}

// senderCreds gives each sender its own credential.
type senderCreds struct{}

func (senderCreds) Lookup(q Query) (Credential, bool) {
	switch q.Sender {
	case "a@example.org":
		return Credential{User: "a", Password: "pa", Source: "t:1", Key: "a@example.org"}, true
	case "b@example.org":
		return Credential{User: "b", Password: "pb", Source: "t:2", Key: "b@example.org"}, true
	}
	return Credential{}, false
}

// TestPerSenderCredentialsNotShared: a pooled connection authenticated as
// one user is never used for another sender's mail.
func TestPerSenderCredentialsNotShared(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"a": "pa", "b": "pb"}})
	c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = senderCreds{} })
	for _, from := range []string{"a@example.org", "b@example.org", "a@example.org", "b@example.org"} {
		m := testMessage("x@example.com")
		m.From = from
		if out, err := c.Deliver(context.Background(), m); err != nil || out.Recipients[0].Status != Delivered {
			t.Fatalf("%s: %v %+v", from, err, out)
		}
	}
	// go-smtp starts a new session after STARTTLS: count the handshakes.
	auths, _, _, _, _ := srv.got.snapshot()
	conns := strings.Count(srv.got.transcript(), "Ready to start TLS")
	if conns != 2 || len(auths) != 2 || auths[0] != "PLAIN a" || auths[1] != "PLAIN b" {
		t.Errorf("connections %d auths %q; want one connection per credential", conns, auths)
	}
}
