package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	dir := t.TempDir()
	// The default file does not exist: fine.
	c, err := loadEnviron(nil, filepath.Join(dir, "missing.env"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if c.Spool != "/var/spool/relayq/queue.db" || c.TLS != "verify" || c.LockTimeout != 5*time.Second || !c.MailqPublic {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.File() != "" {
		t.Errorf("File() = %q, want none", c.File())
	}
	for _, k := range c.Describe() {
		want := SourceDefault
		if k.Default == "" {
			want = SourceUnset
		}
		if k.Source != want {
			t.Errorf("%s: source %q, want %q", k.Key, k.Source, want)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "relayq.env", `# test
RELAYQ_RELAYHOST=[file.example]:587
RELAYQ_SPOOL=/file/queue.db
export RELAYQ_LOG_LEVEL="debug"
OTHER_PROGRAM_KEY=ignored
RELAYQ_LOCK_TIMEOUT=2s
`)
	env := []string{
		"RELAYQ_CONFIG=" + file,
		"RELAYQ_SPOOL=/env/queue.db",
		"RELAYQ_SPOOL=/second/ignored.db", // first wins, as getenv(3)
		"RELAYQ_TLS=",                     // set but empty: kept empty → validation error below
	}
	err := loadProblem(LoadEnviron(env))
	if err == nil || !strings.Contains(err.Error(), `RELAYQ_TLS: "" is not one of verify, encrypt, may, none`) {
		t.Fatalf("empty RELAYQ_TLS: err = %v", err)
	}
	env[3] = "RELAYQ_TLS=may"
	c, err := LoadEnviron(env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ got, want any }{
		{c.RelayHost, "[file.example]:587"},
		{c.Spool, "/env/queue.db"},
		{c.LogLevel, "debug"},
		{c.TLS, "may"},
		{c.LockTimeout, 2 * time.Second},
		{c.File(), file},
	}
	for i, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("check %d: got %v, want %v", i, ck.got, ck.want)
		}
	}
	src := map[string]string{}
	for _, k := range c.Describe() {
		src[k.Key] = k.Source
	}
	want := map[string]string{
		"RELAYQ_RELAYHOST": file + ":2",
		"RELAYQ_SPOOL":     SourceEnvironment,
		"RELAYQ_LOG_LEVEL": file + ":4",
		"RELAYQ_TLS":       SourceEnvironment,
		"RELAYQ_AUTHINFO":  SourceDefault,
		"RELAYQ_LISTEN":    SourceUnset,
	}
	for k, v := range want {
		if src[k] != v {
			t.Errorf("source of %s = %q, want %q", k, src[k], v)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"syntax", "RELAYQ_SPOOL=/x\nnonsense\n", ":2: expected KEY=VALUE"},
		{"bad duration names file:line", "RELAYQ_LOCK_TIMEOUT=5 seconds\n", `RELAYQ_LOCK_TIMEOUT: invalid value "5 seconds" (from ` + "@F@:1)"},
		{"bad bool", "RELAYQ_MAILQ_PUBLIC=perhaps\n", `RELAYQ_MAILQ_PUBLIC: invalid value "perhaps"`},
		{"validation", "RELAYQ_SPOOL=queue.db\nRELAYQ_LOG_FORMAT=xml\n", `RELAYQ_SPOOL: "queue.db" is not an absolute path`},
		{"several validation errors together", "RELAYQ_SPOOL=queue.db\nRELAYQ_LOCK_TIMEOUT=0s\n", `RELAYQ_LOCK_TIMEOUT: 0s is out of range`},
		{"lock timeout bounded", "RELAYQ_LOCK_TIMEOUT=0s\n", "RELAYQ_LOCK_TIMEOUT: 0s is out of range"},
		{"domain", "RELAYQ_DOMAIN=@example.com\n", `RELAYQ_DOMAIN: "@example.com" is not a domain name`},
		{"same sockets", "RELAYQ_CONTROL_SOCKET=/run/relayq/submit.sock\n", "RELAYQ_CONTROL_SOCKET: same path as RELAYQ_SOCKET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, dir, "x.env", tt.content)
			err := loadProblem(LoadEnviron([]string{"RELAYQ_CONFIG=" + f}))
			want := strings.ReplaceAll(tt.want, "@F@", f)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, want)
			}
		})
	}
}

