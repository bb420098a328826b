package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/sendmail"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/submit"
)

func TestResults(t *testing.T) {
	m := &spool.Message{Reason: "relay unreachable", Envelope: spool.Envelope{Recipients: []spool.Recipient{
		{Addr: "a@x", State: spool.Delivered, Reply: spool.Reply{Code: 250, Enhanced: "2.0.0", Text: "ok"}, Relay: "relay.example"},
		{Addr: "b@x", State: spool.Bounced, Reply: spool.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}},
		{Addr: "c@x", State: spool.Pending},
	}}}
	got := results(m)
	want := []sendmail.DeliveryStatus{sendmail.StatusDelivered, sendmail.StatusBounced, sendmail.StatusDeferred}
	for i, r := range got {
		if r.Status != want[i] {
			t.Errorf("recipient %d: status %d, want %d", i, r.Status, want[i])
		}
	}
	if got[2].Reply != "relay unreachable" || got[0].Relay != "relay.example" || got[1].Reply == "" {
		t.Errorf("results %+v", got)
	}
}

// TestDeliverNowDaemonless: -odi without a daemon reports what the
// delivery run returned for each recipient (the relay's own replies), also
// when the run removed the message from the queue.
func TestDeliverNowDaemonless(t *testing.T) {
	sink := testlib.StartSink(t)
	sink.Refuse = func(to string) error {
		if to == "bad@example.net" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}

	dir := t.TempDir()
	cfg := queueConfig()
	cfg.Spool = filepath.Join(dir, "queue.db")
	cfg.ControlSocket = filepath.Join(dir, "control.sock")
	cfg.TLS = "none"
	cfg.Auth = "none" // a test relay without AUTH
	cfg.HeloName = "client.test"
	cfg.RelayHost = sink.Relay()
	sp, err := spool.Open(cfg.Spool, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := spool.Envelope{From: "alice@example.org", Recipients: []spool.Recipient{{Addr: "good@example.net"}, {Addr: "bad@example.net"}}}
	id, err := sp.Submit(context.Background(), env, strings.NewReader("Subject: t\r\n\r\nhi\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := controlClient(cfg)
	got, err := deliverNow(ctx, cfg, c, submit.ID(id), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Addr != "good@example.net" || got[0].Status != sendmail.StatusDelivered || !strings.HasPrefix(got[0].Reply, "250 ") ||
		got[1].Addr != "bad@example.net" || got[1].Status != sendmail.StatusBounced || got[1].Reply != "550 5.1.1 no such user" || got[1].Relay == "" {
		t.Errorf("results %+v", got)
	}
	if _, err := c.Show(ctx, id); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("message still queued after its recipients were final: %v", err)
	}
}

// TestMailqEntries lists a real spool (no daemon: the control client opens
// the file) and checks what mailq is given: pending recipients only, with
// their last reply; the hold flag; the message-level reason.
func TestMailqEntries(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/queue.db"
	s, err := spool.Open(path, spool.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	env := spool.Envelope{From: "alice@example.org", Recipients: []spool.Recipient{{Addr: "a@x"}, {Addr: "b@x"}}}
	id1, err := s.Submit(ctx, env, strings.NewReader("Subject: one\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.Submit(ctx, spool.Envelope{Recipients: []spool.Recipient{{Addr: "c@x"}}}, strings.NewReader("Subject: two\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LeaseDue(time.Now().Add(time.Hour), 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(id1, []spool.Result{
		{Index: 0, State: spool.Delivered, Reply: spool.Reply{Code: 250, Text: "ok"}},
		{Index: 1, State: spool.Pending, Reply: spool.Reply{Code: 451, Enhanced: "4.7.1", Text: "greylisted"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Defer(id1, time.Now().Add(time.Hour), "some recipients deferred"); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(id2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	c := &control.Client{Socket: dir + "/no-daemon.sock", SpoolPath: path, LockTimeout: time.Second}
	got, err := mailqEntries(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != string(id1) || got[1].ID != string(id2) {
		t.Fatalf("entries %+v", got)
	}
	e := got[0]
	if e.From != "alice@example.org" || e.Held || e.Reason != "some recipients deferred" || e.Size == 0 ||
		len(e.Recipients) != 1 || e.Recipients[0].Addr != "b@x" || !strings.Contains(e.Recipients[0].Reason, "greylisted") {
		t.Errorf("first entry %+v", e)
	}
	if !got[1].Held || got[1].From != "" || len(got[1].Recipients) != 1 {
		t.Errorf("second entry %+v", got[1])
	}
	var b strings.Builder
	if err := sendmail.WriteMailq(&b, got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{string(id2) + "!", "MAILER-DAEMON", "b@x", "greylisted", "-- 0 Kbytes in 2 Requests."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("mailq output lacks %q:\n%s", want, b.String())
		}
	}
}
