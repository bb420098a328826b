package smarthost

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/wire"
)

// maxAuthRounds bounds the challenges of one AUTH exchange.
const maxAuthRounds = 16

// reply is one SMTP reply as read (code and text lines); the reader and
// the one-line forms are package wire's, within the I2 bounds.
type reply = wire.RawReply

// ReplyError is a reply of the relay that was not the one expected, kept
// whole for the outcome and the DSN.
type ReplyError = wire.ReplyError

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

// expire ends the operation in progress and every later one at once: the
// attempt's context ended (a drain timeout at SIGTERM, the whole-delivery
// deadline). Only setting the deadline into the past is not enough: the
// next command or reply read (draining a pipelined group, RSET, QUIT)
// would set a new one, minutes away, and wait for a relay that stalls.
func (g *guardConn) expire() {
	past := time.Unix(1, 0)
	g.mu.Lock()
	g.hard = past
	g.mu.Unlock()
	g.Conn.SetDeadline(past)
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

	banner    reply
	ehlo      reply             // the last EHLO reply (after TLS: the post-TLS one)
	ext       map[string]string // from the last EHLO only
	discard   map[string]bool   // EHLO keywords treated as not offered (Options.DiscardEHLO)
	discarded []string          // those the last EHLO offered, in its order
	injected  int               // plaintext octets found buffered after 220 to STARTTLS
	broken    bool              // a network or protocol error: do not reuse
	sentDot   bool              // the final "." of the current DATA was sent
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
	r, err := wire.ReadReply(c.br)
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

// sendGroup writes a pipelined command group (RFC 2920) with one flush;
// payload, when not nil, follows the last line (the octets of a BDAT
// chunk, RFC 3030). Nothing is written when a line holds CR or LF.
func (c *conn) sendGroup(d time.Duration, lines []string, payload []byte) error {
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return fmt.Errorf("command contains CR or LF: %q", l)
		}
	}
	c.raw.deadline(d)
	for _, l := range lines {
		if c.trace != nil {
			c.trace('>', l)
		}
		c.bw.WriteString(l + "\r\n")
	}
	c.bw.Write(payload)
	if err := c.bw.Flush(); err != nil {
		c.broken = true
		return err
	}
	return nil
}

// gone reports, without blocking, that the relay closed an idle pooled
// connection or sent something unasked (a 421 before closing): the
// octets are waiting in the kernel or in the read buffer. A reused
// connection is checked before a transaction is written to it, so that
// a message is not sent where no reply can come.
func (c *conn) gone() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	sc, ok := c.raw.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	dead := false
	rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		// n > 0: octets waiting; n == 0 without error: the relay's FIN.
		dead = err == nil && n >= 0
		return true
	})
	return dead
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
		return r, r.Err(verb)
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
		return r.Err("greeting")
	}
	return nil
}

// hello sends EHLO (HELO when EHLO is refused with 500/502/504) and keeps the
// extension list of this reply only (RFC 3207 §4.2: after TLS the client
// forgets what it learned before).
func (c *conn) hello(name string) error {
	c.ext, c.discarded = map[string]string{}, nil
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
	for _, l := range r.Lines[min(1, len(r.Lines)):] {
		k, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k = strings.ToUpper(k); c.discard[k] {
			c.discarded = append(c.discarded, k)
		}
	}
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

// param is the parameter of an extension the last EHLO offered; ok is
// false when it did not, or when the keyword is one to discard.
func (c *conn) param(ext string) (v string, ok bool) {
	if c.discard[ext] {
		return "", false
	}
	v, ok = c.ext[ext]
	return v, ok
}

// has reports whether the last EHLO offered the extension (and it is not
// one to discard).
func (c *conn) has(ext string) bool {
	_, ok := c.param(ext)
	return ok
}

// authMechs lists the mechanisms of the last EHLO's AUTH line (upper case).
func (c *conn) authMechs() []string {
	v, ok := c.param("AUTH")
	if !ok {
		return nil
	}
	return strings.Fields(strings.ToUpper(v))
}

// maxSize is the SIZE limit the relay announced (0 = none given).
func (c *conn) maxSize() int64 {
	v, ok := c.param("SIZE")
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
			return r.Err("AUTH")
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
