package sendmail

import (
	"fmt"
	"strings"

	"github.com/relayq/relayq/internal/sysexits"
)

// Mode is what one invocation does.
type Mode int

// Modes of operation (-b and friends).
const (
	ModeDeliver    Mode = iota // -bm (default): read a message, queue it
	ModeSMTP                   // -bs: an SMTP session on standard input and output
	ModeMailq                  // -bp, mailq: list the queue
	ModeNewaliases             // -bi, -I, newaliases: check the aliases file
	ModeQueueRun               // -q: run the queue now
)

// DeliveryMode is the -od option.
type DeliveryMode int

// Delivery modes.
const (
	DeliverBackground  DeliveryMode = iota // -odb (default): queue, start delivery without waiting
	DeliverInteractive                     // -odi: queue, then wait for the delivery and report it
	DeliverQueueOnly                       // -odq, -odd: queue only; the next queue run delivers
)

// Flags is a parsed sendmail command line.
type Flags struct {
	Mode              Mode
	ExtractRecipients bool   // -t
	IgnoreDots        bool   // -i, -oi: a line with a lone "." does not end the message
	Sender            string // -f / -r, the address alone; "" with SenderSet is the null sender
	SenderSet         bool
	FullName          string // -F
	FullNameSet       bool
	BodyType          string // -B: "", "7BIT" or "8BITMIME"
	SMTPUTF8          bool   // -SMTPUTF8
	Notify            string // -N: "NEVER" or a comma list of SUCCESS, FAILURE, DELAY; "" = default
	Ret               string // -R: "FULL", "HDRS" or ""
	EnvID             string // -V: RFC 3461 ENVID
	Verbose           int    // -v (repeatable)
	Delivery          DeliveryMode
	ErrorMode         string // -oe?: m, w, p, q or e (accepted; errors always go to stderr and the exit status)
	AliasFile         string // -oA: aliases file for -bi / newaliases
	QueueInterval     string // -q<interval>: ignored, as Postfix does
	Recipients        []string
	Ignored           []string // options accepted without effect, for -v
}

// UsageError is a command line error (exit 64, EX_USAGE).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode is 64 (EX_USAGE).
func (e *UsageError) ExitCode() int { return sysexits.Usage }

func usagef(format string, a ...any) error { return &UsageError{fmt.Sprintf(format, a...)} }

// Usage is the one-line synopsis printed with usage errors.
const Usage = "usage: sendmail [-t] [-i] [-f sender] [-F fullname] [-N dsn] [-R ret] [-V envid] [-B type] [-bm|-bs|-bp|-bi] [-q] [-od{b,i,q}] [-v] [--] [recipient ...]"

// optArg lists the options that take an argument (attached or the next
// argv word), as Postfix's getopt string does.
const optArg = "ABCFLNOVXRbefhopr"

