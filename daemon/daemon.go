// Package daemon is relayq's delivery daemon (`relayq serve`) and its
// daemonless sibling (`relayq queue run`).
//
// # Runner
//
// One scheduler loop leases due messages from the spool (spool.LeaseDue
// records the attempt before it is made) and hands each to one of at most
// Options.Workers workers; it sleeps until a kick (a new message, a flush),
// the spool's next due time, or a finished delivery. A worker delivers the
// message's pending recipients through the Deliverer (smarthost.Client)
// and records the outcome: every recipient's result is committed at once
// (spool.Update), so a delivered recipient is never sent again; a message
// whose recipients are all final is deleted; otherwise it is deferred with
// exponential backoff (see Policy). A crash at any point leaves the lease
// to run out, after which the message is tried again: delivery is
// at-least-once.
//
// # Notices
//
// A recipient that fails for good (5xx, or the queue lifetime ran out:
// status 4.4.7) is reported to the envelope sender in an RFC 3464 notice
// (package dsn) that re-enters the spool from the null sender; only the
// failed recipients are reported, and only if their NOTIFY asks for it.
// Mail from the null sender is never bounced (RFC 5321 §6.1): its failure is
// logged and, with Options.Postmaster, reported to the postmaster. A
// recipient that asked NOTIFY=SUCCESS and was handed to a relay that does
// not speak DSN gets a "relayed" notice (RFC 3461 §5.2.2). An optional
// delay notice (Policy.DelayWarning) is sent once per message.
//
// # AUTH failures
//
// When the relay refuses the credentials the mail is deferred, never
// bounced (Postfix smtp_sasl_auth_soft_bounce); the event is logged at error
// level and counted in /metrics, and /healthz says "degraded".
//
// # Serve and RunOnce
//
// Serve keeps the spool open (it owns the bbolt file), runs the runner,
// the SMTP listeners, the control socket and the optional /healthz and
// /metrics endpoint, reports readiness to systemd (Type=notify), reloads on
// SIGHUP and drains on shutdown. RunOnce opens the spool only for each
// transaction, never across network I/O, delivers what is due and returns.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/spool"
)

// Reloader is something reloaded on SIGHUP (authinfo.Store, the aliases,
// the sender maps). Reload keeps the old state when the new one is broken
// and returns the error.
type Reloader interface {
	Reload() error
}

// Options configure Serve and RunOnce. SpoolPath and Deliverer are
// required.
type Options struct {
	SpoolPath   string        // the bbolt spool file
	LockTimeout time.Duration // lock wait: Serve's open; RunOnce's every transaction (0: spool default)
	Deliverer   Deliverer     // the relay client (smarthost.Client)

	Policy  Policy        // retry, lifetime, delay notices
	Workers int           // concurrent delivery attempts (0: config's RELAYQ_WORKERS default)
	Lease   time.Duration // how long a message is reserved per attempt (0: RELAYQ_LEASE_TIME default)

	ReportingMTA string // this host's name in notices (default: os.Hostname)
	Postmaster   string // gets failure reports of null-sender mail ("" off)

	Log   *maillog.Logger // nil discards
	Clock Clock           // nil: the system clock
	Rand  func() float64  // jitter source in [0,1); nil: math/rand/v2

	// Attempted, when set, is called after each delivery attempt with the
	// message as leased and the per-recipient results the attempt records
	// (delivered, bounced or still pending, with the last reply), before
	// they are committed. sendmail -odi reports from it. It must not block.
	Attempted func(m *spool.Message, results []spool.Result)

	// DropDir is the drop directory (package maildrop) that daemonless
	// sendmail writes; "" none. Serve takes its run lock for its life
	// (waiting for a daemonless run to finish first) and imports its
	// files; RunOnce takes the run lock or leaves, and imports too.
	DropDir string
	// WaitRunLock makes RunOnce wait for the run lock instead of leaving
	// the work to its holder (sendmail -odi, which reports the attempt).
	WaitRunLock bool
	// ServeWait bounds how long Serve waits for another daemon that still
	// holds the run lock (one stopping); 0: Options.LockTimeout.
	ServeWait time.Duration

	// Serve only.

	// Listener configures the SMTP intake; its Submit is set by Serve to
	// the daemon's spool. Nil: no listener at all.
	Listener *listener.Options
	// Listen are the TCP addresses of the SMTP listener (RELAYQ_LISTEN).
	Listen []string
	// Socket binds the unix submission socket (RELAYQ_SOCKET); nil: none.
	Socket func() (*net.UnixListener, error)
	// ControlSocket is the path of the control socket ("" none);
	// ControlPublic lets every local user list the queue.
	ControlSocket string
	ControlPublic bool
	// MetricsListen is the loopback address of /healthz and /metrics
	// ("" off).
	MetricsListen string
	// DrainTimeout bounds how long attempts in flight may finish at
	// shutdown (default 30 s); then they are cut off and stay queued.
	DrainTimeout time.Duration
	// DrainOnStop, when positive, makes shutdown deliver the queue first
	// (RELAYQ_DRAIN_ON_STOP): the intake closes and the runner goes on
	// until no unheld message is left or this much time has passed; then
	// the usual shutdown (DrainTimeout) follows.
	DrainOnStop time.Duration
	// Reload are reloaded on each value from Hangup (SIGHUP).
	Reload []Reloader
	// Hangup delivers SIGHUP (cmd/relayq passes a signal.Notify channel).
	Hangup <-chan os.Signal
	// NotifySocket is systemd's $NOTIFY_SOCKET ("" none): READY=1 once
	// everything listens, STOPPING=1 at shutdown.
	NotifySocket string
	// Ready, when set, is called once Serve accepts work (tests).
	Ready func(Info)
}

