// Package personality is the wiring of the sendmail(1) personality that
// both binaries share: the full relayq (installed as, or invoked as,
// sendmail) and the small sendmail binary (cmd/sendmail). It maps the
// configuration and the calling process to sendmail.Options for
// submission, and starts the detached delivery run.
//
// It imports only what submission needs: no control client (HTTP), no
// delivery (TLS, SASL, OAuth, x509). cmd/sendmail's test keeps it so.
package personality

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/relayq/relayq/aliases"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/sendmail"
	"github.com/relayq/relayq/submit"
)

// LoadConfig loads the configuration (config.Load). On error it prints
// every problem on its own line to errw, prefixed with prog, and returns
// sysexits.Config (78); the caller returns that code.
func LoadConfig(prog string, errw io.Writer) (*config.Config, int) {
	cfg, err := config.Load()
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(errw, "%s: configuration: %s\n", prog, line)
		}
		return nil, sysexits.Config
	}
	return cfg, sysexits.OK
}

// Options maps the configuration and the calling process to the
// submission part of sendmail.Options: streams, identity, names, rewriting
// and Submit (the daemon's socket, else the spool with a detached
// `relayq queue run` started from the binary relayq). The queue hooks
// (List, RunQueue, Deliver) and ServeSMTP are left to the caller.
func Options(in io.Reader, out, errw io.Writer, prog string, cfg *config.Config, relayq string) (sendmail.Options, int) {
	var generic *aliases.Generic
	if cfg.GenericMap != "" {
		g, err := aliases.ParseGenericFile(cfg.GenericMap)
		if err != nil {
			fmt.Fprintf(errw, "%s: RELAYQ_GENERIC_MAP: %v\n", prog, err)
			return sendmail.Options{}, sysexits.Config
		}
		generic = g
	}
	host, _ := os.Hostname()
	domain := cfg.Domain
	if domain == "" {
		domain = host
	}
	local := []string{"localhost", "localhost.localdomain"}
	if host != "" {
		local = append(local, host)
		if i := strings.IndexByte(host, '.'); i > 0 {
			local = append(local, host[:i])
		}
	}
	o := sendmail.Options{
		Stdin:           in,
		Stdout:          out,
		Stderr:          errw,
		Prog:            prog,
		Identity:        CallerIdentity(),
		Hostname:        host,
		Domain:          domain,
		LocalDomains:    local,
		TrustedUsers:    cfg.TrustedUsers,
		RefuseUntrusted: cfg.UntrustedSender == "refuse",
		AliasesPath:     cfg.Aliases,
		Generic:         generic,
		SenderRewrite:   cfg.SenderRewrite,
		MaxHeaderSize:   cfg.MaxHeaderSize,
		HopCountLimit:   cfg.HopCountLimit,
		Submit: func(ctx context.Context, env submit.Envelope, body io.Reader, mode sendmail.DeliveryMode) (submit.ID, error) {
			so := SubmitOptions(cfg, relayq)
			switch mode {
			case sendmail.DeliverBackground:
			default:
				// -odi reports the attempt by queue ID, and -odq
				// promises the message is in the queue for `relayq
				// queue` at once: straight into the spool (no drop
				// file; a run holds the spool's lock only for its
				// short transactions), no detached run (-odi's
				// Deliver runs the queue itself).
				so.Kick, so.DropDir = nil, ""
			}
			return submit.Submit(ctx, so, env, body)
		},
	}
	return o, sysexits.OK
}

// CallerIdentity is the real uid of this process and its passwd entry.
func CallerIdentity() sendmail.Identity {
	uid := os.Getuid()
	id := sendmail.Identity{UID: uid}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		id.User = u.Username
		id.FullName = strings.TrimSpace(u.Name) // the gecos field's first entry
	}
	return id
}

// SubmitOptions returns how intake hands a message to the spool: the
// daemon's socket, else a file in the drop directory beside the spool
// followed by a detached `relayq queue run` of the binary relayq unless a
// run (or the daemon) holds the run lock already and will pick the file
// up.
func SubmitOptions(cfg *config.Config, relayq string) submit.Options {
	dir := maildrop.Dir(cfg.Spool)
	return submit.Options{
		Socket:      cfg.Socket,
		SpoolPath:   cfg.Spool,
		LockTimeout: cfg.LockTimeout,
		Kick:        func() { StartQueueRun(relayq) },
		MaxSize:     cfg.SMTPDMessageSizeLimit,
		DropDir:     dir,
		DropKick:    func() { kickRun(dir, relayq) },
	}
}

// kickRun starts a delivery run for a new drop file unless the run lock is
// held: its holder (a run, the daemon) looks at the drop directory after
// this file was written (a run does so once more after it lets go of the
// lock), so starting another run would only cost a process.
func kickRun(dir, relayq string) {
	if maildrop.RunActive(dir) {
		return
	}
	StartQueueRun(relayq)
}

// WarnConfig prints the configuration's warnings (unknown keys, which keep
// their defaults) and its problems (bad values of keys submission does not
// need, config.Problem) on w, prefixed with prog: every command says so,
// none refuses to run because of them, and sendmail still queues the
// message.
func WarnConfig(w io.Writer, prog string, cfg *config.Config) {
	for _, msg := range cfg.Warnings() {
		fmt.Fprintf(w, "%s: warning: configuration: %s\n", prog, msg)
	}
	for _, p := range cfg.Problems() {
		fmt.Fprintf(w, "%s: warning: configuration: %v (%s)\n", prog, p, ProblemEffect(p))
	}
}

// ProblemEffect says what a configuration problem stops until it is fixed.
func ProblemEffect(p config.Problem) string {
	if config.IsListenerKey(p.Key) {
		return "relayq serve does not start until it is fixed; mail is still queued"
	}
	return "mail is queued but not delivered until it is fixed"
}

// StartQueueRun starts `relayq queue run` (the binary relayq) as a
// detached process and does not wait for it: a new session (setsid, so a
// terminal's hangup or the caller's process group signals do not reach
// it), stdin, stdout and stderr on /dev/null (a caller that reads our
// output to EOF, as PHP's mail() and cron do, must not wait for the
// delivery), only fds 0-2 inherited, and the same environment (so it reads
// the same configuration). A goroutine reaps it if this process lives on;
// otherwise init does. It runs in "/", so it never pins the caller's
// working directory. Errors are ignored: the message is queued, and the
// next run or the daemon delivers it.
func StartQueueRun(relayq string) {
	if relayq == "" {
		return
	}
	cmd := &exec.Cmd{
		Path:        relayq,
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
