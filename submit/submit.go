// Package submit is relayq's one intake contract: Submit hands a message to
// the spool and returns its queue ID only once the message is committed to
// disk (fsync). Every intake path (the sendmail CLI, the listener, bounces)
// ends here.
//
// Two routes, tried in this order:
//
//  1. The daemon's unix submission socket (Options.Socket). While
//     `relayq serve` runs it holds the bbolt file, so the message goes to
//     the daemon as one SMTP transaction (RFC 5321) on the socket:
//
//     EHLO localhost
//     MAIL FROM:<from> [BODY=7BIT|8BITMIME] [SMTPUTF8] [RET=FULL|HDRS] [ENVID=xtext]
//     RCPT TO:<addr> [NOTIFY=...] [ORCPT=type;xtext]   (one per recipient)
//     DATA, the body (dot-stuffed), "."
//     QUIT
//
//     The daemon answers the final dot with "250 2.0.0 Ok: queued as <ID>"
//     after its spool commit. DSN parameters follow RFC 3461, SMTPUTF8 RFC
//     6531, ORCPT of type utf-8 RFC 6533. A 4xx reply, or a connection
//     lost before the final 250, is a temporary failure; a 5xx reply is
//     permanent. Either way the error is a *ReplyError or wraps the cause.
//
//  2. The spool file itself (Options.SpoolPath), when nothing listens on
//     the socket (it does not exist, or connecting is refused). The spool is
//     opened with a bounded lock wait (Options.LockTimeout), the message is
//     submitted, the spool is closed, and Options.Kick is called to start
//     delivery without keeping the caller waiting. If the lock is held (a
//     daemon just starting), the socket is tried once more before giving up.
//
// TempFail tells a caller whether to report a temporary failure (sendmail
// exit 75, SMTP 451) rather than a permanent one: lock timeout, spool write
// failure, 4xx, lost connection.
package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/wire"
)

// Type aliases so that intake packages (listener) can use the spool's
// envelope types without importing spool.
type (
	// Envelope is spool.Envelope.
	Envelope = spool.Envelope
	// Recipient is spool.Recipient.
	Recipient = spool.Recipient
	// ID is spool.ID.
	ID = spool.ID
)

// Errors of the spool, re-exported for callers that may not import spool;
// test with errors.Is.
var (
	// ErrLocked: the spool lock wait ran out (temporary).
	ErrLocked = spool.ErrLocked
	// ErrFull: the spool could not be written (temporary; SMTP 452 4.3.1).
	ErrFull = spool.ErrFull
)

// ErrTemporary is wrapped by failures that are worth retrying later and
// have no more specific cause: the daemon's connection broke before it
// confirmed the message, or a 4xx reply.
var ErrTemporary = sysexits.Kind("temporary submission failure", sysexits.TempFail)

// ErrInvalid is wrapped when the envelope cannot be submitted as given (an
// address with CR, LF or NUL, no recipients, an unknown RET value, text
// that is not UTF-8). It is permanent. It is spool.ErrInvalid, so that the
// spool's own refusals (the daemon's listener submits to the spool
// directly) are permanent too: 554, exit 65, never "try again later".
var ErrInvalid = spool.ErrInvalid

// Func is the signature of a submit function as the daemon hands it to the
// listener (a closure over its open spool).
type Func func(ctx context.Context, env Envelope, body io.Reader) (ID, error)

// Options says where Submit sends a message.
type Options struct {
	Socket      string        // daemon's unix submission socket; "" skips it
	SpoolPath   string        // used when no daemon answers on Socket
	LockTimeout time.Duration // bounded lock wait for the direct path; 0 = spool's default
	Kick        func()        // called after a direct enqueue (e.g. start a detached delivery); may be nil

	// DropDir, when set, replaces the direct route: with no daemon
	// answering, the message is written to this drop directory
	// (package maildrop) and DropKick is called; the spool is never
	// opened, so the caller never waits on a delivery run.
	DropDir  string
	DropKick func()

	// AnswerTimeout bounds the wait for each of the daemon's answers
	// before the body is sent (greeting, EHLO, MAIL, RCPT, DATA): a
	// daemon that does not answer (stopped, deadlocked, overloaded)
	// cannot have queued anything yet, so the message goes to DropDir
	// instead (or the error is temporary). 0: DefaultAnswerTimeout.
	AnswerTimeout time.Duration

	// MaxSize is the largest message body in octets that the direct and
	// drop routes accept (RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT, the limit the
	// daemon's socket applies itself); larger: *TooBigError, nothing
	// stored. 0: no limit.
	MaxSize int64

	// Timeout bounds each step of the socket conversation (greeting, each
	// command, the reply to the final dot); 0 means DefaultTimeout. The
	// context's deadline, if sooner, applies too.
	Timeout time.Duration
}

// DefaultTimeout is the per-step timeout of the socket conversation once
// the body is being sent (each write of the body, the reply to the final
// dot). After the final dot the daemon may have queued the message, so
// there is no fallback: the caller gets a temporary failure.
const DefaultTimeout = 30 * time.Second

// DefaultAnswerTimeout is Options.AnswerTimeout's default.
const DefaultAnswerTimeout = 5 * time.Second

// noAnswerMemory is how long after a daemon did not answer callers skip
// its socket and write the drop directory straight away (the daemon
// clears the mark as soon as it looks at the drop directory again).
const noAnswerMemory = 30 * time.Second

