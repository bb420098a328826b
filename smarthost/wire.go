package smarthost

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
)

// Reply bounds (RELIABILITY I2). RFC 5321 §4.5.3.1.5 limits a reply line to
// 512 octets; servers in the wild send longer ones, so relayq accepts up to
// maxReplyLine and refuses anything beyond, and caps the number of lines of
// one reply (a hostile relay must not make relayq buffer without bound).
const (
	maxReplyLine  = 2048
	maxReplyLines = 128
	maxAuthRounds = 16
)

// errReplyTooLong is returned when a reply breaks the I2 bounds.
var errReplyTooLong = errors.New("reply from relay exceeds size limits (RFC 5321 §4.5.3.1)")

// reply is one SMTP reply: the code and its text lines (without the code).
type reply struct {
	Code  int
	Lines []string
}

// enhanced returns the RFC 3463 enhanced status code at the start of the
// first line, or "".
func (r reply) enhanced() string {
	if len(r.Lines) == 0 {
		return ""
	}
	e, _ := splitEnhanced(r.Lines[0])
	return e
}

// text is the reply text, lines joined by "; ", enhanced code removed from
// the first line.
func (r reply) text() string {
	ls := make([]string, len(r.Lines))
	copy(ls, r.Lines)
	if len(ls) > 0 {
		_, ls[0] = splitEnhanced(ls[0])
	}
	return strings.Join(ls, "; ")
}

// String formats the reply as one line, e.g. "550 5.1.1 no such user".
func (r reply) String() string {
	s := strconv.Itoa(r.Code)
	if e := r.enhanced(); e != "" {
		s += " " + e
	}
	if t := r.text(); t != "" {
		s += " " + t
	}
	return s
}

// ReplyError is an SMTP reply that was not the one expected: the relay's
// answer to a command, kept whole for the outcome and the DSN.
type ReplyError struct {
	Command  string // the command verb that got the reply, e.g. "RCPT"
	Code     int
	Enhanced string // RFC 3463 code from the reply, "" when none
	Text     string
}

// Error formats the reply as the relay sent it.
func (e *ReplyError) Error() string {
	s := fmt.Sprintf("%s: %d", e.Command, e.Code)
	if e.Enhanced != "" {
		s += " " + e.Enhanced
	}
	if e.Text != "" {
		s += " " + e.Text
	}
	return s
}

func (r reply) err(command string) *ReplyError {
	return &ReplyError{Command: command, Code: r.Code, Enhanced: r.enhanced(), Text: r.text()}
}

// splitEnhanced splits "5.1.1 text" into ("5.1.1", "text").
func splitEnhanced(s string) (string, string) {
	f, rest, _ := strings.Cut(s, " ")
	parts := strings.Split(f, ".")
	if len(parts) != 3 {
		return "", s
	}
	if parts[0] != "2" && parts[0] != "4" && parts[0] != "5" {
		return "", s
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return "", s
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return "", s
			}
		}
	}
	return f, rest
}

// readReply reads one SMTP reply within the I2 bounds.
func readReply(br *bufio.Reader) (reply, error) {
	var r reply
	for n := 0; ; n++ {
		if n >= maxReplyLines {
			return r, errReplyTooLong
		}
		line, err := readLine(br)
		if err != nil {
			return r, err
		}
		if len(line) < 3 {
			return r, fmt.Errorf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return r, fmt.Errorf("malformed reply code in %q", line)
		}
		if n > 0 && code != r.Code {
			return r, fmt.Errorf("reply code changed within a multi-line reply: %d then %d", r.Code, code)
		}
		r.Code = code
		cont := false
		text := ""
		if len(line) > 3 {
			switch line[3] {
			case '-':
				cont = true
			case ' ':
			default:
				return r, fmt.Errorf("malformed reply line %q", line)
			}
			text = line[4:]
		}
		r.Lines = append(r.Lines, text)
		if !cont {
			return r, nil
		}
	}
}

// readLine reads one CRLF (or LF) terminated line of at most maxReplyLine
// octets.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxReplyLine {
			return "", errReplyTooLong
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	return s, nil
}

// guardConn applies deadlines: each operation runs with its own timeout
// (RFC 5321 §4.5.3.2), never past the whole-delivery deadline (hard).
type guardConn struct {
	net.Conn
	mu   sync.Mutex
	hard time.Time
}

func (g *guardConn) setHard(t time.Time) {
	g.mu.Lock()
	g.hard = t
	g.mu.Unlock()
}

