package smarthost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/internal/testlib"
)

const ehloTLS = "250-relay.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"

// TestSTARTTLSInjection: the relay appends a plaintext reply right after
// its 220 to STARTTLS (CVE-2011-0411). relayq must throw it away: the
// handshake works, the post-TLS EHLO reply is the real one, and AUTH and
// the mail go through in step.
func TestSTARTTLSInjection(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	authSeen := make(chan string, 4)
	srv := testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("220 relay.test ESMTP\r\n")
		if !strings.HasPrefix(c.Cmd(), "EHLO") {
			return
		}
		c.Send("250-relay.test\r\n250 STARTTLS\r\n")
		if c.Cmd() != "STARTTLS" {
			return
		}
		c.Send("220 2.0.0 go ahead\r\n250-relay.test\r\n250 AUTH PLAIN\r\n")
		c.StartTLS(cert)
		if l := c.Cmd(); !strings.HasPrefix(l, "EHLO") {
			t.Errorf("first command after TLS = %q, want EHLO", l)
			return
		}
		c.Send(ehloTLS)
		l := c.Cmd()
		authSeen <- l
		if !strings.HasPrefix(l, "AUTH PLAIN ") {
			c.Send("503 5.5.1 out of step\r\n")
			return
		}
		c.Send("235 2.7.0 ok\r\n")
		c.Play(testlib.Step{On: "EHLO", Reply: ehloTLS})
	})
	c := newTestClient(t, rawRelay(srv), ca, func(o *Options) { o.Credentials = userCred })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v\ncommands: %q", err, out, srv.Commands())
	}
	if l := <-authSeen; !strings.HasPrefix(l, "AUTH PLAIN ") {
		t.Errorf("AUTH line %q", l)
	}
	// Probe reports the discarded octets.
	var b bytes.Buffer
	if r := c.Probe(context.Background(), &b, "", ""); r != ProbeOK {
		t.Errorf("probe result %v\n%s", r, b.String())
	}
	n := len("250-relay.test\r\n250 AUTH PLAIN\r\n")
	if !strings.Contains(b.String(), fmt.Sprintf("sent %d octets after its 220", n)) {
		t.Errorf("probe output lacks the injection warning:\n%s", b.String())
	}
}

// TestDropDuringData: the connection drops in the middle of the body. The
// message is deferred, never delivered.
func TestDropDuringData(t *testing.T) {
	srv := testlib.ServeSteps(t, testlib.Step{On: "DATA", Reply: "354 go", Hangup: true})
	c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None })
	m := testMessage("b@example.com", "c@example.com")
	big := strings.Repeat("x", 70) + "\r\n"
	body := "Subject: big\r\n\r\n" + strings.Repeat(big, 50000)
	m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	m.Size = int64(len(body))
	out, err := c.Deliver(context.Background(), m)
	if err == nil {
		t.Fatal("Deliver reported success after a drop during DATA")
	}
	for _, r := range out.Recipients {
		if r.Status != Deferred || r.Enhanced != "4.4.2" {
			t.Errorf("outcome %+v", r)
		}
	}
}

// TestNoReplyAfterDot: the final dot goes out, the relay hangs up without
// a reply: deferred (it may have the message; at-least-once).
func TestNoReplyAfterDot(t *testing.T) {
	srv := testlib.ServeSteps(t, testlib.Step{On: ".", Hangup: true}) // the body read, no reply
	c := newTestClient(t, rawRelay(srv)+","+rawRelay(srv), nil, func(o *Options) { o.TLS = None })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err == nil || out.Recipients[0].Status != Deferred {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
	// No second relay is tried after the dot went out.
	if n := srv.Count("DATA"); n != 1 {
		t.Errorf("DATA sent %d times", n)
	}
}

func TestAuthFailed(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	cases := []struct {
		name    string
		cfg     serverConfig
		wantTxt string
		code    int
	}{
		{"535", serverConfig{users: map[string]string{"user@example.org": "other"}}, "Authentication failed", 535},
		{"454", serverConfig{users: map[string]string{"user@example.org": "s3cret"},
			authErr: &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}},
			"Temporary authentication failure", 454},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.cert = &cert
			srv := startServer(t, tc.cfg)
			c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Credentials = userCred })
			out, err := c.Deliver(context.Background(), testMessage("b@example.com", "c@example.com"))
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if !out.AuthFailed {
				t.Error("AuthFailed not set")
			}
			if want := fmt.Sprintf("[127.0.0.1]:%d", srv.port); !strings.HasSuffix(out.Relay, want) {
				t.Errorf("Relay %q, want the relay that refused AUTH (…%s)", out.Relay, want)
			}
			// The reason names the credential the relay refused (file:line,
			// user, mechanism), never its password.
			want := tc.wantTxt + ` (AUTH PLAIN as "user@example.org", the credential at test:1, refused: check it there)`
			for _, r := range out.Recipients {
				if r.Status != Deferred || r.Code != tc.code || r.Text != want {
					t.Errorf("outcome %+v, want text %q", r, want)
				}
				if strings.Contains(r.Text, "s3cret") {
					t.Errorf("the reason shows the password: %q", r.Text)
				}
			}
			_, mails, _, _, _ := srv.got.snapshot()
			if len(mails) != 0 {
				t.Errorf("MAIL sent after failed AUTH: %q", mails)
			}
		})
	}
}

