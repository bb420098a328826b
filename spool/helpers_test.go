package spool

import (
	"bytes"
	"context"
	"hash/crc32"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// openTest opens a fresh spool in a temporary directory with a test clock.
func openTest(t testing.TB) (*Spool, *clock) {
	t.Helper()
	c := newClock()
	s, err := Open(filepath.Join(t.TempDir(), "spool", "queue.db"), Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

// env returns an envelope with the given recipients.
func env(from string, rcpts ...string) Envelope {
	e := Envelope{From: from, Ret: "HDRS", EnvID: "env-1", Origin: "uid=1000"}
	for _, r := range rcpts {
		e.Recipients = append(e.Recipients, Recipient{Addr: r, Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;" + r})
	}
	return e
}

// submit queues body for one recipient and fails the test on error.
func submit(t testing.TB, s *Spool, body string) ID {
	t.Helper()
	id, err := s.Submit(context.Background(), env("sender@example.org", "rcpt@example.com"), bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// readBody returns the whole body of id.
func readBody(t testing.TB, s *Spool, id ID) []byte {
	t.Helper()
	r, err := s.OpenBody(id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body of %s: %v", id, err)
	}
	return b
}

// checkInvariants verifies what every operation must keep true: each unheld
// record has exactly one due entry at its NextAttempt, held ones none, every
// chunk belongs to a record, no upload is left, and every body is whole.
func checkInvariants(t testing.TB, s *Spool) {
	t.Helper()
	err := s.view(func(tx *bolt.Tx) error {
		want := map[string]bool{}
		tokens := map[string]bool{}
		if err := tx.Bucket(bucketMsg).ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v)
			if err != nil {
				t.Errorf("record %s: %v", k, err)
				return nil
			}
			tokens[string(r.Body)] = true
			if !r.Held {
				want[string(dueKey(r.NextAttempt, ID(k)))] = true
			}
			return nil
		}); err != nil {
			return err
		}
		got := map[string]bool{}
		_ = tx.Bucket(bucketDue).ForEach(func(k, _ []byte) error {
			got[string(k)] = true
			if !want[string(k)] {
				t.Errorf("due entry %x for %s has no matching unheld record", k[:8], k[8:])
			}
			return nil
		})
		for k := range want {
			if !got[k] {
				t.Errorf("record %s has no due entry", k[8:])
			}
		}
		_ = tx.Bucket(bucketBody).ForEach(func(k, _ []byte) error {
			if !tokens[string(k[:bodyTokenLen])] {
				t.Errorf("orphaned body chunk %x", k)
			}
			return nil
		})
		if n := tx.Bucket(bucketUpload).Stats().KeyN; n != 0 {
			t.Errorf("%d uploads left", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// addBulk queues n one-recipient messages with a small body directly, many
// per transaction (fast, for tests and benchmarks that need a big queue),
// all due at next. It returns their IDs in order.
func addBulk(t testing.TB, s *Spool, n int, next time.Time) []ID {
	t.Helper()
	ids := make([]ID, 0, n)
	for len(ids) < n {
		batch := min(n-len(ids), 5000)
		var got []ID
		err := s.c.do(func(tx *bolt.Tx) error {
			got = got[:0]
			for i := 0; i < batch; i++ {
				rec := newRecord(&Envelope{From: "bulk@example.org", Recipients: []Recipient{{Addr: "r@example.com"}}})
				token, err := newToken(tx)
				if err != nil {
					return err
				}
				rec.Body = token
				rec.Size = 1
				rec.CRC = crc32.Checksum([]byte("b"), castagnoli())
				if err := putChunks(tx, rec.Body, 0, []byte("b")); err != nil {
					return err
				}
				id, arrival, err := nextID(tx, s.now())
				if err != nil {
					return err
				}
				rec.Arrival, rec.NextAttempt = arrival, next
				if err := putRecord(tx, id, rec, nil); err != nil {
					return err
				}
				got = append(got, id)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return ids
}
