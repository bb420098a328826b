package smarthost

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

// rawConn is one connection of a scripted raw relay: the test
// writes exact octets, for cases a real server would never produce.
type rawConn struct {
	t   testing.TB
	nc  net.Conn
	br  *bufio.Reader
	mu  *sync.Mutex
	log *[]string
}

func (c *rawConn) send(s string) {
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.nc.Write([]byte(s))
}

// cmd reads one command line; "" on EOF.
func (c *rawConn) cmd() string {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		return ""
	}
	l = strings.TrimRight(l, "\r\n")
	c.mu.Lock()
	*c.log = append(*c.log, l)
	c.mu.Unlock()
	return l
}

// data reads a DATA body up to the final dot.
func (c *rawConn) data() string {
	var b strings.Builder
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return b.String()
		}
		if l == ".\r\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}

func (c *rawConn) startTLS(cert tls.Certificate) {
	tc := tls.Server(c.nc, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err := tc.Handshake(); err != nil {
		c.t.Logf("raw server handshake: %v", err)
	}
	c.nc = tc
	c.br = bufio.NewReader(tc)
}

// serveSMTP answers a plain, well-behaved session from here on.
func (c *rawConn) serveSMTP(ehlo string) {
	for {
		l := c.cmd()
		u := strings.ToUpper(l)
		switch {
		case l == "":
			return
		case strings.HasPrefix(u, "EHLO"):
			c.send(ehlo)
		case strings.HasPrefix(u, "MAIL"), strings.HasPrefix(u, "RCPT"), strings.HasPrefix(u, "RSET"):
			c.send("250 2.0.0 ok\r\n")
		case u == "DATA":
			c.send("354 go\r\n")
			c.data()
			c.send("250 2.0.0 queued\r\n")
		case u == "QUIT":
			c.send("221 bye\r\n")
			return
		default:
			c.send("502 5.5.1 no\r\n")
		}
	}
}

type rawServer struct {
	port int
	mu   sync.Mutex
	log  []string
}

func (s *rawServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.log...)
}

func startRaw(t testing.TB, script func(c *rawConn)) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{port: l.Addr().(*net.TCPAddr).Port}
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
				script(&rawConn{t: t, nc: nc, br: bufio.NewReader(nc), mu: &s.mu, log: &s.log})
			}()
		}
	}()
	return s
}

func rawRelay(s *rawServer) string { return fmt.Sprintf("[relay.test]:%d", s.port) }
