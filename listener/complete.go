package listener

import (
	"bytes"
	"strings"

	"github.com/relayq/relayq/submit"
)

// DefaultHopCountLimit is Options.HopCountLimit's default (Postfix
// hopcount_limit).
const DefaultHopCountLimit = 50

// headerFacts is what the listener needs to know of a message's header.
type headerFacts struct {
	received              int
	date, messageID, from bool
	end                   int // octets of hdr that are header (before the empty line or the first non-field line)
	blank                 bool
}

// scanHeader reads the header section readHeader returned: the fields up
// to the empty line, or up to the first line that is neither a field nor
// a continuation (that line starts the body, as Postfix cleanup reads it).
func scanHeader(hdr []byte) headerFacts {
	var f headerFacts
	pos := 0
	for pos < len(hdr) {
		n := bytes.Index(hdr[pos:], []byte("\r\n"))
		next := len(hdr)
		if n >= 0 {
			next = pos + n + 2
		}
		line := hdr[pos:next]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			f.end, f.blank = pos, true
			return f
		}
		if line[0] == ' ' || line[0] == '\t' {
			if pos == 0 {
				f.end = 0 // a continuation with no field: the body starts here
				return f
			}
			pos = next
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t\x7f") || hasCtl(name) {
			f.end = pos
			return f
		}
		switch strings.ToLower(string(name)) {
		case "received":
			f.received++
		case "date":
			f.date = true
		case "message-id":
			f.messageID = true
		case "from":
			f.from = true
		}
		pos = next
	}
	f.end = len(hdr)
	return f
}

func hasCtl(b []byte) bool {
	for _, c := range b {
		if c < 0x21 {
			return true
		}
	}
	return false
}

// completeHeader returns the header with the fields a message from an SMTP
// client lacks added at its end, as Postfix does for local clients
// (local_header_rewrite_clients, always_add_missing_headers): Date,
// Message-ID and From (the envelope sender; MAILER-DAEMON for the null
// sender). Relays such as Gmail refuse mail without a Message-ID. hdr is
// what readHeader returned; the result ends with the empty line, so what
// follows hdr is the body.
func (ss *session) completeHeader(hdr []byte, f headerFacts, from string) []byte {
	var add strings.Builder
	now := ss.s.o.Now()
	if !f.from {
		if from == "" {
			from = "MAILER-DAEMON@" + ss.domain()
		}
		add.WriteString("From: " + from + "\r\n")
	}
	if !f.date {
		add.WriteString("Date: " + now.Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\n")
	}
	if !f.messageID {
		add.WriteString("Message-ID: " + submit.MessageID(now, ss.domain()) + "\r\n")
	}
	if add.Len() == 0 {
		return hdr
	}
	out := make([]byte, 0, len(hdr)+add.Len()+2)
	out = append(out, hdr[:f.end]...)
	if f.end > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, "\r\n"...) // a last header line without its line end
	}
	out = append(out, add.String()...)
	if f.blank {
		return append(out, hdr[f.end:]...) // the empty line and what follows
	}
	// No empty line: the body (if any) starts at the first non-field line.
	out = append(out, "\r\n"...)
	return append(out, hdr[f.end:]...)
}

// domain is the domain of the Message-ID and MAILER-DAEMON addresses
// relayq adds: Options.Domain, else the host name.
func (ss *session) domain() string {
	if ss.s.o.Domain != "" {
		return ss.s.o.Domain
	}
	return headerSafe(ss.s.o.Hostname)
}
