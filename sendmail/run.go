package sendmail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/relayq/relayq/aliases"
	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/submit"
)

// Exit codes that Main returns: the values of package sysexits, under the
// names this package's callers and tests use.
const (
	ExitOK       = sysexits.OK
	ExitUsage    = sysexits.Usage       // bad command line
	ExitDataErr  = sysexits.DataErr     // bad message or header
	ExitNoUser   = sysexits.NoUser      //
	ExitUnavail  = sysexits.Unavailable // refused for good (5xx), or -odi delivery bounced
	ExitSoftware = sysexits.Software    //
	ExitOSErr    = sysexits.OSErr       //
	ExitIOErr    = sysexits.IOErr       // reading standard input failed
	ExitTempFail = sysexits.TempFail    // not queued now, try again later
	ExitNoPerm   = sysexits.NoPerm      // -f refused for an untrusted user
	ExitConfig   = sysexits.Config      // bad aliases file or settings
)

// Identity is the calling user (from getuid and the passwd entry).
type Identity struct {
	UID      int
	User     string // login name; "" when the uid has no passwd entry
	FullName string // the gecos full name, "" if none
}

// SubmitFunc hands one message to the queue (submit.Submit with the
// options cmd built). mode tells whether the caller wants delivery started
// (DeliverBackground), will wait for it itself (DeliverInteractive), or
// wants the message only queued (DeliverQueueOnly).
type SubmitFunc func(ctx context.Context, env submit.Envelope, body io.Reader, mode DeliveryMode) (submit.ID, error)

// DeliveryStatus is the state of one recipient after -odi's delivery.
type DeliveryStatus int

// Delivery states reported by Options.Deliver.
const (
	StatusDeferred  DeliveryStatus = iota // still queued; will be retried
	StatusDelivered                       // the relay accepted it
	StatusBounced                         // failed for good
	StatusFinished                        // left the queue: delivered, or bounced with a DSN (the log says which)
)

// RecipientResult is one recipient's outcome for -odi.
type RecipientResult struct {
	Addr   string
	Status DeliveryStatus
	Reply  string // last reply or reason
	Relay  string
}

// Options is everything Main needs from outside: streams, who is calling,
// settings, and the functions that reach the queue. cmd builds it from the
// configuration; the package never reads the environment.
type Options struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Prog           string // name used in messages, e.g. "sendmail"

	Identity     Identity
	Hostname     string   // this host's name (Received, X-Authentication-Warning)
	Domain       string   // RELAYQ_DOMAIN: for bare names, default senders, Message-ID
	LocalDomains []string // domains whose addresses are local names (localhost, the host name)

	TrustedUsers    []string // may use -f without a warning
	RefuseUntrusted bool     // -f from others: refuse (exit 77) instead of warning

	AliasesPath   string           // aliases file; "" or missing: no aliases
	Generic       *aliases.Generic // sender rewriting table; nil: none
	SenderRewrite string           // one address for every sender the table leaves alone; "": off

	MaxHeaderSize int    // header section cap in octets (0: 102400)
	HopCountLimit int    // Received: headers allowed (0: 50)
	MemBody       int    // body octets kept in memory before spilling to a temporary file (0: 1 MiB)
	TempDir       string // for spilled bodies; "": os.TempDir()

	Now func() time.Time // nil: time.Now

	Submit   SubmitFunc
	Deliver  func(ctx context.Context, id submit.ID) ([]RecipientResult, error) // -odi; nil: -odi acts as -odb
	RunQueue func(ctx context.Context) error                                    // -q
	List     func(ctx context.Context) ([]QueueEntry, error)                    // -bp, mailq

	// ServeSMTP is -bs (package sendmail/smtpd's Serve); nil: -bs is not
	// available in this binary (exit 70).
	ServeSMTP func(ctx context.Context, o Options, f *Flags) int

	Log *maillog.Logger // may be nil
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) prog() string {
	if o.Prog != "" {
		return o.Prog
	}
	return "sendmail"
}