func TestReplyClasses(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	e := func(code int, enh smtp.EnhancedCode, msg string) error {
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
	}
	cases := []struct {
		name string
		cfg  serverConfig
		want Status
		code int
		err  bool
	}{
		{"250", serverConfig{}, Delivered, 250, false},
		{"MAIL 451", serverConfig{mail: func(string) error { return e(451, smtp.EnhancedCode{4, 3, 0}, "later") }}, Deferred, 451, true},
		{"MAIL 553", serverConfig{mail: func(string) error { return e(553, smtp.EnhancedCode{5, 1, 8}, "bad sender") }}, Bounced, 553, false},
		{"RCPT 550", serverConfig{rcpt: func(string) error { return e(550, smtp.EnhancedCode{5, 1, 1}, "unknown") }}, Bounced, 550, false},
		{"RCPT 451", serverConfig{rcpt: func(string) error { return e(451, smtp.EnhancedCode{4, 4, 0}, "later") }}, Deferred, 451, false},
		{"RCPT 552 is temporary", serverConfig{rcpt: func(string) error { return e(552, smtp.EnhancedCode{5, 5, 3}, "too many") }}, Deferred, 552, false},
		{"DATA end 554", serverConfig{data: func([]byte) error { return e(554, smtp.EnhancedCode{5, 7, 1}, "spam") }}, Bounced, 554, false},
		{"DATA end 452", serverConfig{data: func([]byte) error { return e(452, smtp.EnhancedCode{4, 3, 1}, "full") }}, Deferred, 452, true},
		{"DATA end 421", serverConfig{data: func([]byte) error { return e(421, smtp.EnhancedCode{4, 7, 0}, "slow down") }}, Deferred, 421, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.cert = &cert
			srv := startServer(t, tc.cfg)
			c := newTestClient(t, relayFor(srv), ca, nil)
			out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			if (err != nil) != tc.err {
				t.Errorf("err = %v, want error %v", err, tc.err)
			}
			r := out.Recipients[0]
			if r.Status != tc.want || r.Code != tc.code {
				t.Errorf("outcome %+v, want %v %d", r, tc.want, tc.code)
			}
		})
	}
}

// TestGreeting5xxFailover: a 554 banner is temporary; the next relay takes
// the message (Postfix smtp_skip_5xx_greeting).
func TestGreeting5xxFailover(t *testing.T) {
	bad := testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("554 5.3.2 not now\r\n")
		c.Cmd()
	})
	good := startServer(t, serverConfig{})
	c := newTestClient(t, rawRelay(bad)+", "+fmt.Sprintf("[127.0.0.1]:%d", good.port), nil, func(o *Options) { o.TLS = May })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
	if !strings.HasPrefix(out.Relay, "127.0.0.1[127.0.0.1]") {
		t.Errorf("Relay %q", out.Relay)
	}
	// Both bad: deferred with the greeting kept.
	c = newTestClient(t, rawRelay(bad), nil, func(o *Options) { o.TLS = May })
	out, err = c.Deliver(context.Background(), testMessage("b@example.com"))
	if err == nil || out.Recipients[0].Status != Deferred || out.Recipients[0].Code != 554 {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
}

// TestConnectFailover: a refused connection moves on to the next relay.
func TestConnectFailover(t *testing.T) {
	srv := startServer(t, serverConfig{})
	dead := testlib.Serve(t, func(c *testlib.Conn) {})
	deadPort := dead.Port
	// A port nobody listens on: listen, note the port, close.
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:1,[::1]:%d,[127.0.0.1]:%d", deadPort, srv.port), nil, func(o *Options) { o.TLS = May })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
}

