package sendmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/aliases"
	"github.com/relayq/relayq/submit"
)

// queued is what a fake Submit received.
type queued struct {
	env  submit.Envelope
	body []byte
	mode DeliveryMode
}

// fakeQueue records submissions; err, when set, is returned instead (after
// reading the body, as a failing spool write would).
type fakeQueue struct {
	mu   sync.Mutex
	msgs []queued
	err  error
}

func (q *fakeQueue) submit(ctx context.Context, env submit.Envelope, body io.Reader, mode DeliveryMode) (submit.ID, error) {
	b, rerr := io.ReadAll(body)
	if rerr != nil {
		return "", fmt.Errorf("reading body: %w", rerr)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return "", q.err
	}
	q.msgs = append(q.msgs, queued{env: env, body: b, mode: mode})
	return submit.ID(fmt.Sprintf("TESTID%06d", len(q.msgs))), nil
}

var testNow = time.Date(2026, 11, 22, 21, 8, 12, 0, time.FixedZone("", 3600))

// testOptions returns Options for a caller "alice" (uid 1000, untrusted)
// on host.example.org with domain example.org.
func testOptions(q *fakeQueue, stdin string) (Options, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return Options{
		Stdin:         strings.NewReader(stdin),
		Stdout:        &out,
		Stderr:        &errb,
		Identity:      Identity{UID: 1000, User: "alice", FullName: "Alice Example"},
		Hostname:      "host.example.org",
		Domain:        "example.org",
		LocalDomains:  []string{"localhost", "host.example.org", "host"},
		TrustedUsers:  []string{"root", "relayq"},
		MaxHeaderSize: 102400,
		HopCountLimit: 50,
		Now:           func() time.Time { return testNow },
		Submit:        q.submit,
	}, &out, &errb
}

var msgIDRe = regexp.MustCompile(`(?m)^((?:Resent-)?Message-ID): <[^>]+>`)

// render is the golden form of a queued message: the envelope, then the
// message with CRLF shown as "\r\n" ends kept visible.
func render(m queued) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM:<%s> body8bit=%v smtputf8=%v ret=%q envid=%q origin=%s mode=%d\n",
		m.env.From, m.env.Body8Bit, m.env.SMTPUTF8, m.env.Ret, m.env.EnvID, m.env.Origin, m.mode)
	for _, r := range m.env.Recipients {
		fmt.Fprintf(&b, "RCPT TO:<%s> notify=%q orcpt=%q\n", r.Addr, r.Notify, r.ORcpt)
	}
	b.WriteString("----\n")
	body := msgIDRe.ReplaceAllString(string(m.body), "$1: <ID>")
	body = strings.ReplaceAll(body, "\r\n", "⏎\n")
	b.WriteString(body)
	return b.String()
}

// checkWire asserts the invariants of everything relayq queues: only CRLF
// line ends, no bare CR or LF, no NUL, lines at most 998 octets.
func checkWire(t *testing.T, body []byte) {
	t.Helper()
	if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
		t.Errorf("body does not end with CRLF: %q", tail(body))
	}
	inHeader := true
	for i, line := range bytes.Split(body, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n\x00") {
			t.Errorf("line %d has a bare CR/LF or NUL: %q", i+1, line)
		}
		if len(line) == 0 {
			inHeader = false
		}
		// Header lines are folded; body lines are queued whole (the
		// delivery re-encodes their part as quoted-printable).
		if inHeader && len(line) > MaxLine {
			t.Errorf("line %d is %d octets long", i+1, len(line))
		}
	}
}

func tail(b []byte) []byte {
	if len(b) > 40 {
		return b[len(b)-40:]
	}
	return b
}

func mustGeneric(t *testing.T, text string) *aliases.Generic {
	t.Helper()
	g, err := aliases.ParseGeneric(strings.NewReader(text), "generic")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var errTest = errors.New("test failure")
