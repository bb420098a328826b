package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/submit"
)

// stored is one message the test sink received.
type stored struct {
	env  submit.Envelope
	body string
}

// sink is a Submit func that keeps messages in memory. fail, when set,
// is returned after the body has been read; gate, when set, is waited on
// before returning (to observe that no reply comes before Submit returns).
type sink struct {
	mu      sync.Mutex
	msgs    []stored
	fail    error
	gate    chan struct{}
	entered chan struct{}
}

func (k *sink) Submit(ctx context.Context, env submit.Envelope, body io.Reader) (submit.ID, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	if k.entered != nil {
		k.entered <- struct{}{}
	}
	if k.gate != nil {
		<-k.gate
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return "", k.fail
	}
	k.msgs = append(k.msgs, stored{env: env, body: string(b)})
	return submit.ID(fmt.Sprintf("TESTID%06d", len(k.msgs))), nil
}

func (k *sink) all() []stored {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]stored(nil), k.msgs...)
}

// testLog is a slog logger writing into the test log.
func testLog(t testing.TB) *maillog.Logger {
	return maillog.Wrap(slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startTCP serves o on a fresh loopback port and returns the address.
func startTCP(t testing.TB, o Options) (*Server, string) {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog(t)
	}
	if o.AuthFailDelay == 0 {
		o.AuthFailDelay = -1
	}
	if o.Hostname == "" {
		o.Hostname = "relay.test"
	}
	srv, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// raw is a scripted client speaking the protocol line by line.
type raw struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, network, addr string) *raw {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := &raw{t: t, c: c, br: bufio.NewReader(c)}
	r.expect("220")
	return r
}

// reply reads one (multi-line) reply and returns it joined by "\n".
func (r *raw) reply() string {
	r.t.Helper()
	var lines []string
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading reply (so far %q): %v", lines, err)
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect reads a reply and fails unless it starts with prefix.
func (r *raw) expect(prefix string) string {
	r.t.Helper()
	got := r.reply()
	last := got[strings.LastIndex(got, "\n")+1:]
	if !strings.HasPrefix(last, prefix) {
		r.t.Fatalf("reply %q, want %q...", got, prefix)
	}
	return got
}

// send writes s verbatim (no line end added).
func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// startData greets the server and opens a transaction from a@example.com
// to b@example.org, up to the 354 to DATA.
func (r *raw) startData() {
	r.t.Helper()
	r.cmd("EHLO c.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	r.cmd("DATA", "354")
}

// cmd sends a command line and expects a reply starting with prefix.
func (r *raw) cmd(line, prefix string) string {
	r.t.Helper()
	r.send(line + "\r\n")
	return r.expect(prefix)
}

type io_Reader = io.Reader //nolint:revive // short alias for inline Submit funcs in tests

type netipPrefix = netip.Prefix

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func userLookupID(uid int) (string, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func tlsClient(c net.Conn, cfg *tls.Config) *tls.Conn { return tls.Client(c, cfg) }
