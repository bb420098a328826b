package submit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/spool"
)

// got is what the test server saw in one transaction.
type got struct {
	from  string
	mail  smtp.MailOptions
	rcpts []string
	ropts []smtp.RcptOptions
	body  []byte
}

// testServer is a go-smtp server on a unix socket in a temp dir, standing
// in for the listener's submission socket.
type testServer struct {
	path string
	srv  *smtp.Server

	mu   sync.Mutex
	seen []got

	// behaviour
	mailErr  error
	rcptErr  error
	refuse   string      // a recipient refused with 550 5.1.1
	noPipe   atomic.Bool // hide PIPELINING from the EHLO reply
	dataErr  error       // returned from Data; nil means "250 2.0.0 Ok: queued as <id>"
	id       string
	dropData bool          // close the connection in the middle of DATA
	hang     time.Duration // sleep before answering the final dot
}

func newTestServer(t *testing.T, configure func(*smtp.Server)) *testServer {
	t.Helper()
	ts := &testServer{id: "0123456789AB"}
	dir, err := os.MkdirTemp("", "sub")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ts.path = filepath.Join(dir, "s.sock")
	ts.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &testSession{ts: ts, conn: c}, nil
	}))
	ts.srv.Domain = "relayq.test"
	ts.srv.EnableSMTPUTF8 = true
	ts.srv.EnableDSN = true
	ts.srv.AllowInsecureAuth = true
	if configure != nil {
		configure(ts.srv)
	}
	ln, err := net.Listen("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.Serve(noPipeListener{ln, ts})
	t.Cleanup(func() { ts.srv.Close() })
	return ts
}

func (ts *testServer) last(t *testing.T) got {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.seen) == 0 {
		t.Fatal("server saw no message")
	}
	return ts.seen[len(ts.seen)-1]
}

type testSession struct {
	ts   *testServer
	conn *smtp.Conn
	cur  got
}

