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
// A SevenBit report (headers only, ASCII sender) needs neither SMTPUTF8
// nor 8BITMIME, so any relay takes it: non-ASCII addresses in the plain
// message/delivery-status as RFC 6533 utf-8-addr-xtext ("utf-8;
// j\x{F6}rg@example.net"), the text and the original's header
// quoted-printable when they are not ASCII.
//
// The notice is sent from the null sender (RFC 5321 §6.1, RFC 3464 §2):
// the caller submits it with an empty reverse-path, so it is never
// answered by another notice.
package dsn

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"

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

	// SevenBit asks for a notice that needs neither SMTPUTF8 nor 8BITMIME
	// (for a message that failed for its content: the relay offered
	// neither). It applies when the original is returned as its header only
	// and the sender is ASCII; otherwise it is ignored.
	SevenBit bool

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
	if r.sevenBit() {
		return false
	}
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

// sevenBit reports whether SevenBit applies: headers only, ASCII sender.
func (r *Report) sevenBit() bool {
	return r.SevenBit && isASCII(r.Sender) && !r.Full()
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
	boundary := r.Boundary
	if boundary == "" {
		boundary = "=_relayq_" + randomHex(12)
	}
	mw, err := message.CreateWriter(w, r.header(boundary))
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	utf := r.UTF8()
	text := r.humanText()
	if err := writePart(mw, humanPart(utf, isASCII(text)), func(pw io.Writer) error {
		_, err := io.WriteString(pw, text)
		return err
	}); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if err := writePart(mw, statusPart(utf), func(pw io.Writer) error {
		_, err := io.WriteString(pw, r.statusText(utf))
		return err
	}); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if r.Original != nil {
		if err := writePart(mw, r.originalPart(), func(pw io.Writer) error {
			if r.Full() {
				return copyOriginal(pw, r.Original, boundary)
			}
			return copyHeader(pw, r.Original, boundary)
		}); err != nil {
			return fmt.Errorf("dsn: original message: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	return nil
}

// header is the notice's own header: from the mail system to the
// envelope sender, auto-replied (RFC 3834), a multipart/report.
func (r *Report) header(boundary string) message.Header {
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	msgID := r.MessageID
	if msgID == "" {
		msgID = fmt.Sprintf("%s.%s.dsn@%s", date.UTC().Format("20060102150405"), randomHex(6), r.ReportingMTA)
	}
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
	return h
}

// writePart writes one part with header h, its content from body.
func writePart(mw *message.Writer, h message.Header, body func(io.Writer) error) error {
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if err := body(pw); err != nil {
		return err
	}
	return pw.Close()
}

// humanPart is the header of part 1, the text for people: UTF-8 sent
// as 8bit in a global notice, quoted-printable in a plain one.
func humanPart(utf, ascii bool) message.Header {
	var th message.Header
	charset := "us-ascii"
	if utf || !ascii {
		charset = "utf-8"
	}
	addFields(&th.Header, "Content-Description", "Notification", "Content-Type", "text/plain; charset="+charset)
	switch {
	case utf:
		addFields(&th.Header, "Content-Transfer-Encoding", "8bit")
	case !ascii:
		addFields(&th.Header, "Content-Transfer-Encoding", "quoted-printable")
	}
	return th
}

// statusPart is the header of part 2, message/delivery-status (RFC 6533's
// global form when an address needs UTF-8).
func statusPart(utf bool) message.Header {
	var sh message.Header
	ctype := "message/delivery-status"
	if utf {
		ctype = "message/global-delivery-status"
	}
	addFields(&sh.Header, "Content-Description", "Delivery report", "Content-Type", ctype)
	return sh
}

// originalPart is the header of part 3: the whole original or its header.
// A header that may hold 8-bit octets is sent 8bit in a global or 8-bit
// notice and quoted-printable otherwise, so that a notice submitted
// without BODY=8BITMIME is 7-bit.
func (r *Report) originalPart() message.Header {
	var oh message.Header
	full := r.Full()
	global := r.OriginalUTF8 && !r.sevenBit()
	switch {
	case full && global:
		addFields(&oh.Header, "Content-Description", "Undelivered Message", "Content-Type", "message/global")
	case full:
		addFields(&oh.Header, "Content-Description", "Undelivered Message", "Content-Type", "message/rfc822")
	case global:
		addFields(&oh.Header, "Content-Description", "Undelivered Message Headers", "Content-Type", "message/global-headers")
	default:
		addFields(&oh.Header, "Content-Description", "Undelivered Message Headers", "Content-Type", "text/rfc822-headers")
	}
	switch {
	case full && r.Original8Bit || global:
		addFields(&oh.Header, "Content-Transfer-Encoding", "8bit")
	case !full && (r.Original8Bit || r.OriginalUTF8):
		addFields(&oh.Header, "Content-Transfer-Encoding", "quoted-printable")
	}
	return oh
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
