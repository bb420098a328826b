package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultLockTimeout is the lock wait used when Options.LockTimeout is 0.
const DefaultLockTimeout = 2 * time.Second

// schemaVersion is the version of the bucket layout written by this code.
const schemaVersion = 1

const formatName = "relayq-spool"

var (
	bucketMeta   = []byte("meta")
	bucketMsg    = []byte("msg")
	bucketDue    = []byte("due")
	bucketBody   = []byte("body")
	bucketUpload = []byte("upload")

	keyFormat = []byte("format")
	keySchema = []byte("schema")
	keyLastID = []byte("lastid")
)

var allBuckets = [][]byte{bucketMeta, bucketMsg, bucketDue, bucketBody, bucketUpload}

// Options tune Open. The zero value is ready to use.
type Options struct {
	// LockTimeout bounds the wait for the file lock; 0 means
	// DefaultLockTimeout. A negative value tries once. It is never forever.
	LockTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Mode is the file mode for a new spool file; 0 means 0600. Missing
	// parent directories are created with mode 0700.
	Mode os.FileMode
	// Logger receives events the spool handles on its own (orphaned body
	// chunks swept, damaged records set aside); nil discards them.
	Logger *slog.Logger
}

// Spool is an open spool file. Its methods are safe for concurrent use.
type Spool struct {
	path string
	now  func() time.Time
	log  *slog.Logger
	mode os.FileMode

	// mu guards db: every transaction holds it for reading, Compact and
	// Close hold it for writing while they swap or close the file.
	mu     sync.RWMutex
	db     *bolt.DB
	file   *os.File // db's file, for fstat
	closed bool

	c *committer
}

// Open opens the spool file at path, creating it (and its directory) when it
// does not exist. It waits at most o.LockTimeout for the file lock; on timeout
// the error wraps ErrLocked. A file that is not a spool, is damaged, or has a
// newer schema gives an error wrapping ErrCorrupt; such a file is left as it
// is. Write failures while creating the file wrap ErrFull.
func Open(path string, o Options) (*Spool, error) {
	if path == "" {
		return nil, errors.New("open spool: empty path")
	}
	s := &Spool{path: path, now: o.Now, log: o.Logger, mode: o.Mode}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.mode == 0 {
		s.mode = 0o600
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open spool %s: create directory: %w", path, ioErr(err))
	}
	timeout := o.LockTimeout
	switch {
	case timeout == 0:
		timeout = DefaultLockTimeout
	case timeout < 0:
		timeout = time.Nanosecond
	}
	db, f, err := s.openLocked(timeout)
	if err != nil {
		return nil, err
	}
	s.db, s.file = db, f
	if err := s.initSchema(); err != nil {
		_ = db.Close()
		return nil, err
	}
	// A compaction that crashed before its rename leaves its copy behind;
	// we hold the lock, so nobody else is writing it.
	if err := os.Remove(compactPath(path)); err == nil {
		s.log.Info("removed stale compaction file", "file", compactPath(path))
	}
	if err := s.sweepUploads(); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.c = startCommitter(s)
	return s, nil
}

// openLocked opens the bbolt file with a bounded lock wait, checking after
// the lock is taken that the locked file is still the one at path (a
// compaction may have renamed a new file over it while we waited).
func (s *Spool) openLocked(timeout time.Duration) (*bolt.DB, *os.File, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			left = time.Nanosecond
		}
		db, f, err := s.boltOpen(s.path, s.mode, left)
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				return nil, nil, fmt.Errorf("open spool %s: %w: %s (waited %s)", s.path, ErrLocked, lockHolder(s.path), timeout)
			}
			return nil, nil, err
		}
		fi, err1 := f.Stat()
		cur, err2 := os.Stat(s.path)
		if err1 == nil && err2 == nil && os.SameFile(fi, cur) {
			return db, f, nil
		}
		_ = db.Close()
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("open spool %s: %w: the file was replaced while waiting for its lock", s.path, ErrLocked)
		}
	}
}

