package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

func TestSubmitRoundTrip(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 2048, chunkSize - 1, chunkSize, chunkSize + 1,
		chunkSize * chunksPerTx, chunkSize*chunksPerTx + 1, 3*chunkSize*chunksPerTx + 12345}
	for _, n := range sizes {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(rng.UintN(256))
		}
		e := env("sender@example.org", "a@example.com", "b@example.net")
		e.Body8Bit, e.SMTPUTF8 = true, true
		// A reader that returns one byte at a time, or its last data
		// together with io.EOF, must give the same result.
		var r io.Reader = iotest.OneByteReader(bytes.NewReader(body))
		if n%2 == 1 {
			r = iotest.DataErrReader(bytes.NewReader(body))
		}
		id, err := s.Submit(context.Background(), e, r)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		m, err := s.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != id || m.Size != int64(n) || m.From != e.From || len(m.Recipients) != 2 ||
			m.Recipients[1].Addr != "b@example.net" || m.Recipients[1].Notify != "SUCCESS,FAILURE" ||
			m.Recipients[1].ORcpt != "rfc822;b@example.net" || m.Ret != "HDRS" || m.EnvID != "env-1" ||
			!m.Body8Bit || !m.SMTPUTF8 || m.Origin != "uid=1000" || m.Held || m.Attempts != 0 {
			t.Errorf("size %d: record %+v", n, m)
		}
		if !m.Arrival.Equal(c.Now()) && !m.Arrival.After(c.Now()) {
			t.Errorf("size %d: arrival %v before now %v", n, m.Arrival, c.Now())
		}
		if !m.NextAttempt.Equal(m.Arrival) {
			t.Errorf("size %d: new message next attempt %v, want arrival %v", n, m.NextAttempt, m.Arrival)
		}
		if got := readBody(t, s, id); !bytes.Equal(got, body) {
			t.Errorf("size %d: body differs (got %d bytes)", n, len(got))
		}
	}
	checkInvariants(t, s)
}