func TestTooManyRecipients452(t *testing.T) {
	// go-smtp answers 452 4.5.3 beyond MaxRecipients per transaction; with
	// PIPELINING all RCPTs go in one group. Lock step is covered by the raw
	// script below.
	srv := startServer(t, serverConfig{maxRcpts: 2})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May })
	rcpts := []string{"r1@x", "r2@x", "r3@x", "r4@x", "r5@x"}
	out, err := c.Deliver(context.Background(), testMessage(rcpts...))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	for i, r := range out.Recipients {
		if r.Status != Delivered {
			t.Errorf("rcpt %d %+v", i, r)
		}
	}
	_, mails, rcptsSeen, bodies, _ := srv.got.snapshot()
	if len(mails) != 3 || len(bodies) != 3 || len(rcptsSeen) != 5 {
		// r1 r2 | r3 r4 | r5
		t.Errorf("mails %d bodies %d rcpts %q", len(mails), len(bodies), rcptsSeen)
	}

	// Lock step (no PIPELINING): after the first 452 no more RCPT is sent
	// in that transaction.
	var perTx int
	raw := testlib.ServeSteps(t,
		testlib.Step{On: "MAIL", Func: func(string) string { perTx = 0; return "250 ok" }},
		testlib.Step{On: "RCPT", Func: func(string) string {
			if perTx++; perTx > 2 {
				return "452 4.5.3 too many recipients"
			}
			return "250 ok"
		}})
	c = newTestClient(t, rawRelay(raw), nil, func(o *Options) { o.TLS = None })
	out, err = c.Deliver(context.Background(), testMessage(rcpts...))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	for i, r := range out.Recipients {
		if r.Status != Delivered {
			t.Errorf("lock step rcpt %d %+v", i, r)
		}
	}
	if n := raw.Count("RCPT"); n != 7 { // r1 r2 r3(452) | r3 r4 r5(452) | r5
		t.Errorf("%d RCPT commands, want 7: %q", n, raw.Commands())
	}
}

func TestSizeLimit(t *testing.T) {
	srv := startServer(t, serverConfig{maxSize: 100})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May })
	m := testMessage("b@example.com")
	m.Size = 101
	out, err := c.Deliver(context.Background(), m)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	r := out.Recipients[0]
	if r.Status != Bounced || r.Enhanced != "5.3.4" || !strings.Contains(r.Text, "101") {
		t.Errorf("outcome %+v", r)
	}
	if _, mails, _, _, _ := srv.got.snapshot(); len(mails) != 0 {
		t.Errorf("MAIL sent: %q", mails)
	}
	m.Size = 60
	out, err = c.Deliver(context.Background(), m)
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
	if _, mails, _, _, _ := srv.got.snapshot(); len(mails) != 1 || !strings.Contains(mails[0], "SIZE") {
		t.Errorf("MAIL without SIZE: %q", mails)
	}
}

func TestDSNPassthrough(t *testing.T) {
	for _, dsn := range []bool{true, false} {
		t.Run(fmt.Sprint("dsn=", dsn), func(t *testing.T) {
			srv := startServer(t, serverConfig{dsn: dsn})
			c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May })
			m := testMessage("b@example.com")
			m.Recipients[0].Notify = "SUCCESS,FAILURE"
			m.Recipients[0].ORcpt = "rfc822;B+x=y@example.com"
			m.Ret, m.EnvID = "HDRS", "Q1+id"
			out, err := c.Deliver(context.Background(), m)
			if err != nil || out.Recipients[0].Status != Delivered {
				t.Fatalf("Deliver: %v %+v", err, out)
			}
			if out.DSN != dsn {
				t.Errorf("Outcome.DSN = %v", out.DSN)
			}
			_, mails, rcpts, _, _ := srv.got.snapshot()
			wantMail, wantRcpt := "a@example.org SIZE", "b@example.com"
			if dsn {
				wantMail += " RET=HDRS ENVID=Q1+id"
				wantRcpt += " SUCCESS FAILURE ORCPT=RFC822;B+x=y@example.com"
			}
			if mails[0] != wantMail || rcpts[0] != wantRcpt {
				t.Errorf("MAIL %q (want %q) RCPT %q (want %q)", mails[0], wantMail, rcpts[0], wantRcpt)
			}
			if tr := srv.got.transcript(); dsn && !strings.Contains(tr, "ORCPT=rfc822;B+2Bx+3Dy@example.com") {
				t.Errorf("ORCPT not xtext-encoded on the wire:\n%s", tr)
			}
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	srv := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May; o.MaxConns = 2 })
	for i := 0; i < 5; i++ {
		out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
		if err != nil || out.Recipients[0].Status != Delivered {
			t.Fatalf("Deliver %d: %v %+v", i, err, out)
		}
	}
	if _, mails, _, _, conns := srv.got.snapshot(); conns != 1 || len(mails) != 5 {
		t.Errorf("5 messages used %d connections (%d MAIL)", conns, len(mails))
	}
	if tr := srv.got.transcript(); strings.Count(tr, "RSET") != 4 {
		t.Errorf("RSET count %d", strings.Count(tr, "RSET"))
	}
	// Concurrent deliveries stay within MaxConns.
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if _, _, _, _, conns := srv.got.snapshot(); conns > 2 {
		t.Errorf("%d connections, MaxConns 2", conns)
	}
}

