// Package control is the daemon's control socket: queue commands (list,
// show, hold, release, delete, flush, stats, compact) for the CLI while
// `relayq serve` holds the spool. bbolt lets only one process open the file
// (even read-only opens block on its flock), so while the daemon runs the
// CLI cannot read the queue itself; it asks the daemon.
//
// # Protocol
//
// HTTP/1.1 with JSON bodies on a unix socket (RELAYQ_CONTROL_SOCKET):
//
//	GET    /v1/queue              list: NDJSON, one {"message":{...}} per message
//	                              in arrival order, then {"end":true,"count":N}
//	                              or {"error":"...","kind":"..."} if the walk failed
//	GET    /v1/queue/{id}         show: {"message":{...},"headers":"...","truncated":bool}
//	POST   /v1/queue/{id}/hold    {"ok":true}
//	POST   /v1/queue/{id}/release {"ok":true}
//	DELETE /v1/queue/{id}         {"ok":true}
//	POST   /v1/queue/{id}/attempt {"attempt":{...}} the message's first delivery
//	       [?wait=2m]             attempt (waiting for it, the runner woken),
//	                              or {"gone":true} (left the queue, no attempt
//	                              remembered), or {"queued":{...}} (held, or
//	                              not tried within wait): sendmail -odi
//	POST   /v1/flush              {"count":N} (messages due now)
//	GET    /v1/stats              spool.Stats as JSON
//	POST   /v1/compact            {"ok":true}
//	GET    /v1/health             {"status":"ok","queue":N}: the daemon answers, it
//	                              accepts mail and its spool can be read; 503
//	                              {"error":"why","kind":"unhealthy"} when not
//	                              (relayq healthcheck)
//
// Errors are {"error":"text","kind":K} with K one of not_found (404),
// forbidden (403), bad_request (400), locked (503), full (507), corrupt
// (500), internal (500), unhealthy (503, health only).
//
// # Who may do what
//
// The socket is mode 0666; the server checks the peer's uid (SO_PEERCRED)
// per request. Root and the daemon's own user may do everything. Other
// local users may list the queue and read its stats when the server's
// PublicList is set (RELAYQ_MAILQ_PUBLIC, default on, as Postfix's
// authorized_mailq_users = static:anyone, so that mailq works for every
// user as it always has), and show the messages they submitted themselves
// (the message's Origin is "uid=N", recorded by the submission socket from
// SO_PEERCRED or by the CLI's direct route; sendmail -odi follows its
// message this way); every user may ask for health (the queue's size only
// when it may read stats); everything else (other users' messages, whose headers
// show reveals, and every change, flush included) is refused with 403. A deployment that
// must hide senders and recipients from local users sets
// RELAYQ_MAILQ_PUBLIC=false.
//
// # Without a daemon
//
// Client tries the socket first; when nothing listens there (no socket
// file, or connection refused) it opens the spool file itself with a
// bounded lock wait, does the one operation and closes it again. If that
// lock is held, the error says that a daemon holds the spool but its
// control socket does not answer.
package control

import (
	"errors"
	"fmt"
	"os"

	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/spool"
)

// MaxHeaders bounds the header section Show returns.
const MaxHeaders = 64 << 10

// Detail is what Show returns: the record and the message's header section.
type Detail struct {
	Message   *spool.Message `json:"message"`
	Headers   string         `json:"headers"`   // header section up to the blank line (CRLF line ends), at most MaxHeaders bytes
	Truncated bool           `json:"truncated"` // the header section was longer than MaxHeaders
}

// AttemptAnswer is the answer to POST /v1/queue/{id}/attempt: exactly one
// field is set.
type AttemptAnswer struct {
	Attempt *Attempt       `json:"attempt,omitempty"` // the message's first attempt
	Gone    bool           `json:"gone,omitempty"`    // left the queue (delivered or bounced), no attempt remembered
	Queued  *spool.Message `json:"queued,omitempty"`  // still queued: held, or not tried within the wait
}

// ErrBadRequest is wrapped when the daemon refuses a malformed request (an
// invalid queue ID, for example).
var ErrBadRequest = sysexits.Kind("bad request", sysexits.Usage)

// ErrNoDaemon is wrapped when the spool is locked but no daemon answers on
// the control socket.
var ErrNoDaemon = sysexits.Kind("daemon holds the spool but its control socket does not answer", sysexits.TempFail)

// Error kinds on the wire.
const (
	kindNotFound   = "not_found"
	kindForbidden  = "forbidden"
	kindBadRequest = "bad_request"
	kindLocked     = "locked"
	kindFull       = "full"
	kindCorrupt    = "corrupt"
	kindInternal   = "internal"
	kindUnhealthy  = "unhealthy"
)

// kindOf classifies an error for the wire.
func kindOf(err error) (string, int) {
	switch {
	case errors.Is(err, spool.ErrNotFound):
		return kindNotFound, 404
	case errors.Is(err, os.ErrPermission):
		return kindForbidden, 403
	case errors.Is(err, ErrBadRequest):
		return kindBadRequest, 400
	case errors.Is(err, spool.ErrLocked):
		return kindLocked, 503
	case errors.Is(err, spool.ErrFull):
		return kindFull, 507
	case errors.Is(err, spool.ErrCorrupt):
		return kindCorrupt, 500
	}
	return kindInternal, 500
}

// errorOf turns a wire error back into one that errors.Is recognises.
func errorOf(kind, msg string) error {
	var base error
	switch kind {
	case kindNotFound:
		base = spool.ErrNotFound
	case kindForbidden:
		base = os.ErrPermission
	case kindBadRequest:
		base = ErrBadRequest
	case kindLocked:
		base = spool.ErrLocked
	case kindFull:
		base = spool.ErrFull
	case kindCorrupt:
		base = spool.ErrCorrupt
	default:
		return fmt.Errorf("daemon: %s", msg)
	}
	return &remoteError{msg: msg, base: base}
}

// remoteError is an error reported by the daemon; it prints the daemon's
// text and unwraps to the matching sentinel.
type remoteError struct {
	msg  string
	base error
}

func (e *remoteError) Error() string { return "daemon: " + e.msg }
func (e *remoteError) Unwrap() error { return e.base }

// wire types
type errorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

type listLine struct {
	Message *spool.Message `json:"message,omitempty"`
	Damaged *damagedLine   `json:"damaged,omitempty"` // a record that cannot be read (spool.DamagedError)
	End     bool           `json:"end,omitempty"`
	Count   int            `json:"count,omitempty"`
	Error   string         `json:"error,omitempty"`
	Kind    string         `json:"kind,omitempty"`
}

type damagedLine struct {
	ID    spool.ID `json:"id"`
	Error string   `json:"error"`
}

type okBody struct {
	OK bool `json:"ok"`
}

// Health is the answer to GET /v1/health.
type Health struct {
	Status string `json:"status"`          // "ok"
	Queue  *int   `json:"queue,omitempty"` // messages in the queue; nil for a user who may not read stats
}

type countBody struct {
	Count int `json:"count"`
}
