package spool

import (
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