// ParseArgs parses sendmail's arguments (without argv[0]) as Postfix's
// sendmail(1) does: POSIX getopt (options end at the first word that is not
// an option, or at "--"), letters may be grouped ("-ti", "-oi"), an option
// argument may be attached ("-faddr") or be the next word ("-f addr").
// Recipients may be comma-separated lists and may carry display names
// ("Jo <jo@example.com>"). An unknown option, a missing argument, a value
// with CR, LF or NUL, a sender or recipient starting with '-' are usage
// errors (*UsageError, exit 64).
func ParseArgs(args []string) (*Flags, error) {
	f := &Flags{}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		if a == "-SMTPUTF8" {
			f.SMTPUTF8 = true
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if !isOptLetter(c) {
				return nil, usagef("unknown option -%s", printable(a[j:j+1]))
			}
			if strings.IndexByte(optArg, c) >= 0 {
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, usagef("option -%c needs an argument", c)
					}
					i++
					val = args[i]
				}
				if err := f.option(c, val); err != nil {
					return nil, err
				}
				break
			}
			if c == 'q' {
				f.Mode = ModeQueueRun
				f.queueArg(a[j+1:])
				break
			}
			if err := f.flag(c); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range args[i:] {
		if err := f.addRecipients(r); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func isOptLetter(c byte) bool {
	return strings.IndexByte(optArg+"tivmnxcGUIq", c) >= 0
}

func printable(s string) string {
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}

// flag handles an option without argument.
func (f *Flags) flag(c byte) error {
	switch c {
	case 't':
		f.ExtractRecipients = true
	case 'i':
		f.IgnoreDots = true
	case 'v':
		f.Verbose++
	case 'I':
		f.Mode = ModeNewaliases
	case 'm', 'n', 'x', 'c', 'G', 'U':
		// -m: me too; -n: no aliasing (obsolete); -x, -c: ignored by
		// Postfix; -G: gateway submission; -U: initial user submission.
		f.Ignored = append(f.Ignored, "-"+string(c))
	default:
		return usagef("unknown option -%c", c)
	}
	return nil
}

// queueArg handles what follows -q.
func (f *Flags) queueArg(v string) {
	switch {
	case v == "":
	case v[0] == 'R' || v[0] == 'S' || v[0] == 'I' || v[0] == 'Q' || v[0] == 'G':
		// -qRsite, -qSsender, -qIid: relayq has one destination (the
		// smarthost), so a run of the whole queue covers them.
		f.Ignored = append(f.Ignored, "-q"+v+" (the whole queue is run)")
	default:
		// -q30m: Sendmail's daemon interval; Postfix ignores it too.
		f.QueueInterval = v
	}
}

// option handles an option with argument.
func (f *Flags) option(c byte, v string) error {
	switch c {
	case 'f', 'r':
		return f.setSender(c, v)
	case 'F':
		if err := noCtl("-F", v); err != nil {
			return err
		}
		f.FullName, f.FullNameSet = strings.TrimSpace(v), true
	case 'B':
		switch u := strings.ToUpper(v); u {
		case "7BIT", "8BITMIME":
			f.BodyType = u
		default:
			return usagef("-B %s: body type must be 7BIT or 8BITMIME", printable(v))
		}
	case 'N':
		n, err := parseNotify(v)
		if err != nil {
			return err
		}
		f.Notify = n
	case 'R':
		switch u := strings.ToUpper(v); u {
		case "FULL", "HDRS":
			f.Ret = u
		default:
			return usagef("-R %s: must be full or hdrs", printable(v))
		}
	case 'V':
		if err := noCtl("-V", v); err != nil {
			return err
		}
		if len(v) == 0 || len(v) > 100 {
			return usagef("-V: envelope ID must be 1 to 100 characters (RFC 3461)")
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return usagef("-V %s: envelope ID must be printable US-ASCII (RFC 3461)", printable(v))
			}
		}
		f.EnvID = v
	case 'b':
		return f.bmode(v)
	case 'o':
		return f.oOption(v)
	case 'A':
		// -Am / -Ac: Sendmail's submit.cf or sendmail.cf; one configuration here.
		f.Ignored = append(f.Ignored, "-A"+v)
	case 'C', 'L', 'X', 'O', 'h', 'p', 'e':
		// -C config file, -L syslog label, -X traffic log file (never
		// written: it would be a file-write primitive), -O long options,
		// -h hop count, -p protocol, -e old error mode: accepted, ignored.
		if err := noCtl("-"+string(c), v); err != nil {
			return err
		}
		f.Ignored = append(f.Ignored, "-"+string(c)+" "+v)
	default:
		return usagef("unknown option -%c", c)
	}
	return nil
}

func (f *Flags) bmode(v string) error {
	switch v {
	case "m":
		f.Mode = ModeDeliver
	case "s":
		f.Mode = ModeSMTP
	case "p":
		f.Mode = ModeMailq
	case "i", "I":
		f.Mode = ModeNewaliases
	case "d", "D":
		return usagef("-b%s: daemon mode is `relayq serve`", v)
	default:
		return usagef("-b%s: unsupported mode (relayq supports -bm, -bs, -bp, -bi)", printable(v))
	}
	return nil
}

