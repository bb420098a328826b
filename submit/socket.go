package submit

import (
	"context"
	"errors"

	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"
	"time"

	"github.com/relayq/relayq/wire"
)

// A hand-written client rather than go-smtp's: go-smtp's Client.Mail sends
// BODY=8BITMIME whenever the server offers 8BITMIME, whatever the message
// is, and cannot say BODY=7BIT, so the daemon would record every message as
// 8-bit (and later convert or refuse 7-bit mail for relays without
// 8BITMIME). The conversation is a few commands; textproto does the
// framing. The body goes as BDAT chunks when the daemon offers CHUNKING
// (go-smtp does), else as DATA with textproto's dot-stuffing.

// queuedID finds the queue ID in "250 2.0.0 Ok: queued as <ID>": the
// first "queued as " (any case), an optional "<", then one or more of
// A-Z a-z 0-9 . _ -; "" when there is none. (A hand-written scan, not a
// regexp: compiling one at package init cost every sendmail start.)
func queuedID(text string) string {
	const marker = "queued as "
	for i := 0; i+len(marker) <= len(text); i++ {
		if !strings.EqualFold(text[i:i+len(marker)], marker) {
			continue
		}
		rest := text[i+len(marker):]
		rest = strings.TrimPrefix(rest, "<")
		n := 0
		for n < len(rest) && isIDByte(rest[n]) {
			n++
		}
		if n > 0 {
			return rest[:n]
		}
	}
	return ""
}

func isIDByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

type smtpConn struct {
	conn        net.Conn
	text        *textproto.Conn
	timeout     time.Duration // per step: AnswerTimeout, then bodyTimeout
	bodyTimeout time.Duration // per write of the body and for the final reply
	ctx         context.Context
	ext         map[string]string
}

// submitSocket runs one SMTP transaction on the daemon's socket. It returns
// an error wrapping errNoDaemon, before reading body, when nothing listens,
// and one wrapping errNoAnswer (and errNoDaemon) when the daemon did not
// answer within o.AnswerTimeout before the body was read: it cannot have
// queued the message then, so another route is safe.
func submitSocket(ctx context.Context, o Options, env Envelope, body io.Reader) (ID, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	answer := o.AnswerTimeout
	if answer <= 0 {
		answer = DefaultAnswerTimeout
	}
	nc, err := dialSocket(ctx, o.Socket, answer)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	// Cancelling ctx unblocks any read or write in progress.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c := &smtpConn{conn: nc, text: textproto.NewConn(nc), timeout: answer, bodyTimeout: timeout, ctx: ctx}
	tb := &touchReader{r: body}
	id, err := c.transaction(env, tb)
	if err != nil {
		var re *ReplyError
		if !tb.touched && ctx.Err() == nil && !errors.As(err, &re) && transportError(err) {
			return "", fmt.Errorf("%w: %w (%w)", errNoDaemon, errNoAnswer, err)
		}
		return "", fmt.Errorf("submit via %s: %w", o.Socket, err)
	}
	c.quit()
	return id, nil
}

// transportError reports whether err is the connection's failure (a
// timeout, a reset, an early close) rather than the daemon's reply or
// this side's refusal.
func transportError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// touchReader records whether the body has been read at all.
type touchReader struct {
	r       io.Reader
	touched bool
}

func (t *touchReader) Read(p []byte) (int, error) {
	t.touched = true
	return t.r.Read(p)
}

func (c *smtpConn) transaction(env Envelope, body io.Reader) (ID, error) {
	if _, err := c.reply("greeting", 220); err != nil {
		return "", err
	}
	if err := c.ehlo(); err != nil {
		return "", err
	}
	mail, err := c.mailCommand(env)
	if err != nil {
		return "", err
	}
	steps := []pipelined{{"MAIL", mail, 250}}
	for _, r := range env.Recipients {
		rcpt, err := c.rcptCommand(r)
		if err != nil {
			return "", err
		}
		steps = append(steps, pipelined{"RCPT TO:<" + r.Addr + ">", rcpt, 250})
	}
	chunking := c.has("CHUNKING")
	if !chunking {
		steps = append(steps, pipelined{"DATA", "DATA", 354})
	}
	if c.has("PIPELINING") {
		if err := c.pipeline(steps); err != nil {
			return "", err
		}
	} else {
		for _, st := range steps {
			if err := c.cmd(st.step, st.want, "%s", st.line); err != nil {
				return "", err
			}
		}
	}
	c.timeout = c.bodyTimeout // from here on the daemon may queue it: no fallback
	if chunking {
		return c.bdat(body)
	}
	w := c.text.DotWriter()
	if _, err := copyWithDeadline(c, w, body); err != nil {
		return "", err
	}
	c.deadline()
	if err := w.Close(); err != nil {
		return "", c.lost("end of data", err)
	}
	text, err := c.reply("end of data", 250)
	if err != nil {
		return "", err
	}
	return ID(queuedID(text)), nil
}

