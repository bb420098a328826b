package migrate

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.txt")

// readDir is every file of a testdata case but want.txt, as given on a
// command line.
func readDir(t *testing.T, dir string) []File {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fs []File
	for _, e := range es {
		if e.Name() == "want.txt" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, File{Path: e.Name(), Data: b})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path })
	return fs
}

// noOpen: a file a configuration names must come from the case's files.
func noOpen(p string) (io.ReadCloser, error) {
	return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
}

// TestGolden reads each testdata case (the example files Debian's msmtp,
// ssmtp, nullmailer, Postfix and sendmail packages ship or generate, and
// the set-ups the Debian wiki gives for Gmail) and compares the report,
// the env file, the credentials file and the maps with want.txt.
func TestGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*-*") // not testdata/fuzz
	if len(dirs) < 7 {
		t.Fatalf("%d cases", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r, err := Read(readDir(t, dir), Options{Hostname: "host.example.com", Open: noOpen,
				Eval: func(cmd string) (string, error) { return "pw-from:" + cmd + "\n", nil }})
			if err != nil {
				t.Fatal(err)
			}
			r.Finish(Paths{Credentials: "/etc/relayq/authinfo", RelayMap: "/etc/relayq/sender_relay", Generic: "/etc/relayq/generic"}, "/etc/relayq/authinfo")
			got := r.Report() + "\n--- relayq.env\n" + r.Env() + "--- credentials\n" + r.CredentialsFile() +
				"--- sender relay map\n" + MapFile(r.RelayMap) + "--- generic map\n" + MapFile(r.Generic)
			want := filepath.Join(dir, "want.txt")
			if *update {
				os.WriteFile(want, []byte(got), 0o644)
			}
			b, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (go test ./migrate -update writes it)", err)
			}
			if got != string(b) {
				t.Errorf("differs from %s (go test ./migrate -update):\n%s", want, got)
			}
			for _, c := range r.Credentials {
				secret := c.Password
				if c.Raw != "" {
					secret = c.Raw
				}
				if strings.Contains(r.Report(), secret) {
					t.Errorf("the report shows a secret of %s", c.From)
				}
			}
		})
	}
}

// Mistakes get a clear error naming the file and line.
func TestMistakes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []File
		want  string
		is    error
	}{
		{"unknown", []File{{"notes.txt", []byte("hello\n")}}, "notes.txt: not a configuration", ErrFormat},
		{"two programs", []File{{"msmtprc", []byte("account a\nhost h\n")}, {"ssmtp.conf", []byte("mailhub=h\n")}}, "two programs", ErrFormat},
		{"msmtp quote", []File{{"msmtprc", []byte("account a\nhost \"h\n")}}, "msmtprc:2: syntax error: unterminated", ErrSyntax},
		{"msmtp before account", []File{{"msmtprc", []byte("host h\naccount a\n")}}, "msmtprc:1: syntax error: \"host\" before", ErrSyntax},
		{"msmtp parent", []File{{"msmtprc", []byte("account a : b\nhost h\n")}}, "msmtprc:1: syntax error: account \"a\" inherits from \"b\"", ErrSyntax},
		{"msmtp no host", []File{{"msmtprc", []byte("account default\nport 587\n")}}, "msmtprc:1: syntax error: account \"default\" has no host", ErrSyntax},
		{"msmtp default missing", []File{{"msmtprc", []byte("account a\nhost h\naccount default : b\n")}}, "msmtprc:3: syntax error: the default account \"b\"", ErrSyntax},
		{"ssmtp no equals", []File{{"ssmtp.conf", []byte("mailhub=h\nAuthUser me\n")}}, "ssmtp.conf:2: syntax error: want Key=Value", ErrSyntax},
		{"ssmtp no hub", []File{{"ssmtp.conf", []byte("root=me@example.com\nmailhub=\n")}}, "ssmtp.conf: syntax error: no mailhub", ErrSyntax},
		{"revaliases", []File{{"ssmtp.conf", []byte("mailhub=h\n")}, {"revaliases", []byte("root\n")}}, "revaliases:1: syntax error", ErrSyntax},
		{"postfix no relayhost", []File{{"main.cf", []byte("myhostname = h\nrelayhost =\n")}}, "main.cf: syntax error: no relayhost", ErrSyntax},
		{"postfix continuation", []File{{"main.cf", []byte("  relayhost = x\n")}}, "main.cf:1: syntax error: a continuation line", ErrSyntax},
		{"postfix sasl_passwd", []File{{"main.cf", []byte("relayhost = [h]:587\nsmtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd\n")}, {"sasl_passwd", []byte("[h]:587 nopassword\n")}}, "sasl_passwd:1: syntax error: want KEY USER:PASSWORD", ErrSyntax},
		{"mc no smart host", []File{{"sendmail.mc", []byte("OSTYPE(`debian')dnl\nMAILER(`smtp')dnl\n")}}, "sendmail.mc: syntax error: no define(`SMART_HOST'", ErrSyntax},
		{"mc unclosed", []File{{"sendmail.mc", []byte("define(`SMART_HOST', `[h]'\n")}}, "sendmail.mc:1: syntax error: a macro call", ErrSyntax},
		{"mc authinfo", []File{{"sendmail.mc", []byte("define(`SMART_HOST', `[h]')dnl\nFEATURE(`authinfo')dnl\n")}, {"authinfo", []byte("h U:x P:y\n")}}, "authinfo:1: syntax error: want an AuthInfo: entry", ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(tc.files, Options{Open: noOpen})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want one containing %q (%v)", err, tc.want, tc.is)
			}
		})
	}
}

