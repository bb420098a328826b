package smarthost

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// No credential, no send: a relay with no matching credential (wrong key,
// no file) is not even dialled when the options require one; the
// recipients are deferred with a reason naming the relay and the file.
func TestDeliverNoCredentialNoSend(t *testing.T) {
	for name, creds := range map[string]Credentials{
		"no file":     nil,
		"key differs": credMap{"localhost": {User: "u", Password: "p", Source: "test:1"}},
	} {
		t.Run(name, func(t *testing.T) {
			ca := newCA(t)
			cert := ca.good(t)
			srv := startServer(t, serverConfig{cert: &cert})
			var logs bytes.Buffer
			c := newTestClient(t, relayFor(srv), ca, func(o *Options) {
				if creds != nil {
					o.Credentials = creds
				}
				o.RequireCredential, o.CredentialsFile = true, "/etc/relayq/authinfo"
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			out, err := c.Deliver(context.Background(), testMessage("b@example.com", "c@example.com"))
			if err == nil {
				t.Fatal("Deliver succeeded without a credential")
			}
			for _, r := range out.Recipients {
				if r.Status != Deferred || r.Enhanced != "4.7.0" ||
					!strings.Contains(r.Text, "no credential for relay "+relayFor(srv)) || !strings.Contains(r.Text, "/etc/relayq/authinfo") {
					t.Errorf("outcome %+v", r)
				}
			}
			if !out.AuthFailed || out.Kind != KindCredential {
				t.Errorf("AuthFailed %v, Kind %q", out.AuthFailed, out.Kind)
			}
			// The alarm says what happened: nothing was refused, nothing sent.
			if l := logs.String(); !strings.Contains(l, "no credential for the relay; mail deferred, nothing sent") || strings.Contains(l, "refused") {
				t.Errorf("log:\n%s", l)
			}
			if _, _, _, _, conns := srv.got.snapshot(); conns != 0 {
				t.Errorf("%d connections to a relay with no credential", conns)
			}
			var b bytes.Buffer
			if res := c.Probe(context.Background(), &b, "", "a@example.org"); res != ProbeNoCredential {
				t.Errorf("Probe = %v\n%s", res, b.String())
			}
			if !strings.Contains(b.String(), "result: no credential for this relay") {
				t.Errorf("probe report:\n%s", b.String())
			}
		})
	}
}

// RELAYQ_AUTH=none (RequireCredential off) sends without AUTH as before,
// and a relay that then refuses to relay (Postfix 554 5.7.1) defers the
// mail instead of bouncing it: relayq did not authenticate.
func TestDeliverUnauthenticatedRelayDenied(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, rcpt: func(string) error {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "<b@example.com>: Relay access denied"}
	}})
	c := newTestClient(t, relayFor(srv), ca, nil)
	out, _ := c.Deliver(context.Background(), testMessage("b@example.com"))
	r := out.Recipients[0]
	if r.Status != Deferred || r.Code != 554 || !strings.Contains(r.Text, "did not authenticate") || !out.AuthFailed {
		t.Fatalf("outcome %+v (AuthFailed %v)", r, out.AuthFailed)
	}
	var b bytes.Buffer
	if res := c.Probe(context.Background(), &b, "", "a@example.org"); res != ProbeOK {
		t.Errorf("Probe with RequireCredential off = %v\n%s", res, b.String())
	}
}

// Authenticated, the same 5.7.1 at RCPT is the relay's judgement on the
// recipient: bounced.
func TestDeliverAuthenticatedRelayDeniedBounces(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"user@example.org": "s3cret"}, rcpt: func(string) error {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "recipient refused by policy"}
	}})
	c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = userCred; o.RequireCredential = true })
	out, _ := c.Deliver(context.Background(), testMessage("b@example.com"))
	if r := out.Recipients[0]; r.Status != Bounced {
		t.Fatalf("outcome %+v", r)
	}
}
