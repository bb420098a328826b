package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats summarises the queue.
type Stats struct {
	Count  int       // messages in the queue
	Held   int       // of which on hold
	Oldest time.Time // arrival of the oldest message, zero when empty
	Bytes  int64     // sum of body sizes
}

// listPage is how many records List decodes per read transaction, so that
// a slow callback never holds a transaction open.
const listPage = 256

// dueKey is the due-index key of a message due at t.
func dueKey(t time.Time, id ID) []byte {
	k := make([]byte, 0, 8+idLen)
	k = binary.BigEndian.AppendUint64(k, dueNanos(t))
	return append(k, id...)
}

// dueNanos orders times in the due index; times before 1970 sort first.
func dueNanos(t time.Time) uint64 {
	if t.IsZero() || t.Unix() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// getRecord loads and decodes the record of id.
func (s *Spool) getRecord(tx *bolt.Tx, id ID) (*record, error) {
	if _, ok := decodeID(string(id)); !ok {
		return nil, fmt.Errorf("message %q: %w (not a queue ID)", id, ErrNotFound)
	}
	v := tx.Bucket(bucketMsg).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	r, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("spool %s: message %s: %w", s.path, id, err)
	}
	return r, nil
}

// putRecord stores r under id and keeps the due index in step: old is the
// record being replaced (nil for a new message).
func putRecord(tx *bolt.Tx, id ID, r, old *record) error {
	due := tx.Bucket(bucketDue)
	if old != nil && !old.Held {
		if err := due.Delete(dueKey(old.NextAttempt, id)); err != nil {
			return err
		}
	}
	v, err := encodeRecord(r)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketMsg).Put([]byte(id), v); err != nil {
		return err
	}
	if !r.Held {
		return due.Put(dueKey(r.NextAttempt, id), nil)
	}
	return nil
}

