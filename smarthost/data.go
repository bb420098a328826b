package smarthost

import (
	"bufio"
	"bytes"
	"io"
	"strconv"

	"github.com/relayq/relayq/config"
)

// maxLineOut is the longest line relayq sends, without CRLF (RFC 5321
// §4.5.3.1.6: 1000 octets with CRLF; Postfix smtp_line_length_limit).
const maxLineOut = 998

// dotWriter writes a message body in the DATA transparency form of
// RFC 5321 §4.5.2: a '.' at the start of a line is doubled (not for BDAT,
// RFC 3030 §2, whose chunks are counted octets: stuff false). Line ends are
// sent as CRLF only (RELIABILITY S9): the stored body already has CRLF; a
// bare LF is sent as CRLF and a stray CR as a space, so that nothing relayq
// sends can be read as an end of data by a lenient server (SMTP smuggling,
// CVE-2023-51764). A line longer than 998 octets is folded with CRLF SP,
// as Postfix does (RELIABILITY I1).
type dotWriter struct {
	w     octetWriter
	n     int  // octets of the current line on the wire
	cr    bool // a CR was seen and not yet written
	stuff bool // dot-stuff (DATA); false for BDAT
	chunk func()
}

// octetWriter is where dotWriter writes: the connection's buffer (DATA)
// or a chunk buffer (BDAT).
type octetWriter interface {
	io.Writer
	io.ByteWriter
	io.StringWriter
}

func newDotWriter(w *bufio.Writer, chunk func()) *dotWriter {
	return &dotWriter{w: w, chunk: chunk, stuff: true}
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
	if b == '.' && d.n == 0 && d.stuff {
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

// end ends the body: a stray CR held back is written as a space, and a
// line end is added when the body lacks one.
func (d *dotWriter) end() {
	if d.cr {
		d.cr = false
		d.content(' ')
	}
	if d.n > 0 {
		d.eol()
	}
}

// finish ends the body, writes the terminating "." line (DATA) and
// flushes the connection's buffer.
func (d *dotWriter) finish() error {
	d.end()
	if _, err := d.w.WriteString(".\r\n"); err != nil {
		return err
	}
	if f, ok := d.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
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

// bdatChunk is the size from which the body is cut into another BDAT
// chunk (RFC 3030). A body up to it goes as one "BDAT n LAST" in the same
// flight as MAIL and RCPT; a larger one is streamed in chunks of about
// this size, at most bdatWindow of them unanswered.
const (
	bdatChunk  = 256 << 10
	bdatWindow = 8
)

// chunker cuts a body into BDAT chunks: line ends made CRLF, a stray CR
// made a space and over-long lines folded as for DATA (dotWriter), but
// never dot-stuffed (RFC 3030 §2: a chunk is counted octets, and the
// relay undoes nothing). The body is the same line-oriented message that
// DATA would send, so the MAIL BODY= parameter stays 7BIT or 8BITMIME
// (relayq never declares BINARYMIME).
type chunker struct {
	body io.ReadCloser
	buf  bytes.Buffer
	norm *dotWriter
	rbuf []byte
	eof  bool
}

func newChunker(body io.ReadCloser) *chunker {
	k := &chunker{body: body, rbuf: make([]byte, 32<<10)}
	k.norm = &dotWriter{w: &k.buf}
	return k
}

// next returns the next chunk (valid until the following call) and
// whether it is the last; the last may be empty ("BDAT 0 LAST").
func (k *chunker) next() (data []byte, last bool, err error) {
	k.buf.Reset()
	for !k.eof && k.buf.Len() < bdatChunk {
		n, err := k.body.Read(k.rbuf)
		if n > 0 {
			k.norm.Write(k.rbuf[:n])
		}
		if err == io.EOF {
			k.eof = true
			k.norm.end()
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	return k.buf.Bytes(), k.eof, nil
}

func (k *chunker) close() error { return k.body.Close() }

// bdatLine is the BDAT command for a chunk of n octets.
func bdatLine(n int, last bool) string {
	if last {
		return "BDAT " + strconv.Itoa(n) + " LAST"
	}
	return "BDAT " + strconv.Itoa(n)
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
