// Command smtprecorder is an SMTP test server for relayq's integration
// scenarios that records every command line a client sends.
//
// It listens on a loopback TCP address, speaks SMTP with go-smtp, and
// appends each line the client sends (exactly as received, CRLF stripped) to
// the record file, one per line, prefixed with the connection number:
//
//	1 EHLO client.example
//	1 QUIT
//
// With -auth (the default) it advertises AUTH PLAIN and LOGIN even though it
// offers no STARTTLS (go-smtp's AllowInsecureAuth): the shape of a relay that
// invites a client to send credentials in clear text. Without -tls-cert it
// offers no STARTTLS at all. It accepts every AUTH, MAIL, RCPT and DATA, so a
// client that wrongly goes ahead is recorded doing so rather than stopped.
//
// Once listening it writes the chosen address (host:port) to -addr-file, so
// a script can start it with port 0 and read the port back. It runs until
// SIGTERM or SIGINT.
//
// Usage:
//
//	smtprecorder -listen 127.0.0.1:0 -record FILE -addr-file FILE [-auth=false] [-smtputf8]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// run serves until ctx is done and returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("smtprecorder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	recordPath := fs.String("record", "", "file that receives every client command line (required)")
	addrFile := fs.String("addr-file", "", "file to write the listening address to")
	auth := fs.Bool("auth", true, "advertise AUTH PLAIN and LOGIN without TLS")
	utf8 := fs.Bool("smtputf8", false, "advertise SMTPUTF8 (RFC 6531)")
	mechs := fs.String("mechs", "PLAIN LOGIN", "AUTH mechanisms advertised with -auth (XOAUTH2 and OAUTHBEARER accept any token)")
	if err := fs.Parse(args); err != nil {
		return 64
	}
	if *recordPath == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: smtprecorder -listen ADDR -record FILE [-addr-file FILE] [-auth=false] [-mechs LIST] [-smtputf8]")
		return 64
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "smtprecorder: -listen %q: %v\n", *listen, err)
		return 64
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(stderr, "smtprecorder: -listen %q: only loopback IP addresses are allowed\n", *listen)
		return 64
	}

	rec, err := newRecorder(*recordPath)
	if err != nil {
		fmt.Fprintf(stderr, "smtprecorder: %v\n", err)
		return 73
	}
	defer rec.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "smtprecorder: listen: %v\n", err)
		return 71
	}
	if *addrFile != "" {
		if err := writeFileAtomic(*addrFile, ln.Addr().String()+"\n"); err != nil {
			fmt.Fprintf(stderr, "smtprecorder: %v\n", err)
			return 73
		}
	}

	s := smtp.NewServer(backend{auth: *auth, mechs: strings.Fields(strings.ToUpper(*mechs))})
	s.Domain = "recorder.relayq.test"
	s.AllowInsecureAuth = *auth
	s.EnableSMTPUTF8 = *utf8
	s.ReadTimeout = 60 * time.Second
	s.WriteTimeout = 60 * time.Second
	s.ErrorLog = discardLogger{}

	errc := make(chan error, 1)
	go func() { errc <- s.Serve(&recordingListener{Listener: ln, rec: rec}) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(sctx)
		return 0
	case err := <-errc:
		if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			fmt.Fprintf(stderr, "smtprecorder: serve: %v\n", err)
			return 70
		}
		return 0
	}
}

// writeFileAtomic writes s to path through a temporary file and a rename,
// so a reader never sees a partial address.
func writeFileAtomic(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// recorder appends client lines to a file; safe for concurrent use.
type recorder struct {
	mu    sync.Mutex
	f     *os.File
	conns atomic.Int64
}

func newRecorder(path string) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open record file: %w", err)
	}
	return &recorder{f: f}, nil
}

func (r *recorder) line(conn int64, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.f, "%d %s\n", conn, bytes.TrimRight(b, "\r\n"))
	_ = r.f.Sync()
}

func (r *recorder) Close() error { return r.f.Close() }

// recordingListener hands go-smtp connections whose reads are copied, line
// by line, to the recorder before go-smtp parses them.
type recordingListener struct {
	net.Listener
	rec *recorder
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, rec: l.rec, n: l.rec.conns.Add(1)}, nil
}

// maxRecordLine bounds one recorded line; a longer one is recorded in
// pieces of this size.
const maxRecordLine = 1 << 20

// recordingConn records every complete line read from the client before
// Read returns it, so that the record is in the order the server saw the
// lines, across connections too (a line is on file before its reply is
// sent). A last line without its end is recorded when the connection ends.
type recordingConn struct {
	net.Conn
	rec  *recorder
	n    int64
	mu   sync.Mutex
	part []byte
	done bool
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 && !c.done {
		c.part = append(c.part, p[:n]...)
		for {
			i := bytes.IndexByte(c.part, '\n')
			if i < 0 {
				if len(c.part) >= maxRecordLine {
					c.rec.line(c.n, c.part)
					c.part = c.part[:0]
				}
				break
			}
			c.rec.line(c.n, c.part[:i+1])
			c.part = c.part[i+1:]
		}
	}
	if err != nil {
		c.flush()
	}
	return n, err
}

// flush records a last partial line once; c.mu must be held.
func (c *recordingConn) flush() {
	if !c.done && len(c.part) > 0 {
		c.rec.line(c.n, c.part)
	}
	c.part, c.done = nil, true
}

func (c *recordingConn) Close() error {
	c.mu.Lock()
	c.flush()
	c.mu.Unlock()
	return c.Conn.Close()
}

// backend accepts everything; the record file is the test's evidence.
type backend struct {
	auth  bool
	mechs []string
}

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	if b.auth {
		return &authSession{mechs: b.mechs}, nil
	}
	return &session{}, nil
}

type session struct{}

func (*session) Reset()                               {}
func (*session) Logout() error                        { return nil }
func (*session) Mail(string, *smtp.MailOptions) error { return nil }
func (*session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*session) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// authSession adds AUTH (the -mechs list) to session.
type authSession struct {
	session
	mechs []string
}

func (a *authSession) AuthMechanisms() []string            { return a.mechs }
func (*authSession) Auth(mech string) (sasl.Server, error) { return authServer(mech) }

// authServer accepts any credentials for PLAIN and LOGIN.
func authServer(mech string) (sasl.Server, error) {
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, _, _ string) error { return nil }), nil
	case sasl.Login:
		return &loginServer{}, nil
	case "XOAUTH2":
		return &acceptServer{}, nil
	case sasl.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(sasl.OAuthBearerOptions) *sasl.OAuthBearerError { return nil }), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// acceptServer accepts any single response (XOAUTH2).
type acceptServer struct{}

func (acceptServer) Next([]byte) ([]byte, bool, error) { return nil, true, nil }

// loginServer is the LOGIN mechanism (username, then password), accepting
// anything; go-sasl has no LOGIN server.
type loginServer struct{ step int }

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	s.step++
	switch s.step {
	case 1:
		if len(response) > 0 { // initial response carries the username
			s.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		return []byte("Password:"), false, nil
	default:
		return nil, true, nil
	}
}

// discardLogger drops go-smtp's error log (the record file is the output).
type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}
