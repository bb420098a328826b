package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/wire"
)

func TestBackoff(t *testing.T) {
	p := Policy{BackoffMin: 5 * time.Minute, BackoffMax: time.Hour}.withDefaults()
	want := []time.Duration{5, 10, 20, 40, 60, 60, 60}
	for i, w := range want {
		if got := p.Backoff(i+1, nil); got != w*time.Minute {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w*time.Minute)
		}
	}
	if got := p.Backoff(1000, nil); got != time.Hour {
		t.Errorf("attempt 1000: %s", got)
	}
	pj := p
	pj.Jitter = 0.1
	for _, r := range []float64{0, 0.5, 0.999} {
		got := pj.Backoff(2, func() float64 { return r })
		lo, hi := 10*time.Minute, 11*time.Minute
		if got < lo || got >= hi {
			t.Errorf("jitter %v: %s not in [%s, %s)", r, got, lo, hi)
		}
	}
	if d := (Policy{}).withDefaults(); d.BackoffMin != 5*time.Minute || d.BackoffMax != time.Hour || d.QueueLifetime != 120*time.Hour || d.BounceLifetime != 120*time.Hour {
		t.Errorf("defaults: %+v", d)
	}
}

func TestDeliverAndRemove(t *testing.T) {
	h := newHarness(t, nil, runnerConfig{})
	h.start()
	id := h.submit("sender@example.com", "a@example.net", "b@example.net")
	h.empty()
	h.waitFor("removed event", func() bool { return strings.Contains(h.logs.String(), `"msg":"removed"`) })
	ds := h.relay.deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	d := ds[0]
	if d.msg.ID != string(id) || d.msg.From != "sender@example.com" || len(d.msg.Recipients) != 2 || d.body != testBody {
		t.Errorf("delivery %+v body %q", d.msg, d.body)
	}
	if d.msg.Recipients[1].ORcpt != "rfc822;b@example.net" {
		t.Errorf("ORCPT not passed: %+v", d.msg.Recipients[1])
	}
	if !strings.Contains(h.logs.String(), `"msg":"delivered"`) || !strings.Contains(h.logs.String(), `"msg":"removed"`) {
		t.Errorf("logs lack delivered/removed:\n%s", h.logs)
	}
	if c := h.r.c.Metrics.Counts(); c.Delivered != 2 || c.Attempts != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestBackoffScheduleAndGiveUp(t *testing.T) {
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		if m.From == "" {
			return ok() // the notice
		}
		return temp(451, "4.3.0", "Temporary lookup failure")
	}}
	h := newHarness(t, relay, runnerConfig{Policy: Policy{BackoffMin: 5 * time.Minute, BackoffMax: time.Hour, QueueLifetime: 3 * time.Hour}})
	h.start()
	id := h.submit("sender@example.com", "a@example.net")
	arrival := h.clock.Now()
	var waits []time.Duration
	for attempt := 1; ; attempt++ {
		if _, err := h.sp.Get(id); errors.Is(err, spool.ErrNotFound) {
			break
		}
		m := h.settled(id, attempt)
		if attempt > 1 && !m.LastAttempt.Equal(h.clock.Now()) {
			t.Fatalf("attempt %d at %s, not when due (%s)", attempt, m.LastAttempt, h.clock.Now())
		}
		wait := m.NextAttempt.Sub(m.LastAttempt)
		waits = append(waits, wait)
		if !strings.Contains(m.Reason, "451 4.3.0 Temporary lookup failure") {
			t.Errorf("reason %q", m.Reason)
		}
		if m.Recipients[0].State != spool.Pending || m.Recipients[0].Reply.Code != 451 {
			t.Errorf("recipient %+v", m.Recipients[0])
		}
		h.clock.Advance(wait)
		if attempt > 20 {
			t.Fatal("never gave up")
		}
		if h.clock.Now().Sub(arrival) >= 3*time.Hour {
			break
		}
	}
	// The attempt at or after 3 h gives up.
	h.empty()
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}
	if len(waits) < len(want) {
		t.Fatalf("waits %v", waits)
	}
	for i, w := range want {
		if waits[i] != w {
			t.Errorf("wait %d = %s, want %s (all: %v)", i+1, waits[i], w, waits)
		}
	}
	// One notice, to the sender, status 4.4.7 quoting the last reply.
	h.waitFor("notice delivered", func() bool { return len(h.relay.notices()) == 1 })
	n := h.relay.notices()[0]
	if len(n.msg.Recipients) != 1 || n.msg.Recipients[0].Addr != "sender@example.com" {
		t.Fatalf("notice to %+v", n.msg.Recipients)
	}
	rep := parseNotice(t, n.body)
	if len(rep.rcpts) != 1 {
		t.Fatalf("notice reports %d recipients", len(rep.rcpts))
	}
	r := rep.rcpts[0]
	if r.Get("Status") != "4.4.7" || r.Get("Action") != "failed" || r.Get("Final-Recipient") != "rfc822; a@example.net" ||
		r.Get("Diagnostic-Code") != "smtp; 451 4.3.0 Temporary lookup failure" {
		t.Errorf("recipient fields %v", r.Map())
	}
	if !strings.Contains(rep.text, "delivery time expired") {
		t.Errorf("text part does not say the time expired:\n%s", rep.text)
	}
	if !strings.Contains(h.logs.String(), `"msg":"expired"`) {
		t.Error("no expired event logged")
	}
	h.empty() // the notice itself was delivered and removed
}

