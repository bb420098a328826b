package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/wire"
)

// fakeClock is testlib's fake clock as a daemon Clock: its time moves
// only when the test advances it; its timers fire then.
type fakeClock struct{ *testlib.Clock }

func newFakeClock() *fakeClock { return &fakeClock{testlib.NewClock()} }

// TimerAt is testlib.Clock's TimerAt as a daemon Timer.
func (c *fakeClock) TimerAt(at time.Time) Timer { return c.Clock.TimerAt(at) }

// delivery is one Deliver call the fake saw.
type delivery struct {
	msg  *smarthost.Message
	body string
	at   time.Time
}

// fakeRelay is a Deliverer. reply decides each recipient's outcome; nil
// accepts everything. It records every call and the body it read.
type fakeRelay struct {
	clock *fakeClock
	reply func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome
	// err, when set, makes the whole attempt fail (returned as error).
	err func(m *smarthost.Message) error
	// hold, when set, blocks each call until it is closed or ctx ends.
	hold chan struct{}
	dsn  bool // the relay "announces DSN"
	auth bool // report AuthFailed

	mu          sync.Mutex
	calls       []delivery
	perRcpt     map[string]int
	inflight    int
	maxInflight int
}

func (f *fakeRelay) Deliver(ctx context.Context, m *smarthost.Message) (smarthost.Outcome, error) {
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			out := smarthost.Outcome{}
			for _, r := range m.Recipients {
				out.Recipients = append(out.Recipients, smarthost.RcptOutcome{Addr: r.Addr, Status: smarthost.Deferred, Reply: wire.Reply{Enhanced: "4.4.2", Text: "attempt cut off"}})
			}
			return out, ctx.Err()
		}
	}
	rc, err := m.Body()
	if err != nil {
		return smarthost.Outcome{}, err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return smarthost.Outcome{}, err
	}
	var at time.Time
	if f.clock != nil {
		at = f.clock.Now()
	}
	out := smarthost.Outcome{Relay: "sink.test[127.0.0.1]:25", DSN: f.dsn, AuthFailed: f.auth}
	if f.auth {
		out.Kind = smarthost.KindAuth
	}
	var werr error
	if f.err != nil {
		werr = f.err(m)
	}
	f.mu.Lock()
	if f.perRcpt == nil {
		f.perRcpt = map[string]int{}
	}
	f.calls = append(f.calls, delivery{msg: m, body: string(body), at: at})
	for _, r := range m.Recipients {
		f.perRcpt[r.Addr]++
		n := f.perRcpt[r.Addr]
		o := smarthost.RcptOutcome{Addr: r.Addr, Status: smarthost.Delivered, Reply: wire.Reply{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued"}}
		if f.reply != nil {
			o = f.reply(m, r.Addr, n)
			o.Addr = r.Addr
		}
		if werr != nil && o.Status != smarthost.Bounced {
			o.Status = smarthost.Deferred
		}
		out.Recipients = append(out.Recipients, o)
	}
	f.mu.Unlock()
	return out, werr
}

func (f *fakeRelay) deliveries() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]delivery(nil), f.calls...)
}

// notices returns the deliveries from the null sender.
func (f *fakeRelay) notices() []delivery {
	var out []delivery
	for _, d := range f.deliveries() {
		if d.msg.From == "" {
			out = append(out, d)
		}
	}
	return out
}

func temp(code int, enh, text string) smarthost.RcptOutcome {
	return smarthost.RcptOutcome{Status: smarthost.Deferred, Reply: wire.Reply{Code: code, Enhanced: enh, Text: text}}
}

func perm(code int, enh, text string) smarthost.RcptOutcome {
	return smarthost.RcptOutcome{Status: smarthost.Bounced, Reply: wire.Reply{Code: code, Enhanced: enh, Text: text}}
}

func ok() smarthost.RcptOutcome {
	return smarthost.RcptOutcome{Status: smarthost.Delivered, Reply: wire.Reply{Code: 250, Enhanced: "2.0.0", Text: "Ok"}}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a runner on a real spool with a fake clock and relay.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	relay  *fakeRelay
	sp     *spool.Spool
	r      *runner
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, relay *fakeRelay, c runnerConfig) *harness {
	t.Helper()
	clock := newFakeClock()
	if relay == nil {
		relay = &fakeRelay{}
	}
	relay.clock = clock
	path := filepath.Join(t.TempDir(), "queue.db")
	sp, err := spool.Open(path, spool.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	c.Log = maillog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.Clock = clock
	if c.ReportingMTA == "" {
		c.ReportingMTA = "relayq.test"
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Lease == 0 {
		c.Lease = 17 * time.Minute // not a multiple of the test backoffs
	}
	c.Rand = func() float64 { return 0 }
	h := &harness{t: t, clock: clock, relay: relay, sp: sp, logs: logs}
	h.r = newRunner(openSpool{sp}, relay, c)
	t.Cleanup(func() {
		h.stop()
		sp.Close()
	})
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.r.run(ctx, false, 5*time.Second) }()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Error("runner did not stop")
	}
	h.cancel = nil
}

const testBody = "From: sender@example.com\r\nTo: a@example.net\r\nSubject: test\r\nMessage-ID: <t1@example.com>\r\n\r\nhello\r\n"

func (h *harness) submit(from string, rcpts ...string) spool.ID {
	h.t.Helper()
	env := spool.Envelope{From: from, Origin: "test"}
	for _, r := range rcpts {
		addr, notify, _ := strings.Cut(r, " NOTIFY=")
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: addr, Notify: notify, ORcpt: "rfc822;" + addr})
	}
	id, err := h.sp.Submit(context.Background(), env, strings.NewReader(testBody))
	if err != nil {
		h.t.Fatal(err)
	}
	h.r.Kick()
	return id
}

// waitFor polls cond (real time) for up to 10 s.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, h.logs.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// queued returns the messages in the spool.
func (h *harness) queued() []*spool.Message {
	h.t.Helper()
	var out []*spool.Message
	if err := h.sp.List(func(m *spool.Message) error { out = append(out, m); return nil }); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// settled waits until message id is deferred (not leased) with the given
// attempt count and returns it.
func (h *harness) settled(id spool.ID, attempts int) *spool.Message {
	h.t.Helper()
	var m *spool.Message
	h.waitFor("message deferred after attempt", func() bool {
		var err error
		m, err = h.sp.Get(id)
		if err != nil {
			return false
		}
		// Deferred: the next attempt is not the lease expiry any more.
		return m.Attempts == attempts && !m.NextAttempt.Equal(m.LastAttempt.Add(h.r.c.Lease))
	})
	return m
}

func (h *harness) empty() {
	h.t.Helper()
	h.waitFor("empty queue", func() bool { return len(h.queued()) == 0 })
}
