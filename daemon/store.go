package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

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
	buf, err := spill(body)
	if err != nil {
		return "", err
	}
	defer buf.release()
	err = t.with(func(s *spool.Spool) error {
		r, err := buf.open()
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
	var buf *spilled
	err := t.with(func(s *spool.Spool) error {
		r, err := s.OpenBody(id)
		if err != nil {
			return err
		}
		defer r.Close()
		buf, err = spill(r)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return buf.open, buf.release, nil
}

// spillLimit is the size up to which a copied body stays in memory; a
// larger one goes to an unlinked temporary file.
const spillLimit = 1 << 20

// spilled is a body copy that can be read any number of times.
type spilled struct {
	mem  []byte
	file *os.File
	size int64
}

// spill copies r into memory, or into an unlinked temporary file once it
// passes spillLimit.
func spill(r io.Reader) (*spilled, error) {
	var b bytes.Buffer
	n, err := io.CopyN(&b, r, spillLimit+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("copy body: %w", err)
	}
	if n <= spillLimit {
		return &spilled{mem: b.Bytes(), size: n}, nil
	}
	f, err := os.CreateTemp("", "relayq-body-*")
	if err != nil {
		return nil, fmt.Errorf("copy body: %w", err)
	}
	os.Remove(f.Name()) // unlinked: gone when closed, even after a crash
	m, err := io.Copy(f, io.MultiReader(&b, r))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("copy body to %s: %w", os.TempDir(), err)
	}
	return &spilled{file: f, size: m}, nil
}

func (s *spilled) open() (io.ReadCloser, error) {
	if s.file == nil {
		return io.NopCloser(bytes.NewReader(s.mem)), nil
	}
	return io.NopCloser(io.NewSectionReader(s.file, 0, s.size)), nil
}

func (s *spilled) release() {
	if s.file != nil {
		s.file.Close()
	}
}
