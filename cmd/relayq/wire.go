package main

// Shared wiring for the subcommands: configuration → options structs.

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/submit"
)

// loadConfig loads the configuration (config.Load). On error it prints
// every problem on its own line to s.err and returns exConfig (78); the
// caller returns that code.
func loadConfig(s stdio) (*config.Config, int) {
	cfg, err := config.Load()
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(s.err, "relayq: configuration: %s\n", line)
		}
		return nil, exConfig
	}
	return cfg, exOK
}

// warnConfig prints the configuration's warnings (unknown keys, which keep
// their defaults) on w, prefixed with prog: every command says so, none
// refuses to run because of them.
func warnConfig(w io.Writer, prog string, cfg *config.Config) {
	for _, msg := range cfg.Warnings() {
		fmt.Fprintf(w, "%s: warning: configuration: %s\n", prog, msg)
	}
}

// newLogger returns the slog logger cfg asks for (RELAYQ_LOG_FORMAT,
// RELAYQ_LOG_LEVEL), writing to w.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo // config validation accepts only valid levels
	}
	o := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// backgroundLogger is the logger of a delivery run (`relayq queue run`,
// also the detached one that startQueueRun starts): RELAYQ_LOG_FILE when
// set; else, when stderr is /dev/null and syslog listens on /dev/log,
// syslog (facility mail, tag relayq, as Postfix logs); otherwise w as
// newLogger does. A log file that cannot be opened is reported on w and
// the run goes on.
func backgroundLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	if cfg.LogFile != "" {
		f, err := openLogFile(cfg.LogFile)
		if err == nil {
			return newLogger(cfg, f)
		}
		l := backgroundLogger(withoutLogFile(cfg), w)
		l.Error("cannot open the log file; logging here instead", "error", err)
		return l
	}
	if !stderrIsDevNull() {
		return newLogger(cfg, w)
	}
	sw, err := syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, "relayq")
	if err != nil {
		return newLogger(cfg, w)
	}
	return newLogger(cfg, sw)
}

// withoutLogFile is cfg with RELAYQ_LOG_FILE unset.
func withoutLogFile(cfg *config.Config) *config.Config {
	c := *cfg
	c.LogFile = ""
	return &c
}

// stderrIsDevNull reports whether fd 2 is /dev/null.
func stderrIsDevNull() bool {
	a, err := os.Stderr.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(a, b)
}

// submitOptions returns how intake hands a message to the spool: the
// daemon's socket, else a file in the drop directory beside the spool
// followed by a detached `relayq queue run` unless a run (or the daemon)
// holds the run lock already and will pick the file up.
func submitOptions(cfg *config.Config) submit.Options {
	dir := maildrop.Dir(cfg.Spool)
	return submit.Options{
		Socket:      cfg.Socket,
		SpoolPath:   cfg.Spool,
		LockTimeout: cfg.LockTimeout,
		Kick:        startQueueRun,
		DropDir:     dir,
		DropKick:    func() { kickRun(dir) },
	}
}

// kickRun starts a delivery run for a new drop file unless the run lock is
// held: its holder (a run, the daemon) looks at the drop directory after
// this file was written (a run does so once more after it lets go of the
// lock), so starting another run would only cost a process.
func kickRun(dir string) {
	if maildrop.RunActive(dir) {
		return
	}
	startQueueRun()
}

// controlClient returns the client for queue commands: the daemon's control
// socket, else the spool file with a bounded lock wait.
func controlClient(cfg *config.Config) *control.Client {
	return &control.Client{
		Socket:      cfg.ControlSocket,
		SpoolPath:   cfg.Spool,
		LockTimeout: cfg.LockTimeout,
		Kick:        startQueueRun,
		Timeout:     controlTimeout,
	}
}

// controlTimeout bounds the wait for the daemon's answer on the control
// socket: a stopped or deadlocked daemon must not hang mailq.
const controlTimeout = 5 * time.Second

