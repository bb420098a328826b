// Package spool is relayq's durable mail queue on a single bbolt file.
//
// Every message accepted by relayq is written here before the caller is told
// "accepted": Submit returns only after the message record has been committed
// with fsync. Delivery is at-least-once: a message leaves the spool only after
// every recipient has reached a final state (delivered or bounced) and the
// caller has removed it with Delete.
//
// The file is owned by one read-write opener at a time (a bbolt rule): Open
// waits at most Options.LockTimeout for the lock and then fails with an error
// that wraps ErrLocked and names the process holding it when it can be found.
//
// # Schema (version 1)
//
// The file holds five top-level buckets. Integers are big-endian.
//
//	meta     "format" = "relayq-spool"
//	         "schema" = uint32 schema version (1)
//	         "lastid" = uint64 microseconds of the newest queue ID handed out
//	msg      queue ID (12 bytes) -> message record (see record.go)
//	due      uint64 next-attempt unix nanoseconds ++ queue ID -> empty
//	         one entry per unheld message, so the earliest due work is the
//	         first key; held messages have no entry
//	body     body token ++ uint32 chunk number -> up to 64 KiB of body; the
//	         token is the bucket's next sequence number (uint64), so tokens
//	         are never reused and new bodies append
//	upload   body token -> uint64 unix nanoseconds: a body being written in
//	         several transactions whose record is not committed yet
//
// A message record is one version byte (1) followed by a JSON object with the
// envelope, per-recipient state and last reply, DSN parameters, arrival,
// attempts, last and next attempt, lease expiry, hold flag, reason, body size,
// body CRC-32C and body token. A record of a newer version is reported as
// ErrCorrupt, never guessed at. Envelope text must be valid UTF-8 (Submit
// refuses anything else rather than let JSON alter it).
//
// Queue IDs are 12 characters of Crockford base32 encoding the arrival time in
// microseconds; "lastid" makes them strictly increasing across processes and
// clock steps, so byte order is arrival order.
//
// # Durability
//
// A body is written in chunks before the record that points to it; a body
// larger than about 1 MiB spans several transactions and is listed in the
// upload bucket until the transaction that writes its record, which removes
// the upload entry. A crash before that leaves no visible message; Open
// deletes the chunks of every upload left behind. Every write goes through one
// commit queue that runs all pending writes in a single bbolt transaction
// (group commit) and fsyncs it; no write is acknowledged before that.
//
// # Leases and schedule
//
// LeaseDue takes the earliest due entries and, in the same committed
// transaction, counts the attempt and moves NextAttempt (and the due entry)
// to the lease expiry, so a worker that dies leaves the message due again
// when the lease runs out, and a crash loop waits out the lease instead of
// retrying hot. Update stores per-recipient outcomes at once; Delivered and
// Bounced are final. Defer ends a lease with the next attempt time; Delete
// removes the message. A message whose recipients are all final stays until
// Delete, so the caller can send bounces first.
//
// A file that is not a spool, a damaged file, a damaged record or a newer
// schema gives an error wrapping ErrCorrupt that names the file; bbolt panics
// and memory faults on damaged pages are turned into such errors, and a file
// that fails to open is never written to.
package spool

import (
	"time"

	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/wire"
)

// ID is a queue ID. IDs sort by arrival time (byte-wise string order).
type ID string

// State is the delivery state of one recipient.
type State uint8

// Recipient states.
const (
	// Pending: not yet tried, or tried and deferred (Reply holds the last
	// temporary reply); it will be tried again.
	Pending State = iota
	// Delivered: the relay accepted the recipient (2xx after DATA).
	Delivered
	// Bounced: failed for good (5xx, or the queue lifetime ran out); a DSN
	// may be due.
	Bounced
)

// Reply is an SMTP reply (or a local reason when Code is 0): Code 0 when
// there was no reply (connect error, timeout), Enhanced the RFC 3463 code
// ("" when none), Text the reply text or the local error on one line.
type Reply = wire.Reply

// Recipient is one envelope recipient with its own state.
type Recipient struct {
	Addr    string    // forward-path, without angle brackets
	Notify  string    // RFC 3461 NOTIFY value as given (e.g. "SUCCESS,FAILURE"), "" for default
	ORcpt   string    // RFC 3461 ORCPT, decoded ("rfc822;user@example.com"), "" if none
	State   State     // delivery state
	Reply   Reply     // last reply for this recipient
	Relay   string    // relay that gave Reply
	Updated time.Time // when State/Reply last changed
}

// Envelope is everything about a message except its body.
type Envelope struct {
	From       string      // reverse-path without angle brackets; "" is the null sender
	Recipients []Recipient // at least one
	Ret        string      // RFC 3461 RET: "FULL", "HDRS" or ""
	EnvID      string      // RFC 3461 ENVID, decoded, "" if none
	Body8Bit   bool        // body has 8-bit octets (BODY=8BITMIME)
	SMTPUTF8   bool        // needs SMTPUTF8 (UTF-8 in an address or header)
	Origin     string      // where it came from, for logs: "uid=1000", "127.0.0.1:5243"
}

// Message is a queued message's record (no body).
type Message struct {
	ID ID
	Envelope
	Arrival       time.Time // when Submit committed it
	Size          int64     // body size in octets
	Attempts      int       // delivery attempts started (recorded before each attempt)
	LastAttempt   time.Time // start of the last attempt, zero if none
	NextAttempt   time.Time // when it is due next (the lease expiry while leased)
	LeaseUntil    time.Time // while a delivery attempt holds it: the lease expiry; zero otherwise
	Held          bool      // on hold: never due until released
	Reason        string    // last message-level reason (why it is still queued)
	ReasonKind    string    // kind of the last failure ("auth", "tls", "connect", "credential", "norelay" or "")
	DelayNotified bool      // the delay notice has been sent
	// Unrecorded (set by LeaseDue only): the previous attempt, started at
	// PreviousAttempt, ended without recording an outcome (its process
	// died or lost the spool). If it had sent the final dot, the relay
	// may already have the message: this attempt may be a duplicate.
	Unrecorded      bool
	PreviousAttempt time.Time
}

// Errors callers test with errors.Is; each carries its exit code
// (sysexits.Code).
var (
	// ErrLocked: another process holds the spool file (lock wait ran out).
	ErrLocked = sysexits.Kind("spool is locked by another process", sysexits.TempFail)
	// ErrNotFound: no message with that ID.
	ErrNotFound = sysexits.Kind("no such message", sysexits.Unavailable)
	// ErrCorrupt: the file or a record is damaged, foreign, or of a newer schema.
	ErrCorrupt = sysexits.Kind("spool is corrupt or not a relayq spool", sysexits.IOErr)
	// ErrFull: the spool could not be written (disk full, I/O error).
	ErrFull = sysexits.Kind("spool write failed", sysexits.TempFail)
	// ErrInvalid: Submit refused the envelope (no recipients, text that is
	// not UTF-8); a permanent error for the caller (sendmail exit 65, SMTP
	// 5xx), not a reason to retry.
	ErrInvalid = sysexits.Kind("invalid envelope", sysexits.DataErr)
)
