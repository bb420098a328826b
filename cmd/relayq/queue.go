package main

// `relayq queue …` and `relayq config`: queue operations through the
// daemon's control socket (or the spool file when no daemon runs), and the
// configuration listing.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/sendmail"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/wire"
)

const queueUsage = `usage: relayq queue <command> [arguments]

commands:
  list [-json]        list the queue (Postfix mailq format; -json: one JSON object per line)
  show ID             show one message: envelope, recipients with their last reply, headers
  hold ID...|ALL      put messages on hold (never tried until released)
  release ID...|ALL   take messages off hold
  delete ID...|ALL    remove messages from the queue (no bounce is sent)
  flush               make every message that is not on hold due now
  stats [-json]       count the queue
  compact             rewrite the spool file to its live size
  run                 one delivery run without a daemon (what sendmail starts after queueing):
                      imports the drop directory and delivers, or leaves at once when
                      another run (or the daemon) holds the run lock and delivers

With a daemon running, commands go to it through RELAYQ_CONTROL_SOCKET;
otherwise relayq opens RELAYQ_SPOOL itself, waiting at most RELAYQ_LOCK_TIMEOUT.
Exit codes: 0 ok, 64 usage, 69 no such message, 74 damaged spool,
75 spool busy (try again), 77 permission denied, 78 configuration error.
`

func runQueue(s stdio, args []string) int {
	q, code := parseQueueArgs(s, args)
	if q == nil {
		return code
	}
	cfg, code := loadConfig(s)
	if cfg == nil {
		return code
	}
	warnConfig(s.err, "relayq queue", cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := controlClient(cfg)

	switch q.cmd {
	case "list":
		return queueReport(s, "list", queueList(ctx, c, s.out, q.json))
	case "show":
		d, err := c.Show(ctx, q.ids[0])
		if err != nil {
			return queueReport(s, "show "+string(q.ids[0]), err)
		}
		queueShow(s.out, d, time.Now())
		return exOK
	case "hold", "release", "delete":
		return queueChange(ctx, s, c, q)
	case "flush":
		n, err := c.Flush(ctx)
		if err != nil {
			return queueReport(s, "flush", err)
		}
		fmt.Fprintf(s.out, "%d message(s) due now\n", n)
		return exOK
	case "stats":
		st, err := c.Stats(ctx)
		if err != nil {
			return queueReport(s, "stats", err)
		}
		queueStats(s.out, st, q.json, time.Now())
		return exOK
	case "compact":
		return queueReport(s, "compact", c.Compact(ctx))
	case "run":
		return queueRun(ctx, s, cfg, c)
	}
	return exSoftware
}

// queueArgs is a parsed `relayq queue` command line.
type queueArgs struct {
	cmd  string
	json bool       // -json (list, stats)
	ids  []spool.ID // show, hold, release, delete
	all  bool       // hold|release|delete ALL, as Postfix postsuper
}

// parseQueueArgs parses the command line; a nil result comes with the
// exit code (usage printed, or help asked for).
func parseQueueArgs(s stdio, args []string) (*queueArgs, int) {
	if len(args) == 0 {
		fmt.Fprint(s.err, queueUsage)
		return nil, exUsage
	}
	q := &queueArgs{cmd: args[0]}
	args = args[1:]
	if q.cmd == "help" || q.cmd == "-h" || q.cmd == "--help" {
		fmt.Fprint(s.out, queueUsage)
		return nil, exOK
	}
	fs := flag.NewFlagSet("relayq queue "+q.cmd, flag.ContinueOnError)
	fs.SetOutput(s.err)
	if q.cmd == "list" || q.cmd == "stats" {
		fs.BoolVar(&q.json, "json", false, "JSON output")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exOK
		}
		return nil, exUsage
	}
	args = fs.Args()
	switch q.cmd {
	case "list", "flush", "stats", "compact", "run":
		if len(args) != 0 {
			fmt.Fprintf(s.err, "relayq queue %s: unexpected argument %q\n", q.cmd, args[0])
			return nil, exUsage
		}
	case "show", "hold", "release", "delete":
		if len(args) == 0 || (q.cmd == "show" && len(args) != 1) {
			fmt.Fprintf(s.err, "relayq queue %s: want %s\n", q.cmd, map[bool]string{true: "one queue ID", false: "queue IDs"}[q.cmd == "show"])
			return nil, exUsage
		}
		if q.cmd != "show" && len(args) == 1 && args[0] == "ALL" {
			q.all = true
			break
		}
		for _, a := range args {
			id, err := spool.ParseID(a)
			if err != nil {
				fmt.Fprintf(s.err, "relayq queue %s: %v\n", q.cmd, err)
				return nil, exUsage
			}
			q.ids = append(q.ids, id)
		}
	default:
		fmt.Fprintf(s.err, "relayq queue: unknown command %q\n", q.cmd)
		fmt.Fprint(s.err, queueUsage)
		return nil, exUsage
	}
	return q, exOK
}

// queueChange is hold, release or delete of the messages named (or ALL:
// every message it applies to); the exit code is the worst failure's.
func queueChange(ctx context.Context, s stdio, c *control.Client, q *queueArgs) int {
	op := map[string]func(context.Context, spool.ID) error{"hold": c.Hold, "release": c.Release, "delete": c.Delete}[q.cmd]
	ids := q.ids
	if q.all {
		err := c.List(ctx, func(m *spool.Message) error {
			if q.cmd == "delete" || m.Held == (q.cmd == "release") {
				ids = append(ids, m.ID)
			}
			return nil
		})
		if err != nil {
			return queueReport(s, q.cmd, err)
		}
	}
	worst := exOK
	for _, id := range ids {
		if err := op(ctx, id); err != nil {
			if q.all && errors.Is(err, spool.ErrNotFound) {
				continue // delivered or deleted since the listing
			}
			if code := queueReport(s, q.cmd+" "+string(id), err); code > worst || worst == exOK {
				worst = code
			}
			continue
		}
		fmt.Fprintf(s.out, "%s: %s\n", id, map[string]string{"hold": "held", "release": "released", "delete": "deleted"}[q.cmd])
	}
	return worst
}

