package authinfo

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// Store holds the credentials map of one file and reloads it: on Reload
// (the daemon calls it on SIGHUP) and at Lookup time when the file's inode,
// size, mtime, ctime, mode or owner changed (one stat(2) per lookup, so a
// message submitted after the file was replaced is sent with the new
// entries, even by a delivery run that was already logged in). A file that fails to load leaves the old map in force; Reload
// returns the error, an automatic reload logs it (once per version of the
// file) and Err reports it. Store is safe for concurrent use.
type Store struct {
	watch[Map]
}

// NewStore loads path (ParseFile) and returns a Store holding it.
func NewStore(path string) (*Store, error) {
	s := &Store{}
	if err := s.init(path, credentialsWhat, parseFile, (*Map).Len); err != nil {
		return nil, err
	}
	return s, nil
}

// Map is the map in force.
func (s *Store) Map() *Map { return s.cur.Load() }

// Lookup reloads the file if it changed and looks q up in the map in
// force.
func (s *Store) Lookup(q Query) (Credential, bool) {
	return s.current().Lookup(q)
}

// Explain is Map.Explain on the map in force (after the change check).
func (s *Store) Explain(q Query) []string {
	return s.current().Explain(q)
}

// RelayStore holds the sender relay map of one file and reloads it as
// Store does its credentials: on Reload (SIGHUP) and at RelayHost time
// when the file changed. A file that
// fails to load leaves the old map in force. RelayStore is safe for
// concurrent use; a nil *RelayStore matches no sender.
type RelayStore struct {
	watch[RelayMap]
}

// NewRelayStore loads path (ParseRelayMapFile) and returns a RelayStore
// holding it.
func NewRelayStore(path string) (*RelayStore, error) {
	s := &RelayStore{}
	if err := s.init(path, relayMapWhat, parseRelayMapFile, (*RelayMap).Len); err != nil {
		return nil, err
	}
	return s, nil
}

// Map is the map in force.
func (s *RelayStore) Map() *RelayMap {
	if s == nil {
		return nil
	}
	return s.cur.Load()
}

// RelayHost reloads the file if it changed and is RelayMap.RelayHost on the map in force
// (smarthost.SenderRelays).
func (s *RelayStore) RelayHost(sender string) (relays string, ok bool) {
	if s == nil {
		return "", false
	}
	return s.current().RelayHost(sender)
}

// Explain is RelayMap.Explain on the map in force (after the change check).
func (s *RelayStore) Explain(sender string) []string {
	if s == nil {
		return (*RelayMap)(nil).Explain(sender)
	}
	return s.current().Explain(sender)
}

// watch holds the parsed form of one file and reloads it as Store
// describes. The zero value is not usable; call init.
// String names the file a reload reads ("credentials file /etc/relayq/authinfo"),
// for the daemon's log.
func (w *watch[T]) String() string { return w.what + " " + w.path }

type watch[T any] struct {
	path  string
	what  string // the kind of file, for log lines ("credentials file")
	parse func(path string) (*T, fileSig, error)
	size  func(*T) int // entries, for the reload log line
	log   *slog.Logger

	cur      atomic.Pointer[T]
	onReload atomic.Pointer[func()] // after an automatic reload (OnReload)

	mu     sync.Mutex // serialises loads; guards the fields below
	sig    fileSig    // the loaded version
	badSig fileSig    // the last version that failed (not retried until it changes)
	bad    bool
	err    error
}

// init loads path for the first time.
func (w *watch[T]) init(path, what string, parse func(string) (*T, fileSig, error), size func(*T) int) error {
	v, sig, err := parse(path)
	if err != nil {
		return err
	}
	w.path, w.what, w.parse, w.size = path, what, parse, size
	w.log, w.sig = slog.Default(), sig
	w.cur.Store(v)
	return nil
}

// SetLogger sets the logger for automatic reloads (default slog.Default()).
func (w *watch[T]) SetLogger(l *slog.Logger) {
	w.mu.Lock()
	w.log = l
	w.mu.Unlock()
}

// OnReload sets fn to run after each automatic reload that succeeded (the
// file changed and was read at Lookup time, without SIGHUP), outside the
// store's lock: the daemon closes its idle relay sessions there, as it does
// after SIGHUP, so that the next delivery logs in with the new entries.
func (w *watch[T]) OnReload(fn func()) { w.onReload.Store(&fn) }

// Path is the file's name.
func (w *watch[T]) Path() string { return w.path }

// Err is the error of the last failed load, nil once a load succeeds.
func (w *watch[T]) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Reload loads the file again. On error the old contents stay in force.
func (w *watch[T]) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.load()
}

// load must be called with mu held.
func (w *watch[T]) load() error {
	v, sig, err := w.parse(w.path)
	if err != nil {
		w.err, w.bad, w.badSig = err, true, sig
		return err
	}
	w.cur.Store(v)
	w.sig, w.err, w.bad = sig, nil, false
	return nil
}

// current reloads the file if it changed and returns the contents in
// force.
func (w *watch[T]) current() *T {
	w.maybeReload()
	return w.cur.Load()
}

func (w *watch[T]) maybeReload() {
	if w.reloadIfChanged() {
		if fn := w.onReload.Load(); fn != nil && *fn != nil {
			(*fn)()
		}
	}
}

// reloadIfChanged loads the file when it changed; true when it did and
// the new version is in force.
func (w *watch[T]) reloadIfChanged() bool {
	if !w.mu.TryLock() {
		return false // another goroutine is checking or loading
	}
	defer w.mu.Unlock()
	var sig fileSig
	if fi, err := os.Stat(w.path); err != nil {
		sig = fileSig{statFailed: true}
	} else {
		sig = sigOf(fi)
	}
	if sig == w.sig || (w.bad && sig == w.badSig) {
		return false
	}
	if err := w.load(); err != nil {
		w.log.Error(w.what+" not reloaded; the previous entries stay in force", "file", w.path, "err", err)
		return false
	}
	w.log.Info(w.what+" reloaded", "file", w.path, "entries", w.size(w.cur.Load()))
	return true
}
