package smarthost

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkDeliver prints messages per second delivered to a go-smtp sink
// (STARTTLS + AUTH PLAIN, as a real smarthost) with 1 and 4 connections,
// with connection reuse and with one connection per message, over:
//
//	loopback        no added latency
//	netns-netem     two network namespaces joined by a veth pair with
//	                `tc qdisc … netem delay 25ms` on each end (50 ms RTT);
//	                needs root and the sch_netem module, skips otherwise
//	userspace-50ms  the same RTT made in process: every read and write of
//	                the client's connection is held back 25 ms and connect
//	                takes 50 ms (for machines without netem)
//
// Run: go test -run '^$' -bench BenchmarkDeliver -benchtime 3s -count 5 ./smarthost
func BenchmarkDeliver(b *testing.B) {
	type link struct {
		name  string
		setup func(b *testing.B) (listen func() (net.Listener, error), dialer Dialer, host string)
	}
	links := []link{
		{"loopback", func(b *testing.B) (func() (net.Listener, error), Dialer, string) {
			return func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }, &net.Dialer{}, "127.0.0.1"
		}},
		{"netns-netem-50ms", setupNetem},
		{"userspace-50ms", func(b *testing.B) (func() (net.Listener, error), Dialer, string) {
			return func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }, &latencyDialer{delay: 25 * time.Millisecond}, "127.0.0.1"
		}},
	}
	modes := []struct {
		name  string
		conns int
		reuse bool
	}{
		{"reuse/conns=1", 1, true},
		{"reuse/conns=4", 4, true},
		{"no-reuse/conns=1", 1, false},
		{"no-reuse/conns=4", 4, false},
	}
	for _, l := range links {
		b.Run(l.name, func(b *testing.B) {
			listen, dialer, host := l.setup(b)
			ca := newCA(b)
			cert := ca.leaf(b, []string{"relay.test", host}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			srv := startServer(b, serverConfig{cert: &cert, users: map[string]string{"user@example.org": "s3cret"}, listen: listen})
			for _, m := range modes {
				b.Run(m.name, func(b *testing.B) {
					c := newTestClient(b, fmt.Sprintf("[%s]:%d", host, srv.port), ca, func(o *Options) {
						o.Dialer = dialer
						o.Credentials = credMap{"*": userCred["relay.test"]}
						o.MaxConns = m.conns
						o.Resolver = &fakeResolver{}
						if !m.reuse {
							o.MaxReuse = time.Nanosecond
						}
						o.Deadline = time.Minute
						o.Timeouts = Timeouts{} // the defaults: a loaded machine must not time out
					})
					msg := testMessage("b@example.com")
					var wg sync.WaitGroup
					var failed error
					var mu sync.Mutex
					next := make(chan struct{}, b.N)
					for i := 0; i < b.N; i++ {
						next <- struct{}{}
					}
					close(next)
					b.ResetTimer()
					start := time.Now()
					for w := 0; w < m.conns; w++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for range next {
								out, err := c.Deliver(context.Background(), msg)
								if err == nil && out.Recipients[0].Status != Delivered {
									err = fmt.Errorf("not delivered: %+v", out.Recipients[0])
								}
								if err != nil {
									mu.Lock()
									failed = err
									mu.Unlock()
								}
							}
						}()
					}
					wg.Wait()
					el := time.Since(start)
					b.StopTimer()
					if failed != nil {
						b.Fatal(failed)
					}
					b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
				})
			}
		})
	}
}

// netnsSeq numbers the namespaces of one test binary.
var netnsSeq int