// notice is a parsed delivery status notice.
type notice struct {
	header   message.Header
	text     string
	perMsg   textproto.Header
	rcpts    []textproto.Header
	original string
	origType string
}

func parseNotice(t *testing.T, raw string) *notice {
	t.Helper()
	e, err := message.Read(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("notice does not parse: %v\n%s", err, raw)
	}
	mt, params, _ := e.Header.ContentType()
	if mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("notice type %s %v", mt, params)
	}
	n := &notice{header: e.Header}
	mr := e.MultipartReader()
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p.Body)
		pt, _, _ := p.Header.ContentType()
		switch i {
		case 0:
			n.text = string(body)
		case 1:
			if pt != "message/delivery-status" {
				t.Fatalf("second part %s", pt)
			}
			br := bufio.NewReader(bytes.NewReader(body))
			n.perMsg, err = textproto.ReadHeader(br)
			if err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := br.Peek(1); err != nil {
					break
				}
				h, err := textproto.ReadHeader(br)
				if err != nil {
					t.Fatal(err)
				}
				n.rcpts = append(n.rcpts, h)
			}
		case 2:
			n.original, n.origType = string(body), pt
		}
	}
	return n
}

func TestBounceOneNotice(t *testing.T) {
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		if rcpt == "nobody@example.net" {
			return perm(550, "5.1.1", "<nobody@example.net>: Recipient address rejected: User unknown")
		}
		return ok()
	}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	id := h.submit("sender@example.com", "nobody@example.net")
	h.empty()
	ns := relay.notices()
	if len(ns) != 1 {
		t.Fatalf("%d notices, want exactly 1", len(ns))
	}
	n := ns[0]
	if n.msg.From != "" || n.msg.Recipients[0].Addr != "sender@example.com" {
		t.Errorf("notice envelope from %q to %+v", n.msg.From, n.msg.Recipients)
	}
	rep := parseNotice(t, n.body)
	if got := rep.header.Get("To"); got != "<sender@example.com>" {
		t.Errorf("To %q", got)
	}
	if got := rep.perMsg.Get("X-Relayq-Queue-ID"); got != string(id) {
		t.Errorf("queue id %q", got)
	}
	if got := rep.perMsg.Get("Reporting-MTA"); got != "dns; relayq.test" {
		t.Errorf("Reporting-MTA %q", got)
	}
	r := rep.rcpts[0]
	for k, v := range map[string]string{
		"Final-Recipient": "rfc822; nobody@example.net", "Original-Recipient": "rfc822; nobody@example.net",
		"Action": "failed", "Status": "5.1.1", "Remote-MTA": "dns; sink.test",
		"Diagnostic-Code": "smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown",
	} {
		if got := strings.ReplaceAll(r.Get(k), "\r\n\t", " "); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if rep.origType != "message/rfc822" || rep.original != testBody {
		t.Errorf("original %s %q", rep.origType, rep.original)
	}
	if c := h.r.c.Metrics.Counts(); c.Bounced != 1 || c.Notices != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestPartialFailure(t *testing.T) {
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		switch rcpt {
		case "bad@example.net":
			return perm(550, "5.1.1", "no such user")
		case "later@example.net":
			if n == 1 {
				return temp(452, "4.2.2", "mailbox full")
			}
		}
		return ok()
	}}
	h := newHarness(t, relay, runnerConfig{Policy: Policy{BackoffMin: time.Minute}})
	h.start()
	id := h.submit("sender@example.com", "good@example.net", "bad@example.net", "later@example.net")
	m := h.settled(id, 1)
	states := []spool.State{m.Recipients[0].State, m.Recipients[1].State, m.Recipients[2].State}
	if states[0] != spool.Delivered || states[1] != spool.Bounced || states[2] != spool.Pending {
		t.Fatalf("states after attempt 1: %v", states)
	}
	h.waitFor("bounce notice", func() bool { return len(relay.notices()) == 1 })
	rep := parseNotice(t, relay.notices()[0].body)
	if len(rep.rcpts) != 1 || rep.rcpts[0].Get("Final-Recipient") != "rfc822; bad@example.net" {
		t.Fatalf("notice reports %d recipients: %v", len(rep.rcpts), rep.rcpts)
	}
	h.clock.Advance(time.Minute)
	h.empty()
	// The second attempt carried only the deferred recipient; no second notice.
	var second *delivery
	for _, d := range relay.deliveries() {
		if d.msg.ID == string(id) && d.msg.Recipients[0].Addr == "later@example.net" && len(d.msg.Recipients) == 1 {
			d := d
			second = &d
		}
	}
	if second == nil {
		t.Fatalf("no retry for the deferred recipient alone: %+v", relay.deliveries())
	}
	if relay.perRcpt["good@example.net"] != 1 || relay.perRcpt["bad@example.net"] != 1 {
		t.Errorf("per-recipient sends %v", relay.perRcpt)
	}
	if n := len(relay.notices()); n != 1 {
		t.Errorf("%d notices", n)
	}
}

