package listener

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/submit"
)

// TestSmuggling sends the SMTP smuggling payloads of CVE-2023-51764/5/6:
// a fake end of data made of bare LF or bare CR, followed by a second
// transaction. Exactly one message may result, holding the whole
// payload as content, and exactly one reply may follow the data.
func TestSmuggling(t *testing.T) {
	ends := []struct{ name, fake string }{
		{"lf dot lf", "\n.\n"},
		{"lf dot crlf", "\n.\r\n"},
		{"crlf dot lf", "\r\n.\n"},
		{"cr dot cr", "\r.\r"},
		{"cr dot crlf", "\r.\r\n"},
		{"crlf dot cr", "\r\n.\r"},
		{"crlf dot cr lf-less", "\r\n.\rX"},
		{"lf dot cr lf", "\n.\r\n"},
	}
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			k := &sink{}
			_, addr := startTCP(t, Options{Submit: k.Submit})
			r := dialRaw(t, "tcp", addr)
			r.startData()
			r.send("Subject: first\r\n\r\nhello" + e.fake +
				"MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n" +
				"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
			r.expect("250 2.0.0 Ok: queued as TESTID000001")
			// The next line the server sends answers our NOOP: no reply
			// to a smuggled command came in between.
			r.cmd("NOOP", "250 2.0.0 I have successfully done nothing")
			msgs := k.all()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			if len(m.env.Recipients) != 1 || m.env.Recipients[0].Addr != "b@example.org" || m.env.From != "a@example.com" {
				t.Errorf("envelope %+v", m.env)
			}
			if !strings.Contains(m.body, "RCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n") {
				t.Errorf("payload not kept as content: %q", m.body)
			}
			for i := 0; i < len(m.body); i++ {
				if c := m.body[i]; c == '\n' && (i == 0 || m.body[i-1] != '\r') || c == '\r' && (i+1 == len(m.body) || m.body[i+1] != '\n') {
					t.Fatalf("bare CR or LF at %d in stored body %q", i, m.body)
				}
			}
		})
	}
}

func TestHygiene(t *testing.T) {
	tests := []struct {
		name, data, reply, body string
	}{
		{"bare lf", "Subject: x\n\nline1\nline2\r\n.\r\n", "250", "Subject: x\r\n\r\nline1\r\nline2\r\n"},
		{"bare lf before end", "Subject: x\r\n\r\nline1\n\r\n.\r\n", "250", "Subject: x\r\n\r\nline1\r\n\r\n"},
		{"stray cr", "Subject: x\r\n\r\na\rb\r\n.\r\n", "250", "Subject: x\r\n\r\na b\r\n"},
		{"dot stuffing removed", "Subject: x\r\n\r\n..leading dot\r\n.\r\n", "250", "Subject: x\r\n\r\n.leading dot\r\n"},
		{"nul removed", "Subject: x\r\n\r\na\x00b\r\n.\r\n", "250", "Subject: x\r\n\r\nab\r\n"},
		{"nul in header removed", "Subj\x00ect: x\r\n\r\nb\r\n.\r\n", "250", "Subject: x\r\n\r\nb\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Complete headers: nothing is added (completion: complete_test.go).
			tt.data = fullHeader + tt.data
			if tt.body != "" {
				tt.body = fullHeader + tt.body
			}
			k := &sink{}
			_, addr := startTCP(t, Options{Submit: k.Submit})
			r := dialRaw(t, "tcp", addr)
			r.startData()
			r.send(tt.data)
			r.expect(tt.reply)
			r.cmd("NOOP", "250")
			msgs := k.all()
			if tt.body == "" {
				if len(msgs) != 0 {
					t.Fatalf("refused message stored: %q", msgs[0].body)
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			if _, after, _ := strings.Cut(msgs[0].body, "\r\n\t"); !strings.HasSuffix(after, "\r\n"+tt.body) {
				t.Errorf("body %q, want ...%q", msgs[0].body, tt.body)
			}
		})
	}
}

func TestHeaderAndLineLimits(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, MaxHeaderSize: 1000, MaxLineLength: 1000})
	r := dialRaw(t, "tcp", addr)
	r.startData()
	// 12 header lines of 100 octets: over the 1000-octet cap (the Received
	// header the listener adds is not counted).
	r.send(strings.Repeat("X-Pad: "+strings.Repeat("p", 91)+"\r\n", 12) + "\r\nbody\r\n.\r\n")
	r.expect("552 5.3.4 Message header size exceeds limit")
	// A long body is fine when its lines are short.
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	r.cmd("DATA", "354")
	r.send("Subject: ok\r\n\r\n" + strings.Repeat(strings.Repeat("b", 98)+"\r\n", 50) + ".\r\n")
	r.expect("250")
	// A line over the limit ends the connection.
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	r.cmd("DATA", "354")
	r.send("Subject: long\r\n\r\n" + strings.Repeat("y", 1500) + "\r\n.\r\n")
	r.expect("500 5.4.0")
	if msgs := k.all(); len(msgs) != 1 || !strings.Contains(msgs[0].body, "Subject: ok") {
		t.Errorf("stored %d messages", len(msgs))
	}
}

