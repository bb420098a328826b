package authinfo

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// logTo gives w a logger that writes to the buffer returned.
func logTo[T any](w *watch[T]) *bytes.Buffer {
	logBuf := &bytes.Buffer{}
	w.SetLogger(slog.New(slog.NewTextHandler(logBuf, nil)))
	return logBuf
}

func user(t *testing.T, s *Store) string {
	t.Helper()
	c, ok := s.Lookup(Query{Host: "smtp.example.com"})
	if !ok {
		return ""
	}
	return c.User
}

func TestStoreReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "smtp.example.com old:pw\n", 0o600)
	s, err := NewStore(p)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	s.SetLogger(slog.New(slog.NewTextHandler(&logBuf, nil)))
	if s.Path() != p || user(t, s) != "old" {
		t.Fatalf("initial user %q", user(t, s))
	}

	// SIGHUP-style Reload picks up a good file.
	writeFile(t, dir, "smtp.example.com new:pw\n", 0o600)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if user(t, s) != "new" || s.Err() != nil {
		t.Fatalf("after Reload: %q %v", user(t, s), s.Err())
	}

	// A broken file: Reload returns the error, the old map stays.
	writeFile(t, dir, "smtp.example.com broken-no-colon\n", 0o600)
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), ":1: expected the value user:password") {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	if user(t, s) != "new" || s.Err() == nil {
		t.Fatalf("after failed Reload: user %q err %v", user(t, s), s.Err())
	}
	// An unsafe file is a failed reload too.
	writeFile(t, dir, "smtp.example.com unsafe:pw\n", 0o644)
	if err := s.Reload(); err == nil || user(t, s) != "new" {
		t.Fatalf("Reload of a world-readable file: %v, user %q", err, user(t, s))
	}
	// Removed file: old map stays.
	os.Remove(p)
	if err := s.Reload(); err == nil || user(t, s) != "new" {
		t.Fatalf("Reload of a missing file: %v, user %q", err, user(t, s))
	}
	if strings.Contains(logBuf.String(), "pw") {
		t.Errorf("log shows file content: %s", logBuf.String())
	}
}

func TestStoreAutoReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "smtp.example.com v1:pw\n", 0o600)
	s, err := NewStore(p)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := logTo(&s.watch)

	// A change is looked at on the next lookup.
	writeFile(t, dir, "smtp.example.com v2:pw\n", 0o600)
	if got := user(t, s); got != "v2" {
		t.Fatalf("not reloaded at the next lookup: %q", got)
	}
	if !strings.Contains(logBuf.String(), "credentials file reloaded") {
		t.Errorf("no reload log line: %s", logBuf.String())
	}

	// A same-size rewrite is noticed too (new inode from the rename).
	writeFile(t, dir, "smtp.example.com v3:pw\n", 0o600)
	if got := user(t, s); got != "v3" {
		t.Fatalf("same-size change not noticed: %q", got)
	}

	// A broken file keeps the old map, logs once, and is not re-parsed
	// on every lookup.
	logBuf.Reset()
	writeFile(t, dir, "smtp.example.com Br0kenSecret\n", 0o600)
	for range 3 {
		if got := user(t, s); got != "v3" {
			t.Fatalf("broken file replaced the map: %q", got)
		}
	}
	if n := strings.Count(logBuf.String(), "not reloaded"); n != 1 || s.Err() == nil {
		t.Errorf("%d error log lines (want 1), Err %v:\n%s", n, s.Err(), logBuf.String())
	}
	if strings.Contains(logBuf.String(), "Br0kenSecret") {
		t.Errorf("log shows the line: %s", logBuf.String())
	}
	// Fixing the file is picked up.
	writeFile(t, dir, "smtp.example.com v4:pw\n", 0o600)
	if got := user(t, s); got != "v4" || s.Err() != nil {
		t.Fatalf("fixed file: %q %v", got, s.Err())
	}
	writeFile(t, dir, "smtp.example.com v5:pw\n", 0o600)
	if got := user(t, s); got != "v5" {
		t.Fatalf("second change: %q", got)
	}
	// Explain goes through the same check.
	if trail := strings.Join(s.Explain(Query{Host: "smtp.example.com"}), "\n"); !strings.Contains(trail, `user "v5"`) {
		t.Errorf("Explain: %s", trail)
	}
}

func TestStoreConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "smtp.example.com a:pw\n", 0o600)
	s, err := NewStore(p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				if i == 0 && j%20 == 0 {
					_ = s.Reload()
				}
				if c, ok := s.Lookup(Query{Host: "smtp.example.com"}); !ok || c.User != "a" {
					t.Errorf("lookup: %v %v", c, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestNewStoreError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "bad\n", 0o600)
	if _, err := NewStore(p); err == nil {
		t.Fatal("NewStore accepted a broken file")
	}
}

func writeFileB(p, text string) error { return os.WriteFile(p, []byte(text), 0o600) }

// TestStoreSymlinkSwap: Kubernetes updates a secret volume by pointing the
// ..data symlink at a new directory; the file's path stays the same.
func TestStoreSymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mk := func(name, text string) {
		if err := os.MkdirAll(dir+"/"+name, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+name+"/authinfo", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk("v1", "smtp.example.com k1:pw\n")
	mk("v2", "smtp.example.com k2:pw\n")
	if err := os.Symlink("v1", dir+"/..data"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/authinfo", dir+"/authinfo"); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(dir + "/authinfo")
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(slog.New(slog.DiscardHandler))
	if got := user(t, s); got != "k1" {
		t.Fatalf("user %q", got)
	}
	if err := os.Symlink("v2", dir+"/..data.tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+"/..data.tmp", dir+"/..data"); err != nil {
		t.Fatal(err)
	}
	if got := user(t, s); got != "k2" {
		t.Fatalf("after the symlink swap: user %q", got)
	}
}

// TestStoreOnReload: the OnReload hook runs once per automatic reload that
// succeeded (the daemon closes its idle relay sessions there), never for
// a check that found no change or a file that failed to load.
func TestStoreOnReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "smtp.example.com v1:pw\n", 0o600)
	s, err := NewStore(p)
	if err != nil {
		t.Fatal(err)
	}
	logTo(&s.watch)
	var calls atomic.Int32
	s.OnReload(func() { calls.Add(1) })
	user(t, s)
	if n := calls.Load(); n != 0 {
		t.Fatalf("hook ran %d times without a change", n)
	}
	writeFile(t, dir, "smtp.example.com v2:pw\n", 0o600)
	if got := user(t, s); got != "v2" || calls.Load() != 1 {
		t.Fatalf("after a change: user %q, hook ran %d times, want v2 and 1", got, calls.Load())
	}
	writeFile(t, dir, "smtp.example.com Br0ken\n", 0o600)
	if got := user(t, s); got != "v2" || calls.Load() != 1 {
		t.Fatalf("after a broken file: user %q, hook ran %d times, want v2 and 1", got, calls.Load())
	}
}