// TestLoadFileWarnings: keys of ours that are unknown or misspelt in the
// env file are warnings naming file:line, never errors (a typo must not make
// sendmail refuse mail); the rest of the file still applies.
func TestLoadFileWarnings(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"unknown key with hint", "\nRELAYQ_RELAYHSOT=x\n", ":2: unknown key RELAYQ_RELAYHSOT ignored (did you mean RELAYQ_RELAYHOST?)"},
		{"config in file", "RELAYQ_CONFIG=/x\n", ":1: RELAYQ_CONFIG ignored: it cannot be set inside"},
		{"_FILE for a non-secret", "RELAYQ_SPOOL_FILE=/x\n", ":1: unknown key RELAYQ_SPOOL_FILE ignored"},
		{"lower-case key", "relayq_spool=/x\n", ":1: relayq_spool ignored: keys are upper case (RELAYQ_SPOOL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, dir, "x.env", tt.content+"RELAYQ_DOMAIN=kept.example\n")
			c, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + f})
			if err != nil {
				t.Fatalf("err = %v, want only a warning", err)
			}
			w := strings.Join(c.Warnings(), "\n")
			if !strings.Contains(w, f+tt.want) {
				t.Errorf("warnings %q\nwant one containing %q", w, f+tt.want)
			}
			if c.Domain != "kept.example" {
				t.Errorf("the file's other keys were not applied: domain %q", c.Domain)
			}
		})
	}
}

func TestLoadMissingNamedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.env")
	_, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + p})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "RELAYQ_CONFIG") {
		t.Fatalf("err = %v, want RELAYQ_CONFIG: ... not exist", err)
	}
	// RELAYQ_CONFIG="" reads no file at all.
	c, err := loadEnviron([]string{"RELAYQ_CONFIG="}, writeFile(t, t.TempDir(), "d.env", "bad line\n"))
	if err != nil || c.File() != "" {
		t.Fatalf("RELAYQ_CONFIG empty: %v, file %q", err, c.File())
	}
}

func TestLoadEnvFilePermissions(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "ww.env", "RELAYQ_RELAYHOST=[evil.example]:587\n")
	if err := os.Chmod(f, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + f})
	if err == nil || !strings.Contains(err.Error(), "world-writable") {
		t.Fatalf("world-writable env file: err = %v", err)
	}
	if os.Getuid() == 0 {
		return // root reads mode 0000 files; the next check needs another user
	}
	if err := os.Chmod(f, 0o000); err != nil {
		t.Fatal(err)
	}
	_, err = LoadEnviron([]string{"RELAYQ_CONFIG=" + f})
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "readable by every user") {
		t.Fatalf("unreadable env file: err = %v", err)
	}
}

func TestLoadWarnsUnknownEnvironment(t *testing.T) {
	c, err := LoadEnviron([]string{"RELAYQ_CONFIG=", "RELAYQ_SPOL=/x", "SPOOL=/unprefixed"})
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "RELAYQ_SPOL") || !strings.Contains(w[0], "did you mean RELAYQ_SPOOL?") {
		t.Errorf("warnings = %q", w)
	}
	// envconfig would fall back to the unprefixed SPOOL; Load does not.
	if c.Spool != "/var/spool/relayq/queue.db" {
		t.Errorf("Spool = %q: unprefixed SPOOL leaked in", c.Spool)
	}
}

