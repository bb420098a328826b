package authinfo

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CheckInterval is how often Store.Lookup looks at the file for a change.
const CheckInterval = time.Second

// Store holds the credentials map of one file and reloads it: on Reload
// (the daemon calls it on SIGHUP) and, at most once per CheckInterval, at
// Lookup time when the file's inode, size, mtime, ctime, mode or owner
// changed. A file that fails to load leaves the old map in force; Reload
// returns the error, an automatic reload logs it (once per version of the
// file) and Err reports it. Store is safe for concurrent use.
type Store struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	cur atomic.Pointer[Map]

	mu        sync.Mutex // serialises loads; guards the fields below
	sig       fileSig    // the loaded version
	badSig    fileSig    // the last version that failed (not retried until it changes)
	bad       bool
	err       error
	lastCheck time.Time
}

// NewStore loads path (ParseFile) and returns a Store holding it.
func NewStore(path string) (*Store, error) {
	m, sig, err := parseFile(path)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, log: slog.Default(), now: time.Now, sig: sig}
	s.cur.Store(m)
	s.lastCheck = s.now()
	return s, nil
}

// SetLogger sets the logger for automatic reloads (default slog.Default()).
func (s *Store) SetLogger(l *slog.Logger) {
	s.mu.Lock()
	s.log = l
	s.mu.Unlock()
}

// Path is the credentials file.
func (s *Store) Path() string { return s.path }

// Map is the map in force.
func (s *Store) Map() *Map { return s.cur.Load() }

// Err is the error of the last failed load, nil once a load succeeds.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Reload loads the file again. On error the old map stays in force.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load()
}

// load must be called with mu held.
func (s *Store) load() error {
	s.lastCheck = s.now()
	m, sig, err := parseFile(s.path)
	if err != nil {
		s.err, s.bad, s.badSig = err, true, sig
		return err
	}
	s.cur.Store(m)
	s.sig, s.err, s.bad = sig, nil, false
	return nil
}

// Lookup reloads the file if it changed (checked at most once per
// CheckInterval) and looks q up in the map in force.
func (s *Store) Lookup(q Query) (Credential, bool) {
	s.maybeReload()
	return s.cur.Load().Lookup(q)
}

// Explain is Map.Explain on the map in force (after the change check).
func (s *Store) Explain(q Query) []string {
	s.maybeReload()
	return s.cur.Load().Explain(q)
}

func (s *Store) maybeReload() {
	if !s.mu.TryLock() {
		return // another goroutine is checking or loading
	}
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastCheck) < CheckInterval && !now.Before(s.lastCheck) {
		return
	}
	s.lastCheck = now
	var sig fileSig
	if fi, err := os.Stat(s.path); err != nil {
		sig = fileSig{statFailed: true}
	} else {
		sig = sigOf(fi)
	}
	if sig == s.sig || (s.bad && sig == s.badSig) {
		return
	}
	if err := s.load(); err != nil {
		s.log.Error("credentials file not reloaded; the previous entries stay in force", "file", s.path, "err", err)
		return
	}
	s.log.Info("credentials file reloaded", "file", s.path, "entries", s.cur.Load().Len())
}
