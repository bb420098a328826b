// Package maillog writes relayq's mail events as typed, structured records on
// log/slog: one event per line, always with the queue ID, never a secret.
//
// # Events and keys
//
// Every method writes one record whose message names the event and whose
// attributes use these keys (absent when they do not apply):
//
//	queue_id  the spool queue ID ("-" before one exists)
//	from      envelope sender ("<>" for the null sender)
//	rcpt      one envelope recipient
//	rcpts     number of recipients
//	size      message size in octets
//	origin    where the message came from ("uid=1000", "127.0.0.1:5243")
//	relay     the relay that answered ("host[addr]:port"), "" if none
//	reply     the relay's reply, "250 2.0.0 Ok: queued as X" (or a local reason)
//	attempt   the attempt number (1 for the first)
//	delay     time since arrival (seconds, rounded to ms in text)
//	duration  time the attempt took
//	status    delivered, deferred, bounced, expired, relayed
//	next      when the next attempt is due (deferred)
//	dsn_id    queue ID of a DSN (bounce) produced for the message
//
// Levels: Queued/Delivered/attempt at info, Deferred at warn, Bounced/Expired at warn,
// AuthFailure and spool problems at error, protocol traces at debug.
//
// # Protocol traces
//
// Trace returns an io.Writer to give go-smtp's Client.DebugWriter or
// Server.Debug: it splits the byte stream into lines and logs each at debug
// level with the direction, after Redactor has replaced every SASL payload
// (the initial response after AUTH <mech>, every client line while an AUTH
// exchange is in progress, and the server's 334 challenges) with "***". The
// mechanism name stays visible.
package maillog

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// Status values used in the "status" key.
const (
	StatusDelivered = "delivered"
	StatusDeferred  = "deferred"
	StatusBounced   = "bounced"
	StatusExpired   = "expired"
	StatusRelayed   = "relayed"
)

// Logger writes mail events. The embedded *slog.Logger stays usable for
// events that are not mail events (startup, configuration, shutdown).
type Logger struct{ *slog.Logger }

// New returns a Logger writing to h. A nil h discards everything.
func New(h slog.Handler) *Logger {
	if h == nil {
		h = slog.DiscardHandler
	}
	return &Logger{slog.New(h)}
}

// Wrap returns a Logger around an existing slog.Logger (nil: discard).
func Wrap(l *slog.Logger) *Logger {
	if l == nil {
		return New(nil)
	}
	return &Logger{l}
}

// With returns a Logger that adds args to every record (slog.Logger.With).
func (l *Logger) With(args ...any) *Logger { return &Logger{l.Logger.With(args...)} }

// sender formats an envelope sender for the log: the null sender as "<>".
func sender(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

func qid(id string) string {
	if id == "" {
		return "-"
	}
	return id
}

func (l *Logger) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if l == nil || l.Logger == nil {
		return
	}
	l.LogAttrs(context.Background(), level, msg, attrs...)
}

// Queued records that a message was committed to the spool.
func (l *Logger) Queued(id, from string, rcpts int, size int64, origin string) {
	l.log(slog.LevelInfo, "queued",
		slog.String("queue_id", qid(id)), slog.String("from", sender(from)),
		slog.Int("rcpts", rcpts), slog.Int64("size", size), slog.String("origin", origin))
}

// Attempt records the result of one delivery attempt for one recipient;
// status is one of the Status constants. The level follows the status:
// info for delivered/relayed, warn otherwise.
func (l *Logger) Attempt(id, relay, rcpt string, reply string, attempt int, delay time.Duration, status string) {
	level := slog.LevelWarn
	if status == StatusDelivered || status == StatusRelayed {
		level = slog.LevelInfo
	}
	l.log(level, status,
		slog.String("queue_id", qid(id)), slog.String("rcpt", rcpt), slog.String("relay", relay),
		slog.String("reply", reply), slog.Int("attempt", attempt), slog.Duration("delay", delay.Round(time.Millisecond)),
		slog.String("status", status))
}

// Delivered records that the relay accepted rcpt.
func (l *Logger) Delivered(id, relay, rcpt, reply string, attempt int, delay time.Duration) {
	l.Attempt(id, relay, rcpt, reply, attempt, delay, StatusDelivered)
}

