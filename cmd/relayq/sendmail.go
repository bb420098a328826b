package main

// The sendmail(1), mailq(1) and newaliases(1) personalities: configuration
// → sendmail.Options. The behaviour is in package sendmail.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relayq/relayq/cmd/internal/personality"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/sendmail"
	"github.com/relayq/relayq/sendmail/smtpd"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/submit"
)

func runSendmail(s stdio, args []string) int {
	return sendmailMain(s, "sendmail", args)
}

// runMailq is mailq(1): sendmail -bp.
func runMailq(s stdio, args []string) int {
	return sendmailMain(s, "mailq", append([]string{"-bp"}, args...))
}

// runNewaliases is newaliases(1): sendmail -bi.
func runNewaliases(s stdio, args []string) int {
	return sendmailMain(s, "newaliases", append([]string{"-bi"}, args...))
}

func sendmailMain(s stdio, prog string, args []string) int {
	cfg, code := loadConfig(s)
	if code != exOK {
		return code
	}
	warnConfig(s.err, prog, cfg)
	o, code := sendmailOptions(s, prog, cfg)
	if code != exOK {
		return code
	}
	// SIGINT/SIGTERM cancel a submission in progress: nothing is
	// committed then, and the exit status says so (75).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sendmail.Main(ctx, o, args)
}

// sendmailOptions maps the configuration and the calling process to
// sendmail.Options: the submission part shared with the small sendmail
// binary (package personality), plus what only the full binary serves:
// the queue through the control client (mailq, -q, -odi) and -bs.
func sendmailOptions(s stdio, prog string, cfg *config.Config) (sendmail.Options, int) {
	self, _ := os.Executable()
	o, code := personality.Options(s.in, s.out, s.err, prog, cfg, self)
	if code != exOK {
		return o, code
	}
	c := controlClient(cfg)
	o.RunQueue = func(ctx context.Context) error {
		_, err := c.Flush(ctx)
		return err
	}
	o.List = func(ctx context.Context) ([]sendmail.QueueEntry, error) {
		return withDrops(mailqEntries(ctx, c))(maildrop.Dir(cfg.Spool))
	}
	o.Deliver = func(ctx context.Context, id submit.ID) ([]sendmail.RecipientResult, error) {
		return deliverNow(ctx, cfg, c, id, s.err)
	}
	o.ServeSMTP = smtpd.Serve
	return o, exOK
}

// mailqEntries lists the queue for mailq: every message with its
// recipients that are still to be delivered.
func mailqEntries(ctx context.Context, c *control.Client) ([]sendmail.QueueEntry, error) {
	var out []sendmail.QueueEntry
	err := c.List(ctx, func(m *spool.Message) error {
		e := sendmail.QueueEntry{
			ID:      string(m.ID),
			Arrival: m.Arrival,
			Size:    m.Size,
			From:    m.From,
			Held:    m.Held,
			Active:  m.LeaseUntil.After(time.Now()),
			Reason:  m.Reason,
		}
		for _, r := range m.Recipients {
			if r.State != spool.Pending {
				continue
			}
			e.Recipients = append(e.Recipients, sendmail.QueueRecipient{Addr: r.Addr, Reason: r.Reply.String()})
		}
		out = append(out, e)
		return nil
	})
	// A damaged record is listed, marked, among the others: one bad
	// record never hides the rest of the queue.
	damaged, err := spool.Damaged(err)
	for _, d := range damaged {
		out = append(out, sendmail.QueueEntry{
			ID:   string(d.ID),
			From: "(unknown: damaged record)",
			Held: true,
			Recipients: []sendmail.QueueRecipient{{
				Addr:   "(recipients unknown)",
				Reason: fmt.Sprintf("DAMAGED RECORD, not delivered (%v); `relayq queue delete %s` removes it", d.Err, d.ID),
			}},
		})
	}
	return out, err
}

// withDrops adds the messages still in the drop directory (written
// without a daemon, or while the daemon did not answer, and not imported
// yet) to a listing, after the spool's: accepted mail is never invisible.
// It also does so when the listing failed (the daemon does not answer), so
// that mailq shows what it can along with the error.
func withDrops(entries []sendmail.QueueEntry, err error) func(dir string) ([]sendmail.QueueEntry, error) {
	return func(dir string) ([]sendmail.QueueEntry, error) {
		derr := listDrops(dir, func(m *spool.Message) {
			e := sendmail.QueueEntry{ID: string(m.ID), Arrival: m.Arrival, Size: m.Size, From: m.From, Held: m.Held, Reason: m.Reason}
			for _, r := range m.Recipients {
				e.Recipients = append(e.Recipients, sendmail.QueueRecipient{Addr: r.Addr})
			}
			entries = append(entries, e)
		})
		if derr != nil && err == nil {
			err = derr
		}
		return entries, err
	}
}

