package main

// relayq import: move from msmtp, sSMTP, nullmailer, Postfix (null
// client) or sendmail (SMART_HOST + authinfo) to relayq. The translation
// is package migrate's; this file reads the inputs, checks the result with
// relayq's own parsers and writes the files.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/aliases"
	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/internal/atomicfile"
	"github.com/relayq/relayq/migrate"
)

const importUsage = `usage: relayq import [-n] [-f] [-eval] [-env FILE] [-authinfo FILE]
                     [-relay-map FILE] [-generic FILE] FILE...

Reads the configuration of the relay client this host has and writes the
relayq configuration that does the same:

  msmtp       /etc/msmtprc or ~/.msmtprc (accounts, defaults, account default)
  sSMTP       /etc/ssmtp/ssmtp.conf [/etc/ssmtp/revaliases]
  nullmailer  /etc/nullmailer/remotes [adminaddr defaultdomain defaulthost me],
              or the directory /etc/nullmailer
  Postfix     /etc/postfix/main.cf (relayhost, smtp_sasl_password_maps,
              smtp_tls_*, sender_dependent_relayhost_maps, smtp_generic_maps,
              myorigin; the maps' text sources are read, given beside it or
              at the path main.cf names)
  sendmail    /etc/mail/sendmail.mc (SMART_HOST, FEATURE(authinfo),
              MASQUERADE_AS) and its authinfo source

It prints each setting with the file and line it came from, each setting it
could not map and why, and what relayq does differently (it verifies the
relay's certificate, and never sends a password without TLS). Secrets are
never printed.

  -n          show what would be written (secrets masked); write nothing
  -f          write over existing files: keys set in the env file are
              commented out and the new values added; in the credentials
              file the entries with the imported keys are replaced and the
              others kept; the map files are replaced
  -eval       run msmtp's passwordeval commands (sh -c) to get passwords,
              as msmtp does; without it they are not run and a note says
              what to add
  -env FILE        env file (default: RELAYQ_CONFIG, else /etc/relayq/relayq.env)
  -authinfo FILE   credentials file, written mode 0600 (default: the RELAYQ_AUTHINFO
                   of the environment or the env file, else /etc/relayq/authinfo;
                   owned by the relayq user when run as root and that user exists)
  -relay-map FILE  sender relay map (default sender_relay beside the env file)
  -generic FILE    generic map (default generic beside the env file)

An env file that holds only comments (as the Debian package installs it)
is added to. Every file is checked before any is written (an existing one
without -f, a directory it cannot write in): then nothing is written. The
env file is written last. Afterwards run "relayq check", and "relayq probe".

Exit: 0 written (or shown), 64 usage, 65 a file relayq import cannot read
as its format (file:line named), 66 an input missing, 73 an output exists
(use -f) or cannot be written.
`

