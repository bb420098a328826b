package sendmail

// FlagDoc documents one command-line option of the sendmail personality.
type FlagDoc struct {
	Flags string // the option as written, e.g. "-f, -r ADDR"
	Doc   string // what it does
}

// FlagDocs is the option reference: the package documentation, the
// sendmail(8)-style page (`relayq man relayq-sendmail.8`) and
// docs/man/relayq-sendmail.8 are all this table. ParseArgs is the
// behaviour; TestFlagDocsParse checks that it accepts every option named.
var FlagDocs = []FlagDoc{
	{"-t", "recipients also from To, Cc, Bcc \u2014 or, when the header has any Resent- field, from Resent-To, Resent-Cc, Resent-Bcc only (Postfix cleanup) \u2014 added to those on the command line"},
	{"-i, -oi", "a line with a lone \".\" is data; without it, it ends the input"},
	{"-f, -r ADDR", "envelope sender (\"<>\" or \"\" is the null sender)"},
	{"-F NAME", "full name for the From header relayq adds"},
	{"-bm", "read a message and queue it (default)"},
	{"-bs", "an SMTP session on standard input and output"},
	{"-bp", "list the queue (= mailq)"},
	{"-bi, -I", "check the aliases file (= newaliases); -oA FILE names another"},
	{"-q", "run the queue now; -q<interval> is ignored (as Postfix); -qR<site>, -qS<sender> run the whole queue"},
	{"-v", "report the queue ID and the envelope on stderr"},
	{"-N DSN", "NOTIFY: never, or success,failure,delay (RFC 3461)"},
	{"-R RET", "full or hdrs (RFC 3461)"},
	{"-V ENVID", "envelope ID (RFC 3461; Sendmail's meaning, not Postfix's VERP)"},
	{"-B TYPE", "7BIT or 8BITMIME"},
	{"-SMTPUTF8", "the message needs SMTPUTF8"},
	{"-odb", "start delivery without waiting (default)"},
	{"-odi", "queue, then wait for the delivery attempt and report it"},
	{"-odq, -odd", "queue only; the next queue run delivers"},
	{"-oe[mwpqe]", "error modes: accepted; errors always go to stderr and the exit status (as Postfix)"},
	{"-C, -L, -X, -O, -h, -p, -e, -A*, -G, -U, -m, -n, -x, -c, other -o*", "accepted and ignored (-X never writes a file)"},
	{"--", "end of options"},
}