// Without Eval, passwordeval is not run: a note says what to add.
func TestPasswordevalNotRun(t *testing.T) {
	r, err := Read([]File{{"msmtprc", []byte("account default\nhost smtp.example.com\nport 587\ntls on\nauth on\nuser me\npasswordeval rm -rf /tmp/x\n")}}, Options{Open: noOpen})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Credentials) != 0 || !strings.Contains(r.Report(), "passwordeval was not run (relayq import -eval runs it): add '[smtp.example.com]:587 me:PASSWORD'") {
		t.Fatalf("credentials %d, report:\n%s", len(r.Credentials), r.Report())
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct{ path, data, want string }{
		{"/etc/msmtprc", "", FormatMsmtp},
		{"/home/u/.msmtprc", "", FormatMsmtp},
		{"conf", "defaults\naccount x\nhost h\n", FormatMsmtp},
		{"/etc/ssmtp/ssmtp.conf", "", FormatSsmtp},
		{"x", "mailhub=h\n", FormatSsmtp},
		{"/etc/ssmtp/revaliases", "", FormatSsmtp},
		{"/etc/nullmailer/remotes", "", FormatNullmailer},
		{"/etc/nullmailer/adminaddr", "", FormatNullmailer},
		{"/etc/postfix/main.cf", "", FormatPostfix},
		{"x", "relayhost = [h]\n", FormatPostfix},
		{"/etc/mail/sendmail.mc", "", FormatSendmail},
		{"x", "define(`SMART_HOST', `h')\n", FormatSendmail},
		{"/etc/postfix/sasl_passwd", "[h]:587 u:p\n", ""},
	} {
		if got := Detect(tc.path, []byte(tc.data)); got != tc.want {
			t.Errorf("Detect(%q, %q) = %q, want %q", tc.path, tc.data, got, tc.want)
		}
	}
}

// fuzzRead: any input either fails with a wrapped ErrSyntax/ErrFormat or
// gives a result whose rendered files have one entry per line and whose
// report holds no password.
func fuzzRead(t *testing.T, files []File) {
	r, err := Read(files, Options{Open: noOpen})
	if err != nil {
		if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v wraps neither ErrSyntax nor ErrFormat", err)
		}
		return
	}
	rep := r.Report()
	for _, c := range r.Credentials {
		if len(c.Password) > 3 && strings.Contains(rep, c.Password) && !strings.Contains(c.Key+c.User, c.Password) {
			t.Fatalf("report shows password %q", c.Password)
		}
	}
	for _, s := range r.Settings {
		if strings.ContainsAny(s.Key+s.Value, "\n\r") {
			t.Fatalf("setting %s=%q spans lines", s.Key, s.Value)
		}
	}
}

func FuzzMsmtp(f *testing.F) {
	for _, p := range []string{"testdata/msmtp-system/msmtprc", "testdata/msmtp-user/msmtprc"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRead(t, []File{{"msmtprc", b}}) })
}

