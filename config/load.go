package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// DefaultFile is the env file read when RELAYQ_CONFIG is not set.
const DefaultFile = "/etc/relayq/relayq.env"

// maxSecretFile bounds a KEY_FILE secret.
const maxSecretFile = 64 << 10

// Source values of Key.Source besides "file:line" and "KEY_FILE path".
const (
	SourceDefault     = "default"
	SourceEnvironment = "environment"
	SourceUnset       = "unset"
)

// loadInfo is what Load learned besides the values.
type loadInfo struct {
	file     string            // env file read ("" if none)
	sources  map[string]string // key → where its value came from
	warnings []string
	// refuses, when set, says which keys a bad value (or a bad env file
	// line) of makes Load fail; any other key keeps its default and the
	// problem is recorded in problems. Nil: every problem is an error.
	refuses  func(key string) bool
	problems []Problem
}

// problem records that key's value (from src) cannot be used, or, when
// the key refuses bad values, returns the error to report. The key keeps
// its default (the caller resets it).
func (info *loadInfo) problem(key, src string, err error) error {
	if info.refuses == nil || info.refuses(key) {
		return err
	}
	info.problems = append(info.problems, Problem{Key: key, Source: src, Err: err})
	return nil
}

// Load reads the configuration of this process: the env file named by
// RELAYQ_CONFIG (default DefaultFile; a missing default file is fine, a
// missing named file is an error, RELAYQ_CONFIG="" reads no file), then the
// process environment, which wins key by key. See LoadEnviron.
func Load() (*Config, error) {
	return LoadEnviron(os.Environ())
}

// LoadEnviron is Load with an explicit environment ("KEY=VALUE" strings as
// os.Environ returns them; for a name given twice the first wins, as in
// getenv(3)). It never changes the process environment.
//
// For each key of Config (see Describe) the value is taken from, in order:
// the environment; the env file; the default tag. A key tagged
// secret:"true" may instead be given as KEY_FILE (in either place) naming a
// file that holds the value; one trailing newline is removed. Giving both KEY
// and KEY_FILE in the same place is an error; the environment's KEY_FILE
// beats the file's KEY and the other way round.
//
// Unknown RELAYQ_* keys, in the env file (file:line) or in the
// environment, are warnings (Config.Warnings), never errors: a typo in a
// key must not make sendmail refuse mail. Other keys in the env file are ignored, so a
// file can be shared with a systemd unit.
//
// Values are converted as envconfig v1.4 does (Process with prefix RELAYQ),
// but without envconfig's fallback to the unprefixed name (envconfig would
// read SPOOL or TLS when RELAYQ_SPOOL or RELAYQ_TLS is unset) and without
// touching os.Environ: envconfig has no lookup hook, and copying the file's
// values into the process environment would leak them (secrets included)
// into every child process.
//
// A bad value (or an env file line with a syntax error, which is skipped)
// of a key that submission does not need is no error either: the key
// keeps its default and the problem is recorded (Config.Problems,
// DeliveryProblem, ListenerProblem) for delivery to defer on and `relayq
// check` to report. Only a key of RefusesBadValue fails Load, and an env
// file that cannot be read or is world-writable.
//
// Errors name the key or the file:line, never a secret value; several
// problems are reported together (errors.Join).
func LoadEnviron(environ []string) (*Config, error) {
	return loadEnviron(environ, DefaultFile)
}