func (s *testSession) Reset()        { s.cur = got{} }
func (s *testSession) Logout() error { return nil }
func (s *testSession) Mail(from string, o *smtp.MailOptions) error {
	if s.ts.mailErr != nil {
		return s.ts.mailErr
	}
	s.cur.from, s.cur.mail = from, *o
	return nil
}
func (s *testSession) Rcpt(to string, o *smtp.RcptOptions) error {
	if s.ts.rcptErr != nil {
		return s.ts.rcptErr
	}
	if to == s.ts.refuse {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.cur.rcpts = append(s.cur.rcpts, to)
	s.cur.ropts = append(s.cur.ropts, *o)
	return nil
}
func (s *testSession) Data(r io.Reader) error {
	if s.ts.dropData {
		buf := make([]byte, 1000)
		io.ReadFull(r, buf)
		s.conn.Close()
		return errors.New("dropped")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.ts.hang > 0 {
		time.Sleep(s.ts.hang)
	}
	if s.ts.dataErr != nil {
		return s.ts.dataErr
	}
	s.cur.body = b
	s.ts.mu.Lock()
	s.ts.seen = append(s.ts.seen, s.cur)
	s.ts.mu.Unlock()
	// How the listener answers with the queue ID: go-smtp writes an
	// *SMTPError's code and text as they are.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + s.ts.id}
}

// noPipeListener removes PIPELINING from the EHLO reply when the test
// server's noPipe is set (go-smtp always announces it).
type noPipeListener struct {
	net.Listener
	ts *testServer
}

func (l noPipeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return noPipeConn{c, l.ts}, nil
}

type noPipeConn struct {
	net.Conn
	ts *testServer
}

func (c noPipeConn) Write(b []byte) (int, error) {
	if !c.ts.noPipe.Load() || !bytes.Contains(b, []byte("PIPELINING\r\n")) {
		return c.Conn.Write(b)
	}
	_, err := c.Conn.Write(bytes.Replace(b, []byte("250-PIPELINING\r\n"), nil, 1))
	return len(b), err
}

func envelope() Envelope {
	return Envelope{
		From:       "alice@example.com",
		Recipients: []Recipient{{Addr: "bob@example.net"}},
	}
}

func TestSubmitSocketParams(t *testing.T) {
	ts := newTestServer(t, nil)
	env := Envelope{
		From:     "alice@example.com",
		Body8Bit: true,
		SMTPUTF8: true,
		Ret:      "HDRS",
		EnvID:    "id+with=specials and space",
		Recipients: []Recipient{
			{Addr: "bob@example.net", Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;bob+tag=x@example.net"},
			{Addr: "jürgen@example.de", Notify: "NEVER", ORcpt: "utf-8;jürgen\\x@example.de"},
			{Addr: "carol@example.org"},
		},
	}
	body := "Subject: hi\r\n\r\n.leading dot\r\n..two\r\n.\r\nlast\r\n"
	id, err := Submit(context.Background(), Options{Socket: ts.path}, env, strings.NewReader(body))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if id != "0123456789AB" {
		t.Errorf("id = %q", id)
	}
	g := ts.last(t)
	if g.from != env.From || g.mail.Body != smtp.Body8BitMIME || !g.mail.UTF8 || g.mail.Return != smtp.DSNReturnHeaders || g.mail.EnvelopeID != env.EnvID {
		t.Errorf("MAIL seen as %q %+v", g.from, g.mail)
	}
	if strings.Join(g.rcpts, " ") != "bob@example.net jürgen@example.de carol@example.org" {
		t.Errorf("rcpts %q", g.rcpts)
	}
	want := []smtp.RcptOptions{
		{Notify: []smtp.DSNNotify{"SUCCESS", "FAILURE"}, OriginalRecipientType: "RFC822", OriginalRecipient: "bob+tag=x@example.net"},
		{Notify: []smtp.DSNNotify{"NEVER"}, OriginalRecipientType: "UTF-8", OriginalRecipient: "jürgen\\x@example.de"},
		{},
	}
	for i, w := range want {
		r := g.ropts[i]
		if fmt.Sprint(r.Notify) != fmt.Sprint(w.Notify) || r.OriginalRecipientType != w.OriginalRecipientType || r.OriginalRecipient != w.OriginalRecipient {
			t.Errorf("rcpt %d options %+v, want %+v", i, r, w)
		}
	}
	if string(g.body) != body {
		t.Errorf("body %q, want %q", g.body, body)
	}

	// A 7-bit message says so.
	env = envelope()
	if _, err := Submit(context.Background(), Options{Socket: ts.path}, env, strings.NewReader("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if g := ts.last(t); g.mail.Body != smtp.Body7Bit || g.mail.UTF8 || g.mail.Return != "" || g.mail.EnvelopeID != "" {
		t.Errorf("7-bit MAIL seen as %+v", g.mail)
	}
}

func TestSubmitSocketLargeBody(t *testing.T) {
	ts := newTestServer(t, nil)
	var b bytes.Buffer
	for i := 0; b.Len() < 8<<20; i++ {
		fmt.Fprintf(&b, "%sline %d %s\r\n", strings.Repeat(".", i%3), i, strings.Repeat("x", i%200))
	}
	want := sha256.Sum256(b.Bytes())
	if _, err := Submit(context.Background(), Options{Socket: ts.path}, envelope(), bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
	g := ts.last(t)
	if sha256.Sum256(g.body) != want || len(g.body) != b.Len() {
		t.Errorf("body of %d bytes arrived as %d bytes, different", b.Len(), len(g.body))
	}
}

func TestSubmitSocketReplies(t *testing.T) {
	tests := []struct {
		name      string
		set       func(*testServer)
		temp      bool
		code      int
		command   string
		enhanced  string
		wantID    ID
		wantNoErr bool
	}{
		{name: "451 on MAIL", set: func(s *testServer) {
			s.mailErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "spool busy"}
		}, temp: true, code: 451, command: "MAIL", enhanced: "4.3.0"},
		{name: "550 on RCPT", set: func(s *testServer) {
			s.rcptErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "no"}
		}, code: 550, command: "RCPT TO:<bob@example.net>", enhanced: "5.7.1"},
		{name: "452 on end of data", set: func(s *testServer) {
			s.dataErr = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "disk full"}
		}, temp: true, code: 452, command: "end of data", enhanced: "4.3.1"},
		{name: "554 on end of data", set: func(s *testServer) {
			s.dataErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "bad message"}
		}, code: 554, command: "end of data", enhanced: "5.6.0"},
		{name: "plain error from Data is 554", set: func(s *testServer) { s.dataErr = errors.New("boom") }, code: 554, command: "end of data", enhanced: "5.0.0"},
		{name: "250 without queue id", set: func(s *testServer) { s.id = "" }, wantNoErr: true, wantID: ""},
		{name: "connection lost in DATA", set: func(s *testServer) { s.dropData = true }, temp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			tt.set(ts)
			body := strings.Repeat("0123456789012345678901234567890123456789\r\n", 15000) // 630 KB, more than the socket buffers hold
			id, err := Submit(context.Background(), Options{Socket: ts.path, SpoolPath: "/nonexistent/must-not-be-used"}, envelope(), strings.NewReader(body))
			if tt.wantNoErr {
				if err != nil || id != tt.wantID {
					t.Fatalf("Submit = %q, %v", id, err)
				}
				return
			}
			if err == nil {
				t.Fatal("Submit succeeded")
			}
			if TempFail(err) != tt.temp {
				t.Errorf("TempFail(%v) = %v, want %v", err, !tt.temp, tt.temp)
			}
			var re *ReplyError
			if tt.code == 0 {
				if errors.As(err, &re) || !errors.Is(err, ErrTemporary) {
					t.Errorf("err = %v, want a lost connection", err)
				}
				return
			}
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *ReplyError", err)
			}
			if re.Code != tt.code || re.Command != tt.command || re.Enhanced != tt.enhanced {
				t.Errorf("ReplyError %+v, want code %d command %q enhanced %q", re, tt.code, tt.command, tt.enhanced)
			}
		})
	}
}