// setupNetem makes two network namespaces joined by a veth pair with
// 25 ms netem delay on each end, and returns a listener factory in the
// server namespace and a dialer in the client namespace. It skips the
// benchmark with the reason when any step fails (not root, no sch_netem).
func setupNetem(b *testing.B) (func() (net.Listener, error), Dialer, string) {
	netnsSeq++
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, netnsSeq)
	cns, sns := "rqc"+id, "rqs"+id
	va, vb := "rqa"+id, "rqb"+id
	run := func(args ...string) error {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	b.Cleanup(func() {
		exec.Command("ip", "netns", "del", cns).Run()
		exec.Command("ip", "netns", "del", sns).Run()
	})
	steps := [][]string{
		{"ip", "netns", "add", cns},
		{"ip", "netns", "add", sns},
		{"ip", "link", "add", va, "netns", cns, "type", "veth", "peer", "name", vb, "netns", sns},
		{"ip", "-n", cns, "addr", "add", "10.203.0.1/30", "dev", va},
		{"ip", "-n", sns, "addr", "add", "10.203.0.2/30", "dev", vb},
		{"ip", "-n", cns, "link", "set", va, "up"},
		{"ip", "-n", sns, "link", "set", vb, "up"},
		{"ip", "-n", cns, "link", "set", "lo", "up"},
		{"ip", "-n", sns, "link", "set", "lo", "up"},
		{"ip", "netns", "exec", cns, "tc", "qdisc", "add", "dev", va, "root", "netem", "delay", "25ms"},
		{"ip", "netns", "exec", sns, "tc", "qdisc", "add", "dev", vb, "root", "netem", "delay", "25ms"},
	}
	for _, st := range steps {
		if err := run(st...); err != nil {
			b.Skipf("cannot build the 50 ms netns link (needs root, iproute2 and the sch_netem kernel module): %v", err)
		}
	}
	listen := func() (net.Listener, error) {
		var l net.Listener
		err := inNetns(sns, func() (err error) {
			l, err = net.Listen("tcp", "10.203.0.2:0")
			return err
		})
		return l, err
	}
	return listen, netnsDialer{cns}, "10.203.0.2"
}

// inNetns runs fn on a locked OS thread switched into the named network
// namespace; sockets fn creates belong to that namespace. The thread is
// never switched back: it ends with the goroutine (LockOSThread without
// Unlock).
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// netnsDialer dials from inside a network namespace.
type netnsDialer struct{ ns string }

func (d netnsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(d.ns, func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// latencyDialer adds delay in each direction to every connection it makes
// (connect takes one round trip).
type latencyDialer struct{ delay time.Duration }

func (d *latencyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case <-time.After(2 * d.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return newLatencyConn(c, d.delay), nil
}

type chunk struct {
	at  time.Time
	b   []byte
	err error
}

// latencyConn delivers written bytes delay later and makes read bytes
// available delay after they arrived, keeping order (a netem stand-in).
type latencyConn struct {
	net.Conn
	delay   time.Duration
	wq      chan chunk
	rq      chan chunk
	mu      sync.Mutex
	rdl     time.Time
	werr    error
	pending chunk
	closed  chan struct{}
	once    sync.Once
}

func newLatencyConn(c net.Conn, d time.Duration) *latencyConn {
	l := &latencyConn{Conn: c, delay: d, wq: make(chan chunk, 1024), rq: make(chan chunk, 1024), closed: make(chan struct{})}
	go func() {
		for {
			select {
			case ch := <-l.wq:
				time.Sleep(time.Until(ch.at))
				if _, err := l.Conn.Write(ch.b); err != nil {
					l.mu.Lock()
					l.werr = err
					l.mu.Unlock()
				}
			case <-l.closed:
				return
			}
		}
	}()
	go func() {
		for {
			buf := make([]byte, 32*1024)
			n, err := l.Conn.Read(buf)
			select {
			case l.rq <- chunk{at: time.Now().Add(d), b: buf[:n], err: err}:
			case <-l.closed:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return l
}

func (l *latencyConn) Write(p []byte) (int, error) {
	l.mu.Lock()
	err := l.werr
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	select {
	case l.wq <- chunk{at: time.Now().Add(l.delay), b: append([]byte(nil), p...)}:
		return len(p), nil
	case <-l.closed:
		return 0, net.ErrClosed
	}
}

var errLatencyTimeout = &timeoutErr{}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

func (l *latencyConn) Read(p []byte) (int, error) {
	if len(l.pending.b) == 0 && l.pending.err == nil {
		l.mu.Lock()
		dl := l.rdl
		l.mu.Unlock()
		var tc <-chan time.Time
		if !dl.IsZero() {
			t := time.NewTimer(time.Until(dl))
			defer t.Stop()
			tc = t.C
		}
		select {
		case ch := <-l.rq:
			l.pending = ch
		case <-tc:
			return 0, errLatencyTimeout
		case <-l.closed:
			return 0, net.ErrClosed
		}
	}
	time.Sleep(time.Until(l.pending.at))
	n := copy(p, l.pending.b)
	l.pending.b = l.pending.b[n:]
	if n == 0 && l.pending.err != nil {
		return 0, l.pending.err
	}
	return n, nil
}

func (l *latencyConn) SetDeadline(t time.Time) error {
	l.SetReadDeadline(t)
	return l.Conn.SetWriteDeadline(t)
}

func (l *latencyConn) SetReadDeadline(t time.Time) error {
	l.mu.Lock()
	l.rdl = t
	l.mu.Unlock()
	return nil
}

func (l *latencyConn) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Conn.Close()
}