func TestSubmitResetsRecipientState(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	e := env("", "a@example.com")
	e.Recipients[0].State = Delivered
	e.Recipients[0].Reply = Reply{Code: 250}
	id, err := s.Submit(context.Background(), e, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Get(id)
	if m.Recipients[0].State != Pending || m.Recipients[0].Reply != (Reply{}) || m.From != "" {
		t.Errorf("recipient %+v, from %q", m.Recipients[0], m.From)
	}
}

func TestIDsSortByArrival(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	var ids []ID
	for i := 0; i < 5; i++ {
		ids = append(ids, submit(t, s, "x"))
	}
	c.Add(-time.Hour) // the clock steps back: IDs must still increase
	for i := 0; i < 5; i++ {
		ids = append(ids, submit(t, s, "x"))
	}
	c.Add(2 * time.Hour)
	ids = append(ids, submit(t, s, "x"))
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ID %d %s not after %s", i, ids[i], ids[i-1])
		}
	}
	var listed []ID
	if err := s.List(func(m *Message) error {
		if len(listed) > 0 && !m.Arrival.After(listed[len(listed)-1].Time()) {
			t.Errorf("arrival of %s not after the previous one", m.ID)
		}
		if !m.ID.Time().Equal(m.Arrival) {
			t.Errorf("ID %s time %v, arrival %v", m.ID, m.ID.Time(), m.Arrival)
		}
		listed = append(listed, m.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(ids) {
		t.Fatalf("listed %d, submitted %d", len(listed), len(ids))
	}
	for i := range ids {
		if listed[i] != ids[i] {
			t.Errorf("list[%d] = %s, want %s", i, listed[i], ids[i])
		}
	}
}

func TestIDsUniqueAcrossReopen(t *testing.T) {
	t.Parallel()
	c := newClock()
	path := t.TempDir() + "/queue.db"
	seen := map[ID]bool{}
	var last ID
	for round := 0; round < 4; round++ {
		s, err := Open(path, Options{Now: c.Now}) // the clock does not move
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			id := submit(t, s, "x")
			if seen[id] || id <= last {
				t.Fatalf("round %d: ID %s reused or not increasing (last %s)", round, id, last)
			}
			seen[id], last = true, id
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSubmitErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	big := strings.Repeat("y", 3*chunkSize*chunksPerTx)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		env  Envelope
		body io.Reader
		want error
	}{
		{"no recipients", context.Background(), env("a@b"), strings.NewReader("x"), ErrInvalid},
		{"sender not UTF-8", context.Background(), env("caf\xe9@b", "c@d"), strings.NewReader("x"), ErrInvalid},
		{"recipient not UTF-8", context.Background(), env("a@b", "c@d", "\xff@d"), strings.NewReader("x"), ErrInvalid},
		{"cancelled", cancelled, env("a@b", "c@d"), strings.NewReader("x"), context.Canceled},
		{"read error small", context.Background(), env("a@b", "c@d"), iotest.ErrReader(boom), boom},
		{"read error large", context.Background(), env("a@b", "c@d"),
			io.MultiReader(strings.NewReader(big), iotest.ErrReader(boom)), boom},
		// A body cut short (an SMTP client that hung up before the
		// final dot) is an error, not the end of the body.
		{"unexpected EOF small", context.Background(), env("a@b", "c@d"),
			io.MultiReader(strings.NewReader("Subject: x\r\n"), iotest.ErrReader(io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF},
		{"unexpected EOF large", context.Background(), env("a@b", "c@d"),
			io.MultiReader(strings.NewReader(big), iotest.ErrReader(io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF},
		{"cancelled mid-body", nil, env("a@b", "c@d"), nil, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t)
			ctx, body := tt.ctx, tt.body
			if ctx == nil {
				// Cancel once the first large transaction is under way.
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(context.Background())
				defer cancel()
				body = io.MultiReader(strings.NewReader(big), readerFunc(func([]byte) (int, error) {
					cancel()
					return 0, io.EOF
				}), strings.NewReader(big))
			}
			id, err := s.Submit(ctx, tt.env, body)
			if err == nil {
				t.Fatalf("Submit = %s, want an error", id)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			st, err := s.Stats()
			if err != nil || st.Count != 0 {
				t.Errorf("stats %+v, %v: a failed submit left a message", st, err)
			}
			checkInvariants(t, s)
		})
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestNotFound(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	id := submit(t, s, "x")
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func(ID) error{
		"Get":      func(id ID) error { _, err := s.Get(id); return err },
		"OpenBody": func(id ID) error { _, err := s.OpenBody(id); return err },
		"Update":   func(id ID) error { return s.Update(id, nil) },
		"Defer":    func(id ID) error { return s.Defer(id, time.Now(), "x") },
		"Delete":   s.Delete,
		"Hold":     s.Hold,
		"Release":  s.Release,
	}
	for name, op := range ops {
		for _, bad := range []ID{id, "", "not-an-id", "../../etc/passwd", "0000000000000"} {
			if err := op(bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s(%q) = %v, want ErrNotFound", name, bad, err)
			}
		}
	}
}

func TestLeaseDue(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	a := submit(t, s, "a")
	c.Add(time.Second)
	b := submit(t, s, "b")
	c.Add(time.Second)
	h := submit(t, s, "held")
	if err := s.Hold(h); err != nil {
		t.Fatal(err)
	}
	now := c.Add(time.Second)

	if got, err := s.LeaseDue(now, 0, time.Minute); err != nil || len(got) != 0 {
		t.Errorf("max 0: %v, %v", got, err)
	}
	if _, err := s.LeaseDue(now, 1, 0); err == nil {
		t.Error("lease 0: no error")
	}
	got, err := s.LeaseDue(now, 1, time.Minute)
	if err != nil || len(got) != 1 || got[0].ID != a {
		t.Fatalf("first lease: %v, %v; want %s", got, err, a)
	}
	m := got[0]
	if m.Attempts != 1 || !m.LastAttempt.Equal(now) || !m.NextAttempt.Equal(now.Add(time.Minute)) {
		t.Errorf("leased record %+v", m)
	}
	// The attempt is on disk before LeaseDue returned.
	if g, _ := s.Get(a); g.Attempts != 1 || !g.NextAttempt.Equal(now.Add(time.Minute)) {
		t.Errorf("stored %+v", g)
	}
	got, err = s.LeaseDue(now, 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].ID != b {
		t.Fatalf("second lease: %v, %v; want only %s (held %s never due)", got, err, b, h)
	}
	if got, _ := s.LeaseDue(now.Add(59*time.Second), 10, time.Minute); len(got) != 0 {
		t.Errorf("leased messages due again before the lease ran out: %v", got)
	}
	next, ok, err := s.NextDue()
	if err != nil || !ok || !next.Equal(now.Add(time.Minute)) {
		t.Errorf("NextDue = %v %v %v, want the lease expiry", next, ok, err)
	}
	// The worker "crashed": after the lease the message is due again.
	later := now.Add(time.Minute)
	got, err = s.LeaseDue(later, 10, time.Minute)
	if err != nil || len(got) != 2 || got[0].ID != a || got[1].ID != b || got[0].Attempts != 2 {
		t.Fatalf("after lease expiry: %v, %v", got, err)
	}
	// Defer ends the lease with a new time and reason.
	if err := s.Defer(a, later.Add(5*time.Minute), "451 try later"); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Get(a); g.Reason != "451 try later" || !g.NextAttempt.Equal(later.Add(5*time.Minute)) {
		t.Errorf("deferred %+v", g)
	}
	if err := s.Release(h); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LeaseDue(later, 10, time.Minute)
	if len(got) != 1 || got[0].ID != h {
		t.Errorf("released message not due: %v", got)
	}
	checkInvariants(t, s)
}

func TestNextDueEmptyAndHeld(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	if _, ok, err := s.NextDue(); ok || err != nil {
		t.Errorf("empty: %v %v", ok, err)
	}
	id := submit(t, s, "x")
	if err := s.Hold(id); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.NextDue(); ok || err != nil {
		t.Errorf("only held: %v %v", ok, err)
	}
	if err := s.Hold(id); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := s.Release(id); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(id); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Get(id)
	if next, ok, err := s.NextDue(); !ok || err != nil || !next.Equal(m.NextAttempt) {
		t.Errorf("released: %v %v %v, want %v", next, ok, err, m.NextAttempt)
	}
	checkInvariants(t, s)
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	id, err := s.Submit(context.Background(), env("s@example.org", "a@x", "b@x", "c@x"), strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		results []Result
		wantErr bool
		want    [3]State
	}{
		{"index out of range", []Result{{Index: 0, State: Delivered}, {Index: 3, State: Delivered}}, true, [3]State{}},
		{"negative index", []Result{{Index: -1, State: Delivered}}, true, [3]State{}},
		{"invalid state", []Result{{Index: 0, State: 7}}, true, [3]State{}},
		{"deferred keeps pending", []Result{{Index: 0, State: Pending, Reply: Reply{Code: 451, Enhanced: "4.3.0", Text: "later"}}}, false, [3]State{}},
		{"deliver one, bounce one", []Result{
			{Index: 0, State: Delivered, Reply: Reply{Code: 250, Enhanced: "2.0.0", Text: "ok"}, Relay: "relay.example:587"},
			{Index: 2, State: Bounced, Reply: Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}, Relay: "relay.example:587"},
		}, false, [3]State{Delivered, Pending, Bounced}},
		{"final states stick", []Result{{Index: 0, State: Pending}, {Index: 2, State: Delivered}}, false, [3]State{Delivered, Pending, Bounced}},
		{"empty", nil, false, [3]State{Delivered, Pending, Bounced}},
	}
	for _, tt := range tests {
		c.Add(time.Second)
		err := s.Update(id, tt.results)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		m, _ := s.Get(id)
		for i, want := range tt.want {
			if m.Recipients[i].State != want {
				t.Errorf("%s: recipient %d state %d, want %d", tt.name, i, m.Recipients[i].State, want)
			}
		}
	}
	m, _ := s.Get(id)
	if r := m.Recipients[2]; r.Reply != (Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}) || r.Relay != "relay.example:587" || r.Updated.IsZero() {
		t.Errorf("bounced recipient %+v", r)
	}
	if r := m.Recipients[1]; r.Reply.Code != 0 {
		t.Errorf("untouched recipient %+v", r)
	}
	// A message whose recipients are all final stays until Delete.
	if err := s.Update(id, []Result{{Index: 1, State: Delivered}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); err != nil {
		t.Errorf("all-final message gone before Delete: %v", err)
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s)
}

func TestHoldWhileLeased(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	id := submit(t, s, "x")
	now := c.Add(time.Second)
	if got, _ := s.LeaseDue(now, 1, time.Minute); len(got) != 1 {
		t.Fatal("not leased")
	}
	if err := s.Hold(id); err != nil {
		t.Fatal(err)
	}
	if err := s.Defer(id, now, "deferred while held"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LeaseDue(now.Add(time.Hour), 10, time.Minute); len(got) != 0 {
		t.Errorf("held message leased after Defer: %v", got)
	}
	if m, _ := s.Get(id); !m.Held || m.Reason != "deferred while held" {
		t.Errorf("record %+v", m)
	}
	checkInvariants(t, s)
}

func TestFlush(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	var ids []ID
	for i := 0; i < 5; i++ {
		ids = append(ids, submit(t, s, "x"))
	}
	now := c.Add(time.Second)
	// 0 and 1 deferred far ahead, 2 held, 3 leased by a worker, 4 due now.
	for _, id := range ids[:2] {
		if err := s.Defer(id, now.Add(time.Hour), "later"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Hold(ids[2]); err != nil {
		t.Fatal(err)
	}
	got, err := s.LeaseDue(now, 1, time.Hour)
	if err != nil || len(got) != 1 || got[0].ID != ids[3] {
		t.Fatalf("lease: %v %v", got, err)
	}
	n, err := s.Flush()
	if err != nil || n != 3 {
		t.Fatalf("Flush = %d, %v; want 3 (two deferred + one due; not held, not leased)", n, err)
	}
	for i, want := range []bool{true, true, false, false, true} {
		m, _ := s.Get(ids[i])
		if due := !m.NextAttempt.After(now) && !m.Held; due != want {
			t.Errorf("message %d due=%v want %v (%+v)", i, due, want, m)
		}
	}
	checkInvariants(t, s)
}

func TestFlushMany(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	const n = 2*maxBatch + 123 // more than one Flush transaction
	addBulk(t, s, n, c.Now().Add(time.Hour))
	got, err := s.Flush()
	if err != nil || got != n {
		t.Fatalf("Flush = %d, %v; want %d", got, err, n)
	}
	leased, err := s.LeaseDue(c.Now(), 2*n, time.Minute)
	if err != nil || len(leased) != n {
		t.Fatalf("leased %d, %v", len(leased), err)
	}
	checkInvariants(t, s)
}

func TestStatsAndList(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	if st, err := s.Stats(); err != nil || st != (Stats{}) {
		t.Errorf("empty stats %+v %v", st, err)
	}
	first := c.Now()
	a := submit(t, s, "12345")
	c.Add(time.Minute)
	b := submit(t, s, strings.Repeat("z", 100000))
	submit(t, s, "")
	if err := s.Hold(b); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 3 || st.Held != 1 || st.Bytes != 100005 || !st.Oldest.Equal(first) {
		t.Errorf("stats %+v", st)
	}
	stop := errors.New("stop")
	var seen []ID
	err = s.List(func(m *Message) error {
		seen = append(seen, m.ID)
		return stop
	})
	if !errors.Is(err, stop) || len(seen) != 1 || seen[0] != a {
		t.Errorf("List stop: %v %v", err, seen)
	}
	if err := s.Delete(a); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Count != 2 || st.Bytes != 100000 || !st.Oldest.Equal(b.Time()) {
		t.Errorf("after delete %+v", st)
	}
	checkInvariants(t, s)
}

func TestListManyPagesWhileModifying(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	want := addBulk(t, s, 2*listPage+7, time.Time{})
	var got []ID
	if err := s.List(func(m *Message) error {
		got = append(got, m.ID)
		if len(got)%100 != 1 {
			return nil
		}
		// fn runs outside any transaction: it may write.
		return s.Hold(m.ID)
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d of %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("list[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	checkInvariants(t, s)
}

func TestOpenBodyDeletedWhileReading(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	id := submit(t, s, strings.Repeat("q", 3*chunkSize))
	r, err := s.OpenBody(id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrNotFound) {
		t.Errorf("read after delete: %v, want ErrNotFound", err)
	}
}

func TestConcurrentOperations(t *testing.T) {
	t.Parallel()
	s, c := openTest(t)
	var wg sync.WaitGroup
	ids := make(chan ID, 400)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				id, err := s.Submit(context.Background(), env("a@b", "c@d"), strings.NewReader(strings.Repeat("m", i*997)))
				if err != nil {
					t.Error(err)
					return
				}
				ids <- id
			}
		}()
	}
	done := make(chan struct{})
	var delivered sync.Map
	go func() {
		defer close(done)
		for n := 0; n < 400; {
			got, err := s.LeaseDue(c.Now().Add(time.Hour), 16, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			for _, m := range got {
				if err := s.Update(m.ID, []Result{{Index: 0, State: Delivered}}); err != nil {
					t.Error(err)
				}
				if err := s.Delete(m.ID); err != nil {
					t.Error(err)
				}
				delivered.Store(m.ID, true)
				n++
			}
			if len(got) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	wg.Wait()
	close(ids)
	<-done
	for id := range ids {
		if _, ok := delivered.Load(id); !ok {
			t.Errorf("%s never leased", id)
		}
	}
	if st, _ := s.Stats(); st.Count != 0 {
		t.Errorf("left %+v", st)
	}
	checkInvariants(t, s)
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	id := submit(t, s, "x")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Submit(context.Background(), env("a@b", "c@d"), strings.NewReader("x")); err == nil {
		t.Error("Submit after Close succeeded")
	}
	if _, err := s.Get(id); err == nil {
		t.Error("Get after Close succeeded")
	}
	if err := s.Compact(); err == nil {
		t.Error("Compact after Close succeeded")
	}
}