// TestReplyAfterSubmit: the 250 comes only after Submit has returned, and
// a failing Submit gives 451 4.3.0 (452 4.3.1 when the spool is full).
func TestReplyAfterSubmit(t *testing.T) {
	k := &sink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	_, addr := startTCP(t, Options{Submit: k.Submit})
	r := dialRaw(t, "tcp", addr)
	r.startData()
	r.send("Subject: x\r\n\r\nx\r\n.\r\n")
	<-k.entered // Submit has read the whole body and is blocked
	r.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, err := r.br.ReadByte(); err == nil {
		t.Fatalf("reply byte %q sent while Submit had not returned", b)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read: %v", err)
	}
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	close(k.gate)
	r.expect("250 2.0.0 Ok: queued as TESTID000001")

	for _, tt := range []struct {
		err   error
		reply string
	}{
		{fmt.Errorf("spool commit: %w", errors.New("input/output error")), "451 4.3.0"},
		{fmt.Errorf("spool: %w", submit.ErrLocked), "451 4.3.0"},
		{fmt.Errorf("spool: %w", submit.ErrFull), "452 4.3.1"},
	} {
		k2 := &sink{fail: tt.err}
		_, addr2 := startTCP(t, Options{Submit: k2.Submit})
		r := dialRaw(t, "tcp", addr2)
		r.startData()
		r.send("Subject: x\r\n\r\nx\r\n.\r\n")
		r.expect(tt.reply)
		if len(k2.all()) != 0 {
			t.Errorf("%v: message stored", tt.err)
		}
	}
}

// partialSubmit returns success without reading the whole body: the
// listener must not acknowledge that.
func TestSubmitMustReadBody(t *testing.T) {
	short := func(ctx context.Context, env submit.Envelope, body interface{ Read([]byte) (int, error) }) (submit.ID, error) {
		b := make([]byte, 10)
		body.Read(b)
		return "SHORT", nil
	}
	_, addr := startTCP(t, Options{Submit: func(ctx context.Context, env submit.Envelope, body io_Reader) (submit.ID, error) {
		return short(ctx, env, body)
	}})
	r := dialRaw(t, "tcp", addr)
	r.startData()
	r.send("Subject: x\r\n\r\n" + strings.Repeat("x", 100000) + "\r\n.\r\n")
	r.expect("451 4.3.0")
}

func TestConnectionLimit(t *testing.T) {
	_, addr := startTCP(t, Options{Submit: (&sink{}).Submit, MaxConnections: 2})
	a := dialRaw(t, "tcp", addr)
	b := dialRaw(t, "tcp", addr)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "421 4.3.2") {
		t.Fatalf("third connection got %q", got)
	}
	a.cmd("QUIT", "221")
	b.cmd("NOOP", "250")
	// A slot is free again once the first session has ended.
	var d *raw
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(buf)
		if strings.HasPrefix(string(buf[:n]), "220") {
			c.Close()
			d = &raw{}
			break
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if d == nil {
		t.Fatal("no slot after a session ended")
	}
}

func TestTimeouts(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, Timeout: time.Second, DataTimeout: time.Second})
	idle := dialRaw(t, "tcp", addr)
	idle.cmd("EHLO c.test", "250")
	idle.expect("421 4.4.2")

	r := dialRaw(t, "tcp", addr)
	r.startData()
	r.send("Subject: x\r\n\r\npart")
	r.expect("421 4.4.2")
	if len(k.all()) != 0 {
		t.Error("stalled message stored")
	}
}