// secretSpec is a test area with a secret key.
type secretSpec struct {
	Core
	Password string `envconfig:"PASSWORD" secret:"true" desc:"a password"`
	Token    string `envconfig:"TOKEN" secret:"true" default:"dflt"`
	Need     string `envconfig:"NEED" required:"true"`
}

func TestLoadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "s3cret\n")
	pw2 := writeFile(t, dir, "pw2", "line1\nline2\n\n")
	crlf := writeFile(t, dir, "crlf", "tok\r\n")
	tests := []struct {
		name    string
		file    string
		env     []string
		want    string // Password
		src     string
		wantErr string
	}{
		{name: "env _FILE", env: []string{"RELAYQ_PASSWORD_FILE=" + pw}, want: "s3cret", src: "RELAYQ_PASSWORD_FILE " + pw},
		{name: "one newline trimmed", env: []string{"RELAYQ_PASSWORD_FILE=" + pw2}, want: "line1\nline2\n"},
		{name: "file _FILE", file: "RELAYQ_PASSWORD_FILE=" + pw + "\n", want: "s3cret", src: "@F@:1 (RELAYQ_PASSWORD_FILE " + pw + ")"},
		{name: "env KEY beats file _FILE", file: "RELAYQ_PASSWORD_FILE=" + pw + "\n", env: []string{"RELAYQ_PASSWORD=fromenv"}, want: "fromenv"},
		{name: "env _FILE beats file KEY", file: "RELAYQ_PASSWORD=fromfile\n", env: []string{"RELAYQ_PASSWORD_FILE=" + pw}, want: "s3cret"},
		{name: "both in env", env: []string{"RELAYQ_PASSWORD=x", "RELAYQ_PASSWORD_FILE=" + pw}, wantErr: "RELAYQ_PASSWORD and RELAYQ_PASSWORD_FILE are both set in the environment"},
		{name: "both in file", file: "RELAYQ_PASSWORD=x\n\nRELAYQ_PASSWORD_FILE=" + pw + "\n", wantErr: "@F@:3: RELAYQ_PASSWORD and RELAYQ_PASSWORD_FILE are both set (line 1 and 3)"},
		{name: "missing secret file", env: []string{"RELAYQ_PASSWORD_FILE=" + dir + "/nope"}, wantErr: "RELAYQ_PASSWORD_FILE: open " + dir + "/nope: no such file"},
		{name: "missing secret file named in env file", file: "RELAYQ_PASSWORD_FILE=" + dir + "/nope\n", wantErr: "@F@:1: RELAYQ_PASSWORD_FILE: open"},
		{name: "empty _FILE", env: []string{"RELAYQ_PASSWORD_FILE="}, wantErr: "RELAYQ_PASSWORD_FILE: empty file name"},
		{name: "secret with default via file", env: []string{"RELAYQ_TOKEN_FILE=" + crlf}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"RELAYQ_NEED=1"}, tt.env...)
			f := ""
			if tt.file != "" {
				f = writeFile(t, dir, "s.env", tt.file)
			}
			env = append(env, "RELAYQ_CONFIG="+f)
			var s secretSpec
			info := &loadInfo{sources: map[string]string{}}
			err := loadInto(&s, info, env, "")
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "@F@", f)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Password != tt.want {
				t.Errorf("Password = %q, want %q", s.Password, tt.want)
			}
			if tt.src != "" && info.sources["RELAYQ_PASSWORD"] != strings.ReplaceAll(tt.src, "@F@", f) {
				t.Errorf("source = %q, want %q", info.sources["RELAYQ_PASSWORD"], tt.src)
			}
			if tt.name == "secret with default via file" && s.Token != "tok" {
				t.Errorf("Token = %q, want tok (CRLF trimmed)", s.Token)
			}
		})
	}
}

