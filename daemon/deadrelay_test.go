package daemon

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/wire"
)

// switchRelay is a go-smtp relay on loopback that refuses every session
// (451 at EHLO) while down, and takes every message once up. It counts
// sessions and messages.
type switchRelay struct {
	up       atomic.Bool
	sessions atomic.Int64
	mu       chan struct{}
	got      map[string]int // Subject → count
}

func startSwitchRelay(t *testing.T) (*switchRelay, string) {
	r := &switchRelay{mu: make(chan struct{}, 1), got: map[string]int{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		r.sessions.Add(1)
		if !r.up.Load() {
			return nil, errors.New("relay down")
		}
		return &switchSession{r: r}, nil
	}))
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testlib.ServeSMTP(t, srv, l)
	return r, "[" + strings.Replace(l.Addr().String(), ":", "]:", 1)
}

type switchSession struct{ r *switchRelay }

func (s *switchSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *switchSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *switchSession) Reset()                               {}
func (s *switchSession) Logout() error                        { return nil }
func (s *switchSession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	subj := ""
	for _, l := range strings.Split(string(b), "\r\n") {
		if strings.HasPrefix(l, "Subject: ") {
			subj = l
		}
	}
	s.r.mu <- struct{}{}
	s.r.got[subj]++
	<-s.r.mu
	return nil
}

