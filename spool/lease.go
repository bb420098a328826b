package spool

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Result is the outcome of one recipient of a delivery attempt.
type Result struct {
	Index int    // index into Envelope.Recipients
	State State  // Pending (deferred), Delivered or Bounced
	Reply Reply  // the reply that decided it
	Relay string // the relay that gave Reply
}

// LeaseDue leases up to max unheld messages whose NextAttempt is not after
// now, earliest first. For each it records the attempt before returning:
// Attempts+1, LastAttempt = now, NextAttempt = now+lease, committed with
// fsync. A worker that crashes leaves the message to become due again when
// the lease runs out. The caller ends the lease with Defer or Delete.
// Finding due work reads the due index only, not the whole queue. A
// damaged record found there is taken out of the index (it stays in the
// file for inspection) and reported through Options.Logger.
func (s *Spool) LeaseDue(now time.Time, max int, lease time.Duration) ([]*Message, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("lease due: lease %s is not positive", lease)
	}
	if max <= 0 {
		return nil, nil
	}
	limit := binary.BigEndian.AppendUint64(nil, dueNanos(now))
	// Nothing due is the common answer (the runner asks after every
	// attempt and on every wake-up): find it out in a read transaction,
	// which costs no commit. A write transaction that changes nothing
	// still writes bbolt's meta page with two fsyncs, and would make the
	// next submitter wait behind it.
	var due bool
	if err := s.view(func(tx *bolt.Tx) error {
		keys, err := s.dueKeys(tx, limit, 1)
		due = len(keys) > 0
		return err
	}); err != nil {
		return nil, fmt.Errorf("lease due: %w", err)
	}
	if !due {
		return nil, nil
	}
	var out []*Message
	var bad []error
	err := s.c.do(func(tx *bolt.Tx) error {
		out, bad = nil, nil
		due := tx.Bucket(bucketDue)
		keys, err := s.dueKeys(tx, limit, max)
		if err != nil {
			return err
		}
		seen := make(map[ID]bool, len(keys))
		for _, k := range keys {
			id := ID(k[8:])
			if seen[id] {
				if err := due.Delete(k); err != nil {
					return err
				}
				continue
			}
			seen[id] = true
			old, err := s.getRecord(tx, id)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
					return err
				}
				// Set it aside: out of the index, record kept.
				bad = append(bad, err)
				if err := due.Delete(k); err != nil {
					return err
				}
				continue
			}
			// Drop the entry we found even if it disagrees with the
			// record (it cannot, but a stale entry must not be leased
			// forever); putRecord then writes the right one.
			if err := due.Delete(k); err != nil {
				return err
			}
			if old.Held {
				continue
			}
			r := *old
			r.Attempts++
			r.LastAttempt = now
			r.NextAttempt = now.Add(lease)
			r.LeaseUntil = r.NextAttempt
			if err := putRecord(tx, id, &r, old); err != nil {
				return err
			}
			m := r.message(id)
			if !old.LeaseUntil.IsZero() {
				// The previous lease was never ended: that attempt
				// recorded no outcome (a crash, a kill, a lost spool).
				m.Unrecorded, m.PreviousAttempt = true, old.LastAttempt
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lease due: %w", err)
	}
	for _, err := range bad {
		s.log.Error("damaged queue entry taken out of the schedule", "spool", s.path, "err", err)
	}
	return out, nil
}

