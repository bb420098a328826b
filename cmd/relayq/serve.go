package main

// `relayq serve` (the daemon) and the daemonless `relayq queue run`:
// configuration → daemon.Options.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/daemon"
	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
)

const serveUsage = `usage: relayq serve

Runs the delivery daemon: owns the spool (RELAYQ_SPOOL), delivers to
RELAYQ_RELAYHOST with retries and bounces, accepts mail on the unix
submission socket (RELAYQ_SOCKET) and, when set, on RELAYQ_LISTEN; answers
queue commands on RELAYQ_CONTROL_SOCKET; serves /healthz and /metrics on
RELAYQ_METRICS_LISTEN when set. Logs go to standard error, or to
RELAYQ_LOG_FILE when set (RELAYQ_LOG_FORMAT text or json).

Before it opens the spool it takes the run lock of the drop directory
(maildrop/ beside the spool): a daemonless delivery run that holds it is
asked to finish its attempts in flight and leave, and serve logs that it
waits, with the run's pid. It imports the messages that sendmail dropped
there while no daemon ran or while this one did not answer.

Configuration errors do not stop it: a bad value of a delivery key in the
env file or the environment, or a credentials file or sender relay map it
cannot use, is logged and every message is deferred with it as the reason
(mailq shows it); mail is still accepted. A bad value of a listener key
(RELAYQ_LISTEN, RELAYQ_MYNETWORKS, RELAYQ_SMTPD_*, RELAYQ_SOCKET_*, control
socket, metrics) stops it (78).

Signals: SIGTERM/SIGINT stop (attempts in flight get RELAYQ_DRAIN_TIMEOUT).
With RELAYQ_DRAIN_ON_STOP set (a pod or container whose spool goes away
with it), SIGTERM first closes the listeners and the submission socket,
makes the deferred mail due and ends a dead-relay hold (as queue flush
does), and keeps delivering the queue until no unheld message is left or
that time has passed; then it stops as above. The last line logged ("relayq serve
stopped") says how many messages remain queued (and held).
SIGHUP reloads the credentials, the sender relay map and the listener's
users file (a broken file leaves the old one in force), then closes the
idle relay sessions so a new password applies at once, and reopens
RELAYQ_LOG_FILE. A credentials file or relay map that was missing, unsafe
or broken at start is read on SIGHUP too, and the configuration error
ends. The env file and the environment are read at start only: a change
there needs a restart. A credentials file or relay map that changes is also
re-read without SIGHUP (checked before each delivery), and
the idle relay sessions are closed then too. After SIGHUP and at start,
mail deferred for authentication, TLS, a missing credential or relay host,
or a connection failure is retried at once, and the dead-relay hold ends
(after a connection or login failure no message is sent for a back-off
period, then one probes the relay). With systemd Type=notify, READY=1 is
sent once everything listens.

Exit codes: 0 stopped by a signal, 64 usage, 75 spool locked by another
process, 74 damaged spool, 73 RELAYQ_LOG_FILE cannot be opened, 78
configuration error, 77 permission denied, 66 a file it needs is missing,
71 other setup errors.
`

