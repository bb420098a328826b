package spool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFull puts the spool on a 2 MiB tmpfs, fills it, and checks that
// Submit fails with ErrFull, that the spool stays readable, and that
// submitting works again once space is freed.
func TestDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs for the full-disk test (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	path := filepath.Join(mnt, "queue.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	bodies := map[ID][]byte{}
	for i := 0; i < 5; i++ {
		b := bytes.Repeat([]byte{byte('a' + i)}, 20000)
		bodies[submit(t, s, string(b))] = b
	}

	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 16<<10)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	_ = f.Close()

	// Submits fail with ErrFull once bbolt's free pages are used up; a
	// large one fails part way through its body.
	var fullErr error
	for i := 0; i < 200 && fullErr == nil; i++ {
		body := strings.Repeat("f", 8000)
		if i%3 == 2 {
			body = strings.Repeat("L", 3*chunkSize*chunksPerTx)
		}
		id, err := s.Submit(context.Background(), env("a@b", "c@d"), strings.NewReader(body))
		if err != nil {
			fullErr = err
			break
		}
		bodies[id] = []byte(body)
	}
	if fullErr == nil {
		t.Fatal("Submit never failed on a full file system")
	}
	if !errors.Is(fullErr, ErrFull) {
		t.Fatalf("Submit on a full disk: %v, want ErrFull", fullErr)
	}
	t.Logf("full: %v", fullErr)
	// Either kind of submit fails the same way (a small one may still fit
	// in pages the failed ones freed; then it is accepted and must be kept).
	for _, n := range []int{3 * chunkSize * chunksPerTx, 100} {
		body := strings.Repeat("z", n)
		id, err := s.Submit(context.Background(), env("a@b", "c@d"), strings.NewReader(body))
		switch {
		case err == nil:
			bodies[id] = []byte(body)
		case !errors.Is(err, ErrFull):
			t.Errorf("Submit of %d bytes on a full disk: %v, want ErrFull", n, err)
		}
	}

	// Still readable: list, get and read everything accepted before.
	checkAll := func(s *Spool) {
		t.Helper()
		n := 0
		if err := s.List(func(m *Message) error {
			n++
			want, ok := bodies[m.ID]
			if !ok {
				t.Errorf("unexpected message %s", m.ID)
				return nil
			}
			if got := readBody(t, s, m.ID); !bytes.Equal(got, want) {
				t.Errorf("%s: body differs", m.ID)
			}
			return nil
		}); err != nil {
			t.Fatalf("List: %v", err)
		}
		if n != len(bodies) {
			t.Errorf("listed %d messages, accepted %d", n, len(bodies))
		}
		if st, err := s.Stats(); err != nil || st.Count != len(bodies) {
			t.Errorf("Stats %+v %v", st, err)
		}
	}
	checkAll(s)

	// Compaction needs room for a copy: it fails cleanly and the spool is
	// left as it was.
	if err := s.Compact(); !errors.Is(err, ErrFull) {
		t.Errorf("Compact on a full disk: %v, want ErrFull", err)
	}
	if _, err := os.Stat(compactPath(path)); !os.IsNotExist(err) {
		t.Errorf("failed compaction left its copy: %v", err)
	}
	checkAll(s)

	// Free the space: submitting works again, in this process and after a
	// reopen (which also sweeps what a failed large submit left behind).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		body := strings.Repeat("again", 1000*(i+1))
		id, err := s.Submit(context.Background(), env("a@b", "c@d"), strings.NewReader(body))
		if err != nil {
			t.Fatalf("Submit after freeing space: %v", err)
		}
		bodies[id] = []byte(body)
	}
	checkAll(s)
	if err := s.Compact(); err != nil {
		t.Errorf("Compact after freeing space: %v", err)
	}
	checkAll(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	checkAll(s)
	checkInvariants(t, s)
	bodies[submit(t, s, "after reopen")] = []byte("after reopen")
	checkAll(s)
}