// runImport is `relayq import`.
func runImport(s stdio, args []string) int {
	fl := flag.NewFlagSet("import", flag.ContinueOnError)
	fl.SetOutput(s.err)
	fl.Usage = func() { fmt.Fprint(s.err, importUsage) }
	dry := fl.Bool("n", false, "")
	force := fl.Bool("f", false, "")
	eval := fl.Bool("eval", false, "")
	envPath := fl.String("env", "", "")
	credPath := fl.String("authinfo", config.Defaults().AuthInfo, "")
	relayPath := fl.String("relay-map", "", "")
	genericPath := fl.String("generic", "", "")
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(s.out, importUsage)
		return exOK
	}
	if err := fl.Parse(args); err != nil || fl.NArg() == 0 {
		if err == nil {
			fmt.Fprint(s.err, importUsage)
		}
		return exUsage
	}
	if *envPath == "" {
		*envPath = os.Getenv("RELAYQ_CONFIG")
		if *envPath == "" {
			*envPath = "/etc/relayq/relayq.env"
		}
	}
	credGiven := false
	fl.Visit(func(f *flag.Flag) { credGiven = credGiven || f.Name == "authinfo" })
	if !credGiven {
		*credPath = importCredPath(*envPath)
	}
	if *relayPath == "" {
		*relayPath = filepath.Join(filepath.Dir(*envPath), "sender_relay")
	}
	if *genericPath == "" {
		*genericPath = filepath.Join(filepath.Dir(*envPath), "generic")
	}
	files, err := importFiles(fl.Args())
	if err != nil {
		fmt.Fprintf(s.err, "relayq import: %v\n", err)
		if errors.Is(err, errImportTooLarge) {
			return exDataErr
		}
		return exNoInput
	}
	o := migrate.Options{}
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") {
		o.Hostname = h
	}
	if *eval {
		o.Eval = func(cmd string) (string, error) {
			out, err := exec.Command("/bin/sh", "-c", cmd).Output()
			return string(out), err
		}
	}
	r, err := migrate.Read(files, o)
	if err != nil {
		fmt.Fprintf(s.err, "relayq import: %v\n", err)
		return exDataErr
	}
	r.Finish(migrate.Paths{Credentials: *credPath, RelayMap: *relayPath, Generic: *genericPath}, config.Defaults().AuthInfo)
	out := importOutputs(r, *envPath, *credPath, *relayPath, *genericPath)
	if err := out.check(); err != nil {
		fmt.Fprintf(s.err, "relayq import: the result does not read back (a bug, or an input relayq cannot express): %v\n", err)
		return exDataErr
	}
	fmt.Fprint(s.out, r.Report())
	if *dry {
		fmt.Fprintf(s.out, "\nwould write (-n: nothing written):\n")
		for _, f := range out {
			if f.content == "" {
				continue
			}
			fmt.Fprintf(s.out, "\n--- %s (mode %04o)\n", f.path, f.mode)
			if err := f.prepare(*force); err != nil {
				fmt.Fprintf(s.out, "!!! without -n this stops relayq import (nothing written): %v\n", err)
			}
			fmt.Fprint(s.out, f.shown)
			if f.note != "" {
				fmt.Fprintf(s.out, "(added to the existing file%s)\n", f.note)
			}
		}
		return exOK
	}
	for _, f := range out {
		if f.content == "" {
			continue
		}
		if err := f.prepare(*force); err != nil {
			fmt.Fprintf(s.err, "relayq import: %v\n", err)
			return exCantCrt
		}
	}
	fmt.Fprintln(s.out)
	// The env file last: it names the other files, and a failed write
	// before it leaves the configuration in force as it was.
	for _, f := range append(slices.DeleteFunc(slices.Clone(out), func(f *outFile) bool { return f.env }), out[0]) {
		if f.content == "" {
			continue
		}
		if err := f.write(); err != nil {
			fmt.Fprintf(s.err, "relayq import: %v\n", err)
			return exCantCrt
		}
		fmt.Fprintf(s.out, "wrote %s (mode %04o%s)\n", f.path, f.mode, f.note)
	}
	fmt.Fprintln(s.out, "next: relayq check, then relayq probe (and relayq probe -send ADDRESS)")
	return exOK
}

// outFile is one file relayq import writes.
type outFile struct {
	path    string
	mode    fs.FileMode
	content string // to write ("" nothing)
	shown   string // what -n prints (secrets masked)
	env     bool   // the env file: merged into an existing one
	secret  bool   // the credentials file: owned by the daemon's user
	parse   func(string) error
	merged  string // env: the existing file with the new settings added
	note    string // said after the path: what an existing file kept
}

type outFiles []*outFile

func importOutputs(r *migrate.Result, envPath, credPath, relayPath, genericPath string) outFiles {
	var env strings.Builder
	fmt.Fprintf(&env, "\n# relayq import (%s) from %s, %s\n", strings.Join(r.Formats, ", "), importSources(r), time.Now().UTC().Format(time.DateOnly))
	for _, st := range r.Settings {
		fmt.Fprintf(&env, "# %s\n%s=%s\n", importOrigin(st), st.Key, config.Quote(st.Value))
	}
	cred := r.CredentialsFile()
	var masked strings.Builder
	for _, c := range r.Credentials {
		fmt.Fprintf(&masked, "%s\n", c.Masked())
	}
	relay, generic := migrate.MapFile(r.RelayMap), migrate.MapFile(r.Generic)
	if len(r.Settings) == 0 {
		env.Reset()
	}
	return outFiles{
		{path: envPath, mode: 0o644, content: env.String(), shown: env.String(), env: true},
		{path: credPath, mode: 0o600, content: cred, shown: masked.String(), secret: true, parse: func(c string) error {
			_, err := authinfo.Parse(strings.NewReader(c), credPath)
			return err
		}},
		{path: relayPath, mode: 0o644, content: relay, shown: relay, parse: func(c string) error {
			_, err := authinfo.ParseRelayMap(strings.NewReader(c), relayPath)
			return err
		}},
		{path: genericPath, mode: 0o644, content: generic, shown: generic, parse: func(c string) error {
			_, err := aliases.ParseGeneric(strings.NewReader(c), genericPath)
			return err
		}},
	}
}

