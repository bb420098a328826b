package testlib

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// ServeSMTP serves a test relay's go-smtp server on ln until the returned
// stop is called or the test ends (stop may be called more than once). It
// stops the way the listener package does, by closing the sockets, not
// with go-smtp's Server.Close: that ends each session from the stopping
// goroutine while the session's own goroutine may be inside a BDAT chunk
// (relayq's client sends BDAT to every relay that offers CHUNKING, which
// go-smtp always does), and go-smtp (v0.25.1, v0.26.0) touches that
// chunk's pipe there without a lock, a data race that go test -race
// reports. stop returns once every session has ended.
func ServeSMTP(t testing.TB, srv *smtp.Server, ln net.Listener) (stop func()) {
	t.Helper()
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	served := make(chan struct{})
	go func() { _ = srv.Serve(tl); close(served) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			tl.closeAll()
			<-served
			// The listener and every socket are closed: Shutdown only
			// waits for the sessions to notice.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("test relay on %s: sessions still open after their sockets were closed: %v", ln.Addr(), err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// trackingListener remembers every connection it accepted so that they
// can be closed together.
type trackingListener struct {
	net.Listener
	mu      sync.Mutex
	stopped bool
	conns   map[net.Conn]struct{}
	close   sync.Once
}

// Close closes the real listener once (go-smtp closes it again from
// Shutdown).
func (l *trackingListener) Close() error {
	var err error
	l.close.Do(func() { err = l.Listener.Close() })
	return err
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return c, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	l.Close()
	for c := range l.conns {
		c.Close()
	}
}
