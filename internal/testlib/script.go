package testlib

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a scripted SMTP server on loopback: each connection runs the
// test's script, which writes exact octets (for cases a real server would
// never produce) and reads what the client sends. Every command line read
// is logged (Commands).
type Server struct {
	Port int

	mu  sync.Mutex
	log []string
}

// Serve starts a Server whose connections each run script; it stops when
// the test ends.
func Serve(t testing.TB, script func(c *Conn)) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Port: l.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				script(&Conn{t: t, nc: nc, br: bufio.NewReader(nc), s: s})
			}()
		}
	}()
	return s
}

// ServeSteps starts a Server whose connections each play steps (Conn.Play)
// after the greeting "220 relay.test ESMTP".
func ServeSteps(t testing.TB, steps ...Step) *Server {
	t.Helper()
	return Serve(t, func(c *Conn) {
		c.Send("220 relay.test ESMTP")
		c.Play(steps...)
	})
}

// Commands returns the command lines read so far, on every connection.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Count returns how many commands read so far start with prefix (any case).
func (s *Server) Count(prefix string) int {
	n := 0
	for _, l := range s.Commands() {
		if hasPrefixFold(l, prefix) {
			n++
		}
	}
	return n
}

// Conn is one connection of a Server.
type Conn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	s  *Server
}

// Send writes s, with CRLF added when it does not end in a line end.
func (c *Conn) Send(s string) {
	if !strings.HasSuffix(s, "\n") {
		s += "\r\n"
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.nc.Write([]byte(s))
}

// Cmd reads one command line (logged, line end removed); "" at the end of
// the connection.
func (c *Conn) Cmd() string {
	l, err := c.Line()
	if err != nil {
		return ""
	}
	l = strings.TrimRight(l, "\r\n")
	c.s.mu.Lock()
	c.s.log = append(c.s.log, l)
	c.s.mu.Unlock()
	return l
}

// Line reads one raw line, line end included (not logged).
func (c *Conn) Line() (string, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c.br.ReadString('\n')
}

// Data reads a DATA body up to the final dot (not included).
func (c *Conn) Data() string {
	var b strings.Builder
	for {
		l, err := c.Line()
		if err != nil || l == ".\r\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}

// StartTLS makes the connection TLS, server side, with cert.
func (c *Conn) StartTLS(cert tls.Certificate) {
	tc := tls.Server(c.nc, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err := tc.Handshake(); err != nil {
		c.t.Logf("scripted server handshake: %v", err)
	}
	c.nc = tc
	c.br = bufio.NewReader(tc)
}

// Step says how a scripted server answers a command.
type Step struct {
	// On is the command prefix (any case) the step answers: "EHLO",
	// "MAIL", "RCPT TO:<a@x>", "DATA"; "." is the end of a DATA body; ""
	// any command.
	On string
	// Reply is sent in answer ("" sends nothing); CRLF is added when
	// missing, so "250-a\r\n250 b" is a multi-line reply.
	Reply string
	// Func, when set, gives the reply instead of Reply (it may count
	// commands across a session, say); HangUp closes the connection
	// without a reply.
	Func func(cmd string) string
	// Hangup closes the connection after the reply.
	Hangup bool
	// Once: the step answers only the first command it matches.
	Once bool
}

// HangUp, returned by a Step's Func, closes the connection without a reply.
const HangUp = "\x00hang up"

// Play answers commands until the client quits or hangs up: each command
// gets the first step that matches it, else the default of a plain relay
// ("250 relay.test" to EHLO and HELO, "354 go" to DATA, "250 2.0.0 ok" at
// the end of the body, "221 bye" to QUIT, "250 ok" otherwise). After a 354
// the body is read and its end answered by the "." step.
func (c *Conn) Play(steps ...Step) {
	used := make([]bool, len(steps))
	answer := func(cmd string) (reply string, hangup bool) {
		for i, st := range steps {
			if used[i] || !hasPrefixFold(cmd, st.On) || (st.On == "" && cmd == ".") {
				continue
			}
			if st.Once {
				used[i] = true
			}
			if st.Func != nil {
				r := st.Func(cmd)
				if r == HangUp {
					return "", true
				}
				return r, st.Hangup
			}
			return st.Reply, st.Hangup
		}
		switch u := strings.ToUpper(cmd); {
		case strings.HasPrefix(u, "EHLO"), strings.HasPrefix(u, "HELO"):
			return "250 relay.test", false
		case u == "DATA":
			return "354 go", false
		case u == ".":
			return "250 2.0.0 ok", false
		case u == "QUIT":
			return "221 bye", true
		}
		return "250 ok", false
	}
	for {
		cmd := c.Cmd()
		if cmd == "" {
			return
		}
		reply, hangup := answer(cmd)
		if reply != "" {
			c.Send(reply)
		}
		if hangup {
			return
		}
		if strings.EqualFold(cmd, "DATA") && strings.HasPrefix(reply, "354") {
			c.Data()
			reply, hangup := answer(".")
			if reply != "" {
				c.Send(reply)
			}
			if hangup {
				return
			}
		}
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// String names the server for a failure message.
func (s *Server) String() string { return fmt.Sprintf("scripted server on port %d", s.Port) }