func importSources(r *migrate.Result) string {
	seen := map[string]bool{}
	var fs []string
	for _, st := range r.Settings {
		if f := st.From.File; f != "" && !seen[f] {
			seen[f] = true
			fs = append(fs, f)
		}
	}
	return strings.Join(fs, ", ")
}

func importOrigin(st migrate.Setting) string {
	if st.From.File == "" {
		return st.Why
	}
	return st.From.String() + ": " + st.Why
}

// check reads every file back with relayq's own parsers (the env file
// with the configuration loader), so that nothing is written that relayq
// would refuse.
func (fs outFiles) check() error {
	for _, f := range fs {
		if f.content == "" {
			continue
		}
		if f.parse != nil {
			if err := f.parse(f.content); err != nil {
				return err
			}
			continue
		}
		as, bad, err := config.ParseEnvFileLines(strings.NewReader(f.content), f.path)
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			return bad[0].Err
		}
		env := []string{"RELAYQ_CONFIG="} // no env file: only these keys
		for _, a := range as {
			env = append(env, a.Key+"="+a.Value)
		}
		c, err := config.LoadEnviron(env)
		if err != nil {
			return err
		}
		if ps := c.Problems(); len(ps) > 0 {
			return fmt.Errorf("%s: %v", f.path, ps[0])
		}
		if w := c.Warnings(); len(w) > 0 {
			return fmt.Errorf("%s: %s", f.path, w[0])
		}
	}
	return nil
}

// importCredPath is where the credentials go without -authinfo: the file
// relayq will read, RELAYQ_AUTHINFO from the environment, else from the
// env file, else the default. (Always the default wrote them where relayq
// did not look when the env file or the environment named another file.)
func importCredPath(envPath string) string {
	if v := os.Getenv("RELAYQ_AUTHINFO"); filepath.IsAbs(v) {
		return v
	}
	p := config.Defaults().AuthInfo
	f, err := os.Open(envPath)
	if err != nil {
		return p
	}
	defer f.Close()
	as, _, err := config.ParseEnvFileLines(f, envPath)
	if err != nil {
		return p
	}
	for _, a := range as { // the last one counts, as for relayq
		if a.Key == "RELAYQ_AUTHINFO" && filepath.IsAbs(a.Value) {
			p = a.Value
		}
	}
	return p
}

// prepare decides how f is written: a new file; an env file that holds
// only comments is added to; with force, an env file gets its keys
// commented out, the credentials file keeps its other entries and a map
// file is replaced. Otherwise an
// existing file is refused, and so is a file whose directory relayq
// import cannot write in (checked for every file before any is written).
func (f *outFile) prepare(force bool) error {
	if d, err := creatableIn(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("cannot write %s: %s: %w", f.path, d, err)
	}
	old, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.merged = strings.TrimPrefix(f.content, "\n")
		return nil
	}
	if err != nil {
		return err
	}
	active := activeLines(old)
	switch {
	case f.env && len(active) == 0:
		f.merged = string(old) + f.content
	case !force:
		return fmt.Errorf("%s exists with entries (line %d: %s…); -f writes over it (an env file keeps its other lines), or give another path", f.path, active[0], firstWord(old, active[0]))
	case f.env:
		f.merged = commentOut(old, f.content) + f.content
	case f.secret:
		// Entries for other relays and senders (an OAuth refresh token
		// from relayq oauth login among them) stay.
		var replaced []string
		f.merged, replaced = authinfo.MergeEntries(string(old), strings.TrimPrefix(f.content, "\n"))
		f.note = fmt.Sprintf("; its other entries kept, %d replaced", len(replaced))
		if len(replaced) > 0 {
			f.note += " (" + strings.Join(replaced, ", ") + ")"
		}
		if err := f.parse(f.merged); err != nil {
			return fmt.Errorf("%s would not read back with the imported entries added to it: %w", f.path, err)
		}
	default:
		f.merged = strings.TrimPrefix(f.content, "\n")
	}
	return nil
}

