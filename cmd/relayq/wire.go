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
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/relayq/relayq/cmd/internal/personality"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/submit"
)

// loadConfig loads the configuration (config.Load). On error it prints
// every problem on its own line to s.err and returns exConfig (78); the
// caller returns that code.
func loadConfig(s stdio) (*config.Config, int) {
	return personality.LoadConfig("relayq", s.err)
}

// warnConfig prints the configuration's warnings (personality.WarnConfig).
func warnConfig(w io.Writer, prog string, cfg *config.Config) {
	personality.WarnConfig(w, prog, cfg)
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
// set; else, when stderr is /dev/null, syslog (facility mail, tag relayq,
// as Postfix logs) if it listens on /dev/log, or relayq.log in the spool's
// directory (defaultRunLog); otherwise w as newLogger does. A log file that cannot be opened is reported on w and
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
	if err == nil {
		return newLogger(cfg, sw)
	}
	// No syslog (a container, a minimal host): the spool directory's
	// relayq.log, where `relayq help` and the README say to look, rather
	// than nowhere.
	if f, err := openLogFile(defaultRunLog(cfg)); err == nil {
		return newLogger(cfg, f)
	}
	return newLogger(cfg, w)
}

// defaultRunLog is where a detached delivery run logs when RELAYQ_LOG_FILE
// is empty and there is no syslog: relayq.log beside the spool.
func defaultRunLog(cfg *config.Config) string {
	return filepath.Join(filepath.Dir(cfg.Spool), "relayq.log")
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

// startQueueRun starts this binary's `relayq queue run`, detached
// (personality.StartQueueRun).
func startQueueRun() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	personality.StartQueueRun(exe)
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