// held waits until n messages are queued and all of them are held, and
// returns them.
func (h *harness) held(n int) []*spool.Message {
	h.t.Helper()
	var q []*spool.Message
	h.waitFor(fmt.Sprintf("%d held messages", n), func() bool {
		q = h.queued()
		if len(q) != n {
			return false
		}
		for _, m := range q {
			if !m.Held {
				return false
			}
		}
		return true
	})
	return q
}

// TestNeverBounceABounce: mail from the null sender that the relay refuses
// is never bounced and never dropped: it is held with its reason until an
// operator releases it (then delivered once the cause is fixed).
func TestNeverBounceABounce(t *testing.T) {
	var fixed atomic.Bool
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		if fixed.Load() {
			return smarthost.RcptOutcome{Addr: rcpt, Status: smarthost.Delivered, Reply: wire.Reply{Code: 250, Text: "ok"}}
		}
		return perm(550, "5.1.1", "no such user")
	}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	id := h.submit("", "gone@example.net")
	q := h.held(1)
	if n := len(relay.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1 (no notice for the null sender)", n)
	}
	if !strings.Contains(h.logs.String(), "null sender: never bounced") {
		t.Errorf("not logged:\n%s", h.logs)
	}
	if m := q[0]; m.ID != id || m.Recipients[0].State != spool.Pending ||
		!strings.Contains(m.Reason, "550 5.1.1 no such user") || !strings.Contains(m.Reason, "relayq queue release "+string(id)) {
		t.Fatalf("held message %+v reason %q", m.Recipients, m.Reason)
	}

	// A failing notice of our own (from <>) to a sender that is gone:
	// still no notice, and the notice is held too.
	h.submit("sender@example.com", "gone2@example.net")
	q = h.held(2)
	ds := relay.deliveries()
	// original, its notice (which fails: 550 from the fake), and nothing more
	if len(ds) != 3 || ds[2].msg.From != "" {
		t.Fatalf("deliveries: %d", len(ds))
	}

	// The cause fixed, the operator releases them: delivered, once.
	fixed.Store(true)
	for _, m := range q {
		if err := h.sp.Release(m.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.r.Kick()
	h.empty()
	if ds := relay.deliveries(); len(ds) != 5 {
		t.Fatalf("deliveries after release: %d, want 5", len(ds))
	}
}

func TestPostmasterCopy(t *testing.T) {
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		return perm(550, "5.1.1", "no such user")
	}}
	h := newHarness(t, relay, runnerConfig{Postmaster: "postmaster@example.com"})
	h.start()
	h.submit("", "gone@example.net")
	h.held(2)
	ds := relay.deliveries()
	// the bounce, the postmaster report (which fails too, and is held), and no more
	if len(ds) != 2 {
		t.Fatalf("%d deliveries, want 2", len(ds))
	}
	pm := ds[1]
	if pm.msg.From != "" || pm.msg.Recipients[0].Addr != "postmaster@example.com" {
		t.Fatalf("postmaster copy %+v", pm.msg)
	}
	rep := parseNotice(t, pm.body)
	if rep.origType != "text/rfc822-headers" {
		t.Errorf("postmaster gets %s, want headers only", rep.origType)
	}
}

