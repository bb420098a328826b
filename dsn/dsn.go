// Package dsn composes delivery status notifications: RFC 3464 reports
// (multipart/report; report-type=delivery-status, RFC 6522) from plain
// values, with RFC 3463 status codes and the RFC 3461 NOTIFY/RET rules.
//
// # Message layout
//
//	From: Mail Delivery System <MAILER-DAEMON@reporting-mta>
//	To: <the original envelope sender>
//	Subject: Undelivered Mail Returned to Sender   (or Delayed Mail …, Successful Mail Relay …)
//	Auto-Submitted: auto-replied                   (RFC 3834)
//	Content-Type: multipart/report; report-type=delivery-status; boundary=…
//
//	1. text/plain: what happened, one paragraph per recipient with the
//	   relay's reply quoted unchanged.
//	2. message/delivery-status: per-message fields (Reporting-MTA,
//	   X-Relayq-Queue-ID, Original-Envelope-Id, Arrival-Date), then one group
//	   per recipient: Final-Recipient, Original-Recipient (from ORCPT),
//	   Action, Status, Remote-MTA, Diagnostic-Code ("smtp; <reply>", or
//	   "X-Relayq; <reason>" when no server replied), Last-Attempt-Date and,
//	   for delays, Will-Retry-Until.
//	3. the original: text/rfc822-headers (RET=HDRS, delay notices, or a
//	   large message without RET) or message/rfc822 (RET=FULL, or no RET and
//	   at most FullLimit octets, as Postfix's bounce_size_limit).
//
// When an address or the original needs UTF-8 (SMTPUTF8), the RFC 6533
// types are used instead: message/global-delivery-status with "utf-8;"
// address types, message/global-headers and message/global.
//
// The notice is sent from the null sender (RFC 5321 §6.1, RFC 3464 §2):
// the caller submits it with an empty reverse-path, so it is never
// answered by another notice.
package dsn

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/relayq/relayq/wire"
)

// Action is the RFC 3464 §2.3.3 Action value of a recipient.
type Action string

// Actions relayq reports.
const (
	Failed    Action = "failed"    // permanent failure (5xx, or the queue lifetime ran out)
	Delayed   Action = "delayed"   // still being retried
	Delivered Action = "delivered" // delivered (unused: relayq hands mail to a relay)
	Relayed   Action = "relayed"   // handed to a relay that does not speak DSN (RFC 3461 §5.2.2)
)

// FullLimit is the largest original returned whole when the sender gave no
// RET (Postfix bounce_size_limit); larger originals are returned as headers.
const FullLimit = 50000

// maxHeaderBytes bounds the original header copied into a notice.
const maxHeaderBytes = 256 << 10

// Recipient is one recipient's entry in a report.
type Recipient struct {
	Addr   string // Final-Recipient: the envelope recipient
	ORcpt  string // RFC 3461 ORCPT as stored, "addr-type;address" (decoded); "" if none
	Action Action // what happened
	Status string // RFC 3463 code "x.y.z"; "" derives it from the reply (or 5.0.0 / 4.0.0)
	// Reply is the relay's reply, quoted in Diagnostic-Code; Code 0 when
	// no server replied, Text then the local reason.
	wire.Reply
	RemoteMTA   string    // relay that gave the reply, e.g. "smtp.example.com[192.0.2.1]:587"; "" if none
	LastAttempt time.Time // Last-Attempt-Date; zero: omitted
	RetryUntil  time.Time // Will-Retry-Until, for Delayed; zero: omitted
	// Expired says the queue lifetime ran out (the human-readable part
	// says so; Status should then be 4.4.7).
	Expired bool
}

// Report is everything a notice says. Only Sender, ReportingMTA and
// Recipients are required.
type Report struct {
	ReportingMTA string    // this host's name (Reporting-MTA: dns; …)
	QueueID      string    // the original's queue ID (X-Relayq-Queue-ID)
	EnvID        string    // RFC 3461 ENVID (decoded), "" if none
	Sender       string    // original envelope sender: the notice's recipient
	Arrival      time.Time // when the original was queued
	Date         time.Time // the notice's date; zero: time.Now()
	Recipients   []Recipient

	// Ret is the original's RFC 3461 RET ("FULL", "HDRS", "").
	Ret string
	// Original is the original message (header and body, CRLF line ends);
	// nil: no third part. OriginalSize is its size in octets.
	Original     io.Reader
	OriginalSize int64
	// Original8Bit and OriginalUTF8 are the original's BODY=8BITMIME and
	// SMTPUTF8 flags.
	Original8Bit, OriginalUTF8 bool

	// MessageID is the notice's Message-ID without angle brackets; ""
	// makes one. Boundary is the MIME boundary; "" makes a random one.
	MessageID, Boundary string
}

