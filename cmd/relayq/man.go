package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/sendmail"
)

// manPages are the manual pages `relayq man PAGE` writes, in roff (man(7)).
// They are generated from the same tables as `relayq help` (commands) and
// `relayq config` (config.Describe), so they cannot say something else;
// docs/man/ holds the generated copies and TestManPagesCurrent fails when
// they differ from what the binary writes.
var manPages = map[string]func(w io.Writer){
	"relayq.8":     manRelayq,
	"relayq.env.5": manEnv,
	// The sendmail(8)-style page of the personality (installed also as
	// sendmail.8 where relayq is the system's MTA).
	"relayq-sendmail.8": manSendmail,
}

// runMan is `relayq man PAGE`: print one generated manual page.
func runMan(s stdio, args []string) int {
	if len(args) != 1 || manPages[args[0]] == nil {
		fmt.Fprintf(s.err, "usage: relayq man PAGE (one of: %s)\n", strings.Join(manPageNames(), ", "))
		return exUsage
	}
	manPages[args[0]](s.out)
	return exOK
}

func manPageNames() []string {
	var n []string
	for k := range manPages {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// roff escapes text for a man page: backslashes, hyphens, characters
// outside ASCII, and a leading '.' or apostrophe that roff would read as a
// request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var u strings.Builder
	for _, r := range s {
		if r > 0x7e {
			fmt.Fprintf(&u, `\[u%04X]`, r) // groff's Unicode escape: the page source stays ASCII
			continue
		}
		u.WriteRune(r)
	}
	s = u.String()
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func manHeader(w io.Writer, name, section, title string) {
	// No date: the page must not change from one generation to the next.
	fmt.Fprintf(w, ".TH %s %s \"\" \"relayq\" \"%s\"\n", strings.ToUpper(name), section, title)
}

func manRelayq(w io.Writer) {
	manHeader(w, "relayq", "8", "System Manager's Manual")
	fmt.Fprint(w, ".SH NAME\nrelayq \\- authenticated smarthost relay client and sendmail replacement\n")
	fmt.Fprint(w, ".SH SYNOPSIS\n.B relayq\n.I command\n.RI [ arguments ]\n.br\n.B sendmail\n.RI [ options ]\n.RI [ recipient ...]\n.br\n.B mailq\n.br\n.B newaliases\n")
	fmt.Fprint(w, ".SH DESCRIPTION\n"+roff("relayq spools mail durably and relays it to a smarthost over TLS with SASL AUTH. "+
		"Installed as sendmail, mailq or newaliases it behaves as that program. "+
		"Configuration comes from RELAYQ_* environment variables and "+config.DefaultFile+"; see relayq.env(5).")+"\n")
	fmt.Fprint(w, ".SH COMMANDS\n")
	for _, n := range commandNames() {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", n, roff(commands[n].short))
	}
	fmt.Fprint(w, ".SH SENDMAIL PERSONALITY\n"+roff("As sendmail (or `relayq sendmail`), relayq reads a message on standard input and queues it:")+"\n.PP\n.nf\n"+roff(sendmail.Usage)+"\n.fi\n")
	fmt.Fprint(w, ".SH EXIT STATUS\n")
	for _, e := range exitCodes {
		fmt.Fprintf(w, ".TP\n.B %d\n%s\n", e.code, roff(e.meaning))
	}
	fmt.Fprint(w, ".SH FILES\n.TP\n.I "+config.DefaultFile+"\nconfiguration (relayq.env(5))\n")
	fmt.Fprint(w, ".SH SEE ALSO\n.BR relayq.env (5),\n.BR relayq\\-sendmail (8),\n.BR mail (1),\n.BR cron (8)\n")
}

// exitCodes are the sysexits codes relayq and its sendmail return.
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exOK, "success: the message is on disk (sendmail) or the command did what was asked"},
	{exUsage, "bad command line"},
	{exDataErr, "bad message, header or envelope"},
	{exNoInput, "an input file is missing"},
	{exUnavail, "refused for good (5xx reply), or no such message"},
	{exSoftware, "internal error"},
	{exOSErr, "operating-system error"},
	{exCantCrt, "an output file cannot be created"},
	{exIOErr, "reading or writing failed; a damaged spool"},
	{exTempFail, "not done now, try again later (nothing was lost)"},
	{exNoPerm, "not allowed"},
	{exConfig, "bad configuration"},
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func manEnv(w io.Writer) {
	manHeader(w, "relayq.env", "5", "File Formats Manual")
	fmt.Fprint(w, ".SH NAME\nrelayq.env \\- relayq configuration\n")
	fmt.Fprint(w, ".SH DESCRIPTION\n"+roff(config.DefaultFile+" holds KEY=value lines (systemd EnvironmentFile syntax). "+
		"Each key may also be set in the environment, which wins over the file. "+
		"relayq config prints every key with its current value and where it came from; relayq check validates them.")+"\n")
	fmt.Fprint(w, ".PP\n"+roff("An unknown RELAYQ_ key is a warning. A bad value, or a line that cannot be parsed, is not a refusal "+
		"either, except in the keys that queueing a message needs or that decide what is stored ("+strings.Join(config.SubmissionKeys(), ", ")+"): "+
		"there every command exits 78 naming file, line and key. Elsewhere the key keeps its default, every command warns "+
		"(file, line, key), sendmail still queues the mail, and delivery defers it with the problem as the reason "+
		"(shown by mailq, and by relayq check, which exits 78) until it is fixed; a bad listener key keeps relayq serve from starting. "+
		"relayq serve reads this file at start only: restart it after a change (SIGHUP re-reads the credentials file, "+
		"the sender relay map and the users file, not this file).")+"\n")
	fmt.Fprint(w, ".SH KEYS\n")
	for _, k := range config.Defaults().Describe() {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", k.Key, roff(k.Desc))
		if k.Default != "" {
			fmt.Fprintf(w, ".br\nDefault: %s\n", roff(k.Default))
		}
		if k.Secret {
			fmt.Fprint(w, ".br\nSecret: never printed or logged.\n")
		}
	}
	fmt.Fprint(w, ".SH SEE ALSO\n.BR relayq (8)\n")
}

func manSendmail(w io.Writer) {
	manHeader(w, "relayq-sendmail", "8", "System Manager's Manual")
	fmt.Fprint(w, ".SH NAME\nsendmail, mailq, newaliases \\- relayq's sendmail personality\n")
	fmt.Fprint(w, ".SH SYNOPSIS\n.nf\n"+roff(strings.TrimPrefix(sendmail.Usage, "usage: "))+"\n.fi\n")
	fmt.Fprint(w, ".SH DESCRIPTION\n"+roff("relayq installed as sendmail reads a message on standard input, writes it to the spool and exits 0 only once it is on disk; "+
		"delivery to the smarthost follows (by the daemon if it runs, else by a detached queue run). "+
		"The command line is Postfix's: options end at the first word that is not one, or at --; letters group (-ti); "+
		"an option's argument is attached (-fuser@x) or the next word. Recipients are address lists. "+
		"As mailq it lists the queue; as newaliases it checks the aliases file.")+"\n")
	fmt.Fprint(w, ".SH OPTIONS\n")
	for _, d := range sendmail.FlagDocs {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", roff(d.Flags), roff(d.Doc))
	}
	fmt.Fprint(w, ".PP\n"+roff("An unknown option, a missing argument, an invalid value, CR, LF or NUL in an option or recipient, "+
		"or a sender or recipient starting with - is a usage error (exit 64) naming the option.")+"\n")
	fmt.Fprint(w, ".SH EXIT STATUS\n")
	for _, e := range exitCodes {
		fmt.Fprintf(w, ".TP\n.B %d\n%s\n", e.code, roff(e.meaning))
	}
	fmt.Fprint(w, ".SH SEE ALSO\n.BR relayq (8),\n.BR relayq.env (5)\n")
}
