package spool

import (
	"context"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A due entry that disagrees with its record (never written by this code,
// but possible in a damaged file) is leased at most once, and one for a
// held record is dropped.
func TestLeaseDueStaleEntries(t *testing.T) {
	s, c := openTest(t)
	a := submit(t, s, "a")
	h := submit(t, s, "h")
	if err := s.Hold(h); err != nil {
		t.Fatal(err)
	}
	past := c.Now().Add(-time.Hour)
	if err := s.c.do(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketDue).Put(dueKey(past, a), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketDue).Put(dueKey(past, h), nil)
	}); err != nil {
		t.Fatal(err)
	}
	now := c.Add(time.Second)
	got, err := s.LeaseDue(now, 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].ID != a {
		t.Fatalf("first lease: %v %v", got, err)
	}
	if got, _ := s.LeaseDue(now, 10, time.Minute); len(got) != 0 {
		t.Fatalf("leased again within the lease: %v", got)
	}
	checkInvariants(t, s) // the stale entries are gone
}

// LeaseDue with nothing due (the runner asks after every attempt) commits
// nothing: a write transaction costs two fsyncs, and a submitter would
// wait behind it.
func TestLeaseDueNothingDueNoCommit(t *testing.T) {
	s, c := openTest(t)
	txid := func() int {
		var id int
		if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	before := txid()
	if got, err := s.LeaseDue(c.Now(), 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("empty spool: %v %v", got, err)
	}
	id := submit(t, s, "x")
	if got, err := s.LeaseDue(c.Now(), 10, time.Minute); err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("lease: %v %v", got, err)
	}
	after := txid()
	for i := 0; i < 3; i++ {
		if got, err := s.LeaseDue(c.Now(), 10, time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("leased within the lease: %v %v", got, err)
		}
	}
	if got := txid(); got != after || after != before+2 {
		t.Errorf("transactions: %d before, %d after submit and lease, %d after empty LeaseDue calls; want +2 then no change", before, after, got)
	}
}

// A leased message reports its lease (mailq shows it as active with '*');
// Defer ends it.
func TestLeaseUntilReported(t *testing.T) {
	s, c := openTest(t)
	id := submit(t, s, "x")
	if m, err := s.Get(id); err != nil || !m.LeaseUntil.IsZero() {
		t.Fatalf("new message: lease %v, %v", m.LeaseUntil, err)
	}
	now := c.Now()
	if _, err := s.LeaseDue(now, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Get(id); err != nil || !m.LeaseUntil.Equal(now.Add(time.Minute)) {
		t.Fatalf("leased: lease %v, %v; want %v", m.LeaseUntil, err, now.Add(time.Minute))
	}
	if err := s.Defer(id, now.Add(time.Hour), "later"); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Get(id); err != nil || !m.LeaseUntil.IsZero() {
		t.Fatalf("deferred: lease %v, %v", m.LeaseUntil, err)
	}
}

// Reschedule records the outcomes and ends the lease in one commit; an
// invalid result writes nothing.
func TestReschedule(t *testing.T) {
	s, c := openTest(t)
	id, err := s.Submit(context.Background(), env("a@example.org", "x@example.com", "y@example.com"), strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	now := c.Now()
	if _, err := s.LeaseDue(now, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	txid := func() int {
		var n int
		_ = s.db.View(func(tx *bolt.Tx) error { n = tx.ID(); return nil })
		return n
	}
	before := txid()
	bad := []Result{{Index: 5, State: Delivered}}
	if err := s.Reschedule(id, bad, now.Add(time.Hour), "x"); err == nil {
		t.Fatal("out-of-range result accepted")
	}
	next := now.Add(10 * time.Minute)
	res := []Result{
		{Index: 0, State: Delivered, Reply: Reply{Code: 250, Text: "ok"}, Relay: "r[127.0.0.1]:25"},
		{Index: 1, State: Pending, Reply: Reply{Code: 451, Enhanced: "4.3.0", Text: "later"}},
	}
	if err := s.Reschedule(id, res, next, "r said: 451 4.3.0 later"); err != nil {
		t.Fatal(err)
	}
	if got := txid(); got != before+1 {
		t.Errorf("%d commits, want 1", got-before)
	}
	m, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Recipients[0].State != Delivered || m.Recipients[0].Relay != "r[127.0.0.1]:25" || m.Recipients[1].State != Pending || m.Recipients[1].Reply.Code != 451 {
		t.Errorf("recipients %+v", m.Recipients)
	}
	if !m.NextAttempt.Equal(next) || !m.LeaseUntil.IsZero() || m.Reason != "r said: 451 4.3.0 later" {
		t.Errorf("schedule: next %v lease %v reason %q", m.NextAttempt, m.LeaseUntil, m.Reason)
	}
	if d, ok, err := s.NextDue(); err != nil || !ok || !d.Equal(next) {
		t.Errorf("NextDue = %v %v %v, want %v", d, ok, err, next)
	}
	checkInvariants(t, s)
}
