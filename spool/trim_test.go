package spool

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mappedKB is the resident size of this process's mapping of path
// (/proc/self/smaps), in kB.
func mappedKB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, total := false, 0
	for sc.Scan() {
		l := sc.Text()
		if fs := strings.Fields(l); len(fs) >= 5 && strings.Contains(fs[0], "-") && !strings.HasSuffix(fs[0], ":") {
			in = len(fs) >= 6 && fs[5] == path
			continue
		}
		if v, ok := strings.CutPrefix(l, "Rss:"); in && ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			total += kb
		}
	}
	return total
}

// TestTrimMapped: reading every message maps the spool file's pages into
// the process; trimMapped unmaps them, and the messages still read back
// whole (the pages come back from the page cache).
func TestTrimMapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := strings.Repeat("0123456789abcdef\r\n", 500) // 9 KB: pages of its own
	var ids []ID
	for i := 0; i < 200; i++ {
		id, err := s.Submit(context.Background(), Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "b@example.net"}}}, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	readAll := func() {
		for _, id := range ids {
			rc, err := s.OpenBody(id)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(b) != body {
				t.Fatalf("body of %s: %v, %d octets", id, err, len(b))
			}
		}
	}
	real, _ := filepath.EvalSymlinks(path)
	readAll()
	before := mappedKB(t, real)
	s.trimMapped()
	after := mappedKB(t, real)
	if before < 1024 || after > before/8 {
		t.Errorf("mapped spool pages: %d kB after reading every body, %d kB after trimMapped", before, after)
	}
	readAll()
	again := mappedKB(t, real)
	if again < before/2 {
		t.Errorf("pages not mapped again on reading: %d kB", again)
	}
	t.Logf("mapped: %d kB after reading, %d kB after trimMapped, %d kB after reading again", before, after, again)
	// The scans of every record leave the mapping trimmed.
	for name, scan := range map[string]func() error{
		"Stats":      func() error { _, err := s.Stats(); return err },
		"List":       func() error { return s.List(func(*Message) error { return nil }) },
		"RetryKinds": func() error { _, err := s.RetryKinds([]string{"auth"}, "test"); return err },
	} {
		readAll()
		if err := scan(); err != nil {
			t.Fatal(name, err)
		}
		if got := mappedKB(t, real); got > before/8 {
			t.Errorf("%s left %d kB of the spool mapped", name, got)
		}
	}
}
