package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/spool"
)

// The queue listing shows every file of the drop directory: a complete one
// with its envelope, a torn one and one already set aside as held and
// damaged, with their path (accepted mail is never invisible).
func TestListDrops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	env := maildrop.Envelope{From: "a@example.com", Recipients: []maildrop.Recipient{{Addr: "b@example.net"}}}
	good, err := maildrop.Write(dir, env, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := maildrop.Write(dir, env, strings.NewReader("x"))
	if err := maildrop.SetAside(filepath.Join(dir, bad)); err != nil {
		t.Fatal(err)
	}
	torn := "ZZZZZZZZZZZZZZZZZZZ"
	os.WriteFile(filepath.Join(dir, torn), []byte("relayq-drop/1\n{"), 0o600)
	var got []*spool.Message
	if err := listDrops(dir, func(m *spool.Message) { got = append(got, m) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
	by := map[string]*spool.Message{}
	for _, m := range got {
		by[string(m.ID)] = m
	}
	if m := by[good]; m == nil || m.Held || m.From != "a@example.com" || m.Recipients[0].Addr != "b@example.net" || !strings.Contains(m.Reason, "not yet queued") {
		t.Errorf("good file: %+v", m)
	}
	for _, id := range []string{bad, torn} {
		if m := by[id]; m == nil || !m.Held || !strings.Contains(m.Reason, "damaged drop file") || !strings.Contains(m.Reason, dir) {
			t.Errorf("damaged file %s: %+v", id, m)
		}
	}
}

// A failed import, recorded by the run, is the reason every waiting drop
// file shows (no daemon, no syslog needed).
func TestListDropsImportProblem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	env := maildrop.Envelope{From: "a@example.com", Recipients: []maildrop.Recipient{{Addr: "b@example.net"}}}
	if _, err := maildrop.Write(dir, env, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	maildrop.SetProblem(dir, "open spool /x/queue.db: no space left on device")
	var got []*spool.Message
	if err := listDrops(dir, func(m *spool.Message) { got = append(got, m) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0].Reason, "the last import failed") || !strings.Contains(got[0].Reason, "no space left on device") {
		t.Fatalf("entries %+v", got)
	}
}