func TestLoadSecretNeverInErrors(t *testing.T) {
	type spec struct {
		N int `envconfig:"N" secret:"true"`
	}
	var s spec
	err := loadInto(&s, &loadInfo{sources: map[string]string{}}, []string{"RELAYQ_CONFIG=", "RELAYQ_N=hunter2"}, "")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "RELAYQ_N: invalid value (secret value not shown)") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadRequired(t *testing.T) {
	var s secretSpec
	err := loadInto(&s, &loadInfo{sources: map[string]string{}}, []string{"RELAYQ_CONFIG="}, "")
	if err == nil || !strings.Contains(err.Error(), "RELAYQ_NEED: required, not set") {
		t.Fatalf("err = %v", err)
	}
}

// allTypes covers every conversion envconfig v1.4 knows.
type allTypes struct {
	S    string            `envconfig:"S"`
	I    int               `envconfig:"I"`
	I8   int8              `envconfig:"I8"`
	U16  uint16            `envconfig:"U16"`
	F    float64           `envconfig:"F"`
	B    bool              `envconfig:"B"`
	D    time.Duration     `envconfig:"D"`
	SL   []string          `envconfig:"SL"`
	IL   []int             `envconfig:"IL"`
	BY   []byte            `envconfig:"BY"`
	M    map[string]int    `envconfig:"M"`
	P    *int              `envconfig:"P"`
	Def  string            `envconfig:"DEF" default:"dv"`
	Ign  string            `ignored:"true"`
	Name string            // key RELAYQ_NAME
	Sub  struct{ X int }   // key RELAYQ_SUB_X
	T    textish           `envconfig:"T"`
	TP   *textish          `envconfig:"TP"`
	SP   *struct{ Y int }  // key RELAYQ_SP_Y
	E    map[string]string `envconfig:"E"`
}

type textish struct{ v string }

func (t *textish) UnmarshalText(b []byte) error { t.v = "text:" + string(b); return nil }

// TestConversionsMatchEnvconfig checks that Load converts values exactly as
// envconfig.Process does, for every supported kind.
func TestConversionsMatchEnvconfig(t *testing.T) {
	env := map[string]string{
		"RELAYQ_S": "str", "RELAYQ_I": "0x10", "RELAYQ_I8": "-8", "RELAYQ_U16": "65535",
		"RELAYQ_F": "1.5", "RELAYQ_B": "true", "RELAYQ_D": "1m30s", "RELAYQ_SL": "a,b,,c",
		"RELAYQ_IL": "1,2", "RELAYQ_BY": "bytes", "RELAYQ_M": "a:1,b:2", "RELAYQ_P": "7",
		"RELAYQ_NAME": "n", "RELAYQ_SUB_X": "3", "RELAYQ_T": "t", "RELAYQ_E": "",
		"RELAYQ_TP": "tp", "RELAYQ_SP_Y": "4",
		"RELAYQ_IGN": "no",
	}
	var environ []string
	for k, v := range env {
		t.Setenv(k, v)
		environ = append(environ, k+"="+v)
	}
	var want, got allTypes
	if err := envconfig.Process(Prefix, &want); err != nil {
		t.Fatal(err)
	}
	if err := loadInto(&got, &loadInfo{sources: map[string]string{}}, append(environ, "RELAYQ_CONFIG="), ""); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got.Sub.X != 3 || got.Def != "dv" || got.T.v != "text:t" || got.Ign != "" || got.TP == nil || got.TP.v != "text:tp" || got.SP == nil || got.SP.Y != 4 {
		t.Errorf("unexpected values %+v", got)
	}
}