// Wants reports whether a recipient's NOTIFY value (RFC 3461 §4.1, as
// given: "NEVER", "SUCCESS,FAILURE,DELAY", "" for none) asks for a notice
// with action a. Without NOTIFY, failures and delays are reported (RFC 3461
// §4.1: the default is FAILURE,DELAY-like behaviour, "as if NOTIFY=FAILURE,DELAY").
func Wants(notify string, a Action) bool {
	if strings.TrimSpace(notify) == "" {
		return a == Failed || a == Delayed
	}
	var want string
	switch a {
	case Failed:
		want = "FAILURE"
	case Delayed:
		want = "DELAY"
	case Relayed, Delivered:
		want = "SUCCESS"
	default:
		return false
	}
	for _, k := range strings.Split(notify, ",") {
		k = strings.ToUpper(strings.TrimSpace(k))
		if k == "NEVER" {
			return false
		}
		if k == want {
			return true
		}
	}
	return false
}

// Full reports whether the notice carries the whole original (else its
// header only): RET=FULL, or no RET and at most FullLimit octets; never
// for delay notices (they only remind, as Postfix's).
func (r *Report) Full() bool {
	if r.Original == nil || r.kind() == Delayed {
		return false
	}
	switch strings.ToUpper(r.Ret) {
	case "FULL":
		return true
	case "HDRS":
		return false
	}
	return r.OriginalSize <= FullLimit
}

// UTF8 reports whether the notice needs SMTPUTF8: a non-ASCII address in
// it, or an SMTPUTF8 original attached.
func (r *Report) UTF8() bool {
	if !isASCII(r.Sender) || (r.Original != nil && r.OriginalUTF8) {
		return true
	}
	for _, rc := range r.Recipients {
		if !isASCII(rc.Addr) || !isASCII(rc.ORcpt) {
			return true
		}
	}
	return false
}

// EightBit reports whether the notice needs BODY=8BITMIME (an 8-bit
// original returned whole, or UTF-8 text).
func (r *Report) EightBit() bool {
	return r.UTF8() || (r.Full() && r.Original8Bit)
}

// kind is the notice's overall kind: Failed if any recipient failed, else
// Delayed if any is delayed, else Relayed/Delivered.
func (r *Report) kind() Action {
	k := Relayed
	for _, rc := range r.Recipients {
		switch rc.Action {
		case Failed:
			return Failed
		case Delayed:
			k = Delayed
		}
	}
	return k
}

// Subject returns the notice's subject line.
func (r *Report) Subject() string {
	switch r.kind() {
	case Failed:
		return "Undelivered Mail Returned to Sender"
	case Delayed:
		return "Delayed Mail (still being retried)"
	default:
		return "Successful Mail Relay Report"
	}
}

// Write writes the notice (header and body, CRLF line ends) to w.
func Write(w io.Writer, r *Report) error {
	if err := r.check(); err != nil {
		return err
	}
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	boundary := r.Boundary
	if boundary == "" {
		boundary = "=_relayq_" + randomHex(12)
	}
	msgID := r.MessageID
	if msgID == "" {
		msgID = fmt.Sprintf("%s.%s.dsn@%s", date.UTC().Format("20060102150405"), randomHex(6), r.ReportingMTA)
	}
	utf := r.UTF8()

	var h message.Header
	addFields(&h.Header,
		"Date", date.Format(time.RFC1123Z),
		"From", "Mail Delivery System <MAILER-DAEMON@"+r.ReportingMTA+">",
		"To", "<"+r.Sender+">",
		"Subject", r.Subject(),
		"Message-ID", "<"+msgID+">",
		"Auto-Submitted", "auto-replied",
	)
	if r.QueueID != "" {
		addFields(&h.Header, "X-Relayq-Queue-ID", r.QueueID)
	}
	addFields(&h.Header,
		"MIME-Version", "1.0",
		"Content-Type", "multipart/report; report-type=delivery-status;\r\n\tboundary=\""+boundary+"\"",
	)
	mw, err := message.CreateWriter(w, h)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}

	// 1. Human-readable part.
	var th message.Header
	charset := "us-ascii"
	if utf {
		charset = "utf-8"
	}
	addFields(&th.Header, "Content-Description", "Notification", "Content-Type", "text/plain; charset="+charset)
	if utf {
		addFields(&th.Header, "Content-Transfer-Encoding", "8bit")
	}
	pw, err := mw.CreatePart(th)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if _, err := io.WriteString(pw, r.humanText()); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	pw.Close()

	// 2. message/delivery-status.
	var sh message.Header
	ctype := "message/delivery-status"
	if utf {
		ctype = "message/global-delivery-status"
	}
	addFields(&sh.Header, "Content-Description", "Delivery report", "Content-Type", ctype)
	pw, err = mw.CreatePart(sh)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if _, err := io.WriteString(pw, r.statusText(utf)); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	pw.Close()

	// 3. The original.
	if r.Original != nil {
		var oh message.Header
		full := r.Full()
		switch {
		case full && r.OriginalUTF8:
			addFields(&oh.Header, "Content-Description", "Undelivered Message", "Content-Type", "message/global")
		case full:
			addFields(&oh.Header, "Content-Description", "Undelivered Message", "Content-Type", "message/rfc822")
		case r.OriginalUTF8:
			addFields(&oh.Header, "Content-Description", "Undelivered Message Headers", "Content-Type", "message/global-headers")
		default:
			addFields(&oh.Header, "Content-Description", "Undelivered Message Headers", "Content-Type", "text/rfc822-headers")
		}
		if full && r.Original8Bit || r.OriginalUTF8 {
			addFields(&oh.Header, "Content-Transfer-Encoding", "8bit")
		}
		pw, err = mw.CreatePart(oh)
		if err != nil {
			return fmt.Errorf("dsn: %w", err)
		}
		if full {
			err = copyOriginal(pw, r.Original, boundary)
		} else {
			err = copyHeader(pw, r.Original, boundary)
		}
		if err != nil {
			return fmt.Errorf("dsn: original message: %w", err)
		}
		pw.Close()
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	return nil
}

