package spool

import (
	"fmt"
	"runtime"
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
	return fmt.Errorf("spool %s: %w: %s", s.path, ErrCorrupt, damage(r))
}

// damage says in words what a recovered panic on a damaged file means,
// instead of the Go runtime's text ("runtime error: invalid memory
// address...", "unexpected fault address 0x..."), which tells an operator
// nothing and reads as a crash.
func damage(r any) string {
	const restore = "stop relayq, move the file aside and restore it from a backup; `relayq check` looks at it"
	if _, ok := r.(runtime.Error); ok {
		return "reading it touched data outside its valid pages (truncated or overwritten); " + restore
	}
	return "its page structure is inconsistent; " + restore
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