// bdat sends the body as BDAT chunks (RFC 3030), the last one marked
// LAST, and returns the queue ID from the reply to it. The daemon reads a
// chunk as a block of known length, with no dot-stuffing on this side and
// no line-by-line end-of-data scan on its side: a large message moves
// several times faster than through DATA. A chunk is sent only once it has
// been read whole from body, so a read error leaves the transaction
// without its LAST chunk, and the caller's close makes the daemon discard
// it (go-smtp resets the transfer; nothing is stored).
func (c *smtpConn) bdat(body io.Reader) (ID, error) {
	buf := make([]byte, 64<<10) // small messages stay small; grown below
	for {
		n, rerr := io.ReadFull(body, buf)
		last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !last {
			return "", fmt.Errorf("read message: %w", rerr)
		}
		c.deadline()
		cmd := fmt.Sprintf("BDAT %d", n)
		if last {
			cmd += " LAST"
		}
		if _, err := c.text.W.WriteString(cmd + "\r\n"); err != nil {
			return "", c.lost("BDAT", err)
		}
		if _, err := c.text.W.Write(buf[:n]); err != nil {
			return "", c.lost("BDAT", err)
		}
		if err := c.text.W.Flush(); err != nil {
			return "", c.lost("BDAT", err)
		}
		step := "BDAT"
		if last {
			step = "end of data" // as the reply to DATA's final dot
		}
		text, err := c.reply(step, 250)
		if err != nil {
			return "", err
		}
		if last {
			return ID(queuedID(text)), nil
		}
		if len(buf) < 1<<20 {
			buf = make([]byte, 1<<20)
		}
	}
}

// pipelined is one command of the envelope and the reply it needs.
type pipelined struct {
	step string // for errors: "MAIL", "RCPT TO:<addr>", "DATA"
	line string
	want int
}