func runServe(s stdio, args []string) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(s.err)
	fl.Usage = func() {}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(s.out, serveUsage)
			return exOK
		}
		fmt.Fprint(s.err, serveUsage)
		return exUsage
	}
	if fl.NArg() != 0 {
		fmt.Fprintf(s.err, "relayq serve: unexpected argument %q\n%s", fl.Arg(0), serveUsage)
		return exUsage
	}
	cfg, code := loadConfig(s)
	if code != exOK {
		return code
	}
	out, logf, err := logOutput(cfg.LogFile, s.err)
	if err != nil {
		fmt.Fprintf(s.err, "relayq serve: %v\n", err)
		return exCantCrt
	}
	if logf != nil {
		defer logf.Close()
	}
	log := maillog.Wrap(newLogger(cfg, out))
	for _, w := range cfg.Warnings() {
		// A misspelt RELAYQ_ key would otherwise silently keep its default.
		log.Warn("configuration", "warning", w)
	}

	if err := cfg.ListenerProblem(); err != nil {
		// A door must not open with other limits or security than the
		// operator wrote; sendmail queues through the drop directory
		// meanwhile.
		log.Error("configuration error in the listener keys: not starting", "error", err)
		fmt.Fprintf(s.err, "relayq serve: configuration error (sendmail still queues mail; fix it, then start relayq serve):\n%v\n", err)
		return exConfig
	}
	if strings.TrimSpace(cfg.RelayHost) == "" {
		fmt.Fprintln(s.err, "relayq serve: no relay host configured (RELAYQ_RELAYHOST): mail is accepted and queued but not delivered until one is set")
	}
	o, reload, err := daemonOptions(cfg, log)
	if err != nil {
		// Mail is still accepted and queued: it waits, with the reason
		// in mailq, until the configuration is fixed (see delivery).
		fmt.Fprintf(s.err, "relayq serve: configuration error, mail is accepted and queued but not delivered: %v\n", err)
	}
	d := newDelivery(cfg, log, o.Deliverer, err)
	o.Deliverer = d
	// d reloads last: after the stores, it rebuilds the delivery client
	// when it could not be built (or had no credentials file) at start.
	o.Reload = append(append(o.Reload, reload...), d)
	if logf != nil {
		o.Reload = append(o.Reload, logf) // reopened after logrotate
	}
	if c, ok := o.Deliverer.(interface{ Close() error }); ok {
		defer c.Close()
	}
	lo, err := listenerOptions(cfg, nil, log.Logger)
	if err != nil {
		fmt.Fprintf(s.err, "relayq serve: %v\n", err)
		return exConfig
	}
	o.Listener = &lo
	o.Listen = strings.FieldsFunc(cfg.Listen, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if cfg.Socket != "" {
		o.Socket = func() (*net.UnixListener, error) { return listenerSocket(cfg) }
	}
	o.ControlSocket = cfg.ControlSocket
	o.ControlPublic = cfg.MailqPublic
	o.MetricsListen = cfg.MetricsListen
	o.DrainTimeout = cfg.DrainTimeout
	o.DrainOnStop = cfg.DrainOnStop
	o.NotifySocket = os.Getenv("NOTIFY_SOCKET")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	o.Hangup = hup

	if err := daemon.Serve(ctx, o); err != nil {
		log.Error("relayq serve failed", "error", err)
		fmt.Fprintf(s.err, "relayq: %v\n", err) // err starts with "serve:"
		if errors.Is(err, fs.ErrPermission) {
			hint := spoolOwnerHint(cfg.Spool, os.Geteuid(), os.Getegid())
			log.Error("relayq serve: the spool belongs to another user", "fix", hint)
			fmt.Fprintf(s.err, "relayq serve: %s\n", hint)
		}
		// 75 spool locked, 74 spool damaged, 78 listener configuration,
		// 77 permission denied, 66 a file missing.
		return sysexits.FileCode(err, exOSErr)
	}
	return exOK
}

// spoolOwnerHint says who owns the spool file and its directory, who
// this process is (euid, egid), and the command that gives them to this
// user: the usual cause is a spool created by root (a quick start run as
// root) and then opened by the service user. A user who is not root and
// meets root's spool is more likely a person trying relayq: that one is
// also told how to use paths of their own.
func spoolOwnerHint(path string, euid, egid int) string {
	dir := filepath.Dir(path)
	var owners []string
	rootsDir := false
	for _, p := range []string{dir, path} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owners = append(owners, fmt.Sprintf("%s is owned by %s:%s, mode %04o", p, userName(int(st.Uid)), groupName(int(st.Gid)), fi.Mode().Perm()))
			rootsDir = rootsDir || p == dir && st.Uid == 0
		}
	}
	me, group := userName(euid), groupName(egid)
	hint := fmt.Sprintf("%s; relayq runs as %s:%s: run chown -R %s:%s %s (the packaged unit does so before each start)",
		strings.Join(owners, "; "), me, group, me, group, dir)
	if rootsDir && euid != 0 {
		hint += "; or, to run relayq as yourself, set RELAYQ_SPOOL, RELAYQ_SOCKET and RELAYQ_CONTROL_SOCKET to paths of your own (scripts/run puts them in ~/.local/state/relayq)"
	}
	return hint
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// daemonOptions maps the configuration to daemon.Options for Serve and
// RunOnce (without the Serve-only listeners). The credentials store and
// the sender relay map store, those configured, are returned so that Serve
// can reload them on SIGHUP.
func daemonOptions(cfg *config.Config, log *maillog.Logger) (daemon.Options, []daemon.Reloader, error) {
	o := daemon.Options{
		SpoolPath:   cfg.Spool,
		DropDir:     maildrop.Dir(cfg.Spool),
		LockTimeout: cfg.LockTimeout,
		Policy: daemon.Policy{
			BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, Jitter: cfg.BackoffJitter,
			QueueLifetime: cfg.QueueLifetime, BounceLifetime: cfg.BounceLifetime, DelayWarning: cfg.DelayWarning,
		},
		Workers:      cfg.Workers,
		Lease:        cfg.LeaseTime,
		ReportingMTA: cfg.ReportingMTA,
		Postmaster:   cfg.Postmaster,
		Log:          log,
		DrainTimeout: cfg.DrainTimeout,
	}
	if o.ReportingMTA == "" {
		o.ReportingMTA = cfg.Domain
	}
	if err := cfg.DeliveryProblem(); err != nil {
		// A value in the env file (or the environment) that cannot be
		// used: nothing is sent with a configuration other than the one
		// the operator wrote. Read at start only.
		return o, nil, envProblem{err}
	}
	if strings.TrimSpace(cfg.RelayHost) == "" {
		// Mail stays queued until a relay is configured (`relayq check`
		// says why); it is deferred, never bounced.
		log.Error("no relay host configured (RELAYQ_RELAYHOST): mail is accepted and queued but not delivered until one is set")
		o.Deliverer = daemon.NoRelay("no relay host configured (RELAYQ_RELAYHOST)")
		return o, nil, nil
	}
	var creds smarthost.Credentials
	var reload []daemon.Reloader
	if cfg.AuthInfo != "" {
		st, err := authinfo.NewStore(cfg.AuthInfo)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			log.Warn("no credentials file: mail waits, deferred, unless RELAYQ_AUTH=none", "authinfo", cfg.AuthInfo)
		case err != nil:
			return o, nil, fmt.Errorf("RELAYQ_AUTHINFO: %w", err)
		default:
			st.SetLogger(log.Logger)
			creds = st
			reload = append(reload, st)
		}
	}
	creds, relays, err := withSenderRelays(cfg, creds, log.Logger)
	if err != nil {
		return o, nil, err
	}
	if relays != nil {
		reload = append(reload, relays)
	}
	so, err := smarthostOptions(cfg, creds, log.Logger)
	if err != nil {
		return o, nil, err
	}
	c, err := smarthost.New(so)
	if err != nil {
		return o, nil, envProblem{fmt.Errorf("RELAYQ_RELAYHOST: %w", err)}
	}
	o.Deliverer = c
	if len(reload) > 0 {
		reload = append(reload, idleSessions{c: c, after: slices.Clone(reload)})
	}
	// A file that changed is also reloaded at lookup time, without SIGHUP:
	// then too the idle sessions (logged in with the old entries) go.
	for _, r := range reload {
		if w, ok := r.(interface{ OnReload(func()) }); ok {
			w.OnReload(c.CloseIdle)
		}
	}
	return o, reload, nil
}

