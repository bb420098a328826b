package sendmail

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

	"github.com/relayq/relayq/wire"
)

// serveSMTP is -bs: one SMTP session (RFC 5321) on standard input and
// output, served by go-smtp; every message ends in the same intake as -bm.
// MAIL FROM counts as an explicitly chosen sender (trust rules apply).
func serveSMTP(ctx context.Context, o Options, f *Flags) int {
	conn := newStdioConn(o.Stdin, o.Stdout)
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &bsSession{ctx: ctx, o: &o, f: f}, nil
	})
	s := smtp.NewServer(be)
	s.Domain = (&intake{o: &o}).host()
	s.EnableSMTPUTF8 = true
	s.EnableDSN = true
	s.MaxLineLength = 1 << 20 // long body lines are wrapped by intake, not refused
	s.MaxRecipients = 1000    // as Postfix smtpd_recipient_limit
	s.ErrorLog = log.New(o.Stderr, o.prog()+": -bs: ", 0)
	l := &oneConnListener{conn: conn}
	err := s.Serve(l)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(o.Stderr, "%s: -bs: %v\n", o.prog(), err)
		return ExitIOErr
	}
	return ExitOK
}

// bsSession is one -bs SMTP session.
type bsSession struct {
	ctx context.Context
	o   *Options
	f   *Flags
	req *request
}

func (s *bsSession) Reset()        { s.req = nil }
func (s *bsSession) Logout() error { return nil }

func (s *bsSession) Mail(from string, opts *smtp.MailOptions) error {
	if err := smtpAddrCheck(from, true); err != nil {
		return err
	}
	req := &request{
		sender:     from,
		senderSet:  true,
		ignoreDots: true, // the SMTP data reader ends the message
		mode:       DeliverBackground,
	}
	if s.f.Delivery == DeliverQueueOnly {
		req.mode = DeliverQueueOnly
	}
	if opts != nil {
		switch opts.Body {
		case smtp.Body8BitMIME:
			req.bodyType = "8BITMIME"
		case smtp.Body7Bit:
			req.bodyType = "7BIT"
		case smtp.BodyBinaryMIME:
			return &smtp.SMTPError{Code: 555, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "BODY=BINARYMIME is not supported"}
		}
		req.smtputf8 = opts.UTF8
		req.ret = string(opts.Return)
		req.envID = opts.EnvelopeID
	}
	in := newIntake(s.o)
	if !in.trusted && from != "" && !in.ownAddress(from) && s.o.RefuseUntrusted {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: fmt.Sprintf("user %s may not send as <%s>", in.who(), wire.Sanitize(from))}
	}
	s.req = req
	return nil
}

func (s *bsSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.req == nil {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}
	}
	if err := smtpAddrCheck(to, false); err != nil {
		return err
	}
	r := rcptSpec{addr: to}
	if opts != nil {
		var n []string
		for _, v := range opts.Notify {
			n = append(n, string(v))
		}
		r.notify = strings.Join(n, ",")
		if opts.OriginalRecipient != "" {
			typ := string(opts.OriginalRecipientType)
			if typ == "" {
				typ = "rfc822"
			}
			r.orcpt = strings.ToLower(typ) + ";" + opts.OriginalRecipient
		}
	}
	s.req.recipients = append(s.req.recipients, r)
	return nil
}

func (s *bsSession) Data(r io.Reader) error {
	if s.req == nil || len(s.req.recipients) == 0 {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "RCPT first"}
	}
	in := newIntake(s.o)
	id, env, err := in.enqueue(s.ctx, s.req, r)
	for _, w := range in.warn {
		fmt.Fprintf(s.o.Stderr, "%s: warning: %s\n", s.o.prog(), w)
	}
	if err != nil {
		return smtpError(err)
	}
	if s.o.Log != nil {
		s.o.Log.Queued(string(id), env.From, len(env.Recipients), -1, env.Origin)
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + showID(string(id))}
}

// smtpAddrCheck refuses addresses that cannot be queued: control
// characters, a leading '-', blank space.
func smtpAddrCheck(a string, sender bool) error {
	if a == "" {
		if sender {
			return nil
		}
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "empty recipient"}
	}
	if strings.HasPrefix(a, "-") {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "address starts with '-'"}
	}
	if err := checkAddr(a); err != nil {
		code := smtp.EnhancedCode{5, 1, 3}
		if sender {
			code = smtp.EnhancedCode{5, 1, 7}
		}
		return &smtp.SMTPError{Code: 501, EnhancedCode: code, Message: wire.Sanitize(err.Error())}
	}
	return nil
}

// smtpError maps an intake error to an SMTP reply.
func smtpError(err error) error {
	msg := wire.Sanitize(err.Error())
	switch exitCode(err) {
	case ExitDataErr, ExitUsage:
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: msg}
	case ExitNoPerm:
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: msg}
	case ExitUnavail:
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 0, 0}, Message: msg}
	case ExitConfig:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 5}, Message: msg}
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: msg}
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
