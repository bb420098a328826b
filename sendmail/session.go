package sendmail

import (
	"context"
	"fmt"
	"io"

	"github.com/relayq/relayq/wire"
)

// Reply is the SMTP reply a Session step gives: code, enhanced status code
// and text. It is an error so that a refusal can be returned as one; a
// successful Data returns a 250 Reply too.
type Reply struct {
	Code     int
	Enhanced [3]int
	Message  string
}

func (r *Reply) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Message)
}

// Session is the intake side of one -bs SMTP session: MAIL, RCPT and DATA
// end in the same intake as -bm. The SMTP server that reads the commands
// (go-smtp) lives in package sendmail/smtpd, so that a binary that never
// serves -bs links no SMTP server, TLS or SASL code. MAIL FROM counts as an
// explicitly chosen sender (trust rules apply).
type Session struct {
	ctx context.Context
	o   *Options
	f   *Flags
	req *request
}

// NewSession starts the intake of one -bs session with the invocation's
// options and flags.
func NewSession(ctx context.Context, o *Options, f *Flags) *Session {
	return &Session{ctx: ctx, o: o, f: f}
}

// Host is the name the session greets with.
func (s *Session) Host() string { return (&intake{o: s.o}).host() }

// Prog is the program name for messages ("sendmail").
func (s *Session) Prog() string { return s.o.prog() }

// Reset forgets the transaction in progress (RSET, a new MAIL).
func (s *Session) Reset() { s.req = nil }

// MailParams are the MAIL FROM parameters the intake keeps.
type MailParams struct {
	Body  string // "", "7BIT", "8BITMIME" or "BINARYMIME" (refused)
	UTF8  bool   // SMTPUTF8
	Ret   string // DSN RET
	EnvID string // DSN ENVID
}

// Mail starts a transaction; a refusal is a *Reply.
func (s *Session) Mail(from string, p MailParams) error {
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
	switch p.Body {
	case "BINARYMIME":
		return &Reply{Code: 555, Enhanced: [3]int{5, 5, 4}, Message: "BODY=BINARYMIME is not supported"}
	case "7BIT", "8BITMIME":
		req.bodyType = p.Body
	}
	req.smtputf8 = p.UTF8
	req.ret = p.Ret
	req.envID = p.EnvID
	in := newIntake(s.o)
	if !in.trusted && from != "" && !in.ownAddress(from) && s.o.RefuseUntrusted {
		return &Reply{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: fmt.Sprintf("user %s may not send as <%s>", in.who(), wire.Sanitize(from))}
	}
	s.req = req
	return nil
}

// Rcpt adds a recipient with its DSN NOTIFY and ORCPT ("type;address")
// parameters; a refusal is a *Reply.
func (s *Session) Rcpt(to, notify, orcpt string) error {
	if s.req == nil {
		return &Reply{Code: 503, Enhanced: [3]int{5, 5, 1}, Message: "MAIL first"}
	}
	if err := smtpAddrCheck(to, false); err != nil {
		return err
	}
	s.req.recipients = append(s.req.recipients, rcptSpec{addr: to, notify: notify, orcpt: orcpt})
	return nil
}

// Data queues the message read from r and returns the reply: 250 with
// the queue ID, or the refusal.
func (s *Session) Data(r io.Reader) *Reply {
	if s.req == nil || len(s.req.recipients) == 0 {
		return &Reply{Code: 503, Enhanced: [3]int{5, 5, 1}, Message: "RCPT first"}
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
	return &Reply{Code: 250, Enhanced: [3]int{2, 0, 0}, Message: "Ok: queued as " + showID(string(id))}
}

// smtpAddrCheck refuses addresses that cannot be queued: control
// characters, a leading '-', blank space.
func smtpAddrCheck(a string, sender bool) error {
	if a == "" {
		if sender {
			return nil
		}
		return &Reply{Code: 501, Enhanced: [3]int{5, 1, 3}, Message: "empty recipient"}
	}
	if a[0] == '-' {
		return &Reply{Code: 501, Enhanced: [3]int{5, 1, 7}, Message: "address starts with '-'"}
	}
	if err := checkAddr(a); err != nil {
		code := [3]int{5, 1, 3}
		if sender {
			code = [3]int{5, 1, 7}
		}
		return &Reply{Code: 501, Enhanced: code, Message: wire.Sanitize(err.Error())}
	}
	return nil
}

// smtpError maps an intake error to an SMTP reply.
func smtpError(err error) *Reply {
	msg := wire.Sanitize(err.Error())
	switch exitCode(err) {
	case ExitDataErr, ExitUsage:
		return &Reply{Code: 554, Enhanced: [3]int{5, 6, 0}, Message: msg}
	case ExitNoPerm:
		return &Reply{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: msg}
	case ExitUnavail:
		return &Reply{Code: 554, Enhanced: [3]int{5, 0, 0}, Message: msg}
	case ExitConfig:
		return &Reply{Code: 451, Enhanced: [3]int{4, 3, 5}, Message: msg}
	}
	return &Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Message: msg}
}
