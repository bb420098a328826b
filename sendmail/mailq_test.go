package sendmail

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestWriteMailq(t *testing.T) {
	t.Parallel()
	arr := time.Date(2026, 11, 22, 21, 8, 12, 0, time.Local)
	entries := []QueueEntry{
		{ID: "01K0WH8K3QSY", Arrival: arr, Size: 2048, From: "alice@example.org", Active: true,
			Recipients: []QueueRecipient{{Addr: "bob@example.net"}}},
		{ID: "01K0WH8K3QSZ", Arrival: arr.Add(time.Hour), Size: 1000, From: "", Held: true,
			Recipients: []QueueRecipient{
				{Addr: "a@example.net", Reason: "451 4.3.0 try later"},
				{Addr: "b@example.net", Reason: "451 4.3.0 try later"},
				{Addr: "c@example.net\r\nX: forged", Reason: "connect to relay: refused"},
			}},
	}
	var b bytes.Buffer
	if err := WriteMailq(&b, entries); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"-Queue ID-    --Size-- ----Arrival Time---- -Sender/Recipient-------\n" +
		"01K0WH8K3QSY*    2048 Sun Nov 22 21:08:12  alice@example.org\n" +
		"                                           bob@example.net\n" +
		"\n" +
		"01K0WH8K3QSZ!    1000 Sun Nov 22 22:08:12  MAILER-DAEMON\n" +
		strings.Repeat(" ", 76-len("451 4.3.0 try later")) + "(451 4.3.0 try later)\n" +
		"                                           a@example.net\n" +
		"                                           b@example.net\n" +
		strings.Repeat(" ", 76-len("connect to relay: refused")) + "(connect to relay: refused)\n" +
		"                                           c@example.net  X: forged\n" +
		"\n" +
		"-- 2 Kbytes in 2 Requests.\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	if err := WriteMailq(&b, nil); err != nil || b.String() != "Mail queue is empty\n" {
		t.Errorf("empty queue: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := WriteMailq(&b, entries[:1]); err != nil || !strings.HasSuffix(b.String(), "-- 2 Kbytes in 1 Request.\n") {
		t.Errorf("one entry: %q", b.String())
	}
}

func TestMailqMode(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	o, out, errb := testOptions(q, "")
	o.List = func(context.Context) ([]QueueEntry, error) { return nil, nil }
	if code := Main(context.Background(), o, []string{"-bp"}); code != ExitOK || out.String() != "Mail queue is empty\n" {
		t.Errorf("-bp: exit %d, out %q, err %q", code, out, errb)
	}
	o.List = func(context.Context) ([]QueueEntry, error) { return nil, errTest }
	if code := Main(context.Background(), o, []string{"-bp"}); code != ExitTempFail {
		t.Errorf("-bp with a failing list: exit %d", code)
	}
}
