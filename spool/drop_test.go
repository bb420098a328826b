package spool

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A drop ID is committed with its message; importing it again (a crash
// between the commit and the removal of the drop file) stores nothing,
// also for a body written over several transactions, and leaves no
// orphaned chunks.
func TestSubmitDropOnce(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := Envelope{From: "a@example.com", Recipients: []Recipient{{Addr: "b@example.net"}}}
	for _, size := range []int{100, 3 << 20} {
		body := bytes.Repeat([]byte("x"), size)
		drop := "DROP" + string(rune('A'+size%26))
		id, known, err := s.SubmitDrop(context.Background(), drop, env, bytes.NewReader(body))
		if err != nil || known {
			t.Fatalf("first SubmitDrop: %v known=%v", err, known)
		}
		id2, known, err := s.SubmitDrop(context.Background(), drop, env, bytes.NewReader(body))
		if err != nil || !known || id2 != id {
			t.Fatalf("second SubmitDrop: %v known=%v %s/%s", err, known, id2, id)
		}
		r, err := s.OpenBody(id)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, body) {
			t.Fatalf("body of %d bytes read back as %d", size, len(got))
		}
	}
	st, _ := s.Stats()
	if st.Count != 2 {
		t.Fatalf("%d messages, want 2", st.Count)
	}
	ids, _ := s.DropIDs()
	if len(ids) != 2 {
		t.Fatalf("drop IDs %v", ids)
	}
	if err := s.ForgetDrops(ids); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.DropIDs(); len(ids) != 0 {
		t.Fatalf("drop IDs after ForgetDrops: %v", ids)
	}
	// No upload left behind by the second large import.
	var uploads int
	_ = s.view(func(tx *bolt.Tx) error { uploads = tx.Bucket(bucketUpload).Stats().KeyN; return nil })
	if uploads != 0 {
		t.Fatalf("%d uploads left", uploads)
	}
}