// ReplyError is a reply of the daemon that refused the message. Command is
// the step refused: "greeting", "EHLO", "MAIL", "RCPT TO:<addr>", "DATA",
// "end of data". Submit returns it wrapped as "daemon refused <Command>:
// <reply>"; use errors.As.
type ReplyError = wire.ReplyError

// refused wraps a refusal of the daemon.
func refused(e *ReplyError) error { return fmt.Errorf("daemon refused %w", e) }

// Submit queues one message; see the package doc for the two routes. It
// returns the queue ID only once the message is on disk. body is read once,
// streaming; it must be the message as it goes after DATA (CRLF line ends,
// not dot-stuffed).
//
// A 250 reply without a recognisable "queued as <ID>" is success with an
// empty ID: the daemon has the message, and failing here would make the
// caller send it twice.
func Submit(ctx context.Context, o Options, env Envelope, body io.Reader) (ID, error) {
	if err := checkEnvelope(env); err != nil {
		return "", err
	}
	if o.Socket != "" && o.DropDir != "" && maildrop.NoAnswerSince(o.DropDir, noAnswerMemory) {
		// The daemon did not answer a moment ago: do not wait for it
		// again; it imports the drop directory when it goes on.
		return submitDrop(o, env, limitBody(o, body), errNoAnswer)
	}
	if o.Socket != "" {
		id, err := submitSocket(ctx, o, env, body)
		if !errors.Is(err, errNoDaemon) {
			return id, err
		}
		if errors.Is(err, errNoAnswer) && o.DropDir == "" {
			// The direct route would wait for the hung daemon's lock.
			return "", fmt.Errorf("submit via %s: %w: %w", o.Socket, ErrTemporary, err)
		}
		if o.DropDir != "" {
			id, derr := submitDrop(o, env, limitBody(o, body), err)
			if derr == nil && errors.Is(err, errNoAnswer) {
				maildrop.MarkNoAnswer(o.DropDir)
			}
			return id, derr
		}
	}
	if o.DropDir != "" {
		return submitDrop(o, env, limitBody(o, body), nil)
	}
	if o.SpoolPath == "" {
		return "", fmt.Errorf("submit: no daemon answers on %s and no spool path is configured: %w", o.Socket, ErrTemporary)
	}
	id, err := submitDirect(ctx, o, env, limitBody(o, body))
	if errors.Is(err, spool.ErrLocked) && o.Socket != "" {
		// The lock holder may be a daemon that has opened the spool but
		// not yet its socket. Nothing of body has been read: the spool
		// reads it only after Open succeeds.
		if id2, err2 := submitSocket(ctx, o, env, body); !errors.Is(err2, errNoDaemon) {
			return id2, err2
		}
	}
	return id, err
}

// TempFail reports whether err is a temporary failure: the caller should
// exit 75 (EX_TEMPFAIL) or answer 4xx, and the sender should retry.
func TempFail(err error) bool {
	if err == nil {
		return false
	}
	var re *ReplyError
	if errors.As(err, &re) {
		return re.Temporary()
	}
	return errors.Is(err, spool.ErrLocked) || errors.Is(err, spool.ErrFull) ||
		errors.Is(err, ErrTemporary) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}

// errNoDaemon: nothing listens on the socket (missing, or connection
// refused): use the spool directly.
var errNoDaemon = errors.New("no daemon on the submission socket")

// errNoAnswer: the daemon accepted the connection (or its backlog is
// full) but did not answer in time before the body was sent; it wraps
// errNoDaemon only when a drop directory can take the message.
var errNoAnswer = errors.New("the daemon does not answer")

// dialSocket connects to the daemon's socket. Dial errors that mean "no
// daemon" wrap errNoDaemon; others (permission, a full backlog) are
// returned as they are.
func dialSocket(ctx context.Context, path string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		return c, nil
	}
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("%w: %w", errNoDaemon, err)
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded) {
		// The listen backlog is full: the daemon does not accept.
		return nil, fmt.Errorf("%w: %w: %w", errNoDaemon, errNoAnswer, err)
	}
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("submission socket %s: %w", path, err)
	}
	return nil, fmt.Errorf("submission socket %s: %w: %w", path, ErrTemporary, err)
}

// checkEnvelope rejects what cannot go into an SMTP command line.
func checkEnvelope(env Envelope) error {
	if len(env.Recipients) == 0 {
		return fmt.Errorf("submit: no recipients: %w", ErrInvalid)
	}
	bad := func(what, v string) error {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c == '\r' || c == '\n' || c == 0 {
				return fmt.Errorf("submit: %s %q contains CR, LF or NUL: %w", what, v, ErrInvalid)
			}
		}
		return nil
	}
	if err := bad("sender", env.From); err != nil {
		return err
	}
	if err := bad("ENVID", env.EnvID); err != nil {
		return err
	}
	switch env.Ret {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("submit: RET %q is not FULL or HDRS: %w", env.Ret, ErrInvalid)
	}
	for _, r := range env.Recipients {
		if r.Addr == "" {
			return fmt.Errorf("submit: empty recipient address: %w", ErrInvalid)
		}
		for _, v := range []string{r.Addr, r.Notify, r.ORcpt} {
			if err := bad("recipient", v); err != nil {
				return err
			}
		}
	}
	return nil
}