// Deferred records a temporary failure for rcpt and when it is tried again.
func (l *Logger) Deferred(id, relay, rcpt, reply string, attempt int, delay time.Duration, next time.Time) {
	l.log(slog.LevelWarn, StatusDeferred,
		slog.String("queue_id", qid(id)), slog.String("rcpt", rcpt), slog.String("relay", relay),
		slog.String("reply", reply), slog.Int("attempt", attempt), slog.Duration("delay", delay.Round(time.Millisecond)),
		slog.String("status", StatusDeferred), slog.Time("next", next))
}

// Bounced records a permanent failure for rcpt (5xx from the relay or a
// local permanent reason).
func (l *Logger) Bounced(id, relay, rcpt, reply string, attempt int, delay time.Duration) {
	l.Attempt(id, relay, rcpt, reply, attempt, delay, StatusBounced)
}

// Expired records that rcpt was given up on because the message stayed in
// the queue longer than its lifetime; lastReply is the last temporary reply.
func (l *Logger) Expired(id, rcpt, lastReply string, attempts int, delay time.Duration) {
	l.log(slog.LevelWarn, StatusExpired,
		slog.String("queue_id", qid(id)), slog.String("rcpt", rcpt), slog.String("reply", lastReply),
		slog.Int("attempt", attempts), slog.Duration("delay", delay.Round(time.Millisecond)),
		slog.String("status", StatusExpired))
}

// AttemptDone records one whole delivery attempt, one line per attempt
// for operators: the recipients tried, which relay, how long it took and,
// when the attempt failed as a whole, the error (a message-level reason,
// never a secret). Info level; warn when err is set.
func (l *Logger) AttemptDone(id, relay string, attempt int, rcpts []string, took time.Duration, err error) {
	attrs := []slog.Attr{
		slog.String("queue_id", qid(id)), slog.String("relay", relay), slog.Int("attempt", attempt),
		slog.String("rcpt", strings.Join(rcpts, ",")), slog.Int("rcpts", len(rcpts)),
		slog.Duration("duration", took.Round(time.Millisecond)),
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.log(level, "attempt", attrs...)
}

// AuthFailure records that the relay refused our credentials. It is an
// error-level event: the mail is deferred (never bounced, as Postfix
// smtp_sasl_auth_soft_bounce), and an operator has to act.
func (l *Logger) AuthFailure(id, relay, reply string) {
	l.log(slog.LevelError, "authentication failed",
		slog.String("queue_id", qid(id)), slog.String("relay", relay), slog.String("reply", reply))
}

// Rejected records that intake refused a message or a recipient; reply is
// what the client was told.
func (l *Logger) Rejected(origin, from, rcpt, reply string) {
	l.log(slog.LevelWarn, "rejected",
		slog.String("queue_id", "-"), slog.String("origin", origin), slog.String("from", sender(from)),
		slog.String("rcpt", rcpt), slog.String("reply", reply))
}

// DSN records that a delivery status notification (kind: "failure",
// "delay", "relayed") was queued for message id as dsnID, addressed to to.
func (l *Logger) DSN(id, dsnID, to, kind string) {
	l.log(slog.LevelInfo, "dsn queued",
		slog.String("queue_id", qid(id)), slog.String("dsn_id", dsnID), slog.String("rcpt", to),
		slog.String("status", kind))
}

// NoDSN records that a notification was not sent and why (null sender,
// NOTIFY=NEVER, postmaster copy disabled).
func (l *Logger) NoDSN(id, rcpt, why string) {
	l.log(slog.LevelInfo, "no dsn",
		slog.String("queue_id", qid(id)), slog.String("rcpt", rcpt), slog.String("reason", why))
}

// Removed records that a message left the queue (every recipient final).
func (l *Logger) Removed(id string, delivered, bounced int) {
	l.log(slog.LevelInfo, "removed",
		slog.String("queue_id", qid(id)), slog.Int("delivered", delivered), slog.Int("bounced", bounced))
}

// SpoolError records a spool operation that failed for message id.
func (l *Logger) SpoolError(id, op string, err error) {
	l.log(slog.LevelError, "spool error",
		slog.String("queue_id", qid(id)), slog.String("op", op), slog.String("error", err.Error()))
}