func TestDescribeAndUsage(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "u.env", "RELAYQ_RELAYHOST=[smtp.example.com]:587\nRELAYQ_DOMAIN=example.com\n")
	c, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + f, "RELAYQ_LISTEN=127.0.0.1:2525 ,[::1]:2525"})
	if err != nil {
		t.Fatal(err)
	}
	keys := c.Describe()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Key] {
			t.Errorf("duplicate key %s", k.Key)
		}
		seen[k.Key] = true
		if k.Desc == "" {
			t.Errorf("%s has no desc tag", k.Key)
		}
		if !strings.HasPrefix(k.Key, "RELAYQ_") {
			t.Errorf("%s lacks the prefix", k.Key)
		}
	}
	for _, k := range []string{"RELAYQ_CONFIG", "RELAYQ_RELAYHOST", "RELAYQ_CONTROL_SOCKET", "RELAYQ_LOCK_TIMEOUT"} {
		if !seen[k] {
			t.Errorf("Describe lacks %s", k)
		}
	}
	var b bytes.Buffer
	if err := c.Usage(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# default: (none); from: " + f + ":1\nRELAYQ_RELAYHOST=[smtp.example.com]:587\n",
		"RELAYQ_LISTEN='127.0.0.1:2525 ,[::1]:2525'\n",
		"RELAYQ_LOCK_TIMEOUT=5s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Usage output lacks %q:\n%s", want, out)
		}
	}
	// The output is an env file that loads back to the same values.
	back := writeFile(t, dir, "back.env", out)
	c2, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + back})
	if err != nil {
		t.Fatal(err)
	}
	c2.loaded, c.loaded = nil, nil
	c2.Config = c.Config
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("round trip differs:\n%+v\n%+v", c, c2)
	}
}

func TestDescribeMasksSecrets(t *testing.T) {
	pw := writeFile(t, t.TempDir(), "pw", "hunter2\n")
	var s secretSpec
	info := &loadInfo{sources: map[string]string{}}
	if err := loadInto(&s, info, []string{"RELAYQ_CONFIG=", "RELAYQ_NEED=x", "RELAYQ_PASSWORD_FILE=" + pw}, ""); err != nil {
		t.Fatal(err)
	}
	if s.Password != "hunter2" {
		t.Fatalf("Password = %q", s.Password)
	}
	found := 0
	for _, k := range describe(&s, info) {
		if strings.Contains(k.Value, "hunter2") {
			t.Errorf("%s shows the secret", k.Key)
		}
		switch k.Key {
		case "RELAYQ_PASSWORD":
			found++
			if !k.Secret || k.Value != Mask || !k.Set || k.Source != "RELAYQ_PASSWORD_FILE "+pw {
				t.Errorf("RELAYQ_PASSWORD described as %+v", k)
			}
		case "RELAYQ_TOKEN":
			found++
			if k.Value != Mask || k.Source != SourceDefault {
				t.Errorf("RELAYQ_TOKEN described as %+v", k)
			}
		}
	}
	if found != 2 {
		t.Errorf("found %d secret keys, want 2", found)
	}
}

// FuzzLoadEnvFile loads arbitrary env files: Load must never panic, and
// when it succeeds every key it reports must have a source.
func FuzzLoadEnvFile(f *testing.F) {
	for _, s := range []string{
		"RELAYQ_SPOOL=/x\n", "RELAYQ_LOCK_TIMEOUT=1s\nRELAYQ_MAILQ_PUBLIC=false\n",
		"RELAYQ_TLS='may'\n", "RELAYQ_NOPE=1\n", "RELAYQ_DOMAIN=\"a b\"\n", "X=1\nRELAYQ_LOG_LEVEL=debug",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "f.env")
	f.Fuzz(func(t *testing.T, content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + path})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, k := range c.Describe() {
			if k.Source == "" {
				t.Fatalf("%s has no source", k.Key)
			}
		}
	})
}

