package spool

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesPrivateFile(t *testing.T) {
	for _, tt := range []struct {
		mode, want os.FileMode
	}{{0, 0o600}, {0o640, 0o640}} {
		dir := filepath.Join(t.TempDir(), "a", "b")
		path := filepath.Join(dir, "queue.db")
		s, err := Open(path, Options{Mode: tt.mode})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tt.want&^umask() {
			t.Errorf("mode %v: file mode %v, want %v", tt.mode, got, tt.want)
		}
		di, _ := os.Stat(dir)
		if got := di.Mode().Perm(); got != 0o700&^umask() {
			t.Errorf("directory mode %v, want 0700", got)
		}
	}
}

func umask() os.FileMode {
	f := filepath.Join(os.TempDir(), fmt.Sprintf("umask-%d", rand.Int()))
	if err := os.WriteFile(f, nil, 0o777); err != nil {
		return 0
	}
	defer os.Remove(f)
	fi, _ := os.Stat(f)
	return 0o777 &^ fi.Mode().Perm()
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// boltFile makes a bbolt file at path with fn's content.
func boltFile(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsForeignAndNewer(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"text file", func(t *testing.T, path string) {
			_ = os.WriteFile(path, []byte(strings.Repeat("From: root\nSubject: not a spool\n\n", 400)), 0o600)
		}, "invalid database"},
		{"short garbage", func(t *testing.T, path string) {
			_ = os.WriteFile(path, []byte("x"), 0o600)
		}, "spool"},
		{"foreign bbolt", func(t *testing.T, path string) {
			boltFile(t, path, func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("users"))
				return err
			})
		}, "without relayq's meta bucket"},
		{"wrong format name", func(t *testing.T, path string) {
			boltFile(t, path, func(tx *bolt.Tx) error {
				b, _ := tx.CreateBucket(bucketMeta)
				return b.Put(keyFormat, []byte("other"))
			})
		}, "meta format"},
		{"newer schema", func(t *testing.T, path string) {
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			boltFile(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion+1))
			})
		}, "newer than this relayq supports"},
		{"missing bucket", func(t *testing.T, path string) {
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			boltFile(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketDue) })
		}, `bucket "due" is missing`},
		{"truncated spool", func(t *testing.T, path string) {
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				submit(t, s, strings.Repeat("t", 50000))
			}
			_ = s.Close()
			fi, _ := os.Stat(path)
			_ = os.Truncate(path, fi.Size()/3)
		}, "spool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "queue.db")
			tt.make(t, path)
			before := fileHash(t, path)
			s, err := Open(path, Options{LockTimeout: time.Second})
			if err == nil {
				// A truncated file may open; its damage must then surface
				// as errors, never as a crash.
				exercise(s)
				_ = s.Close()
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the file and %q", err, tt.want)
			}
			if fileHash(t, path) != before {
				t.Error("Open changed a file it rejected")
			}
			// The lock was released: a second try fails the same way, fast.
			if _, err := Open(path, Options{LockTimeout: time.Second}); errors.Is(err, ErrLocked) {
				t.Errorf("second open: %v", err)
			}
		})
	}
}

// exercise calls every read and write operation and ignores the errors: on
// a damaged file they must return errors, not crash.
func exercise(s *Spool) {
	var ids []ID
	_ = s.List(func(m *Message) error { ids = append(ids, m.ID); return nil })
	_, _ = s.Stats()
	_, _, _ = s.NextDue()
	if len(ids) > 5 {
		ids = ids[:5]
	}
	for _, id := range ids {
		if r, err := s.OpenBody(id); err == nil {
			_, _ = io.Copy(io.Discard, r)
			_ = r.Close()
		}
		_ = s.Update(id, []Result{{Index: 0, State: Delivered}})
	}
	_, _ = s.LeaseDue(time.Now().Add(time.Hour), 100, time.Minute)
	_, _ = s.Flush()
	_, _ = s.Submit(contextBackground(), env("a@b", "c@d"), strings.NewReader("after damage"))
	for _, id := range ids {
		_ = s.Delete(id)
	}
	_ = s.Compact()
}

func TestDamagedPagesNeverCrash(t *testing.T) {
	src := filepath.Join(t.TempDir(), "queue.db")
	s, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			submit(t, s, strings.Repeat(fmt.Sprint(i), 1+i*37))
		}()
	}
	wg.Wait()
	_ = s.Close()
	clean, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	rng := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < 30; round++ {
		b := bytes.Clone(clean)
		// Scribble over a few whole pages after the two meta pages, or
		// flip bytes in page headers.
		for k := 0; k < 1+round%4; k++ {
			p := 2 + rng.IntN(len(b)/pageSize-2)
			if round%2 == 0 {
				for i := p * pageSize; i < (p+1)*pageSize; i++ {
					b[i] = byte(rng.UintN(256))
				}
			} else {
				for i := 0; i < 16; i++ {
					b[p*pageSize+i] ^= byte(1 + rng.UintN(255))
				}
			}
		}
		path := filepath.Join(t.TempDir(), "queue.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{LockTimeout: time.Second})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("round %d: open error %v does not wrap ErrCorrupt", round, err)
			}
			continue
		}
		exercise(s) // must not crash the test binary
		_ = s.Close()
	}
}

