package sendmail

import (
	"context"
	"fmt"
	"strings"

	"github.com/relayq/relayq/submit"
)

// deliver is -bm: read the message from standard input and queue it.
func deliver(ctx context.Context, o Options, f *Flags) int {
	if !f.ExtractRecipients && len(f.Recipients) == 0 {
		fmt.Fprintf(o.Stderr, "%s: no recipients: name them on the command line or use -t\n%s\n", o.prog(), Usage)
		return ExitUsage
	}
	req := &request{
		sender:     f.Sender,
		senderSet:  f.SenderSet,
		fullName:   f.FullName,
		extract:    f.ExtractRecipients,
		ignoreDots: f.IgnoreDots,
		bodyType:   f.BodyType,
		smtputf8:   f.SMTPUTF8,
		ret:        f.Ret,
		envID:      f.EnvID,
		notify:     f.Notify,
		mode:       f.Delivery,
	}
	if f.Delivery == DeliverInteractive && o.Deliver == nil {
		req.mode = DeliverBackground
	}
	for _, r := range f.Recipients {
		req.recipients = append(req.recipients, rcptSpec{addr: r})
	}
	in := newIntake(&o)
	id, env, err := in.enqueue(ctx, req, o.Stdin)
	for _, w := range in.warn {
		fmt.Fprintf(o.Stderr, "%s: warning: %s\n", o.prog(), w)
	}
	if err != nil {
		code := exitCode(err)
		fmt.Fprintf(o.Stderr, "%s: %v%s\n", o.prog(), err, exitHint(code))
		return code
	}
	if o.Log != nil {
		o.Log.Queued(string(id), env.From, len(env.Recipients), -1, env.Origin)
	}
	if f.Verbose > 0 {
		rcpts := make([]string, len(env.Recipients))
		for i, r := range env.Recipients {
			rcpts[i] = r.Addr
		}
		fmt.Fprintf(o.Stderr, "%s: queued as %s: from <%s> to %s\n", o.prog(), showID(string(id)), env.From, strings.Join(rcpts, ", "))
	}
	if req.mode != DeliverInteractive {
		return ExitOK
	}
	return waitDelivery(ctx, o, id)
}

func showID(id string) string {
	if id == "" {
		return "(unknown id)"
	}
	return id
}

// exitHint explains a temporary failure to the person reading stderr.
func exitHint(code int) string {
	if code == ExitTempFail {
		return " (message not queued; try again later)"
	}
	return ""
}

// waitDelivery is -odi: the message is queued; wait for the delivery
// attempt and report each recipient. Exit 0 when all were delivered or are
// still queued for retry (the message is safe on disk: a non-zero status
// would make callers send it again), 69 when any bounced.
func waitDelivery(ctx context.Context, o Options, id submit.ID) int {
	res, err := o.Deliver(ctx, id)
	if err != nil {
		fmt.Fprintf(o.Stderr, "%s: %s: queued; delivery not confirmed: %v\n", o.prog(), showID(string(id)), err)
		return ExitOK
	}
	code := ExitOK
	for _, r := range res {
		var what string
		switch r.Status {
		case StatusDelivered:
			what = "delivered"
		case StatusFinished:
			what = "left the queue (delivered, or returned to the sender)"
		case StatusBounced:
			what = "bounced"
			code = ExitUnavail
		default:
			what = "deferred, still queued"
		}
		line := fmt.Sprintf("%s: %s: <%s>: %s", o.prog(), showID(string(id)), r.Addr, what)
		if r.Relay != "" {
			line += " via " + r.Relay
		}
		if r.Reply != "" {
			line += " (" + r.Reply + ")"
		}
		fmt.Fprintln(o.Stderr, line)
	}
	return code
}