func (r *Report) check() error {
	if r.ReportingMTA == "" {
		return errors.New("dsn: no Reporting-MTA")
	}
	if r.Sender == "" {
		// RFC 5321 §6.1: never notify the null sender.
		return errors.New("dsn: the original has the null sender; no notice is sent for it")
	}
	if len(r.Recipients) == 0 {
		return errors.New("dsn: no recipients to report")
	}
	for _, s := range append([]string{r.ReportingMTA, r.Sender, r.QueueID, r.EnvID, r.MessageID, r.Boundary}, recipientStrings(r.Recipients)...) {
		if strings.ContainsAny(s, "\r\n\x00") {
			return fmt.Errorf("dsn: value %q contains CR, LF or NUL", s)
		}
	}
	for i, rc := range r.Recipients {
		switch rc.Action {
		case Failed, Delayed, Delivered, Relayed:
		default:
			return fmt.Errorf("dsn: recipient %d (%s): unknown action %q", i, rc.Addr, rc.Action)
		}
		if rc.Status != "" && !validStatus(rc.Status) {
			return fmt.Errorf("dsn: recipient %d (%s): status %q is not an RFC 3463 code", i, rc.Addr, rc.Status)
		}
	}
	return nil
}

func recipientStrings(rs []Recipient) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Addr, r.ORcpt, r.Text, r.Enhanced, r.RemoteMTA)
	}
	return out
}

// validStatus checks class.subject.detail (RFC 3463 §2).
func validStatus(s string) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || (p[0] != "2" && p[0] != "4" && p[0] != "5") {
		return false
	}
	for _, n := range p[1:] { // subject and detail: 1 to 3 digits
		if n == "" || len(n) > 3 {
			return false
		}
		if _, err := strconv.Atoi(n); err != nil || n[0] == '+' || n[0] == '-' {
			return false
		}
	}
	return true
}

// status returns the RFC 3463 code reported for rc.
func (rc *Recipient) status() string {
	if rc.Status != "" {
		return rc.Status
	}
	if validStatus(rc.Enhanced) {
		return rc.Enhanced
	}
	switch rc.Action {
	case Failed:
		if rc.Code/100 == 4 {
			return "4.0.0" // a failure after temporary replies only (lifetime)
		}
		return "5.0.0"
	case Delayed:
		return "4.0.0"
	}
	return "2.0.0"
}

// reply is the relay's reply as it said it ("550 5.1.1 text"), or the
// local reason when no relay replied.
func (rc *Recipient) reply() string {
	if rc.Code == 0 {
		return rc.Text
	}
	return rc.Reply.String()
}

