package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/spool"
)

func attemptMsg(id spool.ID, origin string, addrs ...string) *spool.Message {
	m := &spool.Message{ID: id, Envelope: spool.Envelope{Origin: origin}}
	for _, a := range addrs {
		m.Recipients = append(m.Recipients, spool.Recipient{Addr: a})
	}
	return m
}

// TestAttemptsWait: an attempt reported before or after the wait starts is
// returned; only the first attempt of a message is kept; a wait that runs
// out or whose ready check fails ends with that error and leaves no waiter.
func TestAttemptsWait(t *testing.T) {
	t.Parallel()
	a := NewAttempts()
	m := attemptMsg("AAAAAAAAAAAA", "uid=1000", "x@example.net", "y@example.net")
	first := []spool.Result{{Index: 0, State: spool.Delivered, Reply: spool.Reply{Code: 250, Text: "ok"}, Relay: "r"}, {Index: 1, State: spool.Pending, Reply: spool.Reply{Code: 451, Text: "later"}}}
	a.Record(m, first)
	a.Record(m, []spool.Result{{Index: 1, State: spool.Delivered}}) // the retry: not kept
	got, err := a.Wait(context.Background(), m.ID, nil)
	if err != nil || len(got.Results) != 2 || got.Results[0].Addr != "x@example.net" || got.Results[0].State != spool.Delivered ||
		got.Results[1].State != spool.Pending || got.Results[1].Reply != "451 later" || got.Origin != "uid=1000" {
		t.Fatalf("remembered attempt: %+v %v", got, err)
	}

	// Waiting first: the report arrives later.
	m2 := attemptMsg("BBBBBBBBBBBB", "uid=0", "z@example.net")
	var wg sync.WaitGroup
	var got2 Attempt
	var err2 error
	registered := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		got2, err2 = a.Wait(context.Background(), m2.ID, func() error { close(registered); return nil })
	}()
	<-registered
	a.Record(m2, []spool.Result{{Index: 0, State: spool.Bounced, Reply: spool.Reply{Code: 550, Text: "no"}}})
	wg.Wait()
	if err2 != nil || len(got2.Results) != 1 || got2.Results[0].State != spool.Bounced {
		t.Fatalf("waited attempt: %+v %v", got2, err2)
	}

	// A wait that runs out, and one whose check fails.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.Wait(ctx, "CCCCCCCCCCCC", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out wait: %v", err)
	}
	if _, err := a.Wait(context.Background(), "DDDDDDDDDDDD", func() error { return spool.ErrNotFound }); !errors.Is(err, spool.ErrNotFound) {
		t.Fatalf("failed check: %v", err)
	}
	a.mu.Lock()
	n := len(a.waiters)
	a.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d waiters left behind", n)
	}
}

// TestAttemptsEvict: entries expire after AttemptsTTL and at most
// AttemptsKept are kept, the oldest going first.
func TestAttemptsEvict(t *testing.T) {
	t.Parallel()
	a := NewAttempts()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	id := func(i int) spool.ID {
		return spool.ID(strings.Repeat("0", 8) + string(rune('A'+i/(26*26*26)%26)) + string(rune('A'+i/(26*26)%26)) + string(rune('A'+i/26%26)) + string(rune('A'+i%26)))
	}
	a.Record(attemptMsg(id(0), "", "x@example.net"), nil)
	now = now.Add(AttemptsTTL)
	if _, ok := a.Last(id(0)); ok {
		t.Fatal("expired attempt still returned")
	}
	for i := 1; i <= AttemptsKept+10; i++ {
		a.Record(attemptMsg(id(i), "", "x@example.net"), nil)
	}
	if len(a.first) != AttemptsKept || len(a.order) != AttemptsKept {
		t.Fatalf("%d entries, %d in order, want %d", len(a.first), len(a.order), AttemptsKept)
	}
	if _, ok := a.Last(id(10)); ok {
		t.Error("oldest entry kept beyond AttemptsKept")
	}
	if _, ok := a.Last(id(AttemptsKept + 10)); !ok {
		t.Error("newest entry missing")
	}
}