// CloseIdle (after a credentials reload) makes the next delivery open a
// new connection; the client stays usable.
func TestCloseIdle(t *testing.T) {
	srv := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May })
	deliver := func() {
		t.Helper()
		if out, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil || out.Recipients[0].Status != Delivered {
			t.Fatalf("Deliver: %v %+v", err, out)
		}
	}
	deliver()
	deliver()
	if _, _, _, _, conns := srv.got.snapshot(); conns != 1 {
		t.Fatalf("two messages used %d connections before CloseIdle, want 1", conns)
	}
	c.CloseIdle()
	deliver()
	if _, _, _, _, conns := srv.got.snapshot(); conns != 2 {
		t.Errorf("%d connections after CloseIdle, want 2", conns)
	}
	if tr := srv.got.transcript(); !strings.Contains(tr, "QUIT") {
		t.Errorf("the idle session was not ended with QUIT:\n%s", tr)
	}
}

func TestIdleConnectionsClosed(t *testing.T) {
	srv := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May; o.IdleTimeout = 50 * time.Millisecond })
	if _, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.got.transcript(), "QUIT") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(srv.got.transcript(), "QUIT") {
		t.Error("idle connection not closed with QUIT")
	}
	if _, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, conns := srv.got.snapshot(); conns != 2 {
		t.Errorf("conns %d, want 2 (the idle one was closed)", conns)
	}
}

// TestServerClosedIdle: the relay closed a pooled connection; the RSET
// probe fails and a new connection is made, the message is delivered.
func TestServerClosedIdle(t *testing.T) {
	srv := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May })
	if _, err := c.Deliver(context.Background(), testMessage("b@example.com")); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.pools {
		p.mu.Lock()
		for _, s := range p.idle {
			s.c.raw.Conn.Close()
		}
		p.mu.Unlock()
	}
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
}

func Test8BitAndUTF8(t *testing.T) {
	srv := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May })
	m := testMessage("b@example.com")
	m.Body8Bit = true
	if out, err := c.Deliver(context.Background(), m); err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
	m = testMessage("bö@example.com")
	m.SMTPUTF8 = true
	if out, err := c.Deliver(context.Background(), m); err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("Deliver: %v %+v", err, out)
	}
	_, mails, _, _, _ := srv.got.snapshot()
	if !strings.Contains(mails[0], "BODY=8BITMIME") || !strings.Contains(mails[1], "SMTPUTF8") {
		t.Errorf("mails %q", mails)
	}
}

// TestNo8BitMIME: relays without 8BITMIME or SMTPUTF8 (raw script).
func TestNo8BitMIME(t *testing.T) {
	srv := testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("220 relay.test ESMTP\r\n")
		c.Play()
	})
	c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None })
	cases := []struct {
		name string
		mod  func(m *Message)
		want Status
		enh  string
	}{
		{"8bit: converted to 7-bit MIME, sent", func(m *Message) { m.Body8Bit = true }, Delivered, "2.0.0"},
		{"utf8 address", func(m *Message) { m.Recipients[0].Addr = "bö@example.com"; m.SMTPUTF8 = true }, Bounced, "5.6.7"},
		{"utf8 header", func(m *Message) {
			m.SMTPUTF8 = true
			m.Body = func() (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader("Subject: Grüße\r\n\r\nx\r\n")), nil
			}
		}, Bounced, "5.6.7"},
		{"utf8 flag, ascii only", func(m *Message) { m.SMTPUTF8 = true }, Delivered, "2.0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := testMessage("b@example.com")
			tc.mod(m)
			out, err := c.Deliver(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			if r := out.Recipients[0]; r.Status != tc.want || r.Enhanced != tc.enh {
				t.Errorf("outcome %+v", r)
			}
		})
	}
}

