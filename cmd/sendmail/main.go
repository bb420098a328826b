// Command sendmail is relayq's small sendmail(1): installed as
// /usr/sbin/sendmail (and as mailq and newaliases) beside the full relayq,
// it queues a message exactly as `relayq sendmail` does, but links only
// what submission needs — no TLS, HTTP, SASL, OAuth or x509 — so that
// every cron job and mail() call starts a smaller program.
//
// What submission does not need is handed to the full relayq by exec
// (same arguments, same environment, same standard streams): mailq and
// -bp, -q, -bs and -odi. The detached delivery run after a daemonless
// submission is the full relayq too (`relayq queue run`). relayq is found
// beside this binary (after resolving symlinks), else the first of
// /usr/sbin/relayq, /usr/bin/relayq, /usr/local/bin/relayq.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/relayq/relayq/cmd/internal/personality"
	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/sendmail"
)

// fallbackPaths are where relayq is looked for when it is not beside this
// binary.
var fallbackPaths = []string{"/usr/sbin/relayq", "/usr/bin/relayq", "/usr/local/bin/relayq"}

func main() {
	os.Exit(run(os.Args))
}

// run is one invocation: argv[0] picks the personality (sendmail, mailq,
// newaliases; anything else is sendmail).
func run(argv []string) int {
	prog := filepath.Base(argv[0])
	args := argv[1:]
	switch prog {
	case "mailq":
		return handOff(prog, args)
	case "newaliases":
		args = append([]string{"-bi"}, args...)
	default:
		prog = "sendmail"
	}
	if f, err := sendmail.ParseArgs(args); err == nil && needsRelayq(f) {
		return handOff(prog, args)
	}
	cfg, code := personality.LoadConfig(prog, os.Stderr)
	if code != sysexits.OK {
		return code
	}
	personality.WarnConfig(os.Stderr, prog, cfg)
	o, code := personality.Options(os.Stdin, os.Stdout, os.Stderr, prog, cfg, findRelayq())
	if code != sysexits.OK {
		return code
	}
	// SIGINT/SIGTERM cancel a submission in progress: nothing is
	// committed then, and the exit status says so (75).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sendmail.Main(ctx, o, args)
}

// needsRelayq reports whether the invocation needs more than submission:
// the queue (mailq, -q), an SMTP session (-bs) or a delivery it waits for
// (-odi).
func needsRelayq(f *sendmail.Flags) bool {
	switch f.Mode {
	case sendmail.ModeMailq, sendmail.ModeQueueRun, sendmail.ModeSMTP:
		return true
	case sendmail.ModeDeliver:
		return f.Delivery == sendmail.DeliverInteractive
	}
	return false
}

// handOff replaces this process by the full relayq as prog (relayq picks
// its personality from argv[0]) with the same arguments. It returns only
// when that fails: 69 when relayq is not found, 71 when exec fails.
func handOff(prog string, args []string) int {
	relayq := findRelayq()
	if relayq == "" {
		fmt.Fprintf(os.Stderr, "%s: relayq not found beside this program or at %v: %s needs it\n", prog, fallbackPaths, prog)
		return sysexits.Unavailable
	}
	err := syscall.Exec(relayq, append([]string{prog}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "%s: exec %s: %v\n", prog, relayq, err)
	return sysexits.OSErr
}

// findRelayq returns the full relayq binary's path: beside this binary
// (symlinks resolved), else the first of fallbackPaths that exists; ""
// when there is none.
func findRelayq() string {
	var cands []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		cands = append(cands, filepath.Join(filepath.Dir(exe), "relayq"))
	}
	for _, c := range append(cands, fallbackPaths...) {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return c
		}
	}
	return ""
}