// TestServerAttempt: POST /v1/queue/{id}/attempt answers with the first
// attempt (waiting for it, the runner woken), with the queued record for a
// held message or when the wait runs out, with gone for a message that
// left the queue; only root, the daemon user and the submitter may ask.
func TestServerAttempt(t *testing.T) {
	t.Parallel()
	sp, _ := openTestSpool(t)
	submit := func(origin string) spool.ID {
		id, err := sp.Submit(context.Background(), spool.Envelope{From: "u@example.com", Origin: origin,
			Recipients: []spool.Recipient{{Addr: "x@example.net"}}}, strings.NewReader("Subject: s\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	const daemonUID = 999
	attempts := NewAttempts()
	var woken sync.WaitGroup
	woken.Add(1)
	wakes := 0
	var mu sync.Mutex
	var srv *Server
	wake := func() {
		mu.Lock()
		defer mu.Unlock()
		wakes++
		if wakes == 1 {
			woken.Done()
		}
	}
	srv = NewServer(ServerOptions{Spool: sp, Attempts: attempts, Wake: wake, AdminUID: daemonUID})
	ask := func(id spool.ID, uid int, query string) (int, AttemptAnswer) {
		req := withUID(httptest.NewRequest("POST", "/v1/queue/"+string(id)+"/attempt"+query, nil), uid)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		var a AttemptAnswer
		if rec.Code == 200 {
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
		}
		return rec.Code, a
	}

	// The submitter waits; the "runner" attempts the message once woken.
	mine := submit("uid=1000 (alice)")
	go func() {
		woken.Wait()
		m, err := sp.Get(mine)
		if err != nil {
			t.Error(err)
			return
		}
		attempts.Record(m, []spool.Result{{Index: 0, State: spool.Delivered, Reply: spool.Reply{Code: 250, Enhanced: "2.0.0", Text: "queued as X"}, Relay: "relay.example"}})
		if err := sp.Delete(mine); err != nil {
			t.Error(err)
		}
	}()
	code, a := ask(mine, 1000, "")
	if code != 200 || a.Attempt == nil || len(a.Attempt.Results) != 1 || a.Attempt.Results[0].State != spool.Delivered || a.Attempt.Results[0].Relay != "relay.example" {
		t.Fatalf("submitter's wait: %d %+v", code, a)
	}
	// Asked again after it left the queue: remembered, still the owner's only.
	if code, a := ask(mine, 1000, ""); code != 200 || a.Attempt == nil {
		t.Fatalf("remembered: %d %+v", code, a)
	}
	if code, _ := ask(mine, 1001, ""); code != 403 {
		t.Fatalf("another user: %d, want 403", code)
	}

	// Someone else's message: 403 without a hint; the daemon user may.
	other := submit("uid=1001")
	if code, _ := ask(other, 1000, ""); code != 403 {
		t.Fatalf("other's message: %d, want 403", code)
	}
	if code, a := ask(other, daemonUID, "?wait=30ms"); code != 200 || a.Queued == nil || a.Queued.ID != other {
		t.Fatalf("not tried within the wait: %d %+v", code, a)
	}

	// Held: answered at once with the record.
	if err := sp.Hold(other); err != nil {
		t.Fatal(err)
	}
	if code, a := ask(other, 0, "?wait=1m"); code != 200 || a.Queued == nil || !a.Queued.Held {
		t.Fatalf("held: %d %+v", code, a)
	}
	// Gone without a remembered attempt (deleted by the operator).
	if err := sp.Delete(other); err != nil {
		t.Fatal(err)
	}
	if code, a := ask(other, 0, ""); code != 200 || !a.Gone {
		t.Fatalf("deleted: %d %+v", code, a)
	}
	if code, _ := ask(other, 0, "?wait=soon"); code != 400 {
		t.Fatalf("bad wait: %d, want 400", code)
	}
}