// TestContentFailureNoticeHeadersOnly: a message refused for its content
// (too large, 8-bit, UTF-8) is reported with its headers only, so that
// the notice does not fail the same way; other failures return it whole.
func TestContentFailureNoticeHeadersOnly(t *testing.T) {
	for _, tc := range []struct {
		code     int
		enhanced string
		want     string
	}{
		{552, "5.3.4", "text/rfc822-headers"},
		{554, "5.6.7", "text/rfc822-headers"},
		{550, "5.6.3", "text/rfc822-headers"},
		{550, "5.1.1", "message/rfc822"},
	} {
		t.Run(tc.enhanced, func(t *testing.T) {
			relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
				if m.From == "" {
					return smarthost.RcptOutcome{Addr: rcpt, Status: smarthost.Delivered, Reply: wire.Reply{Code: 250, Text: "ok"}}
				}
				return perm(tc.code, tc.enhanced, "refused")
			}}
			h := newHarness(t, relay, runnerConfig{})
			h.start()
			h.submit("sender@example.com", "a@example.net")
			h.empty()
			ns := relay.notices()
			if len(ns) != 1 {
				t.Fatalf("%d notices", len(ns))
			}
			if rep := parseNotice(t, ns[0].body); rep.origType != tc.want {
				t.Errorf("notice returns %s, want %s", rep.origType, tc.want)
			}
		})
	}
}