// remoteName is the relay's host name from "host[addr]:port".
func remoteName(relay string) string {
	if i := strings.IndexByte(relay, '['); i > 0 {
		return relay[:i]
	}
	if i := strings.IndexByte(relay, '['); i == 0 {
		if j := strings.IndexByte(relay, ']'); j > 0 {
			return relay[1:j]
		}
	}
	if h, _, ok := strings.Cut(relay, ":"); ok && strings.Count(relay, ":") == 1 {
		return h
	}
	return relay
}

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
// ASCII, "utf-8;" (RFC 6533 §3) when the notice is a global one and the
// address is not ASCII.
func addrType(addr string, utf bool) string {
	if utf && !isASCII(addr) {
		return "utf-8; " + addr
	}
	return "rfc822; " + xtextNonASCII(addr)
}

// origRcpt formats an ORCPT value "type;address" as Original-Recipient.
func origRcpt(orcpt string, utf bool) string {
	t, a, ok := strings.Cut(orcpt, ";")
	if !ok {
		return addrType(orcpt, utf)
	}
	t = strings.TrimSpace(t)
	if strings.EqualFold(t, "rfc822") {
		return addrType(strings.TrimSpace(a), utf)
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

// fold writes one "Key: value" field with CRLF, folding at white space
// before 78 columns where it can (RFC 5322 §2.2.3) and never producing a
// line over 998 octets.
func fold(k, v string) string { return foldIndent(k+": ", v, "\t") }

// foldIndent writes prefix+v as lines of at most 78 columns where white
// space allows and 998 octets always, continuation lines starting with
// indent.
func foldIndent(prefix, v, indent string) string {
	const soft, hard = 78, 998
	var b strings.Builder
	line := prefix
	words := strings.Split(v, " ")
	first := true
	for _, w := range words {
		add := w
		if !first {
			add = " " + w
		}
		if !first && len(line)+len(add) > soft && strings.TrimSpace(line) != "" {
			b.WriteString(line)
			b.WriteString("\r\n")
			line = indent + w
		} else {
			line += add
		}
		first = false
		for len(line) > hard {
			// A single word too long for a line: split it hard; it is
			// a quoted reply, and a fold inside it only adds white space.
			b.WriteString(line[:hard])
			b.WriteString("\r\n")
			line = indent + line[hard:]
		}
	}
	b.WriteString(line)
	b.WriteString("\r\n")
	return b.String()
}

// wrap breaks a text line at white space before 78 columns where it can,
// indenting continuation lines, and never writes a line over 998 octets.
func wrap(s string) string {
	return foldIndent("", s, "    ")
}

// addFields adds key/value pairs to h so that WriteHeader writes them in
// the order given (go-message keeps fields in reverse and writes them
// back to front). Values may contain pre-folded "\r\n\t" sequences.
func addFields(h *textproto.Header, kv ...string) {
	// AddRaw inserts at the top, which WriteHeader writes first: rebuild
	// the header with the old fields followed by the new ones.
	var old [][]byte
	fs := h.Fields()
	for fs.Next() {
		raw, _ := fs.Raw()
		old = append(old, raw)
	}
	var all [][]byte
	all = append(all, old...)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if strings.Contains(v, "\r\n") {
			all = append(all, []byte(kv[i]+": "+v+"\r\n"))
		} else {
			all = append(all, []byte(fold(kv[i], v)))
		}
	}
	*h = textproto.Header{}
	for i := len(all) - 1; i >= 0; i-- {
		h.AddRaw(all[i])
	}
}

// copyHeader copies the header of the message in r (up to the empty line)
// to w, bounded to maxHeaderBytes; a line equal to the boundary delimiter
// is defused.
func copyHeader(w io.Writer, r io.Reader, boundary string) error {
	br := bufio.NewReader(r)
	n := 0
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if t := strings.TrimRight(line, "\r\n"); t == "" {
				return nil
			}
			n += len(line)
			if n > maxHeaderBytes {
				return nil // the rest of an oversized header is left out
			}
			if _, err := io.WriteString(w, defuse(ensureCRLF(line), boundary)); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copyOriginal copies the whole message, defusing boundary lines.
func copyOriginal(w io.Writer, r io.Reader, boundary string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: no boundary can be in its middle part.
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			continue
		}
		if len(line) > 0 {
			s := string(line)
			if bytes.HasPrefix(line, []byte("--")) {
				s = defuse(s, boundary)
			}
			if _, werr := io.WriteString(w, s); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// defuse changes a line that would close our MIME part early (a line
// starting with "--" + our boundary) by prefixing a space. With a random
// boundary this never happens in practice; it guards a chosen one.
func defuse(line, boundary string) string {
	if strings.HasPrefix(line, "--"+boundary) {
		return " " + line
	}
	return line
}

func ensureCRLF(line string) string {
	if strings.HasSuffix(line, "\r\n") {
		return line
	}
	return strings.TrimSuffix(line, "\n") + "\r\n"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