func TestImplicitTLSAndPins(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, implicit: true, users: map[string]string{"user@example.org": "s3cret"}})
	pin := SPKIPin(cert.Leaf)
	cases := []struct {
		name string
		mod  func(o *Options)
		ok   bool
	}{
		{"verify", func(o *Options) {}, true},
		{"pin ok", func(o *Options) { o.Pins = []string{"sha256//" + pin} }, true},
		{"pin mismatch", func(o *Options) { o.Pins = []string{strings.Repeat("A", 43) + "="} }, false},
		{"encrypt, untrusted, pinned", func(o *Options) { o.RootCAs = newCA(t).pool; o.TLS = Encrypt; o.Pins = []string{pin} }, true},
		{"encrypt, untrusted, no pin: no AUTH", func(o *Options) { o.RootCAs = newCA(t).pool; o.TLS = Encrypt }, false},
		{"encrypt, untrusted, allowed", func(o *Options) { o.RootCAs = newCA(t).pool; o.TLS = Encrypt; o.AllowUnverifiedAuth = true }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, relayFor(srv), ca, func(o *Options) {
				o.Credentials = userCred
				o.Implicit = ImplicitAlways
				tc.mod(o)
			})
			out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			if tc.ok != (err == nil) || tc.ok != (out.Recipients[0].Status == Delivered) {
				t.Errorf("Deliver: %v %+v", err, out.Recipients[0])
			}
		})
	}
}

// TestSenderRelay: a credentials map that names a relay for a sender.
type senderRelayCreds struct {
	credMap
	relay string
}

func (s senderRelayCreds) RelayHost(sender string) (string, bool) {
	if sender == "special@example.org" {
		return s.relay, true
	}
	return "", false
}

func TestSenderRelay(t *testing.T) {
	a := startServer(t, serverConfig{})
	b := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", a.port), nil, func(o *Options) {
		o.TLS = May
		o.Credentials = senderRelayCreds{credMap{}, fmt.Sprintf("[127.0.0.1]:%d", b.port)}
	})
	m := testMessage("x@example.com")
	m.From = "special@example.org"
	if _, err := c.Deliver(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deliver(context.Background(), testMessage("x@example.com")); err != nil {
		t.Fatal(err)
	}
	_, ma, _, _, _ := a.got.snapshot()
	_, mb, _, _, _ := b.got.snapshot()
	if len(ma) != 1 || len(mb) != 1 || !strings.HasPrefix(mb[0], "special@") {
		t.Errorf("relay a got %q, relay b got %q", ma, mb)
	}
}

// TestReplyBounds: a relay that sends an endless reply is cut off (I2).
func TestReplyBounds(t *testing.T) {
	srv := testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("220-relay.test\r\n")
		for i := 0; i < 1000; i++ {
			c.Send("220-more\r\n")
		}
		c.Send("220 done\r\n")
	})
	c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None })
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err == nil || !strings.Contains(out.Recipients[0].Text, "size limits") {
		t.Errorf("Deliver: %v %+v", err, out.Recipients[0])
	}
}

func TestDeadline(t *testing.T) {
	srv := testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("220 relay.test\r\n")
		c.Cmd()
		time.Sleep(3 * time.Second) // never answers EHLO in time
	})
	c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None; o.Deadline = 300 * time.Millisecond })
	start := time.Now()
	out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
	if err == nil || out.Recipients[0].Status != Deferred {
		t.Errorf("Deliver: %v %+v", err, out.Recipients[0])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("deadline not applied: %v", d)
	}
}

// TestProtocolViolations: positive replies where others were due never
// count as delivered.
func TestProtocolViolations(t *testing.T) {
	cases := []struct{ name, verb, reply string }{
		{"250 to DATA", "DATA", "250 2.0.0 fine\r\n"},
		{"354 to MAIL", "MAIL", "354 go on\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := testlib.ServeSteps(t, testlib.Step{On: tc.verb, Reply: tc.reply})
			c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None })
			out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			if err == nil || out.Recipients[0].Status != Deferred || !strings.Contains(out.Recipients[0].Text, "unexpected reply") {
				t.Errorf("Deliver: %v %+v", err, out.Recipients[0])
			}
		})
	}
}