// modify applies change to the record of id in a committed transaction.
func (s *Spool) modify(op string, id ID, change func(r *record) error) error {
	err := s.c.do(func(tx *bolt.Tx) error {
		old, err := s.getRecord(tx, id)
		if err != nil {
			return err
		}
		r := *old
		r.Recipients = append([]rcptRec(nil), old.Recipients...)
		if err := change(&r); err != nil {
			return err
		}
		return putRecord(tx, id, &r, old)
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	return nil
}

// Get returns the record of one message (an error wrapping ErrNotFound when
// there is none).
func (s *Spool) Get(id ID) (*Message, error) {
	var m *Message
	err := s.view(func(tx *bolt.Tx) error {
		r, err := s.getRecord(tx, id)
		if err != nil {
			return err
		}
		m = r.message(id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// List calls fn for every message in ID (arrival) order, reading a page of
// records per read transaction; fn runs outside any transaction and may call
// other Spool methods. An error from fn stops the walk and is returned. A
// damaged record does not stop the walk: List visits all the others and
// then returns the damaged ones' errors (*DamagedError, wrapping
// ErrCorrupt) joined; Damaged separates them.
func (s *Spool) List(fn func(*Message) error) error {
	var bad []error
	var page []*Message
	var fnErr error // fn's own error, returned as it is
	err := s.scanRecords(listPage, func(k, v []byte) error {
		r, err := decodeRecord(v)
		if err != nil {
			bad = append(bad, &DamagedError{Path: s.path, ID: ID(k), Err: err})
			return nil
		}
		page = append(page, r.message(ID(k)))
		return nil
	}, func() error {
		for _, m := range page {
			if fnErr = fn(m); fnErr != nil {
				return fnErr
			}
		}
		page = page[:0]
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	return errors.Join(bad...)
}

// Hold puts a message on hold: it is never due until Release. Holding a
// held message is not an error.
func (s *Spool) Hold(id ID) error {
	return s.modify("hold", id, func(r *record) error {
		r.Held = true
		return nil
	})
}

// Release takes a message off hold; it is due again at its NextAttempt
// (Flush makes it due at once). Releasing an unheld message is not an error.
func (s *Spool) Release(id ID) error {
	return s.modify("release", id, func(r *record) error {
		r.Held = false
		return nil
	})
}

// Delete removes a message and its body. A worker's lease on it ends. A
// damaged record can be deleted too: its due entry is found by scanning the
// index, and its body chunks, which it no longer names, stay in the file.
func (s *Spool) Delete(id ID) error {
	err := s.c.do(func(tx *bolt.Tx) error {
		r, err := s.getRecord(tx, id)
		if errors.Is(err, ErrCorrupt) {
			return deleteDamaged(tx, id)
		}
		if err != nil {
			return err
		}
		if !r.Held {
			if err := tx.Bucket(bucketDue).Delete(dueKey(r.NextAttempt, id)); err != nil {
				return err
			}
		}
		if _, err := deleteChunks(tx, r.Body); err != nil {
			return err
		}
		return tx.Bucket(bucketMsg).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// deleteDamaged removes a record that does not decode and any due entry
// for it.
func deleteDamaged(tx *bolt.Tx, id ID) error {
	var keys [][]byte
	c := tx.Bucket(bucketDue).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == 8+idLen && string(k[8:]) == string(id) {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	for _, k := range keys {
		if err := tx.Bucket(bucketDue).Delete(k); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMsg).Delete([]byte(id))
}

// Flush makes every unheld message that no worker holds a lease on due now
// and returns how many unheld messages are due now.
func (s *Spool) Flush() (int, error) {
	now := s.now()
	nowKey := binary.BigEndian.AppendUint64(nil, dueNanos(now))
	var from []byte = nowKey // entries before this are due already
	for {
		var nextFrom []byte
		err := s.c.do(func(tx *bolt.Tx) error {
			nextFrom = nil
			c := tx.Bucket(bucketDue).Cursor()
			var ids []ID
			for k, _ := c.Seek(from); k != nil && len(ids) < maxBatch; k, _ = c.Next() {
				if len(k) != 8+idLen {
					return fmt.Errorf("spool %s: %w: due index key of %d bytes", s.path, ErrCorrupt, len(k))
				}
				if nextFrom != nil && string(k) <= string(nextFrom) {
					return fmt.Errorf("spool %s: %w: due index out of order", s.path, ErrCorrupt)
				}
				nextFrom = append(nextFrom[:0], k...)
				if string(k[:8]) <= string(nowKey) {
					continue
				}
				ids = append(ids, ID(k[8:]))
			}
			for _, id := range ids {
				old, err := s.getRecord(tx, id)
				if err != nil {
					return err
				}
				if old.LeaseUntil.After(now) {
					continue
				}
				r := *old
				r.NextAttempt = now
				if err := putRecord(tx, id, &r, old); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("flush: %w", err)
		}
		if nextFrom == nil {
			break
		}
		from = append(nextFrom, 0) // just after the last key seen
	}
	count := 0
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && string(k[:8]) <= string(nowKey); k, _ = c.Next() {
			count++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("flush: %w", err)
	}
	return count, nil
}

// Stats counts the queue. It reads every record, decoding only the fields
// it needs, a page of records per read transaction. Damaged records are
// left out and reported like List does.
func (s *Spool) Stats() (Stats, error) {
	var st Stats
	var bad []error
	err := s.scanRecords(4*listPage, func(k, v []byte) error {
		var r struct {
			Arrival time.Time `json:"arrival"`
			Size    int64     `json:"size"`
			Held    bool      `json:"held"`
		}
		if len(v) == 0 || v[0] != recordVersion || json.Unmarshal(v[1:], &r) != nil {
			if _, err := decodeRecord(v); err != nil { // for the reason
				bad = append(bad, fmt.Errorf("spool %s: message %s: %w", s.path, k, err))
			}
			return nil
		}
		st.Count++
		if r.Held {
			st.Held++
		}
		if st.Oldest.IsZero() || r.Arrival.Before(st.Oldest) {
			st.Oldest = r.Arrival
		}
		st.Bytes += r.Size
		return nil
	}, nil)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	if err := errors.Join(bad...); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

// scanRecords calls fn for every message record in key order, n records
// per read transaction, then page (when not nil) outside the transaction.
// The mapping is trimmed after each page (trimMapped): a scan of every
// record in one go mapped the whole file (35 MB of RSS at the daemon's
// start with a 10,000-message queue). fn must copy k and v to keep them.
func (s *Spool) scanRecords(n int, fn func(k, v []byte) error, page func() error) error {
	var after []byte
	for {
		seen := 0
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketMsg).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && seen < n; k, v = c.Next() {
				if after != nil && string(k) <= string(after) {
					return fmt.Errorf("spool %s: %w: message keys out of order", s.path, ErrCorrupt)
				}
				after = append(after[:0], k...)
				seen++
				if err := fn(k, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.trimMapped()
		if seen == 0 {
			return nil
		}
		if page != nil {
			if err := page(); err != nil {
				return err
			}
		}
	}
}

// DamagedError is a message record that cannot be decoded: List reports
// it after listing every other message, so that one damaged record never
// hides the rest. It wraps ErrCorrupt (through Err).
type DamagedError struct {
	Path string // the spool file
	ID   ID
	Err  error
}

func (e *DamagedError) Error() string {
	if e.Path == "" { // as the daemon reported it: Err says it all
		return e.Err.Error()
	}
	return fmt.Sprintf("spool %s: message %s: %v", e.Path, e.ID, e.Err)
}

// Unwrap returns the decoding error.
func (e *DamagedError) Unwrap() error { return e.Err }

// Damaged splits an error from List into its damaged records and the
// rest (nil when there is nothing else).
func Damaged(err error) (damaged []*DamagedError, rest error) {
	if err == nil {
		return nil, nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var others []error
	for _, e := range errs {
		if d, ok := e.(*DamagedError); ok {
			damaged = append(damaged, d)
		} else {
			others = append(others, e)
		}
	}
	return damaged, errors.Join(others...)
}