// listDrops calls fn for each message in the drop directory, as a record
// with the drop ID, the envelope and a reason that says where it is. A
// damaged file is listed as held. A drop directory this user may not read
// is skipped: the daemon (which imports it) lists its messages.
func listDrops(dir string, fn func(*spool.Message)) error {
	drops, err := maildrop.List(dir)
	if errors.Is(err, fs.ErrPermission) {
		return nil
	}
	if err != nil {
		return err
	}
	reason := "in the drop directory, not yet queued"
	if p, at := maildrop.Problem(dir); p != "" {
		reason += "; the last import failed (" + at.Format(time.DateTime) + "): " + p
	}
	for _, d := range drops {
		m := &spool.Message{ID: spool.ID(d.ID), Arrival: d.ModTime, Reason: reason}
		damaged := func() {
			// Listed held, with where it is: the operator decides.
			m.Held, m.From, m.Reason = true, "(damaged)", "damaged drop file, never queued: "+d.Path
			m.Recipients = []spool.Recipient{{Addr: "(unreadable)"}}
			fn(m)
		}
		if d.Damaged {
			damaged()
			continue
		}
		f, err := maildrop.Open(d.Path)
		if errors.Is(err, maildrop.ErrTorn) {
			damaged() // not set aside yet: the next import does that
			continue
		}
		if err != nil {
			continue // imported meanwhile
		}
		e := f.Envelope
		m.From, m.Size, m.Ret, m.EnvID, m.Body8Bit, m.SMTPUTF8, m.Origin = e.From, f.Size, e.Ret, e.EnvID, e.Body8Bit, e.SMTPUTF8, e.Origin
		for _, r := range e.Recipients {
			m.Recipients = append(m.Recipients, spool.Recipient{Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt})
		}
		f.Close()
		fn(m)
	}
	return nil
}

// deliverNow is -odi: run the queue now and wait, then report the
// message's recipients. Without a daemon it is one daemonless run in this
// process (runQueueLocked), whose runner reports the attempt's results;
// with a daemon, the daemon reports the message's first attempt on its
// control socket (control.Client.Attempt), waiting for it up to
// control.DefaultAttemptWait.
func deliverNow(ctx context.Context, cfg *config.Config, c *control.Client, id submit.ID, errw io.Writer) ([]sendmail.RecipientResult, error) {
	if c.DaemonRunning() {
		a, err := c.Attempt(ctx, spool.ID(id), control.DefaultAttemptWait)
		if err != nil {
			return nil, err
		}
		switch {
		case a.Attempt != nil:
			return outcomes(a.Attempt), nil
		case a.Queued != nil:
			return results(a.Queued), nil
		}
		return nil, errors.New("it left the queue (delivered, or returned to the sender) before its attempt could be reported")
	}
	before, err := c.Show(ctx, id)
	if err != nil {
		return nil, err
	}
	// Daemonless: one run in this process; the runner reports each
	// attempt's per-recipient results for this message.
	var mu sync.Mutex
	var last []sendmail.RecipientResult
	attempted := func(m *spool.Message, rs []spool.Result) {
		if m.ID != spool.ID(id) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		last = attemptResults(m, rs)
	}
	if err := runQueueLocked(ctx, cfg, newLogger(cfg, errw), attempted, true); err != nil {
		return nil, err
	}
	d, err := c.Show(ctx, id)
	if errors.Is(err, spool.ErrNotFound) {
		mu.Lock()
		defer mu.Unlock()
		return merge(finished(before), last), nil
	}
	if err != nil {
		return nil, err
	}
	return results(d.Message), nil
}

// outcomes is -odi's form of the daemon's report of an attempt.
func outcomes(a *control.Attempt) []sendmail.RecipientResult {
	out := make([]sendmail.RecipientResult, 0, len(a.Results))
	for _, r := range a.Results {
		out = append(out, sendmail.RecipientResult{Addr: r.Addr, Status: status(r.State), Reply: r.Reply, Relay: r.Relay})
	}
	return out
}

// attemptResults turns one attempt's results into -odi's form.
func attemptResults(m *spool.Message, rs []spool.Result) []sendmail.RecipientResult {
	out := make([]sendmail.RecipientResult, 0, len(rs))
	for _, r := range rs {
		if r.Index < 0 || r.Index >= len(m.Recipients) {
			continue
		}
		out = append(out, sendmail.RecipientResult{Addr: m.Recipients[r.Index].Addr, Status: status(r.State), Reply: r.Reply.String(), Relay: r.Relay})
	}
	return out
}

// merge puts the results of got over those of the same recipients in all.
func merge(all, got []sendmail.RecipientResult) []sendmail.RecipientResult {
	for i, a := range all {
		for _, g := range got {
			if strings.EqualFold(g.Addr, a.Addr) {
				all[i] = g
			}
		}
	}
	return all
}

// finished reports a message that has left the queue: each recipient was
// delivered or bounced (with a DSN to the sender).
func finished(before *control.Detail) []sendmail.RecipientResult {
	var out []sendmail.RecipientResult
	for _, r := range before.Message.Recipients {
		out = append(out, sendmail.RecipientResult{Addr: r.Addr, Status: sendmail.StatusFinished})
	}
	return out
}

func results(m *spool.Message) []sendmail.RecipientResult {
	var out []sendmail.RecipientResult
	for _, r := range m.Recipients {
		st := status(r.State)
		reply := r.Reply.String()
		if reply == "" && st == sendmail.StatusDeferred {
			reply = m.Reason
		}
		out = append(out, sendmail.RecipientResult{Addr: r.Addr, Status: st, Reply: reply, Relay: r.Relay})
	}
	return out
}

// status is -odi's form of a recipient's spool state.
func status(s spool.State) sendmail.DeliveryStatus {
	switch s {
	case spool.Delivered:
		return sendmail.StatusDelivered
	case spool.Bounced:
		return sendmail.StatusBounced
	}
	return sendmail.StatusDeferred
}