// DeferDue moves up to max messages due at now to next without an
// attempt, with reason as their reason and kind as their reason's kind:
// the daemon's dead-relay hold, so that every waiting message says why it
// waits (mailq) and counts no attempt that was not made. It returns how
// many it moved. Damaged entries are left for LeaseDue to set aside.
func (s *Spool) DeferDue(now, next time.Time, reason, kind string, max int) (int, error) {
	limit := binary.BigEndian.AppendUint64(nil, dueNanos(now))
	var n int
	err := s.c.do(func(tx *bolt.Tx) error {
		n = 0
		keys, err := s.dueKeys(tx, limit, max)
		if err != nil {
			return err
		}
		for _, k := range keys {
			id := ID(k[8:])
			old, err := s.getRecord(tx, id)
			if err != nil || old.Held || string(dueKey(old.NextAttempt, id)) != string(k) {
				continue // damaged or stale: LeaseDue's to handle
			}
			r := *old
			r.NextAttempt, r.Reason, r.ReasonKind = next, reason, kind
			if err := putRecord(tx, id, &r, old); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("defer due: %w", err)
	}
	return n, nil
}

// dueKeys returns up to max due-index keys not after limit (8 bytes of
// unix nanoseconds), earliest first: the head of the index, never a scan.
func (s *Spool) dueKeys(tx *bolt.Tx, limit []byte, max int) ([][]byte, error) {
	c := tx.Bucket(bucketDue).Cursor()
	var keys [][]byte
	for k, _ := c.First(); k != nil && len(keys) < max; k, _ = c.Next() {
		if len(k) != 8+idLen {
			return nil, fmt.Errorf("spool %s: %w: due index key of %d bytes", s.path, ErrCorrupt, len(k))
		}
		if string(k[:8]) > string(limit) {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	return keys, nil
}

// NextDue returns the earliest NextAttempt of an unheld message (false when
// there is none). It reads one index key.
func (s *Spool) NextDue() (time.Time, bool, error) {
	var t time.Time
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketDue).Cursor().First()
		if k == nil {
			return nil
		}
		if len(k) != 8+idLen {
			return fmt.Errorf("spool %s: %w: due index key of %d bytes", s.path, ErrCorrupt, len(k))
		}
		ns := binary.BigEndian.Uint64(k[:8])
		if ns == 0 {
			t = time.Unix(0, 0)
		} else {
			t = time.Unix(0, int64(ns))
		}
		ok = true
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due: %w", err)
	}
	return t, ok, nil
}

// Update records per-recipient outcomes at once (committed with fsync), so a
// delivered recipient is never sent again. A recipient already Delivered or
// Bounced keeps that state: a later result for it is ignored. Update does
// not change the schedule or end the lease; a message whose recipients are
// all final stays queued until Delete. An index out of range or an invalid
// state is an error and nothing is written.
func (s *Spool) Update(id ID, results []Result) error {
	now := s.now()
	return s.modify("update", id, func(r *record) error { return applyResults(r, results, now) })
}

// applyResults is Update's change to a record.
func applyResults(r *record, results []Result, now time.Time) error {
	for _, res := range results {
		if res.Index < 0 || res.Index >= len(r.Recipients) {
			return fmt.Errorf("result index %d out of range (message has %d recipients)", res.Index, len(r.Recipients))
		}
		if res.State > Bounced {
			return fmt.Errorf("result %d: invalid state %d", res.Index, res.State)
		}
	}
	for _, res := range results {
		rc := &r.Recipients[res.Index]
		if rc.State != Pending {
			continue
		}
		rc.State = res.State
		rc.Code, rc.Enhanced, rc.Text = res.Reply.Code, res.Reply.Enhanced, res.Reply.Text
		rc.Relay = res.Relay
		rc.Updated = now
	}
	return nil
}

// Reschedule is Update followed by Defer in one commit: the outcomes of
// an attempt that left recipients pending, and the end of its lease. It
// saves the runner one commit (two fsyncs) per deferred attempt. Nothing
// is written when a result is invalid.
func (s *Spool) Reschedule(id ID, results []Result, next time.Time, reason string) error {
	return s.RescheduleAs(id, results, next, Why{Text: reason})
}

// Why is the message-level reason of a deferral and what goes with it.
type Why struct {
	Text          string // why it is still queued (mailq)
	Kind          string // the failure's kind (Message.ReasonKind)
	DelayNotified bool   // the delay notice has been sent (never unset)
}

// RescheduleAs is Reschedule with the reason's kind and the delay-notice
// state, all in the one commit.
func (s *Spool) RescheduleAs(id ID, results []Result, next time.Time, why Why) error {
	now := s.now()
	return s.modify("reschedule", id, func(r *record) error {
		if err := applyResults(r, results, now); err != nil {
			return err
		}
		r.NextAttempt = next
		r.LeaseUntil = time.Time{}
		r.Reason, r.ReasonKind = why.Text, why.Kind
		r.DelayNotified = r.DelayNotified || why.DelayNotified
		return nil
	})
}

// RetryKinds makes every message that is not held or leased and whose last
// failure is of one of kinds due now, its reason replaced by note (the
// old one kept after it) and its kind cleared: after a configuration
// reload that may have fixed the cause. It returns how many. The records
// are read a page per read transaction (scanRecords); the changes go in
// one commit, each record checked again there.
func (s *Spool) RetryKinds(kinds []string, note string) (int, error) {
	now := s.now()
	retry := func(r *record) bool {
		return !r.Held && !r.LeaseUntil.After(now) && r.ReasonKind != "" && slices.Contains(kinds, r.ReasonKind)
	}
	// A record of one of the kinds holds its JSON member (strings are
	// escaped, so the text cannot occur inside another value): the others
	// are skipped undecoded. Each daemonless run calls this at its start.
	marks := make([][]byte, len(kinds))
	for i, k := range kinds {
		marks[i], _ = json.Marshal(map[string]string{"kind": k})
		marks[i] = marks[i][1 : len(marks[i])-1] // "kind":"…"
	}
	var ids []ID
	err := s.scanRecords(4*listPage, func(k, v []byte) error {
		if !slices.ContainsFunc(marks, func(m []byte) bool { return bytes.Contains(v, m) }) {
			return nil
		}
		if r, err := decodeRecord(v); err == nil && retry(r) {
			ids = append(ids, ID(append([]byte(nil), k...)))
		}
		return nil
	}, nil)
	if err != nil {
		return 0, fmt.Errorf("retry: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err = s.c.do(func(tx *bolt.Tx) error {
		n = 0
		for _, id := range ids {
			v := tx.Bucket(bucketMsg).Get([]byte(id))
			if v == nil {
				continue // delivered or deleted meanwhile
			}
			old, err := decodeRecord(v)
			if err != nil || !retry(old) {
				continue // damaged records are listed elsewhere
			}
			r := *old
			r.NextAttempt = now
			r.Reason = note + " (was: " + old.Reason + ")"
			r.ReasonKind = ""
			if err := putRecord(tx, id, &r, old); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("retry: %w", err)
	}
	return n, nil
}

// HoldWith is Update, the end of the lease and Hold in one commit, with
// reason as the message-level reason: for a message that must not be
// dropped and cannot be delivered as things are (a notice the relay
// refuses). It waits, listed with its reason, for an operator's release
// or delete.
func (s *Spool) HoldWith(id ID, results []Result, reason string) error {
	now := s.now()
	return s.modify("hold", id, func(r *record) error {
		if err := applyResults(r, results, now); err != nil {
			return err
		}
		r.LeaseUntil = time.Time{}
		r.NextAttempt = now // due at once when released
		r.Reason = reason
		r.Held = true
		return nil
	})
}

// Defer ends a lease: the message is due again at next, with reason as its
// message-level reason (why it is still queued). A held message keeps its
// hold and becomes due at next once released.
func (s *Spool) Defer(id ID, next time.Time, reason string) error {
	return s.modify("defer", id, func(r *record) error {
		r.NextAttempt = next
		r.LeaseUntil = time.Time{}
		r.Reason = reason
		return nil
	})
}