// TestDataTimeoutPerRead: a message that keeps moving is not cut off by
// the data timeout even when it takes longer in total.
func TestDataTimeoutPerRead(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, Timeout: 2 * time.Second, DataTimeout: 2 * time.Second})
	r := dialRaw(t, "tcp", addr)
	r.startData()
	r.send("Subject: slow\r\n\r\n")
	for i := 0; i < 6; i++ {
		time.Sleep(500 * time.Millisecond)
		r.send(fmt.Sprintf("line %d\r\n", i))
	}
	r.send(".\r\n")
	r.expect("250")
	if len(k.all()) != 1 {
		t.Error("slow message not stored")
	}
}

func TestShutdown(t *testing.T) {
	k := &sink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	srv, addr := startTCP(t, Options{Submit: k.Submit})
	idle := dialRaw(t, "tcp", addr)
	idle.cmd("EHLO c.test", "250")
	busy := dialRaw(t, "tcp", addr)
	busy.cmd("EHLO c.test", "250")
	busy.cmd("MAIL FROM:<a@example.com>", "250")
	busy.cmd("RCPT TO:<b@example.org>", "250")
	busy.cmd("DATA", "354")
	busy.send("Subject: x\r\n\r\n")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	idle.expect("421")
	// New connections are refused.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if i > 100 {
			t.Fatal("still accepting after Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The message in progress completes and is acknowledged.
	busy.send("still coming\r\n.\r\n")
	<-k.entered
	close(k.gate)
	busy.expect("250 2.0.0 Ok: queued as")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if len(k.all()) != 1 {
		t.Fatal("message lost in shutdown")
	}
}

// TestCloseDuringBDAT: a shutdown whose deadline ends while a client is
// between two BDAT chunks closes that session without acknowledging or
// storing the message. go-smtp's own Server.Close touches the session's
// chunk pipe from the closing goroutine without a lock (a data race that
// go test -race reports, up to v0.26.0), so the listener ends each session
// by closing its socket instead; this test fails under -race otherwise.
func TestCloseDuringBDAT(t *testing.T) {
	k := &sink{}
	srv, addr := startTCP(t, Options{Submit: k.Submit})
	r := chunkingTransaction(t, addr)
	part := fullHeader + "Subject: cut\r\n\r\nfirst chunk\r\n"
	r.send(fmt.Sprintf("BDAT %d\r\n%s", len(part), part))
	r.expect("250 2.0.0 Continue")
	r.send("BDAT 1000 LAST\r\nonly a part of the last chunk")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a message in progress: %v, want the deadline", err)
	}
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.br.ReadString('\n'); err == nil && !strings.HasPrefix(line, "4") {
		t.Fatalf("the cut message was answered %q", line)
	}
	if msgs := k.all(); len(msgs) != 0 {
		t.Fatalf("a message cut by the shutdown was stored: %+v", msgs)
	}
}

func TestCheckBind(t *testing.T) {
	srvNone, err := New(Options{Submit: (&sink{}).Submit})
	if err != nil {
		t.Fatal(err)
	}
	srvNets, _ := New(Options{Submit: (&sink{}).Submit, MyNetworks: []netipPrefix{mustPrefix("192.0.2.0/24")}})
	srvAuth, _ := New(Options{Submit: (&sink{}).Submit, Users: usersFile(t, "u", "p")})
	tests := []struct {
		srv  *Server
		ip   string
		fail bool
	}{
		{srvNone, "127.0.0.1", false},
		{srvNone, "127.0.0.53", false},
		{srvNone, "::1", false},
		{srvNone, "::ffff:127.0.0.1", false},
		{srvNone, "0.0.0.0", true},
		{srvNone, "::", true},
		{srvNone, "192.0.2.1", true},
		{srvNets, "0.0.0.0", false},
		{srvAuth, "192.0.2.1", false},
	}
	for _, tt := range tests {
		err := tt.srv.CheckBind(&net.TCPAddr{IP: net.ParseIP(tt.ip), Port: 25})
		if tt.fail != (err != nil) || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%s: err %v, fail %v", tt.ip, err, tt.fail)
		}
	}
	if _, err := New(Options{}); !errors.Is(err, ErrConfig) {
		t.Errorf("no Submit: %v", err)
	}
	if _, err := New(Options{Submit: (&sink{}).Submit, Users: "/nonexistent/users"}); !errors.Is(err, ErrConfig) {
		t.Errorf("missing users file: %v", err)
	}
	if _, err := New(Options{Submit: (&sink{}).Submit, MyNetworks: []netipPrefix{mustPrefix("0.0.0.0/0")}}); !errors.Is(err, ErrConfig) {
		t.Errorf("0.0.0.0/0: %v", err)
	}
}