// Info tells a test where Serve listens.
type Info struct {
	Listen  []net.Addr // the TCP listeners
	Metrics net.Addr   // nil when off
	Kick    func()     // wakes the runner
}

// drainTimeout is o.DrainTimeout, or config's default (RELAYQ_DRAIN_TIMEOUT).
func (o *Options) drainTimeout() time.Duration {
	if o.DrainTimeout > 0 {
		return o.DrainTimeout
	}
	return config.Defaults().DrainTimeout
}

func (o *Options) runnerConfig(m *Metrics) runnerConfig {
	mta := o.ReportingMTA
	if mta == "" {
		mta, _ = os.Hostname()
	}
	workers := o.Workers
	if workers <= 0 {
		workers = config.Defaults().Workers
	}
	return runnerConfig{
		Policy: o.Policy, Workers: workers, Lease: o.Lease, ReportingMTA: mta,
		Postmaster: o.Postmaster, Log: o.Log, Clock: o.Clock, Rand: o.Rand, Metrics: m,
		Attempted: o.Attempted,
	}
}

func (o *Options) check() error {
	if o.SpoolPath == "" {
		return errors.New("daemon: no spool path")
	}
	if o.Deliverer == nil {
		return errors.New("daemon: no deliverer (relay client)")
	}
	if o.Log == nil {
		o.Log = maillog.New(nil)
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	return nil
}

// RunOnce delivers what is due and returns (`relayq queue run`, and the
// detached run sendmail starts after queueing without a daemon). It opens
// the spool with a bounded lock wait for each transaction (lease, update,
// defer, delete) and closes it again, so it never holds the lock across
// network I/O: sendmail callers, `relayq queue` commands and other runs
// interleave with it, and leases keep two runs from sending one message
// twice. It returns when nothing due is left, or when ctx ends (after the
// attempts in flight, bounded by o.DrainTimeout); the error is the first
// spool error (wrapping spool.ErrLocked when a daemon took the spool).
func RunOnce(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	st := &transient{path: o.SpoolPath, o: spool.Options{
		LockTimeout: o.LockTimeout, Now: o.Clock.Now, Logger: o.Log.Logger,
	}}
	r := newRunner(st, o.Deliverer, o.runnerConfig(NewMetrics()))
	retryNoRelay(st, o)
	drain := o.drainTimeout()
	if o.DropDir != "" {
		return runWithDrops(ctx, o, st, r, drain)
	}
	if err := r.run(ctx, true, drain); err != nil {
		return fmt.Errorf("queue run: %w", err)
	}
	return nil
}

// retryNoRelay makes the mail that waits because the configuration could
// not be used (no relay host, a credentials file or env value relayq
// could not use: KindNoRelay) due now when this run's configuration can
// be used: a daemonless run reads the configuration afresh, and the fix
// must not wait out the backoff (mailq told the operator that the next
// delivery run picks it up; it delivered nothing until the retry time).
// Mail deferred by the relay (login, TLS, connection) keeps its backoff:
// every sendmail starts a run.
func retryNoRelay(st store, o Options) {
	if _, broken := o.Deliverer.(NoRelay); broken {
		return
	}
	n, err := st.RetryKinds([]string{KindNoRelay}, "retrying at once: the configuration can be used again")
	switch {
	case err != nil:
		o.Log.SpoolError("", "retry after a configuration fix", err)
	case n > 0:
		o.Log.Info("deferred mail retried at once", "after", "the configuration was fixed", "messages", n)
	}
}

// Serve runs the daemon until ctx ends (SIGTERM, SIGINT): it opens the
// spool (waiting at most o.LockTimeout for it), starts the runner, the
// listeners, the control socket and the metrics endpoint, and tells systemd
// it is ready. At shutdown it stops accepting mail, lets attempts in flight
// finish for up to o.DrainTimeout, closes the spool and returns nil. A
// setup error (spool locked or damaged, an address in use) is returned
// before anything is accepted.
func Serve(ctx context.Context, o Options) (err error) {
	if err := o.check(); err != nil {
		return err
	}
	if o.DropDir != "" {
		lock, err := takeRunLock(ctx, &o)
		if err != nil {
			return err
		}
		defer lock.Unlock() // after the spool is closed (defers run in reverse)
	}
	sp, err := spool.Open(o.SpoolPath, spool.Options{LockTimeout: o.LockTimeout, Now: o.Clock.Now, Logger: o.Log.Logger})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer func() {
		if cerr := sp.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("serve: close spool: %w", cerr)
		}
	}()
	s := &server{o: o, log: o.Log, sp: sp, metrics: NewMetrics(), reload: o.Reload, attempts: control.NewAttempts()}
	rc := o.runnerConfig(s.metrics)
	rc.Attempted = func(m *spool.Message, rs []spool.Result) {
		s.attempts.Record(m, rs) // sendmail -odi asks the control socket for it
		if o.Attempted != nil {
			o.Attempted(m, rs)
		}
	}
	s.r = newRunner(openSpool{sp}, o.Deliverer, rc)
	s.info = Info{Kick: s.r.Kick}
	for _, start := range []func() error{s.startIntake, s.startControl, s.startMetrics} {
		if err := start(); err != nil {
			return s.fail(err)
		}
	}

	// The runner.
	runCtx, stopRunner := context.WithCancel(context.Background())
	defer stopRunner()
	drain := o.drainTimeout()
	runnerDone := make(chan error, 1)
	// A restart may carry the fix (credentials, relay host, TLS): mail
	// deferred for such a reason goes at once (the dead-relay hold then
	// limits the attempts if it does not).
	s.r.configChanged("a start of relayq serve")
	go func() { runnerDone <- s.r.run(runCtx, false, drain) }()
	if o.DropDir != "" {
		s.startDrops()
	}

	if err := sdNotify(o.NotifySocket, "READY=1\nSTATUS=delivering"); err != nil {
		s.log.Warn("systemd notify failed", "error", err)
	}
	s.log.Info("relayq serve started", "spool", sp.Path(), "workers", s.r.c.Workers)
	if o.Ready != nil {
		o.Ready(s.info)
	}
	if err := s.wait(ctx, runnerDone); err != nil {
		return s.fail(err)
	}

	// Shutdown: stop accepting, let attempts finish, release, close.
	s.stopping.Store(true)
	_ = sdNotify(o.NotifySocket, "STOPPING=1")
	if o.DrainOnStop > 0 {
		if err := s.drain(runnerDone); err != nil {
			return s.fail(err)
		}
	}
	s.log.Info("relayq serve stopping", "drain_timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	stopRunner()
	s.shutdown(sctx) // listeners finish messages in DATA, control socket, metrics
	s.wg.Wait()
	<-runnerDone
	// One line says what is left: mail cut off in flight and mail not
	// tried stays queued for the next start.
	if st, err := sp.Stats(); err != nil {
		s.log.Info("relayq serve stopped", "error", err)
	} else {
		s.log.Info("relayq serve stopped", "queued", st.Count, "held", st.Held)
	}
	return nil
}

// drainPoll is how often drain looks whether the queue is empty.
const drainPoll = 100 * time.Millisecond

// drain is the first part of a shutdown with Options.DrainOnStop: it
// closes the intake (listeners, submission socket, drop directory import:
// mail dropped meanwhile stays in the directory for the next start), makes
// the deferred mail due now, ends a dead-relay hold and lets the
// runner deliver until no unheld message is left or DrainOnStop has
// passed. The control socket stays up (mailq works; relayq healthcheck
// says the daemon is stopping). The error is the runner's, when it
// returned meanwhile.
func (s *server) drain(runnerDone <-chan error) error {
	deadline := time.Now().Add(s.o.DrainOnStop)
	ictx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	s.closeIntake(ictx)
	n, err := s.sp.Flush()
	if err != nil {
		s.log.SpoolError("", "flush", err)
	}
	// The last chance for mail whose spool may go with the pod: like an
	// operator's flush, it ends the dead-relay hold (one message probes
	// the relay; if that fails the hold is back). With the hold kept, a
	// relay that failed shortly before SIGTERM and is back meanwhile got
	// nothing for the whole drain.
	s.r.operatorKick()
	s.log.Info("relayq serve draining: no mail accepted; delivering the queue before stopping", "deadline", s.o.DrainOnStop, "due", n)
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		st, err := s.sp.Stats()
		switch {
		case err != nil:
			s.log.SpoolError("", "stats", err)
		case st.Count == st.Held:
			s.log.Info("relayq serve drained: no unheld message left", "held", st.Held)
			return nil
		}
		select {
		case <-ictx.Done():
			s.log.Warn("relayq serve drain deadline passed: what is left stays queued", "deadline", s.o.DrainOnStop, "queued", st.Count)
			return nil
		case err := <-runnerDone:
			return fmt.Errorf("runner stopped while draining: %v", err)
		case <-tick.C:
		}
	}
}

