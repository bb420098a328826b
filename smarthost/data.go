package smarthost

import (
	"bufio"
	"io"

	"github.com/relayq/relayq/config"
)

// maxLineOut is the longest line relayq sends, without CRLF (RFC 5321
// §4.5.3.1.6: 1000 octets with CRLF; Postfix smtp_line_length_limit).
const maxLineOut = 998

// dotWriter writes a message body in the DATA transparency form of
// RFC 5321 §4.5.2: a '.' at the start of a line is doubled. Line ends are
// sent as CRLF only (RELIABILITY S9): the stored body already has CRLF; a
// bare LF is sent as CRLF and a stray CR as a space, so that nothing relayq
// sends can be read as an end of data by a lenient server (SMTP smuggling,
// CVE-2023-51764). A line longer than 998 octets is folded with CRLF SP,
// as Postfix does (RELIABILITY I1).
type dotWriter struct {
	w     *bufio.Writer
	n     int  // octets of the current line on the wire
	cr    bool // a CR was seen and not yet written
	chunk func()
}

func newDotWriter(w *bufio.Writer, chunk func()) *dotWriter {
	return &dotWriter{w: w, chunk: chunk}
}

func (d *dotWriter) Write(p []byte) (int, error) {
	if d.chunk != nil {
		d.chunk()
	}
	for _, b := range p {
		if d.cr {
			d.cr = false
			if b == '\n' {
				d.eol()
				continue
			}
			d.content(' ')
		}
		switch b {
		case '\r':
			d.cr = true
		case '\n':
			d.eol()
		default:
			d.content(b)
		}
	}
	if _, err := d.w.Write(nil); err != nil {
		return 0, err
	}
	return len(p), nil
}

// content writes one octet of a line: folded when the line is full,
// dot-stuffed at the start of a line.
func (d *dotWriter) content(b byte) {
	if d.n >= maxLineOut {
		d.w.WriteString("\r\n ")
		d.n = 1
	}
	if b == '.' && d.n == 0 {
		d.w.WriteByte('.')
		d.n++
	}
	d.w.WriteByte(b)
	d.n++
}

func (d *dotWriter) eol() {
	d.w.WriteString("\r\n")
	d.n = 0
}

// finish ends the body (adding a line end when the body lacks one) and
// writes the terminating "." line.
func (d *dotWriter) finish() error {
	if d.cr {
		d.cr = false
		d.content(' ')
	}
	if d.n > 0 {
		d.eol()
	}
	if _, err := d.w.WriteString(".\r\n"); err != nil {
		return err
	}
	return d.w.Flush()
}

// sendBody streams the body after a 354 reply and reads the final reply.
// Every write gets the block timeout, the final reply the final-dot
// timeout (RFC 5321 §4.5.3.2.5, .6).
func (c *conn) sendBody(body io.Reader) (reply, error) {
	block := c.t.DataBlock
	c.sentDot = false
	dw := newDotWriter(c.bw, func() { c.raw.deadline(block) })
	buf := make([]byte, 32*1024)
	if _, err := io.CopyBuffer(dw, body, buf); err != nil {
		c.broken = true
		return reply{}, err
	}
	c.raw.deadline(block)
	if err := dw.finish(); err != nil {
		c.broken = true
		return reply{}, err
	}
	c.sentDot = true
	r, err := c.read(c.t.DataDone)
	if err != nil {
		return r, err
	}
	if r.Code/100 != 2 {
		return r, r.Err("DATA")
	}
	return r, nil
}

// TimeoutsFrom are the client timeouts of the delivery configuration
// (RELAYQ_SMTP_*_TIMEOUT). Their defaults, in package config, are
// Postfix's smtp_*_timeout, which meet the RFC 5321 §4.5.3.2 minimums
// (RELIABILITY "timeouts (client)"); a zero Options.Timeouts field takes
// that default.
func TimeoutsFrom(d *config.Delivery) Timeouts {
	return Timeouts{
		Connect:      d.ConnectTimeout,
		Greeting:     d.GreetingTimeout,
		Helo:         d.HeloTimeout,
		StartTLS:     d.StartTLSTimeout,
		TLSHandshake: d.TLSHandshakeTimeout,
		Auth:         d.AuthTimeout,
		Mail:         d.MailTimeout,
		Rcpt:         d.RcptTimeout,
		Data:         d.DataInitTimeout,
		DataBlock:    d.DataXferTimeout,
		DataDone:     d.DataDoneTimeout,
		Rset:         d.RsetTimeout,
		Quit:         d.QuitTimeout,
	}
}