// loadProblem is LoadEnviron's error, else the configuration's problems
// (bad values Load kept defaults for), joined.
func loadProblem(c *Config, err error) error {
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range c.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// TestLoadProblems: a bad value (or a bad env file line) of a key that
// submission does not need is no error: the key keeps its default, the
// rest of the file applies, and the problem names file, line and key, as
// a delivery problem or, for the daemon's doors, a listener problem. A
// key that submission needs still refuses.
func TestLoadProblems(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		content  string
		env      string
		refused  string // LoadEnviron's error contains it
		delivery string // DeliveryProblem contains it
		listener string // ListenerProblem contains it
		check    func(*Config) bool
	}{
		{name: "bad TLS policy", content: "RELAYQ_RELAYHOST=[r.example]:587\nRELAYQ_TLS=bogus\n",
			delivery: `@F@:2: RELAYQ_TLS: "bogus" is not one of`, check: func(c *Config) bool { return c.TLS == "verify" }},
		{name: "bad duration", content: "RELAYQ_RELAYHOST=[r.example]:587\nRELAYQ_SMTP_CONNECT_TIMEOUT=5x\n",
			delivery: `@F@:2: RELAYQ_SMTP_CONNECT_TIMEOUT: invalid value "5x"`, check: func(c *Config) bool { return c.ConnectTimeout == 30*time.Second }},
		{name: "syntax error", content: "RELAYQ_RELAYHOST=[r.example]:587\nRELAYQ_TLS verify\n",
			delivery: "@F@:2: expected KEY=VALUE"},
		{name: "backoff pair", content: "RELAYQ_RELAYHOST=[r.example]:587\nRELAYQ_BACKOFF_MAX=1m\n",
			delivery: "@F@:2: RELAYQ_BACKOFF_MAX", check: func(c *Config) bool { return c.BackoffMax == time.Hour }},
		{name: "environment", content: "RELAYQ_RELAYHOST=[r.example]:587\n", env: "RELAYQ_TLS=bogus",
			delivery: "environment: RELAYQ_TLS"},
		{name: "open relay network", content: "RELAYQ_RELAYHOST=[r.example]:587\nRELAYQ_MYNETWORKS=0.0.0.0/0\n",
			listener: "@F@:2: RELAYQ_MYNETWORKS", check: func(c *Config) bool { return c.MyNetworks == "" }},
		{name: "spool path", content: "RELAYQ_SPOOL=queue.db\nRELAYQ_TLS=bogus\n", refused: `@F@:1: RELAYQ_SPOOL: "queue.db" is not an absolute path`},
		{name: "spool line", content: "RELAYQ_SPOOL /var/q.db\n", refused: "@F@:1: expected KEY=VALUE"},
		{name: "size limit", content: "RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT=10M\n", refused: `RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT: invalid value "10M" (from @F@:1)`},
		{name: "untrusted sender", content: "RELAYQ_UNTRUSTED_SENDER=maybe\n", refused: "@F@:1: RELAYQ_UNTRUSTED_SENDER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, dir, "p.env", "RELAYQ_DOMAIN=applied.example\n"+tt.content)
			// The prepended line shifts the content's lines by one.
			at := func(s string) string {
				for i := 9; i >= 1; i-- {
					s = strings.ReplaceAll(s, fmt.Sprintf("@F@:%d", i), fmt.Sprintf("%s:%d", f, i+1))
				}
				return strings.ReplaceAll(s, "@F@", f)
			}
			environ := []string{"RELAYQ_CONFIG=" + f}
			if tt.env != "" {
				environ = append(environ, tt.env)
			}
			c, err := LoadEnviron(environ)
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), at(tt.refused)) {
					t.Fatalf("err = %v, want it to contain %q", err, at(tt.refused))
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.Domain != "applied.example" {
				t.Errorf("the file's other lines were not applied")
			}
			for _, p := range []struct {
				what string
				err  error
				want string
			}{{"delivery", c.DeliveryProblem(), tt.delivery}, {"listener", c.ListenerProblem(), tt.listener}} {
				switch {
				case p.want == "" && p.err != nil:
					t.Errorf("%s problem %v, want none", p.what, p.err)
				case p.want != "" && (p.err == nil || !strings.Contains(p.err.Error(), at(p.want))):
					t.Errorf("%s problem %v, want %q", p.what, p.err, at(p.want))
				}
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("the bad key did not keep its default: %+v", c)
			}
		})
	}
}
