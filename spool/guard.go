package spool

import (
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// guardFaults makes a memory fault on this goroutine (a damaged or truncated
// mmap'd file) a recoverable panic instead of a crash. Use it as
// defer guardFaults()().
func guardFaults() func() {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}

// corruptPanic turns a recovered bbolt panic into an error wrapping
// ErrCorrupt that names the file.
func (s *Spool) corruptPanic(r any) error {
	return fmt.Errorf("spool %s: %w: %v", s.path, ErrCorrupt, r)
}

// view runs fn in a read transaction; panics and faults become ErrCorrupt.
func (s *Spool) view(fn func(*bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("spool %s: %w", s.path, errClosed)
	}
	defer func() {
		if r := recover(); r != nil {
			err = s.corruptPanic(r)
		}
	}()
	defer guardFaults()()
	return s.db.View(fn)
}

// updateDirect runs fn in its own write transaction, outside the commit
// queue (used by Open before the queue starts); panics become ErrCorrupt,
// commit failures ErrFull.
func (s *Spool) updateDirect(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.corruptPanic(r)
		}
	}()
	defer guardFaults()()
	var fnErr error
	err = s.db.Update(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("spool %s: %w: %w", s.path, ErrFull, err)
	}
	return err
}

// callGuarded runs fn(tx), turning a panic into ErrCorrupt.
func (s *Spool) callGuarded(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.corruptPanic(r)
		}
	}()
	return fn(tx)
}