func loadEnviron(environ []string, defaultFile string) (*Config, error) {
	c := &Config{loaded: &loadInfo{sources: map[string]string{}, refuses: RefusesBadValue}}
	if err := loadInto(c, c.loaded, environ, defaultFile); err != nil {
		return nil, err
	}
	if err := c.validateKeys(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadInto fills the struct spec points to (see LoadEnviron) and records
// sources and warnings in info.
func loadInto(spec any, info *loadInfo, environ []string, defaultFile string) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if _, dup := env[k]; !dup {
			env[k] = v
		}
	}

	flds := fields(Prefix, spec)
	known := make(map[string]*field, 2*len(flds))
	for i := range flds {
		known[flds[i].Key] = &flds[i]
		if flds[i].Secret {
			known[flds[i].Key+"_FILE"] = &flds[i]
		}
	}

	// The env file.
	path, explicit := env[Prefix+"_CONFIG"]
	if !explicit {
		path = defaultFile
	}
	file := map[string]Assignment{}
	var errs []error
	if path != "" {
		as, bad, err := readEnvFile(path, explicit, info.refuses != nil)
		if err != nil {
			return err
		}
		if as != nil {
			info.file = path
		}
		for _, b := range bad {
			// The line's key keeps its default (or the environment's
			// value): a refusing key's line is an error, any other a
			// problem that stops delivery until it is fixed.
			if err := info.problem(b.Key, fmt.Sprintf("%s:%d", b.Err.File, b.Err.Line), b.Err); err != nil {
				errs = append(errs, err)
			}
		}
		// Keys that are not ours, or misspelt, are warnings: a mistake in
		// the file must never make sendmail refuse mail (cron's message
		// would be lost), and the key keeps its default, which the
		// warning says.
		for _, a := range as {
			at := fmt.Sprintf("%s:%d: ", path, a.Line)
			if !strings.HasPrefix(a.Key, Prefix+"_") {
				if up := strings.ToUpper(a.Key); strings.HasPrefix(up, Prefix+"_") && known[up] != nil {
					info.warnings = append(info.warnings, at+fmt.Sprintf("%s ignored: keys are upper case (%s)", a.Key, up))
				}
				continue
			}
			if a.Key == Prefix+"_CONFIG" {
				info.warnings = append(info.warnings, at+a.Key+" ignored: it cannot be set inside the env file it names")
				continue
			}
			if known[a.Key] == nil {
				info.warnings = append(info.warnings, at+"unknown key "+a.Key+" ignored"+hint(a.Key, flds))
				continue
			}
			file[a.Key] = a
		}
	}

	for k := range env {
		if strings.HasPrefix(k, Prefix+"_") && known[k] == nil {
			info.warnings = append(info.warnings, "unknown environment variable "+k+" ignored"+hint(k, flds))
		}
	}
	sort.Strings(info.warnings)

	for i := range flds {
		f := &flds[i]
		value, src, ok, err := resolve(f, env, file, path)
		if err != nil {
			if err := info.problem(f.Key, src, err); err != nil {
				errs = append(errs, err)
				continue
			}
			value, src, ok = "", "", false // the default, below
		}
		if !ok {
			if f.Required {
				errs = append(errs, fmt.Errorf("%s: required, not set", f.Key))
				continue
			}
			if f.Default == "" {
				info.sources[f.Key] = SourceUnset
				continue
			}
			value, src = f.Default, SourceDefault
		}
		info.sources[f.Key] = src
		if err := setField(value, f.v); err != nil {
			where := ""
			if src != SourceEnvironment && src != SourceDefault && (info.refuses == nil || info.refuses(f.Key)) {
				where = " (from " + src + ")" // a Problem says where first
			}
			if f.Secret {
				// The conversion error quotes the value: leave it out.
				err = fmt.Errorf("%s: invalid value (secret value not shown)%s: not a valid %s", f.Key, where, f.v.Type())
			} else {
				err = fmt.Errorf("%s: invalid value %q%s: %w", f.Key, value, where, err)
			}
			if err := info.problem(f.Key, src, err); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := resetField(f, info); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// readEnvFile opens and parses the env file; nil assignments when the
// default file does not exist. With skip, a line with a syntax error is
// returned in bad instead of failing the whole file.
func readEnvFile(path string, explicit, skip bool) ([]Assignment, []BadLine, error) {
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		what := "env file"
		if explicit {
			what = Prefix + "_CONFIG"
		}
		if errors.Is(err, fs.ErrPermission) {
			// sendmail runs as every user; the file must be readable by
			// all of them. Secrets belong in RELAYQ_AUTHINFO or *_FILE.
			return nil, nil, fmt.Errorf("%s: %w (the env file must be readable by every user who sends mail, mode 0644; keep secrets in RELAYQ_AUTHINFO or a *_FILE)", what, err)
		}
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o002 != 0 {
		// Whoever can write it can point RELAYQ_RELAYHOST at their own
		// server and collect the credentials.
		return nil, nil, fmt.Errorf("env file %s is world-writable (mode %04o); refusing it", path, fi.Mode().Perm())
	}
	var as []Assignment
	var bad []BadLine
	if skip {
		as, bad, err = ParseEnvFileLines(f, path)
	} else {
		as, err = ParseEnvFile(f, path)
	}
	if err != nil {
		return nil, nil, err
	}
	if as == nil {
		as = []Assignment{}
	}
	return as, bad, nil
}

// resolve finds f's value: environment first, then the env file. ok is
// false when neither sets it.
func resolve(f *field, env map[string]string, file map[string]Assignment, path string) (value, src string, ok bool, err error) {
	fk := f.Key + "_FILE"
	v, hasV := env[f.Key]
	fp, hasF := "", false
	if f.Secret {
		fp, hasF = env[fk]
	}
	switch {
	case hasV && hasF:
		return "", "", false, fmt.Errorf("%s and %s are both set in the environment; set one", f.Key, fk)
	case hasF:
		v, err := readSecret(fk, fp)
		return v, fk + " " + fp, err == nil, err
	case hasV:
		return v, SourceEnvironment, true, nil
	}
	a, hasV := file[f.Key]
	b, hasF := file[fk]
	switch {
	case hasV && hasF:
		return "", "", false, &SyntaxError{path, max(a.Line, b.Line), fmt.Sprintf("%s and %s are both set (line %d and %d); set one", f.Key, fk, a.Line, b.Line)}
	case hasF:
		v, err := readSecret(fmt.Sprintf("%s:%d: %s", path, b.Line, fk), b.Value)
		return v, fmt.Sprintf("%s:%d (%s %s)", path, b.Line, fk, b.Value), err == nil, err
	case hasV:
		return a.Value, fmt.Sprintf("%s:%d", path, a.Line), true, nil
	}
	return "", "", false, nil
}

// readSecret reads a KEY_FILE secret and removes one trailing newline.
//
// The file's permissions are not checked: KEY_FILE is how container runtimes
// hand over secrets (Docker mounts them 0444, Kubernetes 0644 by default, in
// the container's own mount namespace), and the deployer named the file
// explicitly. Credential files relayq finds on its own (RELAYQ_AUTHINFO) are
// checked by authinfo.
func readSecret(what, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s: empty file name", what)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", what, path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s: %s is larger than %d bytes", what, path, maxSecretFile)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		s = t
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	return s, nil
}

// hint suggests a known key close to an unknown one.
func hint(key string, fs []field) string {
	best, bestD := "", 3
	for _, f := range fs {
		if d := editDistance(key, f.Key); d < bestD {
			best, bestD = f.Key, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// File returns the env file Load read, or "" if none was read.
func (c *Config) File() string {
	if c.loaded == nil {
		return ""
	}
	return c.loaded.file
}

// Warnings returns what Load noticed but did not reject (unknown RELAYQ_*
// keys in the env file or the environment), one sentence each.
func (c *Config) Warnings() []string {
	if c.loaded == nil {
		return nil
	}
	return c.loaded.warnings
}
