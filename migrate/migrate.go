// Package migrate reads the configuration of the relay client an operator
// already has — msmtp (msmtprc), sSMTP (ssmtp.conf, revaliases),
// nullmailer (remotes, adminaddr, defaultdomain, defaulthost, me), Postfix
// as a null client (main.cf and the sasl_passwd, sender relay and generic
// map sources it names) and sendmail (sendmail.mc with FEATURE(authinfo)
// and its authinfo source) — and says what relayq configuration does the
// same: RELAYQ_* settings, credential lines, sender relay map and generic
// map lines, each with the file and line it came from, and a note for
// every setting that has no equivalent or that relayq treats differently
// (certificates are verified; credentials never go out unencrypted).
//
// It reads and translates only: it writes no file, runs no command unless
// asked (msmtp's passwordeval, Options.Eval) and prints nothing; the
// caller (relayq import) writes the result. Errors name the file and the
// line. The package imports only the standard library.
package migrate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Source is where a setting came from.
type Source struct {
	File string
	Line int // 0: the file as a whole
}

func (s Source) String() string {
	if s.Line == 0 {
		return s.File
	}
	return fmt.Sprintf("%s:%d", s.File, s.Line)
}

// Setting is one RELAYQ_* key and its value.
type Setting struct {
	Key, Value string
	From       Source
	Why        string // what it maps, e.g. "mailhub=smtp.example.com:587"
}

// Credential is one line of the credentials file: Key (a relay host in
// RELAYQ_RELAYHOST syntax or a sender) and User/Password in Postfix
// sasl_passwd syntax, or Raw, a line in sendmail authinfo syntax (kept as
// written). Password and Raw are secrets: they are written to the
// credentials file and never printed.
type Credential struct {
	Key, User, Password string
	Raw                 string
	From                Source
}

// line is the credentials-file line.
func (c Credential) line() string {
	if c.Raw != "" {
		return c.Raw
	}
	return c.Key + " " + c.User + ":" + c.Password
}

// Masked is the credential as it may be printed: the password replaced.
func (c Credential) Masked() string {
	if c.Raw != "" {
		key, _, _ := strings.Cut(c.Raw, " ")
		return key + " (sendmail authinfo entry, secrets masked)"
	}
	return c.Key + " " + c.User + ":********"
}

// MapLine is one line of a text map relayq reads (sender relay map,
// generic map): key, white space, value.
type MapLine struct {
	Key, Value string
	From       Source
}

// NoteKind says what a note is about.
type NoteKind int

const (
	// Unmapped: a setting relayq has no equivalent for (it is ignored).
	Unmapped NoteKind = iota
	// Differs: mapped, but relayq behaves differently (said how).
	Differs
	// Todo: something the operator must do by hand.
	Todo
)

func (k NoteKind) String() string {
	return [...]string{"not mapped", "differs", "to do"}[k]
}

// Note is something the operator should know about one setting.
type Note struct {
	Kind NoteKind
	From Source
	Text string
}

// Result is the relayq configuration equivalent to what was read.
type Result struct {
	Formats     []string // the formats read, e.g. "msmtp"
	Settings    []Setting
	Credentials []Credential
	RelayMap    []MapLine // RELAYQ_SENDER_RELAYHOST_MAP lines
	Generic     []MapLine // RELAYQ_GENERIC_MAP lines
	Notes       []Note
}

// Options tune the translation.
type Options struct {
	// Eval runs msmtp's passwordeval commands (with sh -c) to get the
	// password, as msmtp would; off, the command is not run and a note
	// says so.
	Eval func(cmd string) (string, error)
	// Hostname is this host's fully qualified name, for the generic map
	// lines that stand for msmtp's "from" (local senders are qualified
	// with it); "" leaves those lines out with a note.
	Hostname string
	// Open opens a file that a configuration names (a map source, a
	// password file); nil: os.Open. Files named on the command line are
	// found by base name first.
	Open func(path string) (io.ReadCloser, error)
}

// ErrFormat is wrapped by Read for a file in no format it knows.
var ErrFormat = errors.New("not a configuration relayq import knows")

// ErrSyntax is wrapped by Read for a line it cannot read.
var ErrSyntax = errors.New("syntax error")

// Format names.
const (
	FormatMsmtp      = "msmtp"
	FormatSsmtp      = "ssmtp"
	FormatNullmailer = "nullmailer"
	FormatPostfix    = "postfix"
	FormatSendmail   = "sendmail"
)

// Detect names the format of the file at path with content b, or "" when
// it is none it knows. nullmailer's files are known by their names;
// the others by their names or content.
func Detect(path string, b []byte) string {
	base := filepath.Base(path)
	switch base {
	case "remotes", "adminaddr", "defaultdomain", "defaulthost", "me":
		return FormatNullmailer
	case "revaliases":
		return FormatSsmtp
	}
	switch {
	case strings.HasSuffix(base, ".mc") || bytes.Contains(b, []byte("SMART_HOST")) || bytes.Contains(b, []byte("OSTYPE(")):
		return FormatSendmail
	case base == "main.cf" || hasLine(b, "relayhost", '=') || hasLine(b, "smtp_sasl_password_maps", '='):
		return FormatPostfix
	case strings.Contains(base, "ssmtp") || hasLine(b, "mailhub", '='):
		return FormatSsmtp
	case strings.Contains(base, "msmtp") || hasLine(b, "account", ' ') || hasLine(b, "host", ' '):
		return FormatMsmtp
	}
	return ""
}

