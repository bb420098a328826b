package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCompactShrinksAndKeepsEverything(t *testing.T) {
	s, c := openTest(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	bodies := map[ID][]byte{}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := bytes.Repeat([]byte{byte('A' + i%26)}, 1000+i*30000)
			id := submit(t, s, string(b))
			mu.Lock()
			bodies[id] = b
			mu.Unlock()
		}()
	}
	wg.Wait()
	i := 0
	for id := range bodies {
		if i%4 != 0 {
			if err := s.Delete(id); err != nil {
				t.Fatal(err)
			}
			delete(bodies, id)
		}
		i++
	}
	var keep ID
	for id := range bodies {
		keep = id
		break
	}
	if err := s.Hold(keep); err != nil {
		t.Fatal(err)
	}
	lastBefore := submit(t, s, "last before compaction")
	bodies[lastBefore] = []byte("last before compaction")
	before := fileSize(t, s.Path())
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	after := fileSize(t, s.Path())
	t.Logf("file %d -> %d bytes", before, after)
	if after >= before/2 {
		t.Errorf("file did not shrink: %d -> %d bytes", before, after)
	}
	if _, err := os.Stat(compactPath(s.Path())); !os.IsNotExist(err) {
		t.Errorf("compaction copy left behind: %v", err)
	}
	for id, b := range bodies {
		if got := readBody(t, s, id); !bytes.Equal(got, b) {
			t.Errorf("%s: body differs after compaction", id)
		}
	}
	if m, _ := s.Get(keep); !m.Held {
		t.Error("hold lost in compaction")
	}
	// The spool keeps working, and IDs keep increasing.
	c.Add(-time.Hour)
	if id := submit(t, s, "after"); id <= lastBefore {
		t.Errorf("ID %s after compaction not after %s", id, lastBefore)
	}
	if got, err := s.LeaseDue(c.Now().Add(2*time.Hour), 100, time.Minute); err != nil || len(got) != len(bodies) {
		t.Errorf("LeaseDue after compaction: %d, %v; want %d (all but the held one, plus the new one)", len(got), err, len(bodies))
	}
	checkInvariants(t, s)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// An Open waiting for the lock while Compact replaces the file must end up
// with the new file, never the old one.
func TestCompactWithWaitingOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	submit(t, s, strings.Repeat("x", 100000))
	type result struct {
		s   *Spool
		err error
	}
	done := make(chan result, 1)
	go func() {
		s2, err := Open(path, Options{LockTimeout: 20 * time.Second})
		done <- result{s2, err}
	}()
	time.Sleep(200 * time.Millisecond) // let it wait on the old file's lock
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	newID := submit(t, s, "written after compaction")
	time.Sleep(200 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.s.Close()
	if _, err := r.s.Get(newID); err != nil {
		t.Errorf("the waiting opener got the old file: %v", err)
	}
}