func TestDamagedRecord(t *testing.T) {
	s, c := openTest(t)
	good1 := submit(t, s, "one")
	bad := submit(t, s, "two")
	good2 := submit(t, s, "three")
	if err := s.c.do(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMsg).Put([]byte(bad), []byte("\x01{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(bad); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), s.Path()) || !strings.Contains(err.Error(), string(bad)) {
		t.Errorf("Get damaged: %v", err)
	}
	var listed []ID
	err := s.List(func(m *Message) error { listed = append(listed, m.ID); return nil })
	if !errors.Is(err, ErrCorrupt) || len(listed) != 2 || listed[0] != good1 || listed[1] != good2 {
		t.Errorf("List: %v %v", listed, err)
	}
	if st, err := s.Stats(); !errors.Is(err, ErrCorrupt) || st.Count != 2 || st.Bytes != int64(len("one")+len("three")) {
		t.Errorf("Stats with a damaged record: %+v %v", st, err)
	}
	// The damaged record is set aside, the others are leased.
	got, err := s.LeaseDue(c.Now().Add(time.Hour), 10, time.Minute)
	if err != nil || len(got) != 2 {
		t.Fatalf("LeaseDue: %v %v", got, err)
	}
	if got, _ := s.LeaseDue(c.Now().Add(time.Hour), 10, time.Minute); len(got) != 0 {
		t.Errorf("leased again: %v", got)
	}
	if err := s.Update(bad, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Update damaged: %v", err)
	}
	// The operator can still delete it; the others are untouched.
	if err := s.Delete(bad); err != nil {
		t.Errorf("Delete damaged: %v", err)
	}
	if _, err := s.Get(bad); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after deleting damaged: %v", err)
	}
	if err := s.List(func(*Message) error { return nil }); err != nil {
		t.Errorf("List after deleting damaged: %v", err)
	}
}

func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, timeout := range []time.Duration{-1, 100 * time.Millisecond} {
		done := make(chan error, 1)
		go func() {
			_, err := Open(path, Options{LockTimeout: timeout})
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("timeout %v: %v, want ErrLocked", timeout, err)
			}
			if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not say %q and the path", err, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("timeout %v: Open still waiting after 30s", timeout)
		}
	}
}

func TestFlockHolder(t *testing.T) {
	locks := `1: POSIX  ADVISORY  WRITE 100 fd:01:1234 0 EOF
2: FLOCK  ADVISORY  WRITE 200 08:01:99 0 EOF
3: FLOCK  ADVISORY  WRITE 300 fd:01:1234 0 EOF
3: -> FLOCK  ADVISORY  WRITE 400 fd:01:1234 0 EOF
4: FLOCK  ADVISORY  WRITE 500 08:02:1234 0 EOF
`
	f := filepath.Join(t.TempDir(), "locks")
	if err := os.WriteFile(f, []byte(locks), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := func(major, minor uint32) uint64 {
		return uint64(major)<<8 | uint64(minor) // Linux mkdev for small numbers
	}
	for _, tt := range []struct {
		dev, ino uint64
		want     int
	}{
		{dev(0xfd, 1), 1234, 300}, // the granted FLOCK, not POSIX, not the waiter
		{dev(8, 1), 99, 200},
		{dev(8, 2), 1234, 500},
		{dev(8, 1), 1234, 0},
		{dev(8, 1), 5, 0},
	} {
		if got := flockHolder(f, tt.dev, tt.ino); got != tt.want {
			t.Errorf("flockHolder(%x, %d) = %d, want %d", tt.dev, tt.ino, got, tt.want)
		}
	}
	if got := flockHolder(filepath.Join(t.TempDir(), "missing"), 1, 1); got != 0 {
		t.Errorf("missing file: %d", got)
	}
}

func TestParseID(t *testing.T) {
	id := encodeID(1_790_000_000_123_456)
	for _, tt := range []struct {
		in   string
		want ID
		ok   bool
	}{
		{string(id), id, true},
		{strings.ToLower(string(id)), id, true},
		{"", "", false},
		{string(id) + "0", "", false},
		{string(id)[:11], "", false},
		{"01K0WGA2FA4I", "", false}, // I is not in Crockford's alphabet
		{"01K0WGA2FA4-", "", false},
	} {
		got, err := ParseID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseID(%q) = %q, %v", tt.in, got, err)
		}
	}
	if got := id.Time(); !got.Equal(time.UnixMicro(1_790_000_000_123_456)) {
		t.Errorf("Time() = %v", got)
	}
	if !ID("bogus").Time().IsZero() {
		t.Error("invalid ID has a time")
	}
	if a, b := encodeID(1<<40), encodeID(1<<40+1); !(a < b) {
		t.Errorf("IDs do not sort: %s %s", a, b)
	}
}

func FuzzParseID(f *testing.F) {
	f.Add("01K0WGA2FA46")
	f.Add("zzzzzzzzzzzz")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		us, ok := decodeID(string(id))
		if !ok || encodeID(us) != id || !strings.EqualFold(string(id), s) {
			t.Fatalf("ParseID(%q) = %q does not round-trip", s, id)
		}
	})
}
