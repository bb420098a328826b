package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relayq/relayq/aliases"
	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/config"
)

func runImportArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runImport(stdio{strings.NewReader(""), &out, &errb}, args)
	return code, out.String(), errb.String()
}

// importCase copies a migrate testdata case into a temporary directory
// and returns it with the output paths under it.
func importCase(t *testing.T, name string) (in, etc string, files []string) {
	t.Helper()
	in, etc = t.TempDir(), t.TempDir()
	src := filepath.Join("..", "..", "migrate", "testdata", name)
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Name() == "want.txt" {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		p := filepath.Join(in, e.Name())
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return in, etc, files
}

func importOut(etc string) []string {
	return []string{"-env", filepath.Join(etc, "relayq.env"), "-authinfo", filepath.Join(etc, "authinfo"),
		"-relay-map", filepath.Join(etc, "sender_relay"), "-generic", filepath.Join(etc, "generic")}
}

// Every format's example is written into files that relayq's own readers
// take: the env file loads with no problem or warning, the credentials
// file (0600) parses and gives the credential for the relay, the maps
// parse. Secrets never reach the output.
func TestImportWritesWhatRelayqReads(t *testing.T) {
	for _, tc := range []struct{ name, relay, user string }{
		{"postfix-gmail", "[smtp.gmail.com]:587", "me@gmail.com"},
		{"ssmtp-gmail", "[smtp.gmail.com]:587", "me@example.com"},
		{"nullmailer-debian", "[smtp.example.com]:587, [backup.example.com]:465", "me@example.com"},
		{"sendmail-authinfo", "[smtp.example.com]:587", "me@example.com"},
		{"msmtp-system", "[mail.oursite.example]:465", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, etc, files := importCase(t, tc.name)
			code, out, errs := runImportArgs(t, append(importOut(etc), files...)...)
			if code != exOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, secret := range []string{"abcdefghijklmnop", "app password 16", "s3cret", "P:s3cret"} {
				if strings.Contains(out+errs, secret) {
					t.Errorf("output shows the secret %q", secret)
				}
			}
			c, err := config.LoadEnviron([]string{"RELAYQ_CONFIG=" + filepath.Join(etc, "relayq.env")})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Problems()) > 0 || len(c.Warnings()) > 0 {
				t.Fatalf("problems %v warnings %v", c.Problems(), c.Warnings())
			}
			if c.RelayHost != tc.relay {
				t.Errorf("RELAYQ_RELAYHOST = %q, want %q", c.RelayHost, tc.relay)
			}
			if tc.user == "" {
				if _, err := os.Stat(filepath.Join(etc, "authinfo")); err == nil {
					t.Error("a credentials file was written for a relay without AUTH")
				}
				return
			}
			fi, err := os.Stat(filepath.Join(etc, "authinfo"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("credentials file: %v, mode %v", err, fi.Mode())
			}
			m, err := authinfo.ParseFile(filepath.Join(etc, "authinfo"))
			if err != nil {
				t.Fatal(err)
			}
			host := strings.Trim(strings.Split(strings.Split(tc.relay, ",")[0], "]")[0], "[")
			cr, ok := m.Lookup(authinfo.Query{Host: host, NextHop: strings.Split(tc.relay, ",")[0]})
			if !ok || cr.User != tc.user {
				t.Errorf("lookup %s: %v %+v", host, ok, cr)
			}
			if p := filepath.Join(etc, "generic"); fileExists(p) {
				if _, err := aliases.ParseGenericFile(p); err != nil {
					t.Error(err)
				}
			}
			if p := filepath.Join(etc, "sender_relay"); fileExists(p) {
				if _, err := authinfo.ParseRelayMapFile(p); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// -n writes nothing; an existing file is refused without -f (73); an env
// file of comments only (the package's) is added to; -f comments out the
// keys it replaces and keeps the other lines.
func TestImportExistingFiles(t *testing.T) {
	_, etc, files := importCase(t, "postfix-gmail")
	args := append(importOut(etc), files...)
	if code, out, errs := runImportArgs(t, append([]string{"-n"}, args...)...); code != exOK || !strings.Contains(out, "nothing written") || strings.Contains(out, "abcdefghijklmnop") {
		t.Fatalf("-n: exit %d %s\n%s", code, errs, out)
	}
	if es, _ := os.ReadDir(etc); len(es) != 0 {
		t.Fatalf("-n wrote %d files", len(es))
	}
	env := filepath.Join(etc, "relayq.env")
	os.WriteFile(env, []byte("# the package's commented file\n#RELAYQ_RELAYHOST=\n"), 0o644)
	if code, _, errs := runImportArgs(t, args...); code != exOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, _ := os.ReadFile(env)
	if !strings.HasPrefix(string(b), "# the package's commented file\n") || !strings.Contains(string(b), "\nRELAYQ_RELAYHOST=[smtp.gmail.com]:587\n") {
		t.Fatalf("env file:\n%s", b)
	}
	code, _, errs := runImportArgs(t, args...)
	if code != exCantCrt || !strings.Contains(errs, "exists with entries") || !strings.Contains(errs, "-f") {
		t.Fatalf("second import: exit %d %s", code, errs)
	}
	if strings.Contains(errs, "abcdefghijklmnop") {
		t.Fatal("the refusal shows a secret")
	}
	os.WriteFile(env, []byte("RELAYQ_RELAYHOST=[old.example]:25\nRELAYQ_LOG_LEVEL=debug\n"), 0o644)
	if code, _, errs := runImportArgs(t, append([]string{"-f"}, args...)...); code != exOK {
		t.Fatalf("-f: exit %d %s", code, errs)
	}
	b, _ = os.ReadFile(env)
	for _, want := range []string{"# replaced by relayq import: RELAYQ_RELAYHOST=[old.example]:25\n", "\nRELAYQ_LOG_LEVEL=debug\n", "\nRELAYQ_RELAYHOST=[smtp.gmail.com]:587\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("-f env file lacks %q:\n%s", want, b)
		}
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "msmtprc")
	os.WriteFile(bad, []byte("account default\nhost \"x\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exUsage, "usage: relayq import"},
		{[]string{filepath.Join(dir, "missing")}, exNoInput, "no such file"},
		{[]string{bad}, exDataErr, "msmtprc:2: syntax error: unterminated double quote"},
	} {
		code, _, errs := runImportArgs(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("import %v: exit %d %q, want %d %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}

// TestImportInputs: a directory stands for nullmailer's files in it (the
// same result as naming them); a directory without them is 66; a file over
// the limit (a device or a log given by mistake) is 65, not read to its end.
func TestImportInputs(t *testing.T) {
	in, etc, files := importCase(t, "nullmailer-debian")
	env := filepath.Join(etc, "relayq.env")
	common := []string{"-n", "-env", env, "-authinfo", filepath.Join(etc, "authinfo")}
	code, byFiles, errs := runImportArgs(t, append(common, files...)...)
	if code != exOK {
		t.Fatalf("files: exit %d: %s", code, errs)
	}
	code, byDir, errs := runImportArgs(t, append(common, in)...)
	if code != exOK {
		t.Fatalf("directory: exit %d: %s", code, errs)
	}
	if byDir != byFiles {
		t.Errorf("directory:\n%s\nfiles:\n%s", byDir, byFiles)
	}
	empty := t.TempDir()
	if code, _, errs := runImportArgs(t, append(common, empty)...); code != exNoInput || !strings.Contains(errs, "nullmailer") {
		t.Errorf("empty directory: exit %d %q", code, errs)
	}
	big := filepath.Join(t.TempDir(), "main.cf")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# x\n"), importMaxFile/4+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runImportArgs(t, append(common, big)...); code != exDataErr || !strings.Contains(errs, "larger than") {
		t.Errorf("large file: exit %d %q", code, errs)
	}
}

// TestImportCredentialsWhereRelayqReads: without -authinfo the credentials
// go to the file relayq will read: RELAYQ_AUTHINFO of the environment,
// else of the env file, else the default. (Always the default left them
// where relayq did not look, and relayq import -f, run by a user who
// cannot write /etc/relayq, failed after it had rewritten the env file.)
func TestImportCredentialsWhereRelayqReads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		envFile  string // "" none; %s is the directory
		environ  string // RELAYQ_AUTHINFO in the environment; %s is the directory
		args     []string
		wantCred string // %s is the directory
	}{
		{name: "env file names it", envFile: "RELAYQ_AUTHINFO=%s/mine\nRELAYQ_LOG_LEVEL=debug\n", args: []string{"-f"}, wantCred: "%s/mine"},
		{name: "last line counts", envFile: "RELAYQ_AUTHINFO=%s/old\nRELAYQ_AUTHINFO=%s/mine\n", args: []string{"-f"}, wantCred: "%s/mine"},
		{name: "environment names it", environ: "%s/fromenv", wantCred: "%s/fromenv"},
		{name: "environment wins", envFile: "RELAYQ_AUTHINFO=%s/mine\n", environ: "%s/fromenv", args: []string{"-f"}, wantCred: "%s/fromenv"},
		{name: "-authinfo wins", envFile: "RELAYQ_AUTHINFO=%s/mine\n", args: []string{"-f", "-authinfo", "%s/given"}, wantCred: "%s/given"},
		{name: "relative value ignored", envFile: "RELAYQ_AUTHINFO=etc/authinfo\n", args: []string{"-n"}, wantCred: "/etc/relayq/authinfo"},
		{name: "none: the default", args: []string{"-n"}, wantCred: "/etc/relayq/authinfo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, etc, files := importCase(t, "postfix-gmail")
			sub := func(s string) string { return strings.ReplaceAll(s, "%s", etc) }
			env := filepath.Join(etc, "relayq.env")
			if tc.envFile != "" {
				os.WriteFile(env, []byte(sub(tc.envFile)), 0o644)
			}
			t.Setenv("RELAYQ_AUTHINFO", sub(tc.environ))
			args := []string{"-env", env}
			for _, a := range tc.args {
				args = append(args, sub(a))
			}
			code, out, errs := runImportArgs(t, append(args, files...)...)
			if code != exOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			want := sub(tc.wantCred)
			if slices.Contains(tc.args, "-n") {
				if !strings.Contains(out, "--- "+want+" (mode 0600)") {
					t.Fatalf("-n does not show the credentials going to %s:\n%s", want, out)
				}
				return
			}
			environ := []string{"RELAYQ_CONFIG=" + env}
			if tc.environ != "" {
				environ = append(environ, "RELAYQ_AUTHINFO="+sub(tc.environ))
			}
			c, err := config.LoadEnviron(environ)
			if err != nil {
				t.Fatal(err)
			}
			if c.AuthInfo != want {
				t.Fatalf("relayq reads credentials from %s, import wrote them to %s", c.AuthInfo, want)
			}
			if _, err := authinfo.ParseFile(want); err != nil {
				t.Fatalf("credentials file: %v", err)
			}
		})
	}
}

// TestImportWritesAllOrNothing: a file relayq import cannot write stops it
// before anything is written (the env file too); -n says so.
func TestImportWritesAllOrNothing(t *testing.T) {
	_, etc, files := importCase(t, "postfix-gmail")
	env := filepath.Join(etc, "relayq.env")
	before := "RELAYQ_RELAYHOST=[old.example]:25\n"
	os.WriteFile(env, []byte(before), 0o644)
	notDir := filepath.Join(etc, "file")
	os.WriteFile(notDir, nil, 0o644)
	cred := filepath.Join(notDir, "authinfo") // under a regular file: cannot be created
	args := append([]string{"-f", "-env", env, "-authinfo", cred}, files...)
	code, out, errs := runImportArgs(t, append([]string{"-n"}, args...)...)
	if code != exOK || !strings.Contains(out, "without -n this stops relayq import") || !strings.Contains(out, "cannot write "+cred) {
		t.Fatalf("-n: exit %d %s\n%s", code, errs, out)
	}
	code, _, errs = runImportArgs(t, args...)
	if code != exCantCrt || !strings.Contains(errs, "cannot write "+cred) || !strings.Contains(errs, "not a directory") {
		t.Fatalf("exit %d %q; want 73 naming %s", code, errs, cred)
	}
	if b, _ := os.ReadFile(env); string(b) != before {
		t.Fatalf("the env file was changed although the import failed:\n%s", b)
	}
}

// TestImportKeepsOtherCredentials: import -f into an existing credentials
// file replaces the entries with the imported keys and keeps the others
// (an OAuth entry that relayq oauth login wrote for another relay, a
// sender's entry); -n says so; the mode stays 0600 and the old password
// of the imported relay is gone.
func TestImportKeepsOtherCredentials(t *testing.T) {
	_, etc, files := importCase(t, "postfix-gmail")
	args := append(importOut(etc), files...)
	cred := ""
	for i, a := range args {
		if a == "-authinfo" {
			cred = args[i+1]
		}
	}
	if cred == "" {
		t.Fatal("importOut names no -authinfo")
	}
	old := "# written by hand\n" +
		"[smtp.office365.com]:587 app@example.com:oauth2 client_id=c refresh_token=rt-keep-me\n" +
		"[SMTP.gmail.com]:587 me@gmail.com:old-password\n" +
		"alice@example.org ali@gmail.com:alices-password\n"
	if err := os.WriteFile(cred, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runImportArgs(t, append([]string{"-n", "-f"}, args...)...)
	if code != exOK || !strings.Contains(out, "(added to the existing file; its other entries kept, 1 replaced ([SMTP.gmail.com]:587))") {
		t.Fatalf("-n: exit %d %s\n%s", code, errs, out)
	}
	if strings.Contains(out, "old-password") || strings.Contains(out, "rt-keep-me") || strings.Contains(out, "abcdefghijklmnop") {
		t.Fatal("-n shows a secret")
	}
	code, out, errs = runImportArgs(t, append([]string{"-f"}, args...)...)
	if code != exOK || !strings.Contains(out, "its other entries kept, 1 replaced ([SMTP.gmail.com]:587)") {
		t.Fatalf("-f: exit %d %s\n%s", code, errs, out)
	}
	b, _ := os.ReadFile(cred)
	for _, want := range []string{"# written by hand\n", "refresh_token=rt-keep-me\n", "alice@example.org ali@gmail.com:alices-password\n", "[smtp.gmail.com]:587 me@gmail.com:abcdefghijklmnop\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("credentials file lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "old-password") {
		t.Errorf("the replaced entry is still there:\n%s", b)
	}
	if fi, _ := os.Stat(cred); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}