// server is one run of Serve: the open spool, the runner, and what was
// started around them, each with a closer run at shutdown.
type server struct {
	o       Options
	log     *maillog.Logger
	sp      *spool.Spool
	r       *runner
	metrics *Metrics
	info    Info
	reload  []Reloader // on SIGHUP
	// attempts remembers first delivery attempts for sendmail -odi.
	attempts *control.Attempts

	wg      sync.WaitGroup
	closers []func(context.Context)
	// intake are the closers of what takes mail in (listeners, drop
	// import); run before closers.
	intake []func(context.Context)
	// stopping is set when shutdown begins (health says so).
	stopping atomic.Bool
}

// shutdown runs the closers, the intake's first, last started first.
func (s *server) shutdown(sctx context.Context) {
	s.closeIntake(sctx)
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i](sctx)
	}
}

// closeIntake stops taking mail in (once): the listeners finish the
// messages in DATA, bounded by sctx.
func (s *server) closeIntake(sctx context.Context) {
	for i := len(s.intake) - 1; i >= 0; i-- {
		s.intake[i](sctx)
	}
	s.intake = nil
}

// fail stops what was started (within a second) and returns e as Serve's
// error.
func (s *server) fail(e error) error {
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.shutdown(sctx)
	s.wg.Wait()
	return fmt.Errorf("serve: %w", e)
}