func TestBadAddresses(t *testing.T) {
	srv := startServer(t, serverConfig{})
	c := newTestClient(t, fmt.Sprintf("[127.0.0.1]:%d", srv.port), nil, func(o *Options) { o.TLS = May })
	m := testMessage("ok@example.com", "evil@example.com>\r\nRSET", "x@y> NOTIFY=NEVER", "")
	out, err := c.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if out.Recipients[0].Status != Delivered {
		t.Errorf("good recipient: %+v", out.Recipients[0])
	}
	for _, r := range out.Recipients[1:] {
		if r.Status != Bounced || r.Enhanced != "5.1.3" {
			t.Errorf("bad recipient %q: %+v", r.Addr, r)
		}
	}
	m = testMessage("ok@example.com")
	m.From = "a@b\r\nDATA"
	out, err = c.Deliver(context.Background(), m)
	if err != nil || out.Recipients[0].Status != Bounced || out.Recipients[0].Enhanced != "5.1.7" {
		t.Errorf("bad sender: %v %+v", err, out.Recipients[0])
	}
	if _, _, rcpts, _, _ := srv.got.snapshot(); len(rcpts) != 1 {
		t.Errorf("relay saw %q", rcpts)
	}
}

// TestPoolAccounting: concurrent deliveries to a relay that drops some
// connections in DATA leak no connection slots and never exceed MaxConns.
func TestPoolAccounting(t *testing.T) {
	var mu sync.Mutex
	n, live, maxLive := 0, 0, 0
	srv := testlib.Serve(t, func(c *testlib.Conn) {
		mu.Lock()
		n++
		drop := n%3 == 0
		live++
		if live > maxLive {
			maxLive = live
		}
		mu.Unlock()
		defer func() { mu.Lock(); live--; mu.Unlock() }()
		c.Send("220 relay.test ESMTP")
		c.Play(testlib.Step{On: "EHLO", Reply: "250-relay.test\r\n250 PIPELINING"},
			testlib.Step{On: "DATA", Reply: "354 go", Hangup: drop})
	})
	c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None; o.MaxConns = 3 })
	var wg sync.WaitGroup
	var delivered, deferred int
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _ := c.Deliver(context.Background(), testMessage("b@example.com"))
			mu.Lock()
			if out.Recipients[0].Status == Delivered {
				delivered++
			} else {
				deferred++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	p := c.pools[rawRelay(srv)]
	p.mu.Lock()
	liveSlots, idle := p.live, len(p.idle)
	p.mu.Unlock()
	if liveSlots != idle || liveSlots > 3 {
		t.Errorf("pool: %d slots held, %d idle connections (max 3)", liveSlots, idle)
	}
	mu.Lock()
	defer mu.Unlock()
	// maxLive (server side) may briefly count a connection the client has
	// already closed, so it is logged, not asserted; the pool's own count
	// above is exact.
	t.Logf("relay saw at most %d concurrent connections", maxLive)
	if delivered+deferred != 30 || delivered == 0 || deferred == 0 {
		t.Errorf("delivered %d deferred %d", delivered, deferred)
	}
}

// TestPartialThenDrop: 452 splits the recipients, the first transaction
// delivers, the second loses the connection. The delivered recipients are
// reported Delivered with a nil error (the contract: an error means
// nothing was delivered), the rest Deferred.
func TestPartialThenDrop(t *testing.T) {
	var mu sync.Mutex
	tx := 0
	srv := testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("220 relay.test ESMTP")
		perTx := 0
		c.Play(testlib.Step{On: "MAIL", Func: func(string) string {
			mu.Lock()
			defer mu.Unlock()
			if tx++; tx == 2 {
				return testlib.HangUp // drop at the second MAIL
			}
			perTx = 0
			return "250 ok"
		}}, testlib.Step{On: "RCPT", Func: func(string) string {
			if perTx++; perTx > 1 {
				return "452 4.5.3 too many recipients"
			}
			return "250 ok"
		}})
	})
	c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None })
	out, err := c.Deliver(context.Background(), testMessage("r1@x", "r2@x"))
	if err != nil {
		t.Errorf("err = %v, want nil (r1 was delivered)", err)
	}
	if out.Recipients[0].Status != Delivered || out.Recipients[1].Status != Deferred {
		t.Errorf("outcome %+v", out.Recipients)
	}
}
