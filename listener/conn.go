package listener

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relayq/relayq/internal/unixsock"
)

// connListener sits between a real listener and go-smtp's Serve: it
// enforces the connection cap, reads the peer's credentials on unix
// sockets and hands out conns whose reads carry the command or data
// timeout and can be woken for a graceful shutdown.
type connListener struct {
	s    *Server
	ln   net.Listener
	unix bool

	mu      sync.Mutex
	active  map[*conn]struct{}
	done    sync.WaitGroup // one per accepted conn, Done when go-smtp closes it
	stopped atomic.Bool
}

func newConnListener(s *Server, ln net.Listener, unix bool) *connListener {
	return &connListener{s: s, ln: ln, unix: unix, active: map[*conn]struct{}{}}
}

// Accept returns the next connection within the cap. Connections over the
// cap are answered "421 4.3.2" and closed here, never reaching go-smtp.
func (l *connListener) Accept() (net.Conn, error) {
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		n := len(l.active)
		l.mu.Unlock()
		if n >= l.s.o.MaxConnections {
			l.s.log.Warn("connection refused: too many connections", "client", describePeer(raw), "limit", l.s.o.MaxConnections)
			go refuse(raw, "421 4.3.2 Too many connections, try again later")
			continue
		}
		c := &conn{Conn: raw, l: l}
		if l.unix {
			cred, err := unixsock.PeerCred(raw)
			if err != nil {
				l.s.log.Error("connection refused: no peer credentials", "client", "unix", "error", err)
				go refuse(raw, "421 4.3.0 Cannot identify the local user")
				continue
			}
			c.uid, c.pid = int(cred.Uid), int(cred.Pid)
		}
		l.mu.Lock()
		if l.stopped.Load() {
			l.mu.Unlock()
			raw.Close()
			return nil, net.ErrClosed
		}
		l.active[c] = struct{}{}
		l.done.Add(1)
		l.mu.Unlock()
		return c, nil
	}
}

// Close closes the real listener (go-smtp calls it from its own Close).
func (l *connListener) Close() error { return l.ln.Close() }

// Addr is the real listener's address.
func (l *connListener) Addr() net.Addr { return l.ln.Addr() }

func (l *connListener) stopAccepting() {
	if l.stopped.CompareAndSwap(false, true) {
		l.ln.Close()
	}
}

// wakeIdle makes every connection that is not receiving message data see
// a read timeout now (go-smtp answers "421 4.4.2" and hangs up) and
// returns how many connections are still open.
func (l *connListener) wakeIdle() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.active {
		if !c.inData.Load() {
			c.Conn.SetReadDeadline(time.Now())
		}
	}
	return len(l.active)
}

// closeAll closes the listener and every connection, then waits until
// go-smtp has finished with each. It closes the sockets, not go-smtp's
// Server: Server.Close ends each session from this goroutine while the
// session's own goroutine may be in a BDAT chunk, and go-smtp (v0.25.1,
// v0.26.0) reads and writes that chunk's pipe there without a lock, a
// data race. A closed socket makes every session end on its own goroutine
// (TestCloseDuringBDAT).
func (l *connListener) closeAll() {
	l.stopAccepting()
	l.mu.Lock()
	for c := range l.active {
		c.Conn.Close()
	}
	l.mu.Unlock()
	l.done.Wait()
}

func refuse(c net.Conn, line string) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s\r\n", line)
	c.Close()
}

// conn is one client connection. Each Read gets a fresh deadline: the
// command timeout, or the data timeout while a message is received (a
// per-read idle timeout, as Postfix's smtpd_timeout, instead of go-smtp's
// absolute per-command deadline, so a large message on a slow link is
// not cut off while it keeps moving).
type conn struct {
	net.Conn
	l        *connListener
	uid, pid int // unix sockets: the peer (SO_PEERCRED)
	inData   atomic.Bool
	hangUp   atomic.Bool // set after too many AUTH failures: the next read ends the session
	// ended is set once a read from the client fails or reaches the end
	// of the stream: whatever message data go-smtp hands over after
	// that is incomplete (see completeBody).
	ended atomic.Bool
	once  sync.Once
}

// errShutdown is what an idle connection reads while the server shuts
// down; it is a timeout, so go-smtp answers 421 and hangs up.
var errShutdown = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

func (c *conn) Read(b []byte) (int, error) {
	if c.hangUp.Load() {
		return 0, io.EOF
	}
	for {
		data := c.inData.Load()
		d := c.l.s.o.Timeout
		if data {
			d = c.l.s.o.DataTimeout
		}
		deadline := time.Now().Add(d)
		if err := c.Conn.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		// Checked after the deadline is set: a shutdown that sets its
		// wake-up deadline later is seen by the Read below.
		if !data && c.l.s.closing.Load() {
			return 0, errShutdown
		}
		n, err := c.Conn.Read(b)
		if n == 0 && err != nil && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline) && c.inData.Load() {
			// Woken by a shutdown while a message is on its way: keep
			// receiving it.
			continue
		}
		if err != nil {
			c.ended.Store(true)
		}
		return n, err
	}
}

// Close closes the connection once and tells the listener.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.active, c)
		c.l.mu.Unlock()
		c.l.done.Done()
	})
	return err
}

func describePeer(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "unix"
}
