// Command relayq is an authenticated smarthost relay client: a drop-in
// sendmail(1) that spools mail durably and relays it to a smarthost over TLS
// with SASL AUTH. Installed as sendmail, mailq or newaliases it behaves as
// that program.
//
// This file is the composition root's entry: argv[0] and subcommand dispatch.
// Each subcommand's wiring (config → options structs) lives in its own file.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/relayq/relayq/internal/buildinfo"
	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/sendmail"
)

// Exit codes: package sysexits's values, under short local names.
const (
	exOK       = sysexits.OK
	exUsage    = sysexits.Usage
	exDataErr  = sysexits.DataErr
	exNoInput  = sysexits.NoInput
	exUnavail  = sysexits.Unavailable
	exSoftware = sysexits.Software
	exOSErr    = sysexits.OSErr
	exCantCrt  = sysexits.CantCreate
	exIOErr    = sysexits.IOErr
	exTempFail = sysexits.TempFail
	exNoPerm   = sysexits.NoPerm
	exConfig   = sysexits.Config
)

// stdio is what a subcommand reads and writes.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command runs one subcommand with the arguments after its name and returns
// the process exit code.
type command struct {
	run   func(io stdio, args []string) int
	short string
}

// commands is the subcommand table of `relayq <subcommand>`.
var commands = map[string]command{
	"sendmail":    {runSendmail, "sendmail(1) personality: read a message and queue it"},
	"mailq":       {runMailq, "list the queue (Postfix mailq format)"},
	"newaliases":  {runNewaliases, "check the aliases file"},
	"serve":       {runServe, "run the delivery daemon (spool owner, runner, listeners)"},
	"queue":       {runQueue, "queue operations: list, show, hold, release, delete, flush, stats, compact, run"},
	"check":       {runCheck, "validate the configuration and show what relayq will do"},
	"healthcheck": {runHealthcheck, "exit 0 when the daemon is up and its spool usable, else 69 and why (for container and Kubernetes probes)"},
	"authinfo":    {runAuthinfo, "credentials tools: authinfo lookup HOST[:PORT] [SENDER]"},
	"probe":       {runProbe, "connect to the relay as delivery would and try AUTH (no mail sent)"},
	"config":      {runConfig, "print every configuration key with its default and current value"},
	"version":     {runVersion, "print the version and build information (also -V, --version)"},
	"import":      {runImport, "write relayq's configuration from msmtp, sSMTP, nullmailer, Postfix or sendmail's (-n shows it, writes nothing)"},
	"oauth":       {runOAuth, "oauth login: sign in to the relay's OAuth 2.0 provider (device flow, or code flow with PKCE) and store the refresh token in the credentials file"},
	"passwd":      {runPasswd, "make a users-file line (NAME:bcrypt-hash) for the listener's client AUTH; -f FILE writes it into FILE (mode 0600)"},
	"man":         {nil, "print a manual page in roff: relayq man relayq.8 | relayq-sendmail.8 | relayq.env.5"},
	"help":        {nil, "this help; help COMMAND: that command's usage and options (as COMMAND -h)"},
}

func init() {
	// runMan reads the commands table (for relayq.8), so it is set here.
	commands["man"] = command{runMan, commands["man"].short}
}

func main() {
	os.Exit(dispatch(os.Args, stdio{os.Stdin, os.Stdout, os.Stderr}))
}

// dispatch picks the personality from argv[0], else the subcommand from argv[1].
func dispatch(argv []string, s stdio) int {
	switch filepath.Base(argv[0]) {
	case "sendmail":
		return runSendmail(s, argv[1:])
	case "mailq":
		return runMailq(s, argv[1:])
	case "newaliases":
		return runNewaliases(s, argv[1:])
	}
	if len(argv) < 2 {
		usage(s.err)
		return exUsage
	}
	name := argv[1]
	switch name {
	case "help", "-h", "--help":
		if name == "help" && len(argv) > 2 {
			return help(s, argv[2])
		}
		usage(s.out)
		return exOK
	case "-V", "--version":
		return runVersion(s, argv[2:])
	}
	c, ok := commands[name]
	if !ok || c.run == nil {
		fmt.Fprintf(s.err, "relayq: unknown command %q\n", name)
		usage(s.err)
		return exUsage
	}
	return c.run(s, argv[2:])
}

// help is `relayq help COMMAND`: what `relayq COMMAND -h` prints, on
// standard output and with exit 0 (some commands answer -h with the usage
// and 64). The sendmail personalities get the option table instead: their
// -h is sendmail's hop count, and they would read a message.
func help(s stdio, name string) int {
	switch name {
	case "sendmail", "mailq", "newaliases":
		fmt.Fprintf(s.out, "%s\n\nOptions (relayq man relayq-sendmail.8 has the whole page):\n", sendmail.Usage)
		for _, d := range sendmail.FlagDocs {
			fmt.Fprintf(s.out, "  %s\n      %s\n", d.Flags, d.Doc)
		}
		return exOK
	case "help":
		usage(s.out)
		return exOK
	}
	c, ok := commands[name]
	if !ok || c.run == nil {
		fmt.Fprintf(s.err, "relayq help: unknown command %q\n", name)
		usage(s.err)
		return exUsage
	}
	if code := c.run(stdio{strings.NewReader(""), s.out, s.out}, []string{"-h"}); code != exUsage {
		return code
	}
	return exOK
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: relayq <command> [arguments]\n\ncommands:\n")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].short)
	}
	fmt.Fprintf(w, "\nInstalled as sendmail, mailq or newaliases, relayq behaves as that program.\n"+
		"Configuration: RELAYQ_* environment variables and %s; see `relayq config`.\n"+
		"`relayq help COMMAND` (or `relayq COMMAND -h`) shows a command's usage and options.\n", "/etc/relayq/relayq.env")
}

// runVersion is `relayq version`: the version scripts/package stamped in,
// else the toolchain's build information.
func runVersion(s stdio, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(s.err, "usage: relayq version\n")
		return exUsage
	}
	buildinfo.Current().Write(s.out, "relayq")
	return exOK
}