// startIntake starts the SMTP intake: the TCP listeners and the unix
// submission socket, each message submitted to the spool and the runner
// kicked.
func (s *server) startIntake() error {
	if s.o.Listener == nil {
		return nil
	}
	lo := *s.o.Listener
	lo.Submit = func(sctx context.Context, env spool.Envelope, body io.Reader) (spool.ID, error) {
		id, err := s.sp.Submit(sctx, env, body)
		if err == nil {
			s.r.Kick() // a new message is tried at once
		}
		return id, err
	}
	if lo.Log == nil {
		lo.Log = s.log
	}
	srv, err := listener.New(lo)
	if err != nil {
		return err
	}
	s.intake = append(s.intake, func(sctx context.Context) { _ = srv.Shutdown(sctx) })
	for _, addr := range s.o.Listen {
		ln, err := listener.ListenTCP(addr)
		if err != nil {
			return err
		}
		if err := srv.CheckBind(ln.Addr()); err != nil {
			ln.Close()
			return err
		}
		s.info.Listen = append(s.info.Listen, ln.Addr())
		s.goServe(func() error { return srv.ServeTCP(ln) }, "smtp listener stopped", "addr", ln.Addr().String())
		s.log.Info("listening", "addr", ln.Addr().String(), "proto", "smtp")
	}
	if s.o.Socket != nil {
		uln, err := s.o.Socket()
		if err != nil {
			return err
		}
		s.goServe(func() error { return srv.ServeUnix(uln) }, "submission socket stopped")
		s.log.Info("listening", "addr", uln.Addr().String(), "proto", "smtp-unix")
	}
	s.reload = append(s.reload, srv) // the users file
	return nil
}