// A UTF-8 recipient refused because the relay offers no SMTPUTF8: the
// notice to the ASCII sender needs neither SMTPUTF8 nor 8BITMIME (RFC 6533
// utf-8-addr-xtext, a quoted-printable header), so the same relay takes it.
func TestContentFailureNoticeSevenBit(t *testing.T) {
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		if m.From == "" {
			if m.SMTPUTF8 || m.Body8Bit {
				return perm(554, "5.6.7", "no SMTPUTF8 here")
			}
			return smarthost.RcptOutcome{Addr: rcpt, Status: smarthost.Delivered, Reply: wire.Reply{Code: 250, Text: "ok"}}
		}
		return perm(554, "5.6.7", "the relay does not offer SMTPUTF8")
	}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	body := "From: sender@example.com\r\nTo: jörg@example.net\r\nSubject: Grüße\r\n\r\nHallo\r\n"
	env := spool.Envelope{From: "sender@example.com", Origin: "test", SMTPUTF8: true, Body8Bit: true,
		Recipients: []spool.Recipient{{Addr: "jörg@example.net"}}}
	if _, err := h.sp.Submit(context.Background(), env, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	h.r.Kick()
	h.empty()
	ns := relay.notices()
	if len(ns) != 1 {
		t.Fatalf("%d notices delivered, want 1\n%s", len(ns), h.logs.String())
	}
	if ns[0].msg.SMTPUTF8 || ns[0].msg.Body8Bit {
		t.Errorf("notice sent with SMTPUTF8=%v BODY=8BITMIME=%v", ns[0].msg.SMTPUTF8, ns[0].msg.Body8Bit)
	}
	for i := 0; i < len(ns[0].body); i++ {
		if ns[0].body[i] >= 0x80 {
			t.Fatalf("notice has octet %#x at %d", ns[0].body[i], i)
		}
	}
	if !strings.Contains(ns[0].body, `Final-Recipient: utf-8; j\x{F6}rg@example.net`) {
		t.Errorf("notice lacks the RFC 6533 address:\n%s", ns[0].body)
	}
	if rep := parseNotice(t, ns[0].body); rep.origType != "text/rfc822-headers" {
		t.Errorf("notice returns %s", rep.origType)
	}
}

func TestNotifyNeverAndSuccess(t *testing.T) {
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		if strings.HasPrefix(rcpt, "bad") {
			return perm(550, "5.1.1", "no such user")
		}
		return ok()
	}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	h.submit("sender@example.com", "bad@example.net NOTIFY=NEVER", "good@example.net NOTIFY=SUCCESS")
	h.empty()
	ns := relay.notices()
	if len(ns) != 1 {
		t.Fatalf("%d notices, want 1 (relayed only)", len(ns))
	}
	rep := parseNotice(t, ns[0].body)
	if len(rep.rcpts) != 1 || rep.rcpts[0].Get("Action") != "relayed" || rep.rcpts[0].Get("Final-Recipient") != "rfc822; good@example.net" {
		t.Errorf("relayed notice: %v", rep.rcpts)
	}
	// A relay that speaks DSN reports success itself: no relayed notice.
	relay2 := &fakeRelay{dsn: true}
	h2 := newHarness(t, relay2, runnerConfig{})
	h2.start()
	h2.submit("sender@example.com", "good@example.net NOTIFY=SUCCESS")
	h2.empty()
	if n := len(relay2.notices()); n != 0 {
		t.Errorf("%d notices although the relay speaks DSN", n)
	}
}

func TestDelayWarningOnce(t *testing.T) {
	relay := &fakeRelay{reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		if m.From == "" {
			return ok()
		}
		return temp(421, "4.7.0", "try again later")
	}}
	h := newHarness(t, relay, runnerConfig{Policy: Policy{BackoffMin: 20 * time.Minute, BackoffMax: time.Hour, DelayWarning: 30 * time.Minute}})
	h.start()
	id := h.submit("sender@example.com", "slow@example.net")
	m := h.settled(id, 1)
	if got := m.NextAttempt.Sub(m.LastAttempt); got != 20*time.Minute {
		t.Fatalf("first wait %s", got)
	}
	h.clock.Advance(20 * time.Minute)
	m = h.settled(id, 2)
	// 40 min would pass the warning time: the next attempt is at 30 min.
	if got := m.NextAttempt.Sub(m.Arrival); got != 30*time.Minute {
		t.Fatalf("next attempt %s after arrival, want 30m", got)
	}
	h.clock.Advance(10 * time.Minute)
	m = h.settled(id, 3)
	h.waitFor("delay notice", func() bool { return len(relay.notices()) == 1 })
	rep := parseNotice(t, relay.notices()[0].body)
	if rep.rcpts[0].Get("Action") != "delayed" || rep.rcpts[0].Get("Will-Retry-Until") == "" {
		t.Errorf("delay notice %v", rep.rcpts[0].Map())
	}
	if !m.DelayNotified {
		t.Errorf("delay notice state not recorded; reason %q", m.Reason)
	}
	for i := 4; i < 7; i++ {
		h.clock.Advance(m.NextAttempt.Sub(h.clock.Now()))
		m = h.settled(id, i)
	}
	if n := len(relay.notices()); n != 1 {
		t.Errorf("%d delay notices, want 1", n)
	}
}

