package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// compactTxSize bounds the bytes copied per transaction while compacting.
const compactTxSize = 4 << 20

// compactPath is the temporary file a compaction writes next to the spool.
func compactPath(path string) string { return path + ".compact" }

// Compact rewrites the spool into a new file without free pages and puts it
// in place, so the file shrinks after a burst (bbolt never shrinks a file on
// its own). Reads and writes wait while it runs.
//
// The copy is written to path+".compact" in the same directory and locked
// before it is renamed over the spool, then the directory is fsynced, so a
// crash at any point leaves either the old file or the complete new one
// (a leftover copy is removed by the next Open), and no other process can
// write the old file after the rename: Open checks that the file it locked
// is still the one at the path. On failure the spool stays as it was.
func (s *Spool) Compact() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("compact %s: %w", s.path, errClosed)
	}
	tmp := compactPath(s.path)
	fi, err := s.file.Stat()
	if err != nil {
		return fmt.Errorf("compact %s: %w", s.path, err)
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact %s: remove stale copy: %w", s.path, err)
	}
	dst, dstFile, err := s.boltOpen(tmp, fi.Mode().Perm(), time.Second)
	if err != nil {
		_ = os.Remove(tmp) // ours: nobody else compacts while we hold the lock
		return fmt.Errorf("compact %s: create copy: %w", s.path, err)
	}
	swapped := false
	defer func() {
		if !swapped {
			_ = dst.Close()
			_ = os.Remove(tmp)
		}
	}()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		// Keep the owner when root compacts another user's spool.
		_ = os.Chown(tmp, int(st.Uid), int(st.Gid))
	}
	if err := s.compactInto(dst); err != nil {
		return fmt.Errorf("compact %s: %w", s.path, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("compact %s: sync copy: %w: %w", s.path, ErrFull, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("compact %s: rename copy: %w", s.path, ioErr(err))
	}
	// From here the copy is the spool, whatever else fails.
	swapped = true
	old := s.db
	s.db, s.file = dst, dstFile
	_ = old.Close()
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("compact %s: sync directory: %w", s.path, ioErr(err))
	}
	return nil
}

// compactInto copies the spool into dst, turning panics on a damaged source
// into ErrCorrupt and write failures into ErrFull.
func (s *Spool) compactInto(dst *bolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.corruptPanic(r)
		}
	}()
	defer guardFaults()()
	if err := bolt.Compact(dst, s.db, compactTxSize); err != nil {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