// startControl starts the control socket (queue commands).
func (s *server) startControl() error {
	if s.o.ControlSocket == "" {
		return nil
	}
	cs := control.NewServer(control.ServerOptions{Spool: s.sp, Kick: s.r.operatorKick, Wake: s.r.Kick, Attempts: s.attempts,
		Logger: s.log.Logger, PublicList: s.o.ControlPublic, AdminUID: -1, Health: s.health})
	ln, err := control.Listen(s.o.ControlSocket)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(context.Background())
	s.closers = append(s.closers, func(context.Context) { cancel() })
	s.goServe(func() error { return cs.Serve(cctx, ln) }, "control socket stopped")
	s.closers = append(s.closers, func(context.Context) { os.Remove(s.o.ControlSocket) })
	return nil
}

// health is the control socket's health check (relayq healthcheck): not
// while the daemon stops, nor while the last spool operation failed.
// Refused logins do not count: the mail is deferred, not lost, and a
// restart would not help.
func (s *server) health() error {
	if s.stopping.Load() {
		return errors.New("relayq serve is stopping: no mail accepted")
	}
	s.metrics.mu.Lock()
	err := s.metrics.lastSpool
	s.metrics.mu.Unlock()
	if err != nil {
		return fmt.Errorf("the last spool operation failed: %w", err)
	}
	return nil
}

// startMetrics starts /healthz and /metrics on the loopback address.
func (s *server) startMetrics() error {
	if s.o.MetricsListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.o.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.info.Metrics = ln.Addr()
	stats := cachedStats(s.sp.Stats, 2*time.Second)
	hs := &http.Server{
		Handler:           s.metrics.handler(stats, s.o.Clock.Now, 15*time.Minute),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.goServe(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, "metrics endpoint stopped")
	s.closers = append(s.closers, func(sctx context.Context) { _ = hs.Shutdown(sctx) })
	s.log.Info("listening", "addr", ln.Addr().String(), "proto", "http", "paths", "/healthz /metrics")
	return nil
}

// goServe runs serve in a goroutine that shutdown waits for; an error it
// returns is logged as msg with args.
func (s *server) goServe(serve func() error, msg string, args ...any) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil {
			s.log.Error(msg, append(args, "error", err)...)
		}
	}()
}

// reloaderName names rl in the log: what it reloads (its String), not a
// Go type ("*listener.Server" told an operator nothing).
func reloaderName(rl Reloader) string {
	if s, ok := rl.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", rl)
}

// wait serves signals until ctx ends: each SIGHUP reloads the reloaders
// (a failed reload keeps the previous configuration). The runner returning
// first is an error (it returns only at shutdown).
func (s *server) wait(ctx context.Context, runnerDone <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.o.Hangup:
			for _, rl := range s.reload {
				if err := rl.Reload(); err != nil {
					s.log.Error("reload failed; the previous configuration stays in force", "what", reloaderName(rl), "error", err)
				} else {
					s.log.Info("reloaded", "what", reloaderName(rl))
				}
			}
			// The fix may be in: mail waiting for a configuration reason
			// goes now, not after its backoff.
			s.r.configChanged("a reload (SIGHUP)")
		case err := <-runnerDone:
			return fmt.Errorf("runner stopped: %v", err)
		}
	}
}