// boltOpen calls bolt.Open and turns its panics and memory faults on a
// damaged file into ErrCorrupt, closing the descriptor it had opened.
func (s *Spool) boltOpen(path string, mode os.FileMode, timeout time.Duration) (db *bolt.DB, f *os.File, err error) {
	opts := &bolt.Options{
		Timeout:      timeout,
		FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			var err error
			f, err = os.OpenFile(name, flag, perm)
			return f, err
		},
	}
	defer func() {
		if r := recover(); r != nil {
			if f != nil {
				// bbolt's mmap keeps the open file alive past Close, so
				// drop the lock explicitly; the mapping itself leaks.
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}
			db, f = nil, nil
			err = fmt.Errorf("open spool %s: %w: %s", path, ErrCorrupt, damage(r))
		}
	}()
	defer guardFaults()()
	db, err = bolt.Open(path, mode, opts)
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, nil, err
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
			errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
			return nil, nil, fmt.Errorf("open spool %s: %w: %w", path, ErrCorrupt, err)
		}
		return nil, nil, fmt.Errorf("open spool %s: %w", path, ioErr(err))
	}
	return db, f, nil
}

// initSchema checks the meta bucket of an existing spool, or writes the
// schema into a new (empty) file. A bbolt file with other buckets and no meta
// is foreign and is not touched.
func (s *Spool) initSchema() error {
	var fresh bool
	fi, err := s.file.Stat()
	if err != nil {
		return fmt.Errorf("open spool %s: %w", s.path, err)
	}
	err = s.view(func(tx *bolt.Tx) error {
		// A file cut short (a bad copy, a full disk during a copy) would
		// fault on the missing pages; say so up front.
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: file is truncated: %d bytes, its pages need %d", ErrCorrupt, fi.Size(), tx.Size())
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			var names []string
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, string(name))
				return nil
			})
			if len(names) > 0 {
				return fmt.Errorf("%w: a bbolt file without relayq's meta bucket (buckets %q)", ErrCorrupt, names)
			}
			fresh = true
			return nil
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, []byte(formatName)) {
			return fmt.Errorf("%w: meta format is %q, not %q", ErrCorrupt, f, formatName)
		}
		v := meta.Get(keySchema)
		if len(v) != 4 {
			return fmt.Errorf("%w: schema version has %d bytes", ErrCorrupt, len(v))
		}
		if n := binary.BigEndian.Uint32(v); n != schemaVersion {
			if n > schemaVersion {
				return fmt.Errorf("%w: schema version %d is newer than this relayq supports (%d)", ErrCorrupt, n, schemaVersion)
			}
			return fmt.Errorf("%w: unknown schema version %d", ErrCorrupt, n)
		}
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: bucket %q is missing", ErrCorrupt, b)
			}
		}
		if v := meta.Get(keyLastID); v != nil && len(v) != 8 {
			return fmt.Errorf("%w: lastid has %d bytes", ErrCorrupt, len(v))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open spool %s: %w", s.path, err)
	}
	if !fresh {
		return nil
	}
	err = s.updateDirect(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyFormat, []byte(formatName)); err != nil {
			return err
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion))
	})
	if err != nil {
		return fmt.Errorf("open spool %s: initialise: %w", s.path, err)
	}
	return nil
}

// Path returns the spool file's path as given to Open.
func (s *Spool) Path() string { return s.path }

// Close waits for pending writes, then closes the file and releases its
// lock. Calling it again returns nil.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.c.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool %s: %w", s.path, err)
	}
	return nil
}

// errClosed is returned by operations on a closed Spool.
var errClosed = errors.New("spool is closed")

// ioErr wraps write failures of the file system (full, quota, I/O error,
// read-only) with ErrFull and leaves others as they are.
func ioErr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, syscall.EFBIG:
			return fmt.Errorf("%w: %w", ErrFull, err)
		}
	}
	return err
}
