package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/sendmail"
	"github.com/relayq/relayq/spool"
)

// TestMailqDamagedRecord: one damaged record in the spool does not hide
// the rest: mailq lists the other messages and the damaged one, marked,
// with the command that removes it, and exits 0.
func TestMailqDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/queue.db"
	s, err := spool.Open(path, spool.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var ids []spool.ID
	for _, subj := range []string{"one", "two", "three"} {
		id, err := s.Submit(context.Background(), spool.Envelope{From: "a@example.org", Recipients: []spool.Recipient{{Addr: subj + "@example.net"}}},
			strings.NewReader("Subject: "+subj+"\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testlib.DamageRecord(t, path, string(ids[1]))

	c := &control.Client{Socket: dir + "/no-daemon.sock", SpoolPath: path, LockTimeout: time.Second}
	var out, errb strings.Builder
	code := sendmail.Mailq(context.Background(), sendmail.Options{
		Stdout: &out, Stderr: &errb, Prog: "mailq",
		List: func(ctx context.Context) ([]sendmail.QueueEntry, error) { return mailqEntries(ctx, c) },
	})
	if code != sendmail.ExitOK || errb.Len() != 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	for _, want := range []string{"one@example.net", "three@example.net", string(ids[1]) + "!", "DAMAGED RECORD", "relayq queue delete " + string(ids[1]), "3 Requests"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("mailq output lacks %q:\n%s", want, out.String())
		}
	}
}