// fuzzPair fuzzes a configuration of two files, seeded from testdata.
func fuzzPair(f *testing.F, name1, seed1, name2, seed2 string) {
	a, _ := os.ReadFile(seed1)
	b, _ := os.ReadFile(seed2)
	f.Add(a, b)
	f.Fuzz(func(t *testing.T, a, b []byte) { fuzzRead(t, []File{{name1, a}, {name2, b}}) })
}

func FuzzSsmtp(f *testing.F) {
	fuzzPair(f, "ssmtp.conf", "testdata/ssmtp-gmail/ssmtp.conf", "revaliases", "testdata/ssmtp-gmail/revaliases")
}

func FuzzNullmailer(f *testing.F) {
	fuzzPair(f, "remotes", "testdata/nullmailer-debian/remotes", "defaultdomain", "testdata/nullmailer-debian/defaultdomain")
}

func FuzzPostfix(f *testing.F) {
	fuzzPair(f, "main.cf", "testdata/postfix-gmail/main.cf", "sasl_passwd", "testdata/postfix-gmail/sasl_passwd")
}

func FuzzSendmailMC(f *testing.F) {
	fuzzPair(f, "sendmail.mc", "testdata/sendmail-authinfo/sendmail.mc", "authinfo", "testdata/sendmail-authinfo/authinfo")
}

// TestSSMTPTLSNotes: the note about a password sent in clear names the
// line that explains it: sSMTP does STARTTLS only with UseTLS=YES, so
// UseSTARTTLS=YES alone is named as such (it read as a contradiction).
func TestSSMTPTLSNotes(t *testing.T) {
	for _, tc := range []struct{ name, conf, want, not string }{
		{"no TLS keys", "mailhub=h:587\nAuthUser=me\nAuthPass=pw\n",
			"ssmtp.conf:1: differs: no UseTLS: sSMTP sent the password in clear", "UseSTARTTLS=YES without"},
		{"UseSTARTTLS alone", "mailhub=h:587\nAuthUser=me\nAuthPass=pw\nUseSTARTTLS=YES\n",
			"ssmtp.conf:4: differs: UseSTARTTLS=YES without UseTLS=YES: sSMTP does STARTTLS only with UseTLS=YES, so it sent the password in clear", "no UseTLS:"},
		{"both", "mailhub=h:587\nAuthUser=me\nAuthPass=pw\nUseTLS=YES\nUseSTARTTLS=YES\n",
			"", "in clear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Read([]File{{"ssmtp.conf", []byte(tc.conf)}}, Options{Open: noOpen})
			if err != nil {
				t.Fatal(err)
			}
			rep := r.Report()
			if tc.want != "" && !strings.Contains(rep, tc.want) {
				t.Errorf("report lacks %q:\n%s", tc.want, rep)
			}
			if strings.Contains(rep, tc.not) {
				t.Errorf("report has %q:\n%s", tc.not, rep)
			}
		})
	}
}

// TestMsmtpFromWithoutFQDN: msmtp's from becomes a generic map line for
// the host's fully-qualified name; on a host whose name has no domain the
// note says to set RELAYQ_DOMAIN first (relayq check fails without it).
func TestMsmtpFromWithoutFQDN(t *testing.T) {
	rc := []byte("account default\nhost smtp.example.com\nport 587\ntls on\nfrom me@example.com\n")
	for _, tc := range []struct {
		host, want, not string
		generic         int
	}{
		{"", "from me@example.com: this host's name has no domain: set RELAYQ_DOMAIN to its fully-qualified name", "@app1", 0},
		{"app1.example.com", "relayq rewrites local senders (@app1.example.com, RELAYQ_GENERIC_MAP) to it", "no domain", 1},
	} {
		r, err := Read([]File{{"msmtprc", rc}}, Options{Open: noOpen, Hostname: tc.host})
		if err != nil {
			t.Fatal(err)
		}
		rep := r.Report()
		if !strings.Contains(rep, tc.want) || strings.Contains(rep, tc.not) || len(r.Generic) != tc.generic {
			t.Errorf("host %q: %d generic lines, report:\n%s\nwant %q, not %q", tc.host, len(r.Generic), rep, tc.want, tc.not)
		}
	}
}