// deadline sets the connection deadline to now+d, clipped to hard.
func (g *guardConn) deadline(d time.Duration) {
	g.mu.Lock()
	t := time.Now().Add(d)
	if !g.hard.IsZero() && g.hard.Before(t) {
		t = g.hard
	}
	g.mu.Unlock()
	g.Conn.SetDeadline(t)
}

// conn is one SMTP client connection (RFC 5321) with RFC 3207 STARTTLS and
// RFC 4954 AUTH. It is relayq's own small client rather than go-smtp's:
// it keeps the banner and the EHLO lists for probe, sets a deadline per
// command, bounds replies and discards plaintext read ahead before TLS.
type conn struct {
	raw   *guardConn
	nc    net.Conn // raw or the tls.Conn over it
	br    *bufio.Reader
	bw    *bufio.Writer
	tls   *tls.ConnectionState
	t     Timeouts
	trace func(dir byte, line string) // optional protocol trace (probe); AUTH payloads redacted

	banner   reply
	ehlo     reply             // the last EHLO reply (after TLS: the post-TLS one)
	ext      map[string]string // from the last EHLO only
	injected int               // plaintext octets found buffered after 220 to STARTTLS
	broken   bool              // a network or protocol error: do not reuse
	sentDot  bool              // the final "." of the current DATA was sent
}

func newConn(nc net.Conn, t Timeouts, trace func(byte, string)) *conn {
	g := &guardConn{Conn: nc}
	c := &conn{raw: g, t: t, trace: trace}
	c.setNet(g)
	return c
}

func (c *conn) setNet(nc net.Conn) {
	c.nc = nc
	c.br = bufio.NewReaderSize(nc, 4096)
	c.bw = bufio.NewWriterSize(nc, 16384)
}

func (c *conn) close() error {
	c.broken = true
	return c.nc.Close()
}

// read reads one reply within timeout d.
func (c *conn) read(d time.Duration) (reply, error) {
	c.raw.deadline(d)
	r, err := readReply(c.br)
	if err != nil {
		c.broken = true
		return r, err
	}
	if c.trace != nil {
		for i, l := range r.Lines {
			sep := "-"
			if i == len(r.Lines)-1 {
				sep = " "
			}
			c.trace('<', fmt.Sprintf("%d%s%s", r.Code, sep, l))
		}
	}
	return r, nil
}

// send writes one command line and flushes it.
func (c *conn) send(d time.Duration, line string, redacted string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("command contains CR or LF: %q", redacted)
	}
	c.raw.deadline(d)
	if c.trace != nil {
		c.trace('>', redacted)
	}
	if _, err := c.bw.WriteString(line + "\r\n"); err != nil {
		c.broken = true
		return err
	}
	if err := c.bw.Flush(); err != nil {
		c.broken = true
		return err
	}
	return nil
}

// sendGroup writes a pipelined command group (RFC 2920) with one flush.
func (c *conn) sendGroup(d time.Duration, lines []string) error {
	c.raw.deadline(d)
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return fmt.Errorf("command contains CR or LF: %q", l)
		}
		if c.trace != nil {
			c.trace('>', l)
		}
		c.bw.WriteString(l + "\r\n")
	}
	if err := c.bw.Flush(); err != nil {
		c.broken = true
		return err
	}
	return nil
}

// cmd sends a command and reads its reply; a reply whose first digit is not
// want is returned as *ReplyError.
func (c *conn) cmd(d time.Duration, want int, verb, line string) (reply, error) {
	return c.cmdRedacted(d, want, verb, line, line)
}

func (c *conn) cmdRedacted(d time.Duration, want int, verb, line, shown string) (reply, error) {
	if err := c.send(d, line, shown); err != nil {
		return reply{}, err
	}
	r, err := c.read(d)
	if err != nil {
		return r, err
	}
	if r.Code/100 != want {
		return r, r.err(verb)
	}
	return r, nil
}

// greet reads the banner.
func (c *conn) greet() error {
	r, err := c.read(c.t.Greeting)
	if err != nil {
		return err
	}
	c.banner = r
	if r.Code != 220 {
		return r.err("greeting")
	}
	return nil
}