// pipeline sends MAIL, every RCPT and DATA in one write and then reads
// their replies in order (RFC 2920; DATA ends the group), so that a
// submission costs one round trip instead of one per command. Every reply
// is read; the first one that is not the one wanted is returned as the
// error. If DATA was accepted all the same (a RCPT refused, DATA answered
// 354), the caller closes the connection without the final dot, and the
// daemon stores nothing.
func (c *smtpConn) pipeline(steps []pipelined) error {
	c.deadline()
	for _, st := range steps {
		if _, err := c.text.W.WriteString(st.line + "\r\n"); err != nil {
			return c.lost(st.step, err)
		}
	}
	if err := c.text.W.Flush(); err != nil {
		return c.lost(steps[0].step, err)
	}
	var first error
	for _, st := range steps {
		if _, err := c.reply(st.step, st.want); err != nil {
			var re *ReplyError
			if !errors.As(err, &re) {
				return err // the connection is gone: no more replies
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// copyWithDeadline copies body to w, renewing the write deadline per chunk
// so that a large body is bounded per step, not as a whole. A read error
// of body is the caller's (not temporary); a write error is a lost
// connection.
func copyWithDeadline(c *smtpConn, w io.Writer, body io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			c.deadline()
			m, werr := w.Write(buf[:k])
			n += int64(m)
			if werr != nil {
				return n, c.lost("DATA", werr)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("read message: %w", rerr)
		}
	}
}

func (c *smtpConn) deadline() {
	if c.ctx.Err() != nil {
		return // the AfterFunc has set a past deadline; keep it
	}
	d := time.Now().Add(c.timeout)
	if cd, ok := c.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	_ = c.conn.SetDeadline(d)
}

// lost wraps an I/O error: temporary, since the daemon has not confirmed.
func (c *smtpConn) lost(step string, err error) error {
	if cerr := c.ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", step, cerr)
	}
	// The connection deadline may be the context's and fire a moment
	// before the context itself notices.
	if d, ok := c.ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Errorf("%s: %w", step, context.DeadlineExceeded)
	}
	return fmt.Errorf("connection to the daemon lost at %s: %w: %w", step, ErrTemporary, err)
}

func (c *smtpConn) cmd(step string, want int, format string, args ...any) error {
	c.deadline()
	if err := c.text.PrintfLine(format, args...); err != nil {
		return c.lost(step, err)
	}
	_, err := c.reply(step, want)
	return err
}

// reply reads one reply (package wire: bounded, RELIABILITY I2) and checks
// its code; the text (enhanced code removed, lines joined) is returned.
func (c *smtpConn) reply(step string, want int) (string, error) {
	c.deadline()
	r, err := wire.ReadReply(c.text.R)
	if err != nil {
		return "", c.lost(step, err)
	}
	if r.Code != want {
		return "", refused(r.Err(step))
	}
	return r.Text(), nil
}

func (c *smtpConn) ehlo() error {
	c.deadline()
	if err := c.text.PrintfLine("EHLO localhost"); err != nil {
		return c.lost("EHLO", err)
	}
	r, err := wire.ReadReply(c.text.R)
	if err != nil {
		return c.lost("EHLO", err)
	}
	if r.Code != 250 {
		return refused(r.Err("EHLO"))
	}
	c.ext = map[string]string{}
	for _, l := range r.Lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (c *smtpConn) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// mailCommand builds MAIL FROM with the envelope's parameters. A parameter
// the daemon does not announce is an error rather than silently dropped:
// the daemon would queue something other than what the caller asked for.
func (c *smtpConn) mailCommand(env Envelope) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM:<%s>", env.From)
	if c.has("8BITMIME") {
		if env.Body8Bit {
			b.WriteString(" BODY=8BITMIME")
		} else {
			b.WriteString(" BODY=7BIT")
		}
	} else if env.Body8Bit {
		return "", c.missing("8BITMIME")
	}
	if env.SMTPUTF8 {
		if !c.has("SMTPUTF8") {
			return "", c.missing("SMTPUTF8")
		}
		b.WriteString(" SMTPUTF8")
	}
	if env.Ret != "" || env.EnvID != "" {
		if !c.has("DSN") {
			return "", c.missing("DSN")
		}
		if env.Ret != "" {
			b.WriteString(" RET=" + env.Ret)
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=" + wire.Xtext(env.EnvID))
		}
	}
	return b.String(), nil
}

func (c *smtpConn) rcptCommand(r Recipient) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "RCPT TO:<%s>", r.Addr)
	if r.Notify != "" || r.ORcpt != "" {
		if !c.has("DSN") {
			return "", c.missing("DSN")
		}
		if r.Notify != "" {
			b.WriteString(" NOTIFY=" + strings.ToUpper(strings.ReplaceAll(r.Notify, " ", "")))
		}
		if r.ORcpt != "" {
			o, err := encodeORcpt(r.ORcpt, c.has("SMTPUTF8"))
			if err != nil {
				return "", err
			}
			b.WriteString(" ORCPT=" + o)
		}
	}
	return b.String(), nil
}

func (c *smtpConn) missing(ext string) error {
	return fmt.Errorf("the daemon does not announce %s, which this message needs: %w", ext, ErrTemporary)
}

// quit ends the session politely. The message is queued already, so the
// 221 is not waited for: the caller need not pay one more round trip.
func (c *smtpConn) quit() {
	c.deadline()
	_ = c.text.PrintfLine("QUIT")
}

// utf8AddrXtext encodes s as RFC 6533 §3 utf-8-addr-xtext (utf8 false:
// every non-ASCII character as \x{HEX}) or utf-8-addr-unitext (utf8 true:
// non-ASCII as is); specials and controls become \x{HEX} either way.
func utf8AddrXtext(s string, utf8 bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r > 0x7e && utf8 && r > 0x7f:
			b.WriteRune(r)
		case r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, `\x{%X}`, r)
		}
	}
	return b.String()
}

// encodeORcpt encodes a decoded ORCPT ("rfc822;user@example.com") for the
// RCPT command.
func encodeORcpt(orcpt string, utf8 bool) (string, error) {
	typ, addr, ok := strings.Cut(orcpt, ";")
	if !ok || typ == "" || addr == "" {
		return "", fmt.Errorf("submit: ORCPT %q is not type;address: %w", orcpt, ErrInvalid)
	}
	switch strings.ToLower(typ) {
	case "utf-8":
		return typ + ";" + utf8AddrXtext(addr, utf8), nil
	default:
		return typ + ";" + wire.Xtext(addr), nil
	}
}
