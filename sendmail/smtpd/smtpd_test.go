package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/sendmail"
	"github.com/relayq/relayq/submit"
)

// queued is what the fake queue received.
type queued struct {
	env  submit.Envelope
	body []byte
}

// fakeQueue records submissions; err, when set, is returned instead (after
// reading the body, as a failing spool write would).
type fakeQueue struct {
	mu   sync.Mutex
	msgs []queued
	err  error
}

func (q *fakeQueue) submit(ctx context.Context, env submit.Envelope, body io.Reader, mode sendmail.DeliveryMode) (submit.ID, error) {
	b, rerr := io.ReadAll(body)
	if rerr != nil {
		return "", fmt.Errorf("reading body: %w", rerr)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return "", q.err
	}
	q.msgs = append(q.msgs, queued{env: env, body: b})
	return submit.ID(fmt.Sprintf("TESTID%06d", len(q.msgs))), nil
}

var errTest = errors.New("test failure")

// testOptions returns sendmail.Options with -bs served by this package,
// for a caller "alice" (uid 1000, untrusted) on host.example.org.
func testOptions(q *fakeQueue, stdin string) (sendmail.Options, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return sendmail.Options{
		Stdin:         strings.NewReader(stdin),
		Stdout:        &out,
		Stderr:        &errb,
		Identity:      sendmail.Identity{UID: 1000, User: "alice", FullName: "Alice Example"},
		Hostname:      "host.example.org",
		Domain:        "example.org",
		LocalDomains:  []string{"localhost", "host.example.org", "host"},
		TrustedUsers:  []string{"root", "relayq"},
		MaxHeaderSize: 102400,
		HopCountLimit: 50,
		Now:           func() time.Time { return time.Date(2026, 11, 22, 21, 8, 12, 0, time.UTC) },
		Submit:        q.submit,
		ServeSMTP:     Serve,
	}, &out, &errb
}

// checkWire asserts what everything relayq queues holds to: only CRLF line
// ends, no bare CR or LF, no NUL, lines at most 998 octets.
func checkWire(t *testing.T, body []byte) {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("\r\n")) {
		t.Errorf("body does not end with CRLF")
	}
	for i, line := range bytes.Split(body, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n\x00") || len(line) > sendmail.MaxLine {
			t.Errorf("line %d: bare CR/LF, NUL or longer than %d: %q", i+1, sendmail.MaxLine, line)
		}
	}
}

// TestNoServeSMTP: a binary without this package refuses -bs with 70.
func TestNoServeSMTP(t *testing.T) {
	o, _, errb := testOptions(&fakeQueue{}, "HELO x\r\n")
	o.ServeSMTP = nil
	if code := sendmail.Main(context.Background(), o, []string{"-bs"}); code != sendmail.ExitSoftware || !strings.Contains(errb.String(), "not available") {
		t.Errorf("exit %d, stderr %q", code, errb)
	}
}

// TestBS drives -bs with a whole SMTP conversation on standard input, as
// swaks --pipe does, and checks the replies and what was queued.
func TestBS(t *testing.T) {
	t.Parallel()
	script := strings.Join([]string{
		"EHLO client.example",
		"MAIL FROM:<alice@example.org> BODY=8BITMIME",
		"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net",
		"RCPT TO:<root@localhost>", // go-smtp wants a domain (RFC 5321 §4.1.2); local domains are qualified
		"DATA",
		"Subject: via -bs",
		"Bcc: hidden@example.com",
		"",
		"..leading dot",
		"Grüße",
		".",
		"MAIL FROM:<>",
		"RCPT TO:<-oQ/tmp@example.com>",
		"RCPT TO:<carol@example.net>",
		"DATA",
		"Subject: second",
		"",
		"x",
		".",
		"QUIT",
		"",
	}, "\r\n")
	q := &fakeQueue{}
	o, out, errb := testOptions(q, script)
	if code := sendmail.Main(context.Background(), o, []string{"-bs"}); code != sendmail.ExitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	replies := out.String()
	for _, want := range []string{
		"220 host.example.org",
		"250-DSN",
		"250-SMTPUTF8",
		"250 2.0.0 Ok: queued as TESTID000001",
		"501 5.1.7 address starts with '-'",
		"250 2.0.0 Ok: queued as TESTID000002",
		"221 ",
	} {
		if !strings.Contains(replies, want) {
			t.Errorf("replies lack %q:\n%s", want, replies)
		}
	}
	if len(q.msgs) != 2 {
		t.Fatalf("queued %d messages, want 2", len(q.msgs))
	}
	m := q.msgs[0]
	checkWire(t, m.body)
	if m.env.From != "alice@example.org" || !m.env.Body8Bit || len(m.env.Recipients) != 2 {
		t.Errorf("envelope %+v", m.env)
	}
	if r := m.env.Recipients[0]; r.Notify != "SUCCESS,FAILURE" || r.ORcpt != "rfc822;bob@example.net" {
		t.Errorf("DSN parameters lost: %+v", r)
	}
	if m.env.Recipients[1].Addr != "root@example.org" {
		t.Errorf("bare name not qualified: %q", m.env.Recipients[1].Addr)
	}
	body := string(m.body)
	if strings.Contains(body, "hidden@example.com") || !strings.Contains(body, "\r\n.leading dot\r\n") ||
		!strings.Contains(body, "\r\nDate: ") || !strings.Contains(body, "\r\nMessage-ID: <") {
		t.Errorf("queued message:\n%s", body)
	}
	if q.msgs[1].env.From != "" {
		t.Errorf("null sender became %q", q.msgs[1].env.From)
	}
}

func TestBSUntrustedRefused(t *testing.T) {
	t.Parallel()
	script := "HELO x\r\nMAIL FROM:<boss@example.com>\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n"
	q := &fakeQueue{}
	o, out, _ := testOptions(q, script)
	o.RefuseUntrusted = true
	if code := sendmail.Main(context.Background(), o, []string{"-bs"}); code != sendmail.ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "550 5.7.1 user alice may not send as <boss@example.com>") {
		t.Errorf("replies:\n%s", out)
	}
	if len(q.msgs) != 1 || q.msgs[0].env.From != "alice@example.org" {
		t.Errorf("queued %+v", q.msgs)
	}
}

func TestBSTempFail(t *testing.T) {
	t.Parallel()
	script := "HELO x\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n"
	q := &fakeQueue{err: errTest}
	o, out, _ := testOptions(q, script)
	sendmail.Main(context.Background(), o, []string{"-bs"})
	if !strings.Contains(out.String(), "451 4.3.0 test failure") {
		t.Errorf("replies:\n%s", out)
	}
}

// TestBSEOFInData: the client vanishes in the middle of DATA; nothing is
// queued (the partial message is not accepted).
func TestBSEOFInData(t *testing.T) {
	t.Parallel()
	script := "HELO x\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\nSubject: cut\r\n\r\npartial body\r\n"
	q := &fakeQueue{}
	o, out, _ := testOptions(q, script)
	if code := sendmail.Main(context.Background(), o, []string{"-bs"}); code != sendmail.ExitOK {
		t.Fatalf("exit %d", code)
	}
	if len(q.msgs) != 0 {
		t.Errorf("a cut message was queued: %q", q.msgs[0].body)
	}
	if strings.Contains(out.String(), "queued as") {
		t.Errorf("replies claim it was queued:\n%s", out)
	}
}
