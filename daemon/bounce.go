package daemon

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/relayq/relayq/dsn"
	"github.com/relayq/relayq/internal/spill"
	"github.com/relayq/relayq/spool"
)

// notify sends a delivery status notice of kind action for the recipients
// results[ks] of m: to the envelope sender, only for recipients whose
// NOTIFY asks for it, never for mail from the null sender (RFC 5321 §6.1,
// RFC 3461 §4.1). A failure of null-sender mail is logged and, when a
// postmaster address is configured, reported there instead (headers only),
// except for relayq's own postmaster copies, which are only logged.
// The notice is submitted to the spool from the null sender and kicks the
// runner, so it goes out at once.
func (r *runner) notify(m *spool.Message, results []spool.Result, ks []int, expired map[int]bool,
	action dsn.Action, now, retryUntil time.Time, body func() (io.ReadCloser, error)) {
	id := string(m.ID)
	rep := &dsn.Report{
		ReportingMTA: r.c.ReportingMTA, QueueID: id, EnvID: m.EnvID, Sender: m.From,
		Arrival: m.Arrival, Date: now, Ret: m.Ret, OriginalSize: m.Size,
		Original8Bit: m.Body8Bit, OriginalUTF8: m.SMTPUTF8,
	}
	for _, k := range ks {
		res := results[k]
		rc := m.Recipients[res.Index]
		if m.From != "" && !dsn.Wants(rc.Notify, action) {
			r.c.Log.NoDSN(id, rc.Addr, "NOTIFY="+rc.Notify)
			continue
		}
		d := dsn.Recipient{
			Addr: rc.Addr, ORcpt: rc.ORcpt, Action: action,
			Reply:     res.Reply,
			RemoteMTA: res.Relay, LastAttempt: m.LastAttempt, RetryUntil: retryUntil,
		}
		if res.Reply.Code == 0 {
			d.RemoteMTA = "" // relayq's own reason, no relay said it
		}
		if expired[k] {
			d.Status = "4.4.7" // RFC 3463: delivery time expired
			d.Expired = true
		}
		if action == dsn.Relayed {
			d.Status = "2.0.0"
		}
		rep.Recipients = append(rep.Recipients, d)
	}
	if len(rep.Recipients) == 0 {
		return
	}
	if action == dsn.Failed && contentFailure(rep.Recipients) {
		// The message failed for its content (size, 8-bit, UTF-8): a
		// notice carrying it would fail the same way. Headers only
		// (RFC 3462 §2, RFC 3464 §2: the original may be truncated),
		// and 7-bit (RFC 6533 §3 for UTF-8 addresses): the relay that
		// refused the message offers neither 8BITMIME nor SMTPUTF8, yet
		// the sender must learn.
		rep.Ret = "HDRS"
		rep.SevenBit = true
	}
	origin := originDSN
	if m.From == "" {
		for _, d := range rep.Recipients {
			r.c.Log.NoDSN(id, d.Addr, "null sender: never bounced")
		}
		if r.c.Postmaster == "" || m.Origin == originPostmaster || action != dsn.Failed {
			return
		}
		// Postfix's "postmaster notification": the header only, to the
		// postmaster; a failure of that copy is only logged.
		rep.Sender = r.c.Postmaster
		rep.Ret = "HDRS"
		rep.SevenBit = true
		origin = originPostmaster
	}
	r.submitReport(m, rep, body, origin, string(action))
}

// contentFailure reports a failure for the message's content rather than
// its recipients: too large (5.3.4, 552 without an enhanced code), media
// or conversion not supported (5.6.x: 8-bit to a relay without 8BITMIME,
// UTF-8 without SMTPUTF8).
func contentFailure(rs []dsn.Recipient) bool {
	for _, d := range rs {
		e := d.Reply.Enhanced
		if e == "5.3.4" || strings.HasPrefix(e, "5.6.") || (e == "" && d.Reply.Code == 552) {
			return true
		}
	}
	return false
}

// submitReport renders rep and submits it from the null sender.
func (r *runner) submitReport(m *spool.Message, rep *dsn.Report, body func() (io.ReadCloser, error), origin, kind string) {
	id := string(m.ID)
	var orig io.ReadCloser
	if body != nil {
		var err error
		orig, err = body()
		if err != nil {
			r.c.Log.SpoolError(id, "read body for notice", err)
		} else {
			rep.Original = orig
			defer orig.Close()
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(dsn.Write(pw, rep)) }()
	buf, err := spill.Copy(pr)
	pr.Close()
	if err != nil {
		r.c.Log.SpoolError(id, "compose notice", err)
		return
	}
	defer buf.Release()
	env := spool.Envelope{
		From:       "",
		Recipients: []spool.Recipient{{Addr: rep.Sender}},
		Body8Bit:   rep.EightBit(),
		SMTPUTF8:   rep.UTF8(),
		Origin:     origin,
	}
	rd, _ := buf.Open()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nid, err := r.st.Submit(ctx, env, rd)
	if err != nil {
		r.c.Log.SpoolError(id, "submit notice", err)
		r.c.Metrics.spoolError(err)
		return
	}
	r.c.Log.DSN(id, string(nid), rep.Sender, kind)
	r.c.Metrics.count(&r.c.Metrics.notices)
	r.Kick()
}