// selfSigned returns a TLS server config and a client config trusting it.
func selfSigned(t testing.TB) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay.test"},
		DNSNames:     []string{"relay.test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.200.45.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "relay.test"}
}

func TestStartTLS(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, TLSConfig: srvTLS, Users: usersFile(t, "alice", "pw"), MyNetworks: []netipPrefix{mustPrefix("10.0.0.0/8")}})
	c, err := smtp.DialStartTLS(addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "pw")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("a@example.com", []string{"b@example.org"}, strings.NewReader("Subject: tls\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	msgs := k.all()
	if len(msgs) != 1 || !strings.Contains(msgs[0].body, "with ESMTPSA;") {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestUnixSocket(t *testing.T) {
	path := t.TempDir() + "/run/submit.sock"
	for _, tt := range []struct {
		name    string
		trusted bool
		policy  string
		from    string
		mail    string
		warning string
	}{
		{"trusted", true, "warn", "someone@example.com", "250", ""},
		{"untrusted own address", false, "warn", rootName(t) + "@relay.test", "250", ""},
		{"untrusted warn", false, "warn", "someone@example.com", "250", "X-Authentication-Warning: relay.test: " + rootName(t) + " set sender to someone@example.com using -f\r\n"},
		{"untrusted refuse", false, "refuse", "someone@example.com", "553 5.7.1", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := &sink{}
			srv, err := New(Options{Submit: k.Submit, Hostname: "relay.test", Log: testLog(t), ForeignSender: tt.policy,
				TrustedUID: func(int) bool { return tt.trusted }})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := ListenUnix(path, 0o666, -1)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o666 || fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("socket mode %v, %v", fi.Mode(), err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.ServeUnix(ln) }()
			defer func() {
				srv.Close()
				if err := <-done; err != nil {
					t.Error(err)
				}
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket left behind: %v", err)
				}
			}()
			r := dialRaw(t, "unix", path)
			ehlo := r.cmd("EHLO localhost", "250")
			for _, ext := range []string{"DSN", "SMTPUTF8", "8BITMIME", "SIZE 10240000"} {
				if !strings.Contains(ehlo, ext) {
					t.Errorf("EHLO lacks %s: %q", ext, ehlo)
				}
			}
			if strings.Contains(ehlo, "AUTH") || strings.Contains(ehlo, "STARTTLS") {
				t.Errorf("socket offers AUTH or STARTTLS: %q", ehlo)
			}
			r.cmd("MAIL FROM:<"+tt.from+"> BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=abc+2Bdef", tt.mail)
			if tt.mail != "250" {
				return
			}
			r.cmd("RCPT TO:<b@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+2Bx@example.org", "250")
			r.cmd("DATA", "354")
			r.send(fullHeader + "Subject: local\r\n\r\nhi\r\n.\r\n")
			r.expect("250 2.0.0 Ok: queued as TESTID000001")
			m := k.all()[0]
			if m.env.Origin != fmt.Sprintf("uid=%d", os.Getuid()) {
				t.Errorf("origin %q", m.env.Origin)
			}
			if !m.env.Body8Bit || !m.env.SMTPUTF8 || m.env.Ret != "FULL" || m.env.EnvID != "abc+def" {
				t.Errorf("envelope %+v", m.env)
			}
			if rc := m.env.Recipients[0]; rc.Notify != "SUCCESS,DELAY" || rc.ORcpt != "RFC822;b+x@example.org" {
				t.Errorf("recipient %+v", rc)
			}
			if want := tt.warning + fullHeader + "Subject: local\r\n\r\nhi\r\n"; m.body != want {
				t.Errorf("body %q, want %q", m.body, want)
			}
		})
	}
}

// TestUnixNoRecipientLimit: the socket carries sendmail(1) submissions,
// which have no recipient limit; MaxRecipients applies to TCP clients only.
func TestUnixNoRecipientLimit(t *testing.T) {
	path := t.TempDir() + "/submit.sock"
	k := &sink{}
	srv, err := New(Options{Submit: k.Submit, Hostname: "relay.test", Log: testLog(t), MaxRecipients: 3,
		TrustedUID: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenUnix(path, 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ln) }()
	defer func() {
		srv.Close()
		<-done
	}()
	r := dialRaw(t, "unix", path)
	if ehlo := r.cmd("EHLO localhost", "250"); strings.Contains(ehlo, "RCPTMAX") {
		t.Errorf("socket announces a recipient limit: %q", ehlo)
	}
	r.cmd("MAIL FROM:<a@example.com>", "250")
	const n = 1500
	for i := 0; i < n; i++ {
		r.cmd(fmt.Sprintf("RCPT TO:<r%d@example.org>", i), "250")
	}
	r.cmd("DATA", "354")
	r.send("Subject: many\r\n\r\nhi\r\n.\r\n")
	r.expect("250 2.0.0 Ok: queued as")
	if got := len(k.all()[0].env.Recipients); got != n {
		t.Errorf("stored %d recipients, want %d", got, n)
	}
}

func rootName(t testing.TB) string {
	u, err := userLookupID(os.Getuid())
	if err != nil {
		t.Skipf("cannot look up the test's own user: %v", err)
	}
	return u
}

// chunkingTransaction connects to addr, checks that CHUNKING is offered
// and opens a transaction (MAIL, RCPT) ready for BDAT.
func chunkingTransaction(t *testing.T, addr string) *raw {
	t.Helper()
	r := dialRaw(t, "tcp", addr)
	if ehlo := r.cmd("EHLO c.test", "250"); !strings.Contains(ehlo, "CHUNKING") {
		t.Skipf("go-smtp no longer offers CHUNKING: %q", ehlo)
	}
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	return r
}

// TestBDAT: CHUNKING (RFC 3030), which go-smtp offers, goes through the
// same normalisation, limits and spool path as DATA.
func TestBDAT(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, MaxMessageSize: 200})
	r := chunkingTransaction(t, addr)
	part1 := fullHeader + "Subject: chunks\n\nline\r.\r\n"
	r.send(fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1))
	r.expect("250 2.0.0 Continue")
	part2 := "end\r\n"
	r.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2))
	r.expect("250 2.0.0 Ok: queued as TESTID000001")
	msgs := k.all()
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0].body, "\r\nSubject: chunks\r\n\r\nline .\r\nend\r\n") {
		t.Fatalf("messages %+v", msgs)
	}
	// Over SIZE: refused, nothing stored.
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	big := strings.Repeat("x", 300)
	r.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(big), big))
	r.expect("552 5.3.4")
	// NUL: removed, as on every door (submit.Normalizer).
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	r.send("BDAT 5 LAST\r\na\x00b\r\n")
	r.expect("250 2.0.0")
	r.cmd("NOOP", "250")
	if msgs := k.all(); len(msgs) != 2 || !strings.HasSuffix(msgs[1].body, "\r\nab\r\n") {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestReadHeader(t *testing.T) {
	long := strings.Repeat("a", 4094)
	tests := []struct{ in, hdr, rest string }{
		{"A: b\r\nC: d\r\n\r\nbody\r\n", "A: b\r\nC: d\r\n\r\n", "body\r\n"},
		{"A: " + long + "\r\n\r\nbody\r\n", "A: " + long + "\r\n\r\n", "body\r\n"},
		{"X: " + long[:4093] + "\r\nY: z\r\n\r\nb", "X: " + long[:4093] + "\r\nY: z\r\n\r\n", "b"},
		{"A: b\r\n", "A: b\r\n", ""},
		{"\r\nbody", "\r\n", "body"},
	}
	for _, tt := range tests {
		hdr, rest := readHeader(newNormalizer(strings.NewReader(tt.in), 1<<20))
		r, _ := io.ReadAll(rest)
		if string(hdr) != tt.hdr || string(r) != tt.rest {
			t.Errorf("%.20q: header %d octets, rest %q", tt.in, len(hdr), r)
		}
	}
}

func TestHasWarningFor(t *testing.T) {
	ours := "X-Authentication-Warning: relay.test: alice set sender to boss@example.com using -f"
	tests := []struct {
		hdr  string
		want bool
	}{
		{"Subject: x\r\n\r\n", false},
		{"X-Authentication-Warning: otherhost: alice set sender to boss using -f\r\nSubject: x\r\n\r\n", true},
		{"x-authentication-warning: h:\r\n alice set sender to boss using -f\r\n\r\n", true},
		{"X-Authentication-Warning: h: mallory set sender to boss using -f\r\n\r\n", false},
		{"X-Authentication-Warning: h: alice did something\r\n\r\n", false},
	}
	for _, tt := range tests {
		if got := hasWarningFor([]byte(tt.hdr), ours); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.hdr, got, tt.want)
		}
	}
}

