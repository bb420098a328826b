package smarthost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkRoundTrips relays the 2 KB benchmark message (bench/msg.eml)
// to the real Postfix test smarthost (STARTTLS, AUTH) through a proxy
// that holds every transfer back 25 ms in each direction (50 ms round
// trip) and counts round trips: a round trip is a client flight that
// follows a reply, so the client waited for the relay before sending.
// One connection, reused for every message after the first (its set-up
// is not counted). It prints round trips per message and messages per
// second, with the relay's PIPELINING and CHUNKING (MAIL, RCPT and
// "BDAT n LAST" with the body in one flight, RFC 3030) and with
// PIPELINING alone (the client told to ignore CHUNKING: DATA).
//
// Run (the smarthost is started by test/smarthost/start.sh DIR):
//
//	RELAYQ_TEST_SMARTHOST_ENV=DIR/env go test -run '^$' -bench BenchmarkRoundTrips -benchtime 40x ./smarthost
func BenchmarkRoundTrips(b *testing.B) {
	env := realEnv(b)
	raw, err := os.ReadFile("../bench/msg.eml")
	if err != nil {
		b.Fatal(err)
	}
	body := strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n", "\r\n")
	good := Credential{User: env["SMARTHOST_USER"], Password: Secret(env["SMARTHOST_PASS"]), Source: "env"}
	for _, mode := range []struct {
		name     string
		chunking bool
	}{{"pipelining+chunking", true}, {"pipelining", false}} {
		b.Run(mode.name, func(b *testing.B) {
			p := startDelayProxy(b, net.JoinHostPort(env["SMARTHOST_ADDR"], env["SMARTHOST_SUBMISSION_PORT"]), 25*time.Millisecond)
			var trace strings.Builder
			c := realClient(b, env, fmt.Sprintf("[127.0.0.1]:%d", p.port()), good, func(o *Options) {
				o.MaxConns = 1
				o.Trace = func(l string) {
					if strings.HasPrefix(l, "> BDAT") || strings.HasPrefix(l, "> DATA") {
						trace.WriteString(l + "\n")
					}
				}
			})
			dataOnly(c, !mode.chunking)
			msg := &Message{ID: "bench", From: "sender@relayq.test", Recipients: []Recipient{{Addr: "rcpt@example.net"}}, Size: int64(len(body))}
			msg.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
			deliver := func() {
				out, err := c.Deliver(context.Background(), msg)
				if err != nil || out.Recipients[0].Status != Delivered {
					b.Fatalf("Deliver: %v %+v", err, out)
				}
			}
			deliver() // connection set-up, TLS, AUTH: not counted
			p.reset()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				deliver()
			}
			el := time.Since(start)
			b.StopTimer()
			turns, conns := p.counts()
			if conns != 0 {
				b.Errorf("%d new connections, want none (the first one reused)", conns)
			}
			verb := "> DATA"
			if mode.chunking {
				verb = "> BDAT"
			}
			if !strings.Contains(trace.String(), verb) {
				b.Errorf("no %q in the trace: the relay does not offer what this mode needs", verb)
			}
			b.ReportMetric(float64(turns)/float64(b.N), "roundtrips/msg")
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
		})
	}
}

// delayProxy forwards TCP connections to a target, holding every
// transfer back by delay in each direction (order kept), and counts the
// client's flights that follow a reply.
type delayProxy struct {
	ln    net.Listener
	to    string
	delay time.Duration

	mu    sync.Mutex
	turns int
	conns int
}

func startDelayProxy(tb testing.TB, to string, delay time.Duration) *delayProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &delayProxy{ln: ln, to: to, delay: delay}
	go p.serve()
	tb.Cleanup(func() { ln.Close() })
	return p
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) reset() {
	p.mu.Lock()
	p.turns, p.conns = 0, 0
	p.mu.Unlock()
}

func (p *delayProxy) counts() (turns, conns int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.turns, p.conns
}

func (p *delayProxy) serve() {
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", p.to)
		if err != nil {
			cc.Close()
			continue
		}
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		replied := false // the relay spoke since the client's last flight
		var once sync.Once
		closeBoth := func() { once.Do(func() { cc.Close(); sc.Close() }) }
		go p.pipe(cc, sc, closeBoth, func() {
			p.mu.Lock()
			if replied {
				p.turns++
				replied = false
			}
			p.mu.Unlock()
		})
		go p.pipe(sc, cc, closeBoth, func() {
			p.mu.Lock()
			replied = true
			p.mu.Unlock()
		})
	}
}

// pipe copies src to dst, each read delivered delay after it arrived;
// seen is called for each read.
func (p *delayProxy) pipe(src, dst net.Conn, closeBoth func(), seen func()) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	q := make(chan chunk, 1<<14)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ch := range q {
			time.Sleep(time.Until(ch.at))
			if _, err := dst.Write(ch.b); err != nil {
				closeBoth()
				for range q {
				}
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			seen()
			q <- chunk{at: time.Now().Add(p.delay), b: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			close(q)
			<-done
			if !errors.Is(err, net.ErrClosed) {
				closeBoth()
			}
			return
		}
	}
}
