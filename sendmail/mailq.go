package sendmail

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relayq/relayq/wire"
)

// QueueEntry is one queued message as mailq shows it.
type QueueEntry struct {
	ID         string
	Arrival    time.Time
	Size       int64
	From       string // "" is the null sender
	Held       bool   // on hold: shown with '!'
	Active     bool   // being delivered now: shown with '*'
	Reason     string // message-level reason (why it is still queued), may be empty
	Recipients []QueueRecipient
}

// QueueRecipient is a recipient still to be delivered and the last reason
// it was not.
type QueueRecipient struct {
	Addr   string
	Reason string // last reply or reason, "" if not tried yet
}

// Mailq lists the queue (mailq, sendmail -bp) through Options.List.
func Mailq(ctx context.Context, o Options) int {
	if o.List == nil {
		fmt.Fprintf(o.Stderr, "%s: queue listing is not available\n", o.prog())
		return ExitSoftware
	}
	entries, err := o.List(ctx)
	if err != nil {
		// Print what could be listed (List may return entries with an
		// error: the daemon does not answer, the drop directory's
		// messages are known), then the error.
		code := exitCode(err)
		if len(entries) > 0 {
			_ = WriteMailq(o.Stdout, entries)
		}
		fmt.Fprintf(o.Stderr, "%s: cannot list the queue: %v\n", o.prog(), err)
		return code
	}
	if err := WriteMailq(o.Stdout, entries); err != nil {
		fmt.Fprintf(o.Stderr, "%s: %v\n", o.prog(), err)
		return ExitIOErr
	}
	return ExitOK
}

// WriteMailq writes entries in the format of Postfix's mailq (postqueue
// -p), which scripts parse:
//
//	-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
//	0DQ5H2RN0M3G*   2048 Sun Nov 22 21:08:12  alice@example.com
//	                                         (connect to relay.example.com[192.0.2.1]:587: connection refused)
//	                                         bob@example.com
//
//	-- 2 Kbytes in 1 Request.
//
// The queue ID is followed by '*' when the message is being delivered,
// '!' when it is on hold, else a space; the arrival time is in the local
// zone as asctime(3) prints it; the sender "MAILER-DAEMON" stands for the
// null sender. Each recipient still to be delivered follows, indented,
// after its last reason in parentheses (not repeated for consecutive
// recipients with the same reason). Text goes through wire.Sanitize, so
// that a hostile address or reply cannot forge lines of the listing. The
// total is rounded down to Kbytes, as Postfix's. An empty queue prints
// "Mail queue is empty".
func WriteMailq(w io.Writer, entries []QueueEntry) error {
	if len(entries) == 0 {
		_, err := io.WriteString(w, "Mail queue is empty\n")
		return err
	}
	// Postfix's columns: "%-11s %7s %-20s %s", the first one widened
	// to the longest queue ID and its status mark.
	width := 11
	for _, e := range entries {
		if n := len(e.ID) + 1; n > width {
			width = n
		}
	}
	indent := width + 1 + 7 + 1 + 20
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s %7s %-20s %s\n", width, "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")
	var total int64
	for i, e := range entries {
		if i > 0 {
			b.WriteString("\n")
		}
		status := " "
		switch {
		case e.Held:
			status = "!"
		case e.Active:
			status = "*"
		}
		from := e.From
		if from == "" {
			from = "MAILER-DAEMON"
		}
		fmt.Fprintf(&b, "%-*s %7d %20.20s %s\n", width, wire.Sanitize(e.ID)+status, e.Size, e.Arrival.Local().Format("Mon Jan _2 15:04:05 "), wire.Sanitize(from))
		last := ""
		for _, r := range e.Recipients {
			reason := r.Reason
			if reason == "" {
				reason = e.Reason
			}
			if reason != "" && reason != last {
				reason = wire.Sanitize(reason)
				pad := 76 - len(reason)
				if pad < 0 {
					pad = 0
				}
				fmt.Fprintf(&b, "%*s(%s)\n", pad, "", reason)
				last = r.Reason
				if last == "" {
					last = e.Reason
				}
			}
			fmt.Fprintf(&b, "%*s %s\n", indent, "", wire.Sanitize(r.Addr))
		}
		total += e.Size
	}
	plural := "s"
	if len(entries) == 1 {
		plural = ""
	}
	fmt.Fprintf(&b, "\n-- %d Kbytes in %d Request%s.\n", total/1024, len(entries), plural)
	_, err := io.WriteString(w, b.String())
	return err
}
