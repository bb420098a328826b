package dsn

import (
	"fmt"
	"strings"
	"time"

	"github.com/relayq/relayq/wire"
)

// The two parts of a report that relayq writes itself: the text for
// people and the machine-readable delivery status.

func (r *Report) humanText() string {
	var b strings.Builder
	line := func(format string, a ...any) {
		b.WriteString(wrap(fmt.Sprintf(format, a...)))
	}
	line("This is the mail system at host %s.", r.ReportingMTA)
	line("")
	switch r.kind() {
	case Failed:
		line("Your message could not be delivered to one or more recipients.")
		if r.Original != nil {
			if r.Full() {
				line("It is attached below.")
			} else {
				line("Its header is attached below.")
			}
		}
	case Delayed:
		line("Your message could not be delivered yet to one or more recipients.")
		line("It is still in the queue and will be tried again; no action is")
		line("needed from you. You will be told if it cannot be delivered.")
	default:
		line("Your message was handed to the relay for the recipients below.")
		line("The relay does not report delivery status, so this is the last")
		line("notice you will get for them.")
	}
	line("")
	line("For further assistance, send mail to postmaster.")
	line("If you do so, please include this notice. You can delete your own")
	line("text from the attached returned message.")
	line("")
	for _, rc := range r.Recipients {
		var what string
		switch rc.Action {
		case Failed:
			what = "failed"
		case Delayed:
			what = "delayed"
		default:
			what = string(rc.Action)
		}
		reply := rc.reply()
		if rc.Expired {
			what = "delivery time expired"
			if reply != "" {
				what += "; last reply"
			}
		}
		if rc.RemoteMTA != "" && rc.Code != 0 {
			line("<%s>: %s: host %s said: %s", rc.Addr, what, rc.RemoteMTA, reply)
		} else if reply != "" {
			line("<%s>: %s: %s", rc.Addr, what, reply)
		} else {
			line("<%s>: %s", rc.Addr, what)
		}
		if !rc.RetryUntil.IsZero() {
			line("    (will be retried until %s)", rc.RetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.String()
}

func (r *Report) statusText(utf bool) string {
	var b strings.Builder
	field := func(k, v string) { b.WriteString(fold(k, v)) }
	field("Reporting-MTA", "dns; "+r.ReportingMTA)
	if r.QueueID != "" {
		field("X-Relayq-Queue-ID", r.QueueID)
	}
	if r.EnvID != "" {
		field("Original-Envelope-Id", wire.Xtext(r.EnvID))
	}
	if !r.Arrival.IsZero() {
		field("Arrival-Date", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		field("Final-Recipient", addrType(rc.Addr, utf))
		if rc.ORcpt != "" {
			field("Original-Recipient", origRcpt(rc.ORcpt, utf))
		}
		field("Action", string(rc.Action))
		field("Status", rc.status())
		if rc.RemoteMTA != "" {
			field("Remote-MTA", "dns; "+remoteName(rc.RemoteMTA))
		}
		if reply := rc.reply(); reply != "" {
			if rc.Code != 0 {
				field("Diagnostic-Code", "smtp; "+reply)
			} else {
				field("Diagnostic-Code", "X-Relayq; "+reply)
			}
		}
		if !rc.LastAttempt.IsZero() {
			field("Last-Attempt-Date", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == Delayed && !rc.RetryUntil.IsZero() {
			field("Will-Retry-Until", rc.RetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.String()
}

// addrType gives an address with its RFC 3464 address type: "rfc822;" for
// ASCII, else "utf-8;" (RFC 6533 §3): as is in a global notice, as
// utf-8-addr-xtext in a plain one.
func addrType(addr string, utf bool) string {
	switch {
	case isASCII(addr):
		return "rfc822; " + addr
	case utf:
		return "utf-8; " + addr
	}
	return "utf-8; " + utf8AddrXtext(addr)
}

// utf8AddrXtext is RFC 6533's utf-8-addr-xtext: printable ASCII other
// than "+", "=" and "\" as is, every other character as \x{HEX} (its code
// point in upper-case hex, at least two digits). Invalid UTF-8 octets
// become U+FFFD (the spool takes only UTF-8 addresses).
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 0x21 && c <= 0x7e && c != '+' && c != '=' && c != '\\' {
			b.WriteRune(c)
			continue
		}
		fmt.Fprintf(&b, "\\x{%02X}", c)
	}
	return b.String()
}

// origRcpt formats an ORCPT value "type;address" as Original-Recipient.
func origRcpt(orcpt string, utf bool) string {
	t, a, ok := strings.Cut(orcpt, ";")
	if !ok {
		return addrType(orcpt, utf)
	}
	t, a = strings.TrimSpace(t), strings.TrimSpace(a)
	switch {
	case strings.EqualFold(t, "rfc822"):
		return addrType(a, utf)
	case strings.EqualFold(t, "utf-8") && (utf || isASCII(a)):
		return "utf-8; " + a
	case strings.EqualFold(t, "utf-8"):
		return "utf-8; " + utf8AddrXtext(a)
	}
	return t + "; " + xtextNonASCII(strings.TrimSpace(a))
}

// xtextNonASCII encodes only octets outside printable ASCII, so that a
// plain address stays readable.
func xtextNonASCII(s string) string {
	if isASCII(s) {
		return s
	}
	return wire.Xtext(s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