// startQueueRun starts `relayq queue run` as a detached process and does
// not wait for it: a new session (setsid, so a terminal's hangup or the
// caller's process group signals do not reach it), stdin, stdout and stderr
// on /dev/null (a caller that reads our output to EOF, as PHP's mail() and
// cron do, must not wait for the delivery), only fds 0-2 inherited, and the
// same environment (so it reads the same configuration). A goroutine reaps
// it if this process lives on; otherwise init does. It runs in "/", so it
// never pins the caller's working directory. Errors are ignored: the
// message is queued, and the next run or the daemon delivers it.
func startQueueRun() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        []string{"relayq", "queue", "run"},
		Dir:         "/", // do not keep the caller's working directory busy
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
		// Stdin, Stdout, Stderr nil: /dev/null.
	}
	if err := cmd.Start(); err != nil {
		return
	}
	go func() { _ = cmd.Wait() }()
}

// listenerOptions maps the listener keys (config/listen.go) to
// listener.Options for the daemon; submitFn is the daemon's spool submit.
// Errors name the key. The result's Log is log. Bind RELAYQ_LISTEN with
// listener.ListenTCP and RELAYQ_SOCKET with listenerSocket.
func listenerOptions(cfg *config.Config, submitFn submit.Func, log *slog.Logger) (listener.Options, error) {
	nets, err := config.ParseNetworks(cfg.MyNetworks)
	if err != nil {
		return listener.Options{}, fmt.Errorf("RELAYQ_MYNETWORKS: %w", err)
	}
	o := listener.Options{
		Submit:         submitFn,
		Domain:         cfg.Domain,
		MyNetworks:     nets,
		Users:          cfg.SMTPDUsers,
		DovecotSocket:  cfg.SMTPDDovecotSocket,
		AuthFailDelay:  cfg.SMTPDAuthFailDelay,
		MaxMessageSize: cfg.SMTPDMessageSizeLimit,
		MaxRecipients:  cfg.SMTPDRecipientLimit,
		MaxHeaderSize:  cfg.SMTPDHeaderSizeLimit,
		HopCountLimit:  cfg.HopCountLimit,
		MaxLineLength:  cfg.SMTPDLineLengthLimit,
		Timeout:        cfg.SMTPDTimeout,
		DataTimeout:    cfg.SMTPDDataTimeout,
		MaxConnections: cfg.SMTPDConnectionLimit,
		ForeignSender:  cfg.UntrustedSender,
		TrustedUID:     trustedUIDs(cfg.TrustedUsers),
		Log:            maillog.Wrap(log),
	}
	if cfg.SMTPDAuthFailDelay == 0 {
		o.AuthFailDelay = -1 // 0 in the config means no pause
	}
	if cfg.SMTPDTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SMTPDTLSCert, cfg.SMTPDTLSKey)
		if err != nil {
			return listener.Options{}, fmt.Errorf("RELAYQ_SMTPD_TLS_CERT/RELAYQ_SMTPD_TLS_KEY: %w", err)
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// trustedUIDs maps RELAYQ_TRUSTED_USERS (login names; unknown names are
// skipped) to a uid test for the listener's unix socket; root is always
// trusted, as on the sendmail command's own path.
func trustedUIDs(names []string) func(uid int) bool {
	uids := map[int]bool{0: true}
	for _, n := range names {
		if u, err := user.Lookup(strings.TrimSpace(n)); err == nil {
			if id, err := strconv.Atoi(u.Uid); err == nil {
				uids[id] = true
			}
		}
	}
	return func(uid int) bool { return uids[uid] }
}

// listenerSocket binds RELAYQ_SOCKET with RELAYQ_SOCKET_MODE and
// RELAYQ_SOCKET_GROUP (a name or a gid).
func listenerSocket(cfg *config.Config) (*net.UnixListener, error) {
	perm, err := cfg.SocketPerm()
	if err != nil {
		return nil, err
	}
	gid := -1
	if g := cfg.SocketGroup; g != "" {
		if n, err := strconv.Atoi(g); err == nil {
			gid = n
		} else if grp, err := user.LookupGroup(g); err == nil {
			gid, _ = strconv.Atoi(grp.Gid)
		} else {
			return nil, fmt.Errorf("RELAYQ_SOCKET_GROUP: %w", err)
		}
	}
	return listener.ListenUnix(cfg.Socket, os.FileMode(perm), gid)
}