// Main runs one sendmail invocation with args (argv without argv[0]) and
// returns the exit code.
func Main(ctx context.Context, o Options, args []string) int {
	f, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintf(o.Stderr, "%s: %v\n%s\n", o.prog(), err, Usage)
		return ExitUsage
	}
	if f.Verbose > 1 {
		for _, ig := range f.Ignored {
			fmt.Fprintf(o.Stderr, "%s: option %s accepted and ignored\n", o.prog(), ig)
		}
	}
	switch f.Mode {
	case ModeMailq:
		return Mailq(ctx, o)
	case ModeNewaliases:
		return Newaliases(o, f.AliasFile)
	case ModeQueueRun:
		return queueRun(ctx, o, f)
	case ModeSMTP:
		if o.ServeSMTP == nil {
			fmt.Fprintf(o.Stderr, "%s: -bs: SMTP sessions are not available in this binary\n", o.prog())
			return ExitSoftware
		}
		return o.ServeSMTP(ctx, o, f)
	}
	return deliver(ctx, o, f)
}

func queueRun(ctx context.Context, o Options, f *Flags) int {
	if f.QueueInterval != "" {
		// Sendmail would become a daemon running the queue every
		// interval; Postfix ignores the interval, and so does relayq:
		// `relayq serve` schedules retries.
		fmt.Fprintf(o.Stderr, "%s: -q%s: queue run interval ignored (relayq serve schedules retries)\n", o.prog(), f.QueueInterval)
		return ExitOK
	}
	if o.RunQueue == nil {
		fmt.Fprintf(o.Stderr, "%s: -q: queue runs are not available\n", o.prog())
		return ExitSoftware
	}
	if err := o.RunQueue(ctx); err != nil {
		fmt.Fprintf(o.Stderr, "%s: -q: %v\n", o.prog(), err)
		return exitCode(err)
	}
	return ExitOK
}

// Newaliases checks the aliases file (newaliases, -bi, -I): relayq reads the
// text file directly, so there is no database to build; it reports syntax
// errors (exit 78) and warnings with file:line. A missing file is not an
// error (RELAYQ_ALIASES is ignored when missing, and package scripts run
// newaliases on hosts without one); it is reported on stderr.
func Newaliases(o Options, path string) int {
	if path == "" {
		path = o.AliasesPath
	}
	if path == "" {
		fmt.Fprintf(o.Stderr, "%s: no aliases file configured (RELAYQ_ALIASES)\n", o.prog())
		return ExitOK
	}
	t, err := aliases.ParseFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(o.Stderr, "%s: %s does not exist: no aliases\n", o.prog(), path)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(o.Stderr, "%s: %v\n", o.prog(), err)
		return ExitConfig
	}
	for _, w := range t.Warnings() {
		fmt.Fprintf(o.Stderr, "%s: warning: %s\n", o.prog(), w)
	}
	fmt.Fprintf(o.Stdout, "%s: %d aliases\n", path, t.Len())
	return ExitOK
}

// Error kinds that map to exit codes.
type (
	configError struct{ err error }
	permError   struct{ msg string }
	tempError   struct{ err error }
	ioError     struct{ err error }
)

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }
func (e *configError) ExitCode() int { return sysexits.Config }
func (e *permError) Error() string   { return e.msg }
func (e *permError) ExitCode() int   { return sysexits.NoPerm }
func (e *tempError) Error() string   { return e.err.Error() }
func (e *tempError) Unwrap() error   { return e.err }
func (e *tempError) ExitCode() int   { return sysexits.TempFail }
func (e *ioError) Error() string     { return e.err.Error() }
func (e *ioError) Unwrap() error     { return e.err }
func (e *ioError) ExitCode() int     { return sysexits.IOErr }

// exitCode maps an error to a sysexits code (sysexits.Code). Unknown
// errors are temporary (75): the caller keeps the message and tries again,
// so nothing is lost.
func exitCode(err error) int { return sysexits.Code(err, sysexits.TempFail) }