func TestAuthFailureDefersLoudly(t *testing.T) {
	relay := &fakeRelay{auth: true, reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		return temp(535, "5.7.8", "Authentication credentials invalid")
	}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	id := h.submit("sender@example.com", "a@example.net")
	m := h.settled(id, 1)
	if m.Recipients[0].State != spool.Pending {
		t.Errorf("state %v after AUTH failure", m.Recipients[0].State)
	}
	if c := h.r.c.Metrics.Counts(); c.AuthFailures != 1 || c.Bounced != 0 {
		t.Errorf("counts %+v", c)
	}
	if !strings.Contains(h.logs.String(), `"level":"ERROR","msg":"authentication failed"`) {
		t.Errorf("no error-level AUTH event:\n%s", h.logs)
	}
	if len(relay.notices()) != 0 {
		t.Error("notice sent for an AUTH failure")
	}
}

func TestWholeAttemptError(t *testing.T) {
	relay := &fakeRelay{err: func(m *smarthost.Message) error { return errors.New("dial tcp 127.0.0.1:25: connection refused") },
		reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
			return smarthost.RcptOutcome{Status: smarthost.Deferred}
		}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	id := h.submit("sender@example.com", "a@example.net")
	m := h.settled(id, 1)
	if m.Recipients[0].Reply.Text != "dial tcp 127.0.0.1:25: connection refused" {
		t.Errorf("reply %+v", m.Recipients[0].Reply)
	}
}

// TestCrashBetweenRecipients: a process that recorded some recipients'
// results and died before ending its lease. After the lease runs out, only
// the pending recipients are sent.
func TestCrashBetweenRecipients(t *testing.T) {
	h := newHarness(t, nil, runnerConfig{Lease: 10 * time.Minute})
	env := spool.Envelope{From: "sender@example.com", Recipients: []spool.Recipient{{Addr: "a@x.test"}, {Addr: "b@x.test"}, {Addr: "c@x.test"}}}
	id, err := h.sp.Submit(context.Background(), env, strings.NewReader(testBody))
	if err != nil {
		t.Fatal(err)
	}
	// The crashed process: lease, one recipient delivered, then gone.
	ms, err := h.sp.LeaseDue(h.clock.Now(), 10, 10*time.Minute)
	if err != nil || len(ms) != 1 {
		t.Fatalf("lease: %v %d", err, len(ms))
	}
	if err := h.sp.Update(id, []spool.Result{{Index: 0, State: spool.Delivered, Reply: spool.Reply{Code: 250, Text: "ok"}}}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.r.Kick()
	time.Sleep(50 * time.Millisecond)
	if n := len(h.relay.deliveries()); n != 0 {
		t.Fatalf("leased message sent before its lease ran out (%d)", n)
	}
	h.clock.Advance(10 * time.Minute)
	h.empty()
	ds := h.relay.deliveries()
	if len(ds) != 1 || len(ds[0].msg.Recipients) != 2 || ds[0].msg.Recipients[0].Addr != "b@x.test" {
		t.Fatalf("after the crash: %+v", ds)
	}
}

func TestBoundedConcurrency(t *testing.T) {
	relay := &fakeRelay{hold: make(chan struct{})}
	h := newHarness(t, relay, runnerConfig{Workers: 3})
	h.start()
	for i := 0; i < 10; i++ {
		h.submit("sender@example.com", "a@example.net")
	}
	h.waitFor("3 in flight", func() bool {
		relay.mu.Lock()
		defer relay.mu.Unlock()
		return relay.inflight == 3
	})
	time.Sleep(50 * time.Millisecond)
	close(relay.hold)
	h.empty()
	if relay.maxInflight != 3 {
		t.Errorf("max in flight %d, want 3", relay.maxInflight)
	}
	if n := len(relay.deliveries()); n != 10 {
		t.Errorf("%d deliveries", n)
	}
}

func TestShutdownDrains(t *testing.T) {
	t.Run("finish in time", func(t *testing.T) {
		relay := &fakeRelay{hold: make(chan struct{})}
		h := newHarness(t, relay, runnerConfig{})
		h.start()
		h.submit("sender@example.com", "a@example.net")
		h.waitFor("attempt", func() bool { relay.mu.Lock(); defer relay.mu.Unlock(); return relay.inflight == 1 })
		h.cancel()
		time.Sleep(20 * time.Millisecond)
		close(relay.hold) // finishes within the drain time
		if err := <-h.done; err != nil {
			t.Fatal(err)
		}
		h.cancel = nil
		if n := len(h.queued()); n != 0 {
			t.Errorf("%d messages left; the attempt in flight should have completed", n)
		}
	})
	t.Run("cut off", func(t *testing.T) {
		relay := &fakeRelay{hold: make(chan struct{})}
		h := newHarness(t, relay, runnerConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.r.run(ctx, false, 100*time.Millisecond) }()
		id := h.submit("sender@example.com", "a@example.net")
		h.waitFor("attempt", func() bool { relay.mu.Lock(); defer relay.mu.Unlock(); return relay.inflight == 1 })
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("shutdown took %s", took)
		}
		m, err := h.sp.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		// The lease was released: due at once for the next start.
		if !m.NextAttempt.Equal(h.clock.Now()) || !strings.Contains(m.Reason, "interrupted by shutdown") {
			t.Errorf("next %s (now %s), reason %q", m.NextAttempt, h.clock.Now(), m.Reason)
		}
	})
}