func (r *switchRelay) counts() map[string]int {
	r.mu <- struct{}{}
	defer func() { <-r.mu }()
	out := map[string]int{}
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// holding reports a settled dead-relay hold: the gate is closed until a
// later time (no probe in flight) and no message is leased.
func (h *harness) holding() bool {
	until, closed := h.r.gate.closedUntil()
	if !closed || !until.After(h.clock.Now()) {
		return false
	}
	for _, m := range h.queued() {
		if m.NextAttempt.Equal(m.LastAttempt.Add(h.r.c.Lease)) {
			return false
		}
	}
	return true
}

// TestDeadRelayHold: with many messages queued and the relay down, relayq
// does not try one connection per message: after the first failures it
// holds the relay and probes it with one message per hold period; once a
// probe gets through every message goes, each once. Connections to a real
// go-smtp relay are counted; the clock is fake, nothing is timed.
func TestDeadRelayHold(t *testing.T) {
	const n, workers = 40, 4
	relay, spec := startSwitchRelay(t)
	cl, err := smarthost.New(smarthost.Options{Relays: spec, TLS: smarthost.None, HeloName: "client.test", MaxConns: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	clock := newFakeClock()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "queue.db"), spool.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	c := runnerConfig{Workers: workers, Lease: 17 * time.Minute, Clock: clock, Rand: func() float64 { return 0 },
		Log: maillog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	h := &harness{t: t, clock: clock, sp: sp, logs: logs}
	h.r = newRunner(openSpool{sp}, cl, c)
	t.Cleanup(func() { h.stop(); sp.Close() })
	for i := range n {
		env := spool.Envelope{From: "a@example.org", Recipients: []spool.Recipient{{Addr: "b@example.net"}}}
		body := "Subject: m" + string(rune('A'+i%26)) + string(rune('a'+i/26)) + "\r\n\r\nhi\r\n"
		if _, err := sp.Submit(context.Background(), env, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	// quiet: nothing due now, nothing leased.
	quiet := func() bool { return h.holding() }
	h.start()
	h.waitFor("the hold", quiet)
	first := relay.sessions.Load()
	if first < 1 || first > workers {
		t.Fatalf("%d connections for %d messages with the relay down, want 1..%d (the attempts in flight when it closed)", first, n, workers)
	}
	// Every waiting message says why it waits, and none counts an
	// attempt that was not made.
	clock.Advance(time.Second) // all submitted (the fake clock ticks on each reading)
	h.r.Kick()
	h.waitFor("a reason for every message", func() bool {
		for _, m := range h.queued() {
			if m.Reason == "" {
				return false
			}
		}
		return true
	})
	for _, m := range h.queued() {
		if m.Attempts > 1 || (m.Attempts == 0 && !strings.Contains(m.Reason, "not tried: the relay is held until")) || !strings.Contains(m.Reason, "relay down") {
			t.Errorf("%s: %d attempts, reason %q", m.ID, m.Attempts, m.Reason)
		}
	}
	if !strings.Contains(logs.String(), "dead-relay hold") {
		t.Errorf("the hold is not logged:\n%s", logs)
	}
	// Each hold period: one probe, one connection.
	for round := 1; round <= 3; round++ {
		clock.Advance(2 * time.Hour)
		h.r.Kick()
		h.waitFor("the probe", func() bool { return relay.sessions.Load() == first+int64(round) })
		h.waitFor("the hold again", quiet)
		if got := relay.sessions.Load(); got != first+int64(round) {
			t.Fatalf("round %d: %d connections, want %d (one probe)", round, got, first+int64(round))
		}
	}
	// The relay comes back: the probe gets through and every message goes, once.
	relay.up.Store(true)
	clock.Advance(2 * time.Hour)
	h.r.Kick()
	h.empty()
	got := relay.counts()
	if len(got) != n {
		t.Fatalf("%d distinct messages arrived, want %d", len(got), n)
	}
	for s, k := range got {
		if k != 1 {
			t.Errorf("%s arrived %d times", s, k)
		}
	}
	t.Logf("%d messages, relay down for 4 hold periods: %d connection attempts while down", n, first+3)
}

// TestDeadRelayHoldWrongPassword: a login the relay refuses is tried by
// the attempts in flight, then once per hold period, never once per
// message (no account lock-out).
func TestDeadRelayHoldWrongPassword(t *testing.T) {
	relay := &fakeRelay{auth: true, err: func(*smarthost.Message) error { return errors.New("AUTH: 535 5.7.8 authentication failed") }}
	h := newHarness(t, relay, runnerConfig{})
	for range 30 {
		h.submit("a@example.org", "b@example.net")
	}
	h.start()
	quiet := func() bool { return h.holding() }
	h.waitFor("the hold", quiet)
	first := len(relay.deliveries())
	if first < 1 || first > h.r.c.Workers {
		t.Fatalf("%d logins for 30 messages, want 1..%d", first, h.r.c.Workers)
	}
	h.clock.Advance(2 * time.Hour)
	h.r.Kick()
	h.waitFor("the probe", func() bool { return len(relay.deliveries()) == first+1 })
	h.waitFor("the hold again", quiet)
	if got := len(relay.deliveries()); got != first+1 {
		t.Fatalf("%d logins after one hold period, want %d", got, first+1)
	}
}

// TestReloadRetriesConfigDeferrals: mail deferred because the login was
// refused is retried at once after a reload (no clock advance: not after
// its backoff), with the stale reason gone; mail deferred for another
// reason (a 451 from the relay) waits out its backoff.
func TestReloadRetriesConfigDeferrals(t *testing.T) {
	var fixed atomic.Bool
	relay := &fakeRelay{auth: true, err: func(m *smarthost.Message) error {
		if fixed.Load() {
			return nil
		}
		return errors.New("AUTH: 535 5.7.8 authentication failed")
	}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	id := h.submit("a@example.org", "b@example.net")
	m := h.settled(id, 1)
	if m.ReasonKind != smarthost.KindAuth || !m.NextAttempt.After(h.clock.Now()) {
		t.Fatalf("deferred: kind %q next %v", m.ReasonKind, m.NextAttempt)
	}
	// The password is fixed; SIGHUP.
	fixed.Store(true)
	relay.mu.Lock()
	relay.auth = false
	relay.mu.Unlock()
	h.r.configChanged("a reload (SIGHUP)")
	h.empty()
	if n := relay.perRcpt["b@example.net"]; n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
	if !strings.Contains(h.logs.String(), "deferred mail retried at once") {
		t.Errorf("not logged:\n%s", h.logs)
	}

	// A deferral the relay gave for its own reasons is not retried early.
	relay.mu.Lock()
	relay.reply = func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		return smarthost.RcptOutcome{Addr: rcpt, Status: smarthost.Deferred, Reply: wire.Reply{Code: 451, Enhanced: "4.3.0", Text: "later"}}
	}
	relay.mu.Unlock()
	id = h.submit("a@example.org", "c@example.net")
	h.settled(id, 1)
	h.r.configChanged("a reload (SIGHUP)")
	m = h.settled(id, 1)
	if !m.NextAttempt.After(h.clock.Now()) || m.ReasonKind != "" || strings.Contains(m.Reason, "retrying") {
		t.Errorf("a 451 deferral was retried early: %+v", m)
	}
}

// TestPossibleDuplicateLogged: a message whose previous attempt left no
// outcome (a process leased it and died) is delivered and the attempt is
// logged as a possible duplicate, with when the previous attempt started.
func TestPossibleDuplicateLogged(t *testing.T) {
	relay := &fakeRelay{}
	h := newHarness(t, relay, runnerConfig{})
	id := h.submit("a@example.org", "b@example.net")
	if ms, err := h.sp.LeaseDue(h.clock.Now(), 1, h.r.c.Lease); err != nil || len(ms) != 1 {
		t.Fatalf("lease: %v %v", ms, err)
	}
	h.clock.Advance(h.r.c.Lease + time.Minute) // the crashed attempt's lease runs out
	h.start()
	h.empty()
	logs := h.logs.String()
	if !strings.Contains(logs, `"msg":"possible duplicate`) || !strings.Contains(logs, string(id)) || !strings.Contains(logs, "previous_attempt_started") {
		t.Errorf("not logged as a possible duplicate:\n%s", logs)
	}
	if n := len(relay.deliveries()); n != 1 {
		t.Errorf("%d deliveries", n)
	}
}

// TestRunOnceHeldMailHasReason: a delivery run (RunOnce: sendmail without
// the daemon) that finds the relay refusing the login stops trying after
// the attempts in flight, and every message it did not try says why in
// mailq, instead of waiting with no reason at all.
func TestRunOnceHeldMailHasReason(t *testing.T) {
	relay := &fakeRelay{auth: true, err: func(*smarthost.Message) error { return errors.New("AUTH: 535 5.7.8 authentication failed") }}
	h := newHarness(t, relay, runnerConfig{})
	const n = 20
	for range n {
		h.submit("a@example.org", "b@example.net")
	}
	h.clock.Advance(time.Second) // all due
	if err := h.r.run(context.Background(), true, 0); err != nil {
		t.Fatal(err)
	}
	if got := len(relay.deliveries()); got < 1 || got > h.r.c.Workers {
		t.Fatalf("%d logins for %d messages, want 1..%d", got, n, h.r.c.Workers)
	}
	held := 0
	for _, m := range h.queued() {
		switch {
		case m.Attempts > 0 && m.Reason != "":
		case m.Attempts == 0 && strings.Contains(m.Reason, "not tried: the relay is held until") && strings.Contains(m.Reason, "535"):
			held++
		default:
			t.Errorf("%s: %d attempts, reason %q", m.ID, m.Attempts, m.Reason)
		}
	}
	if held == 0 {
		t.Error("no message was held")
	}
}
