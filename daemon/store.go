package daemon

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/relayq/relayq/internal/spill"
	"github.com/relayq/relayq/spool"
)

// store is what the runner needs of the spool. *spool.Spool satisfies it
// (the daemon keeps the file open); transient opens the file for each call
// (RunOnce).
type store interface {
	LeaseDue(now time.Time, max int, lease time.Duration) ([]*spool.Message, error)
	NextDue() (time.Time, bool, error)
	Defer(id spool.ID, next time.Time, reason string) error
	Reschedule(id spool.ID, results []spool.Result, next time.Time, reason string) error
	HoldWith(id spool.ID, results []spool.Result, reason string) error
	RescheduleAs(id spool.ID, results []spool.Result, next time.Time, why spool.Why) error
	RetryKinds(kinds []string, note string) (int, error)
	DeferDue(now, next time.Time, reason, kind string, max int) (int, error)
	Delete(id spool.ID) error
	Submit(ctx context.Context, env spool.Envelope, body io.Reader) (spool.ID, error)
	Get(id spool.ID) (*spool.Message, error)
	// body returns a function that opens m's body, valid until release is
	// called. For the daemon it reads the spool; for RunOnce it is a copy
	// made in one short transaction, so that no lock is held while the
	// relay reads it.
	body(id spool.ID) (open func() (io.ReadCloser, error), release func(), err error)
}

// openSpool is the daemon's long-lived spool with the body method.
type openSpool struct{ *spool.Spool }

func (s openSpool) body(id spool.ID) (func() (io.ReadCloser, error), func(), error) {
	return func() (io.ReadCloser, error) { return s.OpenBody(id) }, func() {}, nil
}

// transient opens the spool file for each operation and closes it again,
// with a bounded lock wait: RunOnce never holds the lock across network
// I/O, so sendmail callers and other runs interleave with it.
type transient struct {
	path string
	o    spool.Options

	mu sync.Mutex // one open at a time within this process (flock is per open file)
}

func (t *transient) with(fn func(s *spool.Spool) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, err := spool.Open(t.path, t.o)
	if err != nil {
		return err
	}
	err = fn(s)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close spool: %w", cerr)
	}
	return err
}

func (t *transient) LeaseDue(now time.Time, max int, lease time.Duration) (ms []*spool.Message, err error) {
	err = t.with(func(s *spool.Spool) error { ms, err = s.LeaseDue(now, max, lease); return err })
	return ms, err
}

func (t *transient) NextDue() (at time.Time, ok bool, err error) {
	err = t.with(func(s *spool.Spool) error { at, ok, err = s.NextDue(); return err })
	return at, ok, err
}

func (t *transient) Defer(id spool.ID, next time.Time, reason string) error {
	return t.with(func(s *spool.Spool) error { return s.Defer(id, next, reason) })
}

func (t *transient) HoldWith(id spool.ID, results []spool.Result, reason string) error {
	return t.with(func(s *spool.Spool) error { return s.HoldWith(id, results, reason) })
}

// RescheduleAs is spool.RescheduleAs on a short-lived open.
func (t *transient) RescheduleAs(id spool.ID, results []spool.Result, next time.Time, why spool.Why) error {
	return t.with(func(s *spool.Spool) error { return s.RescheduleAs(id, results, next, why) })
}

// DeferDue is spool.DeferDue on a short-lived open.
func (t *transient) DeferDue(now, next time.Time, reason, kind string, max int) (n int, err error) {
	err = t.with(func(s *spool.Spool) error { n, err = s.DeferDue(now, next, reason, kind, max); return err })
	return n, err
}

// RetryKinds is spool.RetryKinds on a short-lived open.
func (t *transient) RetryKinds(kinds []string, note string) (n int, err error) {
	err = t.with(func(s *spool.Spool) error { n, err = s.RetryKinds(kinds, note); return err })
	return n, err
}

// Reschedule is spool.Reschedule on a short-lived open.
func (t *transient) Reschedule(id spool.ID, results []spool.Result, next time.Time, reason string) error {
	return t.with(func(s *spool.Spool) error { return s.Reschedule(id, results, next, reason) })
}

func (t *transient) Delete(id spool.ID) error {
	return t.with(func(s *spool.Spool) error { return s.Delete(id) })
}

func (t *transient) Get(id spool.ID) (m *spool.Message, err error) {
	err = t.with(func(s *spool.Spool) error { m, err = s.Get(id); return err })
	return m, err
}

func (t *transient) Submit(ctx context.Context, env spool.Envelope, body io.Reader) (id spool.ID, err error) {
	// Read the body before taking the lock: it may come from a pipe.
	buf, err := spill.Copy(body)
	if err != nil {
		return "", err
	}
	defer buf.Release()
	err = t.with(func(s *spool.Spool) error {
		r, err := buf.Open()
		if err != nil {
			return err
		}
		defer r.Close()
		id, err = s.Submit(ctx, env, r)
		return err
	})
	return id, err
}

func (t *transient) body(id spool.ID) (func() (io.ReadCloser, error), func(), error) {
	var buf *spill.Buffer
	err := t.with(func(s *spool.Spool) error {
		r, err := s.OpenBody(id)
		if err != nil {
			return err
		}
		defer r.Close()
		buf, err = spill.Copy(r)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return buf.Open, buf.Release, nil
}