func TestKickWakesForNewMail(t *testing.T) {
	h := newHarness(t, nil, runnerConfig{})
	h.start()
	for i := 0; i < 3; i++ {
		h.submit("sender@example.com", "a@example.net")
		h.empty() // tried at once: the fake clock never moved
	}
	if n := len(h.relay.deliveries()); n != 3 {
		t.Errorf("%d deliveries", n)
	}
}

// TestConcurrentSubmitWhileRunning stresses the runner with the race
// detector: many submits while workers deliver.
func TestConcurrentSubmitWhileRunning(t *testing.T) {
	h := newHarness(t, nil, runnerConfig{Workers: 4})
	h.start()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				env := spool.Envelope{From: "s@example.com", Recipients: []spool.Recipient{{Addr: "r@example.net"}}}
				if _, err := h.sp.Submit(context.Background(), env, strings.NewReader(testBody)); err != nil {
					t.Error(err)
					return
				}
				h.r.Kick()
			}
		}()
	}
	wg.Wait()
	h.empty()
	if n := len(h.relay.deliveries()); n != 100 {
		t.Errorf("%d deliveries, want 100", n)
	}
}

// TestDeleteWhileDelivering: `relayq queue delete` during an attempt; the
// runner notices quietly and does not resurrect the message.
func TestDeleteWhileDelivering(t *testing.T) {
	relay := &fakeRelay{hold: make(chan struct{}), reply: func(m *smarthost.Message, rcpt string, n int) smarthost.RcptOutcome {
		return temp(451, "4.3.0", "later")
	}}
	h := newHarness(t, relay, runnerConfig{})
	h.start()
	id := h.submit("sender@example.com", "a@example.net")
	h.waitFor("attempt", func() bool { relay.mu.Lock(); defer relay.mu.Unlock(); return relay.inflight == 1 })
	if err := h.sp.Delete(id); err != nil {
		t.Fatal(err)
	}
	close(relay.hold)
	h.waitFor("log", func() bool { return strings.Contains(h.logs.String(), "message deleted while it was being delivered") })
	if n := len(h.queued()); n != 0 {
		t.Errorf("%d messages queued after delete", n)
	}
	if strings.Contains(h.logs.String(), "spool error") {
		t.Errorf("spool error logged:\n%s", h.logs)
	}
}