// queueRun is one daemonless delivery run. With a daemon running, the
// daemon owns delivery: the run only flushes through it.
func queueRun(ctx context.Context, s stdio, cfg *config.Config, c *control.Client) int {
	if c.DaemonRunning() {
		n, err := c.Flush(ctx)
		if err != nil {
			return queueReport(s, "run", err)
		}
		fmt.Fprintf(s.out, "the daemon is running and delivers; %d message(s) due now\n", n)
		return exOK
	}
	if err := runQueueOnce(ctx, cfg, backgroundLogger(cfg, s.err), nil); err != nil {
		return queueReport(s, "run", err)
	}
	return exOK
}

// queueReport prints err (if any) and maps it to an exit code.
func queueReport(s stdio, what string, err error) int {
	if err == nil {
		return exOK
	}
	fmt.Fprintf(s.err, "relayq queue %s: %v\n", strings.Fields(what)[0], err)
	return queueExit(err)
}

// queueExit maps a queue-operation error to a sysexits code; an unknown
// error is 69 (the operation is unavailable).
func queueExit(err error) int { return sysexits.FileCode(err, exUnavail) }

// queueList prints the queue in Postfix mailq format (sendmail.WriteMailq,
// the same listing as mailq) or as JSON lines.
func queueList(ctx context.Context, c *control.Client, w io.Writer, jsonOut bool) error {
	if jsonOut {
		enc := json.NewEncoder(w)
		err := c.List(ctx, func(m *spool.Message) error { return enc.Encode(m) })
		// The drop directory's messages too, also when the listing
		// failed (the daemon does not answer): accepted mail is never
		// invisible.
		if derr := listDrops(maildrop.Dir(c.SpoolPath), func(m *spool.Message) { _ = enc.Encode(m) }); derr != nil && err == nil {
			err = derr
		}
		return err
	}
	entries, err := withDrops(mailqEntries(ctx, c))(maildrop.Dir(c.SpoolPath))
	if len(entries) > 0 || err == nil {
		if werr := sendmail.WriteMailq(w, entries); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return "in " + (-d).String()
	}
	return d.String() + " ago"
}

// queueShow prints one message in full.
func queueShow(w io.Writer, d *control.Detail, now time.Time) {
	m := d.Message
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format(time.RFC3339) + " (" + age(now, t) + ")"
	}
	from := "<" + m.From + ">"
	fmt.Fprintf(w, "Queue ID:      %s\n", m.ID)
	fmt.Fprintf(w, "Sender:        %s\n", from)
	fmt.Fprintf(w, "Arrival:       %s\n", ts(m.Arrival))
	fmt.Fprintf(w, "Size:          %d\n", m.Size)
	fmt.Fprintf(w, "Origin:        %s\n", m.Origin)
	body := "7BIT"
	if m.Body8Bit {
		body = "8BITMIME"
	}
	fmt.Fprintf(w, "Body:          %s  SMTPUTF8: %v  RET: %s  ENVID: %s\n", body, m.SMTPUTF8, dash(m.Ret), dash(m.EnvID))
	fmt.Fprintf(w, "Attempts:      %d (last %s)\n", m.Attempts, ts(m.LastAttempt))
	if m.Held {
		fmt.Fprintf(w, "Next attempt:  on hold\n")
	} else {
		fmt.Fprintf(w, "Next attempt:  %s\n", ts(m.NextAttempt))
	}
	if m.Reason != "" {
		fmt.Fprintf(w, "Reason:        %s\n", wire.Sanitize(m.Reason))
	}
	fmt.Fprintf(w, "Recipients:\n")
	for _, r := range m.Recipients {
		state := map[spool.State]string{spool.Pending: "pending", spool.Delivered: "delivered", spool.Bounced: "bounced"}[r.State]
		fmt.Fprintf(w, "  <%s> %s", wire.Sanitize(r.Addr), state)
		if r.Notify != "" {
			fmt.Fprintf(w, " NOTIFY=%s", r.Notify)
		}
		if r.ORcpt != "" {
			fmt.Fprintf(w, " ORCPT=%s", r.ORcpt)
		}
		fmt.Fprintln(w)
		if t := r.Reply.String(); t != "" {
			via := ""
			if r.Relay != "" {
				via = " from " + r.Relay
			}
			fmt.Fprintf(w, "    last reply%s at %s: %s\n", via, ts(r.Updated), wire.Sanitize(t))
		}
	}
	fmt.Fprintf(w, "Headers:\n")
	for _, line := range strings.Split(strings.TrimRight(d.Headers, "\r\n"), "\r\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	if d.Truncated {
		fmt.Fprintf(w, "  [header section longer than %d bytes; cut]\n", control.MaxHeaders)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func queueStats(w io.Writer, st spool.Stats, jsonOut bool, now time.Time) {
	if jsonOut {
		_ = json.NewEncoder(w).Encode(st)
		return
	}
	fmt.Fprintf(w, "messages: %d\nheld:     %d\nbytes:    %d\n", st.Count, st.Held, st.Bytes)
	if st.Count > 0 {
		fmt.Fprintf(w, "oldest:   %s (%s)\n", st.Oldest.Local().Format(time.RFC3339), age(now, st.Oldest))
	}
}