// One recipient of three refused: the submission fails as a whole with
// that reply, and nothing is stored even though DATA got its 354 (the
// pipelined group had been sent) — with and without PIPELINING.
func TestSubmitSocketRecipientRefused(t *testing.T) {
	for _, noPipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("noPipe=%v", noPipe), func(t *testing.T) {
			ts := newTestServer(t, nil)
			ts.refuse = "c@example.net"
			ts.noPipe.Store(noPipe)
			env := Envelope{From: "a@example.com", Recipients: []Recipient{{Addr: "b@example.net"}, {Addr: "c@example.net"}, {Addr: "d@example.net"}}}
			_, err := Submit(context.Background(), Options{Socket: ts.path, SpoolPath: "/nonexistent/must-not-be-used"}, env, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
			var re *ReplyError
			if !errors.As(err, &re) || re.Code != 550 || re.Command != "RCPT TO:<c@example.net>" || TempFail(err) {
				t.Fatalf("err = %v, want the 550 for c@example.net", err)
			}
			time.Sleep(50 * time.Millisecond) // let the server see the close
			ts.mu.Lock()
			defer ts.mu.Unlock()
			if len(ts.seen) != 0 {
				t.Errorf("server stored %d messages", len(ts.seen))
			}
		})
	}
}

// Without PIPELINING the client waits for each reply; with it, one write.
// Both deliver the same envelope.
func TestSubmitSocketPipelining(t *testing.T) {
	for _, noPipe := range []bool{false, true} {
		ts := newTestServer(t, nil)
		ts.noPipe.Store(noPipe)
		env := Envelope{From: "a@example.com", Recipients: []Recipient{{Addr: "b@example.net", Notify: "FAILURE"}, {Addr: "c@example.net"}}}
		id, err := Submit(context.Background(), Options{Socket: ts.path}, env, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
		if err != nil || id != "0123456789AB" {
			t.Fatalf("noPipe=%v: Submit = %q, %v", noPipe, id, err)
		}
		g := ts.last(t)
		if g.from != "a@example.com" || strings.Join(g.rcpts, ",") != "b@example.net,c@example.net" || string(g.body) != "Subject: x\r\n\r\nbody\r\n" {
			t.Errorf("noPipe=%v: got %+v", noPipe, g)
		}
	}
}

func TestSubmitSocketMissingExtension(t *testing.T) {
	ts := newTestServer(t, func(s *smtp.Server) { s.EnableDSN = false; s.EnableSMTPUTF8 = false })
	for _, env := range []Envelope{
		{From: "a@b", Ret: "FULL", Recipients: []Recipient{{Addr: "c@d"}}},
		{From: "a@b", Recipients: []Recipient{{Addr: "c@d", Notify: "NEVER"}}},
		{From: "a@b", SMTPUTF8: true, Recipients: []Recipient{{Addr: "c@d"}}},
	} {
		_, err := Submit(context.Background(), Options{Socket: ts.path}, env, strings.NewReader("x\r\n"))
		if err == nil || !strings.Contains(err.Error(), "does not announce") || !TempFail(err) {
			t.Errorf("env %+v: err = %v", env, err)
		}
	}
}

func TestSubmitSocketContext(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.hang = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Submit(ctx, Options{Socket: ts.path}, envelope(), strings.NewReader("x\r\n"))
	if !errors.Is(err, context.DeadlineExceeded) || !TempFail(err) {
		t.Fatalf("err = %v, want a temporary deadline error", err)
	}
	// The per-step timeout, too.
	_, err = Submit(context.Background(), Options{Socket: ts.path, Timeout: 200 * time.Millisecond}, envelope(), strings.NewReader("x\r\n"))
	if !errors.Is(err, ErrTemporary) || !TempFail(err) {
		t.Fatalf("err = %v, want a temporary timeout", err)
	}
}

func TestSubmitInvalidEnvelope(t *testing.T) {
	tests := []Envelope{
		{From: "a@b"},
		{From: "a@b\r\nRCPT TO:<x@y>", Recipients: []Recipient{{Addr: "c@d"}}},
		{From: "a@b", Recipients: []Recipient{{Addr: "c@d\n"}}},
		{From: "a@b", Recipients: []Recipient{{Addr: ""}}},
		{From: "a@b", Ret: "ALL", Recipients: []Recipient{{Addr: "c@d"}}},
		{From: "a@b", Recipients: []Recipient{{Addr: "c@d", ORcpt: "nosemicolon"}}},
	}
	ts := newTestServer(t, nil)
	for _, env := range tests {
		_, err := Submit(context.Background(), Options{Socket: ts.path}, env, strings.NewReader("x\r\n"))
		if !errors.Is(err, ErrInvalid) || TempFail(err) {
			t.Errorf("%+v: err = %v, want ErrInvalid", env, err)
		}
	}
}

func TestSubmitDirect(t *testing.T) {
	dir := t.TempDir()
	spoolPath := filepath.Join(dir, "q", "queue.db")
	kicked := 0
	o := Options{
		Socket:      filepath.Join(dir, "missing.sock"),
		SpoolPath:   spoolPath,
		LockTimeout: time.Second,
		Kick:        func() { kicked++ },
	}
	env := envelope()
	env.Body8Bit = true
	env.Recipients[0].Notify = "FAILURE"
	body := "Subject: direct\r\n\r\nbody\r\n"
	id, err := Submit(context.Background(), o, env, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if kicked != 1 {
		t.Errorf("Kick called %d times", kicked)
	}

	// A stale socket file (daemon died): connection refused, direct too.
	ln, err := net.Listen("unix", filepath.Join(dir, "stale.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	o.Socket = filepath.Join(dir, "stale.sock")
	id2, err := Submit(context.Background(), o, env, strings.NewReader(body))
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}

	s, err := spool.Open(spoolPath, spool.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []ID{id, id2} {
		m, err := s.Get(id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if m.From != env.From || !m.Body8Bit || m.Recipients[0].Notify != "FAILURE" {
			t.Errorf("queued %+v", m)
		}
		rc, err := s.OpenBody(id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != body {
			t.Errorf("body %q", b)
		}
	}

	// The test holds the spool now: a submitter without a daemon times out
	// with a temporary error that wraps ErrLocked, and Kick is not called.
	o.Socket = filepath.Join(dir, "missing.sock")
	o.LockTimeout = 200 * time.Millisecond
	_, err = Submit(context.Background(), o, env, strings.NewReader(body))
	if !errors.Is(err, ErrLocked) || !TempFail(err) {
		t.Fatalf("err = %v, want ErrLocked and TempFail", err)
	}
	if kicked != 2 {
		t.Errorf("Kick called %d times, want 2", kicked)
	}
}

// TestSubmitLockedThenDaemon: the lock is held by a "daemon" whose socket
// appears late; Submit tries the socket once more after the lock wait.
func TestSubmitLockedThenDaemon(t *testing.T) {
	dir := t.TempDir()
	spoolPath := filepath.Join(dir, "queue.db")
	s, err := spool.Open(spoolPath, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := newTestServer(t, nil)
	o := Options{Socket: ts.path + ".late", SpoolPath: spoolPath, LockTimeout: 300 * time.Millisecond}
	// Make the socket appear while Submit waits for the lock.
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.Symlink(ts.path, o.Socket)
	}()
	id, err := Submit(context.Background(), o, envelope(), strings.NewReader("late\r\n"))
	if err != nil || id != "0123456789AB" {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	if string(ts.last(t).body) != "late\r\n" {
		t.Errorf("body %q", ts.last(t).body)
	}
}

func TestSubmitNoRoute(t *testing.T) {
	_, err := Submit(context.Background(), Options{Socket: filepath.Join(t.TempDir(), "none")}, envelope(), strings.NewReader("x"))
	if err == nil || !TempFail(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestTempFail(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("x: %w", spool.ErrLocked), true},
		{fmt.Errorf("x: %w", spool.ErrFull), true},
		{fmt.Errorf("x: %w", spool.ErrCorrupt), false},
		{&ReplyError{Code: 421}, true},
		{fmt.Errorf("wrapped: %w", &ReplyError{Code: 550}), false},
		{fmt.Errorf("x: %w", ErrInvalid), false},
		{context.DeadlineExceeded, true},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := TempFail(tt.err); got != tt.want {
			t.Errorf("TempFail(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestAuthWarning(t *testing.T) {
	tests := []struct {
		uid        int
		user, host string
		from       string
		trusted    bool
		want       string
	}{
		{1000, "bob", "web1.example.com", "ceo@example.com", false, "X-Authentication-Warning: web1.example.com: bob set sender to ceo@example.com using -f"},
		{1000, "bob", "web1.example.com", "ceo@example.com", true, ""},
		{1000, "bob", "web1.example.com", "bob", false, ""},
		{1000, "bob", "web1.example.com", "BOB@web1.example.com", false, ""},
		{1000, "bob", "web1.example.com", "bob@elsewhere.example", false, "X-Authentication-Warning: web1.example.com: bob set sender to bob@elsewhere.example using -f"},
		{1000, "bob", "h", "", false, "X-Authentication-Warning: h: bob set sender to <> using -f"},
		{4242, "", "h", "x@y", false, "X-Authentication-Warning: h: uid 4242 set sender to x@y using -f"},
		{1000, "bob", "h", "x@y\r\nBcc: victim@z", false, "X-Authentication-Warning: h: bob set sender to x@y  Bcc: victim@z using -f"},
	}
	for _, tt := range tests {
		if got := AuthWarning(tt.uid, tt.user, tt.host, tt.from, tt.trusted); got != tt.want {
			t.Errorf("AuthWarning(%d, %q, %q, %q, %v) = %q, want %q", tt.uid, tt.user, tt.host, tt.from, tt.trusted, got, tt.want)
		}
	}
}

func TestUTF8AddrXtext(t *testing.T) {
	if got := utf8AddrXtext("jü+r\\g=n x", false); got != `j\x{FC}\x{2B}r\x{5C}g\x{3D}n\x{20}x` {
		t.Errorf("utf8AddrXtext = %q", got)
	}
	if got := utf8AddrXtext("jü+r", true); got != `jü\x{2B}r` {
		t.Errorf("utf8AddrXtext unitext = %q", got)
	}
}

// queuedIDRegexp is the reference for queuedID.
var queuedAs = regexp.MustCompile(`(?i)queued as <?([A-Za-z0-9._-]+)>?`)

func queuedIDRegexp(text string) string {
	if m := queuedAs.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

func TestQueuedID(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Ok: queued as 01K1KTACY3WS", "01K1KTACY3WS"},
		{"Ok: QUEUED AS <abc.def-1_2>", "abc.def-1_2"},
		{"queued as <>", ""},
		{"queued as ", ""},
		{"Ok", ""},
		{"queued as !; queued as X9", "X9"},
		{"Ok: queued as A1 (more text)", "A1"},
		{"queued  as A1", ""},
		{"queued as <<A1", ""},
	} {
		if got := queuedID(tt.in); got != tt.want || got != queuedIDRegexp(tt.in) {
			t.Errorf("queuedID(%q) = %q, want %q (regexp %q)", tt.in, got, tt.want, queuedIDRegexp(tt.in))
		}
	}
}

// FuzzQueuedID: queuedID finds what the regexp finds in any reply text.
func FuzzQueuedID(f *testing.F) {
	for _, s := range []string{"Ok: queued as 0123456789AB", "queued as <<A1", "Ok", "queued as !; queued as X9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if id := queuedID(text); id != queuedIDRegexp(text) {
			t.Fatalf("queuedID(%q) = %q, the regexp finds %q", text, id, queuedIDRegexp(text))
		}
	})
}

// The spool's refusals are submit.ErrInvalid, hence permanent: a
// listener answers 554 and sendmail exits 65 rather than asking the
// sender to retry a message that can never be queued.
func TestSpoolInvalidIsPermanent(t *testing.T) {
	dir := t.TempDir()
	env := Envelope{From: "a\xffb@example.org", Recipients: []Recipient{{Addr: "b@example.net"}}}
	_, err := Submit(context.Background(), Options{SpoolPath: filepath.Join(dir, "queue.db")}, env, strings.NewReader("x\r\n"))
	if !errors.Is(err, ErrInvalid) || TempFail(err) {
		t.Fatalf("invalid UTF-8 sender: %v (ErrInvalid %v, TempFail %v)", err, errors.Is(err, ErrInvalid), TempFail(err))
	}
}