// hasLine reports whether a line of b starts with key followed by blanks
// and sep (or just blanks when sep is ' ').
func hasLine(b []byte, key string, sep byte) bool {
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		rest, ok := strings.CutPrefix(l, key)
		if !ok || rest == "" {
			continue
		}
		if sep == ' ' {
			if rest[0] == ' ' || rest[0] == '\t' {
				return true
			}
			continue
		}
		if strings.HasPrefix(strings.TrimLeft(rest, " \t"), string(sep)) {
			return true
		}
	}
	return false
}

// File is one input: its name (as given) and content.
type File struct {
	Path string
	Data []byte
}

// Read translates the files (one configuration: the files of one program,
// e.g. main.cf and its sasl_passwd, or nullmailer's remotes and
// defaultdomain). A map or password file that a configuration names is
// taken from files by base name when it is there, else opened (o.Open).
func Read(files []File, o Options) (*Result, error) {
	if o.Open == nil {
		o.Open = func(p string) (io.ReadCloser, error) { return os.Open(p) }
	}
	given := map[string]File{}
	byFormat := map[string][]File{}
	var order []string
	for _, f := range files {
		given[filepath.Base(f.Path)] = f
	}
	for _, f := range files {
		fm := Detect(f.Path, f.Data)
		if fm == "" {
			if referenced(files, f) {
				continue // a map source another file names: read there
			}
			return nil, fmt.Errorf("%s: %w (msmtprc, ssmtp.conf, revaliases, nullmailer's remotes/adminaddr/defaultdomain/defaulthost/me, Postfix main.cf, sendmail.mc)", f.Path, ErrFormat)
		}
		if len(byFormat[fm]) == 0 {
			order = append(order, fm)
		}
		byFormat[fm] = append(byFormat[fm], f)
	}
	if len(order) > 1 {
		return nil, fmt.Errorf("%s and %s: %w: the files are of two programs (%s, %s); import one at a time",
			byFormat[order[0]][0].Path, byFormat[order[1]][0].Path, ErrFormat, order[0], order[1])
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: no file given", ErrFormat)
	}
	r := &Result{Formats: order}
	x := &reader{r: r, o: o, given: given}
	var err error
	switch fs := byFormat[order[0]]; order[0] {
	case FormatMsmtp:
		err = x.msmtp(fs)
	case FormatSsmtp:
		err = x.ssmtp(fs)
	case FormatNullmailer:
		err = x.nullmailer(fs)
	case FormatPostfix:
		err = x.postfix(fs)
	case FormatSendmail:
		err = x.sendmail(fs)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// referenced reports whether f is named (by base name) in another file:
// a sasl_passwd, authinfo or map source given beside its main.cf or .mc.
func referenced(files []File, f File) bool {
	base := filepath.Base(f.Path)
	for _, g := range files {
		if g.Path != f.Path && bytes.Contains(g.Data, []byte(base)) {
			return true
		}
	}
	return false
}

// reader carries the result being built.
type reader struct {
	r     *Result
	o     Options
	given map[string]File
}

func (x *reader) set(key, value string, from Source, why string) {
	for i, s := range x.r.Settings {
		if s.Key == key {
			x.r.Settings[i] = Setting{key, value, from, why}
			return
		}
	}
	x.r.Settings = append(x.r.Settings, Setting{key, value, from, why})
}

func (x *reader) note(k NoteKind, from Source, format string, a ...any) {
	x.r.Notes = append(x.r.Notes, Note{k, from, fmt.Sprintf(format, a...)})
}

// open returns the content of a file a configuration names: a file given
// on the command line with that base name, else the file itself.
func (x *reader) open(path string) ([]byte, string, error) {
	if f, ok := x.given[filepath.Base(path)]; ok {
		return f.Data, f.Path, nil
	}
	rc, err := x.o.Open(path)
	if err != nil {
		return nil, path, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	return b, path, err
}

// syntax is a line error.
func syntax(from Source, format string, a ...any) error {
	return fmt.Errorf("%s: %w: %s", from, ErrSyntax, fmt.Sprintf(format, a...))
}

// lines yields the lines of b (the file path) with their numbers:
// comments ('#' first) and blank lines skipped, trailing white space and
// CR removed. A control character other than tab is an error.
func lines(path string, b []byte, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimRight(sc.Text(), " \t\r")
		if t := strings.TrimSpace(l); t == "" || t[0] == '#' {
			continue
		}
		if i := strings.IndexFunc(l, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }); i >= 0 {
			return syntax(Source{path, n}, "control character %q at column %d", l[i], i+1)
		}
		if err := fn(n, l); err != nil {
			return err
		}
	}
	return sc.Err()
}

// relayHost is host and port in RELAYQ_RELAYHOST syntax: always bracketed
// (the programs relayq replaces connect to the host named, with no MX
// lookup), the port when it is not 25.
func relayHost(host, port string) string {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if port == "" || port == "25" {
		return "[" + h + "]"
	}
	return "[" + h + "]:" + port
}

// implicitTLS sets RELAYQ_TLS_IMPLICIT for a relay on port that wants TLS
// from the first byte (relayq does so by itself on 465 only).
func (x *reader) implicitTLS(port string, from Source, why string) {
	if port != "465" {
		x.set("RELAYQ_TLS_IMPLICIT", "yes", from, why)
	}
}

// sortedNotes returns the notes in file/line order (stable).
func (r *Result) sortedNotes() []Note {
	ns := append([]Note(nil), r.Notes...)
	sort.SliceStable(ns, func(i, j int) bool {
		if ns[i].From.File != ns[j].From.File {
			return ns[i].From.File < ns[j].From.File
		}
		return ns[i].From.Line < ns[j].From.Line
	})
	return ns
}