// activeLines are the numbers of the lines of b that are not blank or
// comments.
func activeLines(b []byte) []int {
	var n []int
	for i, l := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			n = append(n, i+1)
		}
	}
	return n
}

// firstWord is the key of line n (1-based), never its value (a secret).
func firstWord(b []byte, n int) string {
	l := strings.Split(string(b), "\n")[n-1]
	l = strings.TrimSpace(l)
	if i := strings.IndexAny(l, "= \t:"); i > 0 {
		return l[:i]
	}
	if len(l) > 20 {
		return l[:20]
	}
	return l
}

// commentOut comments out the lines of old that set a key that add sets.
func commentOut(old []byte, add string) string {
	keys := map[string]bool{}
	for _, l := range strings.Split(add, "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(k, "#") {
			keys[strings.TrimSpace(k)] = true
		}
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(old), "\n") {
		k, _, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && keys[strings.TrimPrefix(k, "export ")] {
			b.WriteString("# replaced by relayq import: " + l)
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}

// creatableIn returns the directory a file under dir would be created
// in: dir, or the nearest directory above it that exists (the rest is
// created on the way). The error says why nothing can be created there:
// it is not a directory, or it is not writable and searchable. relayq
// import checks every output with it, relayq check a spool not made yet.
func creatableIn(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && filepath.Dir(d) != d {
			continue
		}
		if err != nil {
			return d, err
		}
		if !fi.IsDir() {
			return d, errors.New("not a directory")
		}
		return d, unix.Access(d, unix.W_OK|unix.X_OK)
	}
}

// write writes f atomically (atomicfile), creating its directory; the
// credentials file written by root is given to the relayq user, as the
// package installs it.
func (f *outFile) write() error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	a := atomicfile.Attr{Mode: f.mode, UID: -1, GID: -1}
	if f.secret && os.Geteuid() == 0 {
		if u, err := user.Lookup("relayq"); err == nil {
			a.UID, _ = strconv.Atoi(u.Uid)
			a.GID, _ = strconv.Atoi(u.Gid)
		}
	}
	if err := atomicfile.Write(f.path, []byte(f.merged), a); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// importMaxFile bounds one input: configuration files are small, and a
// device or a log given by mistake must not be read without end.
const importMaxFile = 4 << 20

var errImportTooLarge = errors.New("larger than 4 MiB: not a configuration file")

// nullmailerFiles are the files a nullmailer directory (/etc/nullmailer)
// stands for.
var nullmailerFiles = []string{"remotes", "adminaddr", "defaultdomain", "defaulthost", "me"}

// importFiles reads the inputs. A directory stands for nullmailer's files
// in it (relayq import /etc/nullmailer).
func importFiles(paths []string) ([]migrate.File, error) {
	var files []migrate.File
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			f, err := readImportFile(p)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
			continue
		}
		n := len(files)
		for _, name := range nullmailerFiles {
			f, err := readImportFile(filepath.Join(p, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		if len(files) == n {
			return nil, fmt.Errorf("%s: a directory is read as nullmailer's (%s), and it has none of those files: %w", p, strings.Join(nullmailerFiles, ", "), fs.ErrNotExist)
		}
	}
	return files, nil
}

// readImportFile reads one input of at most importMaxFile bytes.
func readImportFile(p string) (migrate.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return migrate.File{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, importMaxFile+1))
	if err != nil {
		return migrate.File{}, fmt.Errorf("%s: %w", p, err)
	}
	if len(b) > importMaxFile {
		return migrate.File{}, fmt.Errorf("%s: %w", p, errImportTooLarge)
	}
	return migrate.File{Path: p, Data: b}, nil
}