// TestUnixWarningNotDoubled: a message that already carries the warning
// for the same user (the sendmail command adds one) does not get a second.
func TestUnixWarningNotDoubled(t *testing.T) {
	path := t.TempDir() + "/submit.sock"
	k := &sink{}
	srv, err := New(Options{Submit: k.Submit, Hostname: "relay.test", Domain: "example.net", Log: testLog(t), TrustedUID: func(int) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenUnix(path, 0o666, -1)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUnix(ln)
	defer srv.Close()
	me := rootName(t)
	send := func(from, data string) string {
		r := dialRaw(t, "unix", path)
		r.cmd("EHLO localhost", "250")
		r.cmd("MAIL FROM:<"+from+">", "250")
		r.cmd("RCPT TO:<b@example.org>", "250")
		r.cmd("DATA", "354")
		r.send(data + ".\r\n")
		r.expect("250")
		all := k.all()
		return all[len(all)-1].body
	}
	cli := "X-Authentication-Warning: cli.host: " + me + " set sender to boss using -f\r\n" + fullHeader + "Subject: x\r\n\r\nb\r\n"
	if got := send("boss@example.com", cli); got != cli {
		t.Errorf("warning doubled or changed: %q", got)
	}
	forged := "X-Authentication-Warning: cli.host: someone-else set sender to boss using -f\r\n" + fullHeader + "Subject: x\r\n\r\nb\r\n"
	want := "X-Authentication-Warning: relay.test: " + me + " set sender to boss@example.com using -f\r\n" + forged
	if got := send("boss@example.com", forged); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// name@Domain is the user's own address: no warning.
	plain := fullHeader + "Subject: own\r\n\r\nb\r\n"
	if got := send(me+"@example.net", plain); got != plain {
		t.Errorf("own address warned: %q", got)
	}
}

func TestCommandLineTooLong(t *testing.T) {
	_, addr := startTCP(t, Options{Submit: (&sink{}).Submit, MaxLineLength: 1000})
	r := dialRaw(t, "tcp", addr)
	r.cmd("EHLO c.test", "250")
	r.cmd("MAIL FROM:<a@example.com> "+strings.Repeat("X", 1200), "500 5.4.0")
	if _, err := r.br.ReadString('\n'); err == nil {
		t.Error("connection still open after an over-long command")
	}
}

// TestCloseMidData: Close while a message is being received: it is not
// acknowledged and not stored.
func TestCloseMidData(t *testing.T) {
	k := &sink{}
	srv, addr := startTCP(t, Options{Submit: k.Submit})
	r := dialRaw(t, "tcp", addr)
	r.startData()
	r.send("Subject: cut\r\n\r\npartial")
	srv.Close()
	buf := make([]byte, 512)
	n, _ := r.c.Read(buf)
	if strings.Contains(string(buf[:n]), "250") {
		t.Fatalf("acknowledged after Close: %q", buf[:n])
	}
	if len(k.all()) != 0 {
		t.Fatal("cut message stored")
	}
}

func TestTooManyRejects(t *testing.T) {
	_, addr := startTCP(t, Options{Submit: (&sink{}).Submit, MyNetworks: []netipPrefix{mustPrefix("10.0.0.0/8")}})
	r := dialRaw(t, "tcp", addr)
	r.cmd("EHLO c.test", "250")
	for i := 1; i < maxRejects; i++ {
		r.cmd("MAIL FROM:<a@example.com>", "554 5.7.1")
	}
	r.cmd("MAIL FROM:<a@example.com>", "421 4.7.0")
	if _, err := r.br.ReadString('\n'); err == nil {
		t.Error("connection still open")
	}
}
