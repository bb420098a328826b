package smarthost

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func relayFor(s *testServer) string { return fmt.Sprintf("[relay.test]:%d", s.port) }

var userCred = credMap{"relay.test": {User: "user@example.org", Password: "s3cret", Source: "test:1"}}

func TestDeliverStartTLSPlain(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"user@example.org": "s3cret"}})
	c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = userCred })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := out.Recipients[0]; got.Status != Delivered || got.Code != 250 {
		t.Fatalf("outcome %+v", got)
	}
	if !strings.HasPrefix(out.Relay, "relay.test[127.0.0.1]:") {
		t.Errorf("Relay = %q", out.Relay)
	}
	auths, mails, rcpts, bodies, _ := srv.got.snapshot()
	if len(auths) != 1 || auths[0] != "PLAIN user@example.org" {
		t.Errorf("auths %q", auths)
	}
	if len(mails) != 1 || !strings.HasPrefix(mails[0], "a@example.org") || len(rcpts) != 1 {
		t.Errorf("mails %q rcpts %q", mails, rcpts)
	}
	want := "From: a@example.org\r\nTo: b@example.com\r\nSubject: test\r\n\r\nHello.\r\n.leading dot\r\n"
	if len(bodies) != 1 || string(bodies[0]) != want {
		t.Errorf("body %q", bodies)
	}
	// The client's dot-stuffing is on the wire.
	if tr := srv.got.transcript(); strings.Contains(tr, "AUTH PLAIN") && !strings.Contains(tr, "STARTTLS") {
		t.Errorf("AUTH before STARTTLS:\n%s", tr)
	}
}

func TestDeliverNoSTARTTLS(t *testing.T) {
	// A relay without STARTTLS offering AUTH in plaintext: under verify and
	// encrypt relayq sends neither AUTH nor MAIL.
	for _, pol := range []Policy{Verify, Encrypt} {
		t.Run(pol.String(), func(t *testing.T) {
			srv := startServer(t, serverConfig{insecure: true, users: map[string]string{"user@example.org": "s3cret"}})
			c := newTestClient(t, relayFor(srv), nil, func(o *Options) { o.Credentials = userCred; o.TLS = pol })
			out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			if err == nil {
				t.Fatal("Deliver succeeded without TLS")
			}
			r := out.Recipients[0]
			if r.Status != Deferred || r.Enhanced != "4.7.4" || !strings.Contains(r.Text, "STARTTLS") {
				t.Errorf("outcome %+v", r)
			}
			tr := strings.ToUpper(srv.got.transcript())
			if strings.Contains(tr, "AUTH ") && strings.Contains(tr, "\nAUTH") || strings.Contains(tr, "MAIL FROM") {
				t.Errorf("server received AUTH or MAIL:\n%s", tr)
			}
			auths, mails, _, _, _ := srv.got.snapshot()
			if len(auths)+len(mails) != 0 {
				t.Errorf("auths %q mails %q", auths, mails)
			}
		})
	}
}

func TestDeliverMayPlaintextNoCredentials(t *testing.T) {
	// Policy may on a plaintext relay: the mail goes, the password does not.
	srv := startServer(t, serverConfig{insecure: true, users: map[string]string{"user@example.org": "s3cret"}})
	c := newTestClient(t, relayFor(srv), nil, func(o *Options) { o.Credentials = userCred; o.TLS = May })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err == nil {
		t.Fatal("expected failure")
	}
	if r := out.Recipients[0]; r.Status != Deferred || !strings.Contains(r.Text, "not encrypted") {
		t.Errorf("outcome %+v", r)
	}
	auths, mails, _, _, _ := srv.got.snapshot()
	if len(auths) != 0 || len(mails) != 0 {
		t.Errorf("auths %q mails %q", auths, mails)
	}
}

func TestDeliverNoneLoopbackAuth(t *testing.T) {
	// Policy none to a loopback relay is the one case of plaintext AUTH.
	srv := startServer(t, serverConfig{insecure: true, users: map[string]string{"user@example.org": "s3cret"}})
	c := newTestClient(t, relayFor(srv), nil, func(o *Options) { o.Credentials = userCred; o.TLS = None })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
}

func TestDeliverBadCertificates(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	now := time.Now()
	certs := map[string]func() certPair{
		"untrusted": func() certPair { return certPair{other.good(t), ""} },
		"expired": func() certPair {
			return certPair{ca.leaf(t, []string{"relay.test"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), "expired"}
		},
		"wrong name": func() certPair {
			return certPair{ca.leaf(t, []string{"other.test"}, now.Add(-time.Hour), now.Add(time.Hour)), "other.test"}
		},
	}
	for name, mk := range certs {
		t.Run(name, func(t *testing.T) {
			cp := mk()
			srv := startServer(t, serverConfig{cert: &cp.cert, users: map[string]string{"user@example.org": "s3cret"}})
			c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = userCred })
			out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			if err == nil {
				t.Fatal("Deliver succeeded with a bad certificate")
			}
			r := out.Recipients[0]
			if r.Status != Deferred || r.Enhanced != "4.7.5" || !strings.Contains(r.Text, cp.want) {
				t.Errorf("outcome %+v", r)
			}
			auths, mails, _, _, _ := srv.got.snapshot()
			if len(auths)+len(mails) != 0 {
				t.Errorf("auths %q mails %q", auths, mails)
			}
		})
	}
}

type certPair struct {
	cert tls.Certificate
	want string
}

func TestDeliverMixedRecipients(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, rcpt: func(to string) error {
		switch {
		case strings.HasPrefix(to, "bad"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(to, "later"):
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		}
		return nil
	}})
	c := newTestClient(t, relayFor(srv), ca, nil)
	out, err := c.Deliver(context.Background(), testMessage("good@x.example", "bad@x.example", "later@x.example", "good2@x.example"))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	want := []struct {
		st   Status
		code int
		enh  string
	}{{Delivered, 250, "2.0.0"}, {Bounced, 550, "5.1.1"}, {Deferred, 450, "4.2.1"}, {Delivered, 250, "2.0.0"}}
	for i, w := range want {
		r := out.Recipients[i]
		if r.Status != w.st || r.Code != w.code || r.Enhanced != w.enh {
			t.Errorf("rcpt %d: %+v, want %v %d %s", i, r, w.st, w.code, w.enh)
		}
	}
	if out.Recipients[1].Text != "no such user" {
		t.Errorf("text %q", out.Recipients[1].Text)
	}
}
