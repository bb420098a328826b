// Package smtpd is sendmail -bs: one SMTP session (RFC 5321) on standard
// input and output, served by go-smtp, every message ending in the intake
// of package sendmail (sendmail.Session). It is apart from package
// sendmail so that the small sendmail binary (cmd/sendmail), which hands
// -bs to relayq, links no SMTP server, TLS or SASL code.
package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	smtp "github.com/emersion/go-smtp"

	"github.com/relayq/relayq/sendmail"
)

// Serve is -bs (sendmail.Options.ServeSMTP): one SMTP session on o.Stdin
// and o.Stdout; it returns the exit code.
func Serve(ctx context.Context, o sendmail.Options, f *sendmail.Flags) int {
	conn := newStdioConn(o.Stdin, o.Stdout)
	in := sendmail.NewSession(ctx, &o, f)
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{in: sendmail.NewSession(ctx, &o, f)}, nil
	})
	s := smtp.NewServer(be)
	s.Domain = in.Host()
	s.EnableSMTPUTF8 = true
	s.EnableDSN = true
	s.MaxLineLength = 1 << 20 // long body lines are wrapped by intake, not refused
	s.MaxRecipients = 1000    // as Postfix smtpd_recipient_limit
	s.ErrorLog = log.New(o.Stderr, in.Prog()+": -bs: ", 0)
	l := &oneConnListener{conn: conn}
	err := s.Serve(l)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(o.Stderr, "%s: -bs: %v\n", in.Prog(), err)
		return sendmail.ExitIOErr
	}
	return sendmail.ExitOK
}

// session adapts go-smtp's Session to sendmail.Session.
type session struct {
	in *sendmail.Session
}

func (s *session) Reset()        { s.in.Reset() }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	var p sendmail.MailParams
	if opts != nil {
		switch opts.Body {
		case smtp.Body8BitMIME:
			p.Body = "8BITMIME"
		case smtp.Body7Bit:
			p.Body = "7BIT"
		case smtp.BodyBinaryMIME:
			p.Body = "BINARYMIME"
		}
		p.UTF8 = opts.UTF8
		p.Ret = string(opts.Return)
		p.EnvID = opts.EnvelopeID
	}
	return reply(s.in.Mail(from, p))
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	var notify, orcpt string
	if opts != nil {
		var n []string
		for _, v := range opts.Notify {
			n = append(n, string(v))
		}
		notify = strings.Join(n, ",")
		if opts.OriginalRecipient != "" {
			typ := string(opts.OriginalRecipientType)
			if typ == "" {
				typ = "rfc822"
			}
			orcpt = strings.ToLower(typ) + ";" + opts.OriginalRecipient
		}
	}
	return reply(s.in.Rcpt(to, notify, orcpt))
}

func (s *session) Data(r io.Reader) error {
	return reply(s.in.Data(r))
}

// reply turns a sendmail.Reply into go-smtp's; other errors pass as they
// are.
func reply(err error) error {
	var r *sendmail.Reply
	if !errors.As(err, &r) {
		return err
	}
	if r == nil {
		return nil
	}
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Message}
}

// stdioConn is a net.Conn over standard input and output.
type stdioConn struct {
	r      io.Reader
	w      io.Writer
	once   sync.Once
	closed chan struct{}
}

func newStdioConn(r io.Reader, w io.Writer) *stdioConn {
	return &stdioConn{r: r, w: w, closed: make(chan struct{})}
}

func (c *stdioConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.r.Read(p)
}

func (c *stdioConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.w.Write(p)
}

func (c *stdioConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *stdioConn) LocalAddr() net.Addr                { return stdioAddr{} }
func (c *stdioConn) RemoteAddr() net.Addr               { return stdioAddr{} }
func (c *stdioConn) SetDeadline(t time.Time) error      { return nil }
func (c *stdioConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *stdioConn) SetWriteDeadline(t time.Time) error { return nil }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "stdio" }

// oneConnListener hands out one connection, then reports itself closed
// once that connection is closed, so that Server.Serve returns.
type oneConnListener struct {
	conn *stdioConn
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.conn, nil
	}
	<-l.conn.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return l.conn.Close() }
func (l *oneConnListener) Addr() net.Addr { return stdioAddr{} }
