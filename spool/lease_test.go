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