// oOption handles -oX[value].
func (f *Flags) oOption(v string) error {
	if err := noCtl("-o", v); err != nil {
		return err
	}
	if v == "" {
		return usagef("option -o needs an argument")
	}
	switch v[0] {
	case 'i':
		if v == "i" || strings.EqualFold(v, "itrue") {
			f.IgnoreDots = true
		} else if strings.EqualFold(v, "ifalse") {
			f.IgnoreDots = false
		} else {
			f.Ignored = append(f.Ignored, "-o"+v)
		}
	case 'e':
		m := v[1:]
		switch m {
		case "m", "w", "p", "q", "e":
			f.ErrorMode = m
		default:
			return usagef("-oe%s: error mode must be one of m, w, p, q, e", printable(m))
		}
	case 'd':
		switch m := v[1:]; m {
		case "i", "interactive":
			f.Delivery = DeliverInteractive
		case "b", "background", "":
			f.Delivery = DeliverBackground
		case "q", "queue", "d", "deferred":
			f.Delivery = DeliverQueueOnly
		default:
			return usagef("-od%s: delivery mode must be b, i or q", printable(m))
		}
	case 'A':
		p := v[1:]
		if p == "" {
			return usagef("-oA needs an aliases file")
		}
		if i := strings.IndexByte(p, ':'); i > 0 && !strings.HasPrefix(p, "/") {
			p = p[i+1:] // Postfix type:name; the type means nothing here
		}
		f.AliasFile = p
	default:
		// -om, -o7, -o8, -oQ… and other Sendmail options: accepted,
		// ignored, as Postfix does.
		f.Ignored = append(f.Ignored, "-o"+v)
	}
	return nil
}

func (f *Flags) setSender(c byte, v string) error {
	if err := noCtl("-"+string(c), v); err != nil {
		return err
	}
	s := strings.TrimSpace(v)
	if s == "" || s == "<>" {
		f.Sender, f.SenderSet = "", true
		return nil
	}
	if s[0] == '-' {
		return usagef("-%c %s: sender starts with '-'", c, printable(v))
	}
	addrs, err := ParseAddressList(s)
	if err != nil {
		return usagef("-%c %s: %v", c, printable(v), err)
	}
	switch len(addrs) {
	case 0:
		f.Sender, f.SenderSet = "", true // "<>" with a display name, or a comment
		return nil
	case 1:
	default:
		return usagef("-%c %s: more than one address", c, printable(v))
	}
	if addrs[0][0] == '-' {
		return usagef("-%c %s: sender starts with '-'", c, printable(v))
	}
	f.Sender, f.SenderSet = addrs[0], true
	return nil
}

func (f *Flags) addRecipients(arg string) error {
	if strings.HasPrefix(arg, "-") {
		return usagef("recipient %s starts with '-' (options must come before recipients)", printable(arg))
	}
	if err := noCtl("recipient", arg); err != nil {
		return err
	}
	addrs, err := ParseAddressList(arg)
	if err != nil {
		return usagef("recipient %s: %v", printable(arg), err)
	}
	for _, a := range addrs {
		if a[0] == '-' {
			return usagef("recipient %s starts with '-'", printable(a))
		}
	}
	f.Recipients = append(f.Recipients, addrs...)
	return nil
}

// noCtl rejects CR, LF and NUL (header and command injection).
func noCtl(what, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return usagef("%s %s: contains CR, LF or NUL", what, printable(v))
	}
	return nil
}

func parseNotify(v string) (string, error) {
	if err := noCtl("-N", v); err != nil {
		return "", err
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range strings.Split(v, ",") {
		u := strings.ToUpper(strings.TrimSpace(p))
		switch u {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			return "", usagef("-N %s: must be never or a list of success, failure, delay", printable(v))
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if seen["NEVER"] && len(out) > 1 {
		return "", usagef("-N %s: never cannot be combined with other values (RFC 3461)", printable(v))
	}
	return strings.Join(out, ","), nil
}