// hello sends EHLO (HELO when EHLO is refused with 500/502/504) and keeps the
// extension list of this reply only (RFC 3207 §4.2: after TLS the client
// forgets what it learned before).
func (c *conn) hello(name string) error {
	c.ext = map[string]string{}
	r, err := c.cmd(c.t.Helo, 2, "EHLO", "EHLO "+name)
	if err != nil {
		var re *ReplyError
		if errors.As(err, &re) && (re.Code == 500 || re.Code == 502 || re.Code == 504) {
			r, err = c.cmd(c.t.Helo, 2, "HELO", "HELO "+name)
			if err != nil {
				return err
			}
			c.ehlo = r
			return nil
		}
		return err
	}
	c.ehlo = r
	c.ext = parseEHLO(r.Lines)
	return nil
}

// parseEHLO turns the lines of an EHLO reply (the first is the greeting)
// into keyword → parameters, keywords upper case (RFC 5321 §4.1.1.1).
func parseEHLO(lines []string) map[string]string {
	ext := map[string]string{}
	if len(lines) < 2 {
		return ext
	}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k == "" {
			continue
		}
		ext[strings.ToUpper(k)] = strings.TrimSpace(v)
	}
	return ext
}

// has reports whether the last EHLO offered the extension.
func (c *conn) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// authMechs lists the mechanisms of the last EHLO's AUTH line (upper case).
func (c *conn) authMechs() []string {
	v, ok := c.ext["AUTH"]
	if !ok {
		return nil
	}
	return strings.Fields(strings.ToUpper(v))
}

// maxSize is the SIZE limit the relay announced (0 = none given).
func (c *conn) maxSize() int64 {
	v, ok := c.ext["SIZE"]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// startTLS runs STARTTLS and the handshake. Octets the server sent after its
// 220 reply and before the handshake are thrown away and counted (the
// CVE-2011-0411 injection: they must never be read as a post-TLS reply).
func (c *conn) startTLS(cfg *tls.Config) error {
	if _, err := c.cmd(c.t.StartTLS, 2, "STARTTLS", "STARTTLS"); err != nil {
		return err
	}
	c.injected = c.br.Buffered()
	return c.handshake(cfg)
}

// handshake wraps the raw connection in TLS (implicit TLS or after
// STARTTLS) and forgets every extension learned before.
func (c *conn) handshake(cfg *tls.Config) error {
	tc := tls.Client(c.raw, cfg)
	c.raw.deadline(c.t.TLSHandshake)
	if err := tc.Handshake(); err != nil {
		c.broken = true
		return &tlsError{err: err}
	}
	st := tc.ConnectionState()
	c.tls = &st
	c.ext = nil
	c.setNet(tc)
	return nil
}

// tlsError marks a failed TLS handshake (certificate refused, protocol).
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// auth runs one RFC 4954 AUTH exchange with the SASL client.
func (c *conn) auth(a sasl.Client) error {
	mech, ir, err := a.Start()
	if err != nil {
		return fmt.Errorf("AUTH %s: %w", mech, err)
	}
	line := "AUTH " + mech
	if ir != nil {
		if len(ir) == 0 {
			line += " ="
		} else {
			line += " " + base64.StdEncoding.EncodeToString(ir)
		}
	}
	shown := "AUTH " + mech
	if ir != nil {
		shown += " <redacted>"
	}
	r, err := c.cmdRedacted(c.t.Auth, 0, "AUTH", line, shown)
	if err != nil && r.Code == 0 {
		return err
	}
	for round := 0; ; round++ {
		switch {
		case r.Code == 235:
			return nil
		case r.Code == 334 && round < maxAuthRounds:
			ch, derr := base64.StdEncoding.DecodeString(strings.Join(r.Lines, ""))
			if derr != nil {
				c.cmd(c.t.Auth, 5, "AUTH", "*")
				return fmt.Errorf("AUTH %s: bad challenge from relay: %w", mech, derr)
			}
			resp, nerr := a.Next(ch)
			if nerr != nil {
				// Abort the exchange (RFC 4954 §4); the server answers 501.
				c.cmd(c.t.Auth, 5, "AUTH", "*")
				return fmt.Errorf("AUTH %s: %w", mech, nerr)
			}
			r, err = c.cmdRedacted(c.t.Auth, 0, "AUTH", base64.StdEncoding.EncodeToString(resp), "<redacted>")
			if err != nil && r.Code == 0 {
				return err
			}
		default:
			return r.err("AUTH")
		}
	}
}

// quit says goodbye and closes.
func (c *conn) quit() {
	if !c.broken {
		c.cmd(c.t.Quit, 2, "QUIT", "QUIT")
	}
	c.close()
}
