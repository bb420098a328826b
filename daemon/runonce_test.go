package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/wire"
)

func submitDirect(t *testing.T, path string, n int, rcpt string) []spool.ID {
	t.Helper()
	sp, err := spool.Open(path, spool.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var ids []spool.ID
	for i := 0; i < n; i++ {
		env := spool.Envelope{From: "s@example.com", Recipients: []spool.Recipient{{Addr: rcpt}}}
		id, err := sp.Submit(context.Background(), env, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestRunOnceDeliversWhatIsDueAndExits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	submitDirect(t, path, 20, "a@example.net")
	// Two messages not due yet.
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	later := submitDirectOpen(t, sp, 2)
	for _, id := range later {
		if err := sp.Defer(id, time.Now().Add(time.Hour), "later"); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()

	relay := &fakeRelay{}
	if err := RunOnce(context.Background(), Options{SpoolPath: path, Deliverer: relay, Workers: 4, LockTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if n := len(relay.deliveries()); n != 20 {
		t.Errorf("%d deliveries, want 20", n)
	}
	sp, err = spool.Open(path, spool.Options{LockTimeout: -1})
	if err != nil {
		t.Fatalf("spool left locked: %v", err)
	}
	defer sp.Close()
	st, _ := sp.Stats()
	if st.Count != 2 {
		t.Errorf("%d left, want the 2 not due", st.Count)
	}
}

func submitDirectOpen(t *testing.T, sp *spool.Spool, n int) []spool.ID {
	var ids []spool.ID
	for i := 0; i < n; i++ {
		env := spool.Envelope{From: "s@example.com", Recipients: []spool.Recipient{{Addr: "later@example.net"}}}
		id, err := sp.Submit(context.Background(), env, strings.NewReader("Subject: later\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestRunOnceNeverHoldsTheLockDuringDelivery: while a run is talking to
// the relay, sendmail (a direct submit with a short lock wait) gets the
// spool; two runs and the submitter interleave and every message is
// delivered exactly once.
func TestRunOnceInterleaves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	submitDirect(t, path, 30, "a@example.net")

	var mu sync.Mutex
	seen := map[string]int{}
	lockFree := 0
	relay := &blockingRelay{fn: func(m *smarthost.Message) {
		mu.Lock()
		seen[m.ID]++
		mu.Unlock()
		// In the middle of "network I/O": the lock must be free (other
		// runs hold it only for short transactions).
		sp, err := spool.Open(path, spool.Options{LockTimeout: 2 * time.Second})
		if err == nil {
			sp.Close()
			mu.Lock()
			lockFree++
			mu.Unlock()
		}
		time.Sleep(2 * time.Millisecond)
	}}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- RunOnce(context.Background(), Options{SpoolPath: path, Deliverer: relay, Workers: 2, LockTimeout: 5 * time.Second})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		submitDirect(t, path, 10, "b@example.net")
		errs <- nil
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Messages submitted after both runs finished looking are delivered
	// by a last run (sendmail starts one after each direct submit).
	if err := RunOnce(context.Background(), Options{SpoolPath: path, Deliverer: relay, LockTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 40 {
		t.Errorf("%d messages delivered, want 40", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if lockFree != len(seen) {
		t.Errorf("spool lock free in %d of %d deliveries", lockFree, len(seen))
	}
}

type blockingRelay struct {
	fn func(m *smarthost.Message)
}

func (b *blockingRelay) Deliver(ctx context.Context, m *smarthost.Message) (smarthost.Outcome, error) {
	b.fn(m)
	out := smarthost.Outcome{Relay: "sink"}
	for _, r := range m.Recipients {
		out.Recipients = append(out.Recipients, smarthost.RcptOutcome{Addr: r.Addr, Status: smarthost.Delivered, Reply: wire.Reply{Code: 250, Text: "ok"}})
	}
	return out, nil
}

func TestRunOnceLockedSpool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	submitDirect(t, path, 1, "a@example.net")
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	err = RunOnce(context.Background(), Options{SpoolPath: path, Deliverer: &fakeRelay{}, LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("RunOnce on a held spool: %v", err)
	}
}

// TestRunOnceBounce: a daemonless run bounces a 5xx recipient; the notice
// re-enters the spool (its own short transaction) and goes out in the same
// run; the queue ends empty.
func TestRunOnceBounce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	submitDirect(t, path, 1, "nobody@example.net")
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		if m.From == "" {
			return ok()
		}
		return perm(550, "5.1.1", "no such user")
	}}
	if err := RunOnce(context.Background(), Options{SpoolPath: path, Deliverer: relay, ReportingMTA: "relayq.test"}); err != nil {
		t.Fatal(err)
	}
	ns := relay.notices()
	if len(ns) != 1 || ns[0].msg.Recipients[0].Addr != "s@example.com" {
		t.Fatalf("notices: %d", len(ns))
	}
	rep := parseNotice(t, ns[0].body)
	if rep.rcpts[0].Get("Status") != "5.1.1" {
		t.Errorf("status %q", rep.rcpts[0].Get("Status"))
	}
	sp, err := spool.Open(path, spool.Options{LockTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if st, _ := sp.Stats(); st.Count != 0 {
		t.Errorf("%d left in the queue", st.Count)
	}
}

// TestRunOnceRetriesAfterConfigFix: mail deferred because the
// configuration could not be used (NoRelay) goes with the next daemonless
// run whose configuration can be used, without waiting out its backoff;
// while the configuration stays broken, and for mail the relay deferred
// (a login refused), the backoff holds.
func TestRunOnceRetriesAfterConfigFix(t *testing.T) {
	pol := Policy{BackoffMin: time.Hour, BackoffMax: time.Hour}
	run := func(t *testing.T, path string, d Deliverer) {
		t.Helper()
		if err := RunOnce(context.Background(), Options{SpoolPath: path, Deliverer: d, Policy: pol, LockTimeout: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		first     Deliverer // defers the message
		second    Deliverer // the next run's
		wantCalls int       // deliveries the second run makes
	}{
		{"configuration fixed", NoRelay("configuration error: credentials file mode 0644"), &fakeRelay{}, 1},
		{"still broken", NoRelay("configuration error"), NoRelay("configuration error"), 0},
		{"login refused keeps its backoff", &fakeRelay{auth: true, reply: func(*smarthost.Message, string, int) smarthost.RcptOutcome {
			return smarthost.RcptOutcome{Status: smarthost.Deferred, Reply: wire.Reply{Code: 535, Enhanced: "5.7.8", Text: "bad"}}
		}}, &fakeRelay{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "queue.db")
			submitDirect(t, path, 1, "a@example.net")
			run(t, path, tc.first)
			run(t, path, tc.second)
			calls := 0
			if f, ok := tc.second.(*fakeRelay); ok {
				calls = len(f.deliveries())
			}
			if calls != tc.wantCalls {
				t.Errorf("second run: %d deliveries, want %d", calls, tc.wantCalls)
			}
			sp, err := spool.Open(path, spool.Options{LockTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			if st, _ := sp.Stats(); st.Count != 1-tc.wantCalls {
				t.Errorf("%d left in the queue, want %d", st.Count, 1-tc.wantCalls)
			}
		})
	}
}