// configProblem is the Deliverer used when the delivery configuration
// (a bad value in the env file, the credentials file, sender relay map,
// TLS or relay settings) cannot be used: daemonOptions's error is logged
// and every message is deferred with it as the reason, so that mail is
// still accepted and queued, and the problem shows in mailq beside each
// waiting message. fix says how the change is picked up. daemonOptions's
// errors name keys and files, never secret values.
func configProblem(log *maillog.Logger, err error, fix string) daemon.Deliverer {
	log.Error("configuration error: mail is accepted and queued but not delivered until it is fixed", "error", err, "fix", fix)
	return daemon.NoRelay("configuration error (mail waits; " + fix + "): " + strings.ReplaceAll(err.Error(), "\n", "; "))
}

// envProblem is daemonOptions's error for a bad value in the env file or
// the environment (config.Config.DeliveryProblem): only a restart reads
// them again.
type envProblem struct{ error }

func (e envProblem) Unwrap() error { return e.error }

// fixHint says how a configuration error of daemonOptions is picked up by
// relayq serve: a restart for the env file, SIGHUP for the files it names.
func fixHint(err error) string {
	if errors.As(err, new(envProblem)) {
		return "fix it, then restart relayq serve"
	}
	return "fix it, then reload (SIGHUP) or restart relayq serve"
}

// idleSessions is the last SIGHUP reloader: once the credentials (and the
// sender relay map) have reloaded cleanly, the relay sessions idle in the
// pool are closed, so that the next delivery logs in with the new
// password rather than reusing a session opened with the old one. When a
// reload failed, the old credentials stay in force and so do the sessions.
type idleSessions struct {
	c     *smarthost.Client
	after []daemon.Reloader
}

// String names the reload for the daemon's log.
func (i idleSessions) String() string {
	return "idle relay sessions (closed so a new credential applies)"
}

func (i idleSessions) Reload() error {
	for _, r := range i.after {
		if e, ok := r.(interface{ Err() error }); ok && e.Err() != nil {
			return nil
		}
	}
	i.c.CloseIdle()
	return nil
}

// runQueueOnce is `relayq queue run` without a daemon (daemon.RunOnce):
// it takes the run lock or leaves the work to whoever holds it; attempted,
// when set, gets each attempt's per-recipient results.
func runQueueOnce(ctx context.Context, cfg *config.Config, l *slog.Logger, attempted func(*spool.Message, []spool.Result)) error {
	return runQueueLocked(ctx, cfg, l, attempted, false)
}

// runQueueLocked is runQueueOnce; with wait, it waits for the run lock
// instead of leaving (sendmail -odi reports this run's attempt).
func runQueueLocked(ctx context.Context, cfg *config.Config, l *slog.Logger, attempted func(*spool.Message, []spool.Result), wait bool) error {
	o, _, err := daemonOptions(cfg, maillog.Wrap(l))
	if err != nil {
		// Record the problem on the waiting messages (mailq shows it)
		// rather than failing where nobody looks. Each run reads the
		// configuration afresh.
		o.Deliverer = configProblem(maillog.Wrap(l), err, "fix it; the next delivery run or relayq serve reads it again")
	}
	o.Attempted = attempted
	o.WaitRunLock = wait
	if c, ok := o.Deliverer.(interface{ Close() error }); ok {
		defer c.Close()
	}
	return daemon.RunOnce(ctx, o)
}
