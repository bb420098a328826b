package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/listener"
)

// readPassword takes the first line without its line end.
func TestReadPasswordStdin(t *testing.T) {
	for in, want := range map[string]string{"a b:c\n": "a b:c", "x\r\nsecond\n": "x", "no-end": "no-end"} {
		var errb bytes.Buffer
		if got, err := readPassword(stdio{strings.NewReader(in), nil, &errb}); err != nil || got != want {
			t.Errorf("readPassword(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestPasswd(t *testing.T) {
	for _, tt := range []struct {
		name, args, in string
		code           int
		errHas         string
	}{
		{"ok", "app1", "s3cret:with:colons\n", exOK, ""},
		{"empty", "app1", "\n", exDataErr, "empty"},
		{"no input", "app1", "", exDataErr, "empty"},
		{"colon in name", "a:b", "x\n", exUsage, "must not contain ':'"},
		{"space in name", "a b", "x\n", exUsage, "white space"},
		{"option-like name", "-x", "x\n", exUsage, "must not start with '-'"},
		{"no name", "", "x\n", exUsage, "usage: relayq passwd [-f FILE] NAME"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := strings.Fields(tt.args)
			if tt.args == "a b" {
				args = []string{"a b"}
			}
			code := runPasswd(stdio{strings.NewReader(tt.in), &out, &errb}, args)
			if code != tt.code || !strings.Contains(errb.String(), tt.errHas) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, errb.String(), tt.errHas)
			}
			if code != exOK {
				if out.Len() != 0 {
					t.Errorf("output on failure: %q", out.String())
				}
				return
			}
			if strings.Contains(errb.String()+out.String(), "s3cret") {
				t.Errorf("password echoed: %q %q", out.String(), errb.String())
			}
			// The line is accepted by the listener's users file parser,
			// and the password checks against it.
			u, err := listener.ParseUsers(strings.NewReader(out.String()), "users")
			if err != nil {
				t.Fatalf("users line %q: %v", out.String(), err)
			}
			pw := strings.TrimRight(tt.in, "\n")
			if _, err := u.Verify("app1", pw); err != nil {
				t.Errorf("hash does not check the password: %v", err)
			}
		})
	}
}

// openPTY returns a pseudo-terminal pair, or skips.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	sl, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open slave: %v", err)
	}
	t.Cleanup(func() { sl.Close() })
	return m, sl
}

// On a terminal: asked twice, echo off while typing and restored after,
// mismatched entries refused.
func TestPasswdTerminal(t *testing.T) {
	for _, tt := range []struct {
		name, first, second string
		code                int
	}{
		{"same", "hunter2", "hunter2", exOK},
		{"differ", "hunter2", "hunter3", exDataErr},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, sl := openPTY(t)
			before, err := unix.IoctlGetTermios(int(sl.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			tty := make(chan string, 1)
			go func() {
				var b bytes.Buffer
				_, _ = io.Copy(&b, m) // the master's fd is blocking: read until the slave closes
				tty <- b.String()
			}()
			var out, errb bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- runPasswd(stdio{sl, &out, &errb}, []string{"app1"}) }()
			// Type only once echo is off (the prompt is on errb, not the tty).
			echoOff := func() bool {
				tio, err := unix.IoctlGetTermios(int(sl.Fd()), unix.TCGETS)
				return err == nil && tio.Lflag&unix.ECHO == 0
			}
			deadline := time.Now().Add(5 * time.Second)
			for !echoOff() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if !echoOff() {
				t.Fatal("echo still on while the password is read")
			}
			fmt.Fprintf(m, "%s\n%s\n", tt.first, tt.second)
			code := <-done
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			after, err := unix.IoctlGetTermios(int(sl.Fd()), unix.TCGETS)
			if err != nil || after.Lflag != before.Lflag {
				t.Errorf("terminal modes not restored: %#x, want %#x (%v)", after.Lflag, before.Lflag, err)
			}
			// Nothing typed came back from the terminal (no echo): with
			// the slave closed, the master reads what was queued, then EIO.
			sl.Close()
			echoed := <-tty
			if strings.Contains(echoed, "hunter") {
				t.Errorf("password echoed: %q", echoed)
			}
			if !strings.Contains(errb.String(), "Password: ") || !strings.Contains(errb.String(), "Again: ") {
				t.Errorf("prompts: %q", errb.String())
			}
			if code == exOK && !strings.HasPrefix(out.String(), "app1:$2") {
				t.Errorf("output %q", out.String())
			}
		})
	}
}

// TestPasswdFile: -f writes the users file itself, mode 0600 (a file that
// was 0644 loses its group and other bits), adding a user or replacing the
// user's line in place, leaving the other lines and comments alone; the
// listener loads the result and each password checks.
func TestPasswdFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "smtpd-users")
	run := func(name, pw string, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := runPasswd(stdio{strings.NewReader(pw + "\n"), &out, &errb}, append(args, name)); code != exOK {
			t.Fatalf("passwd %v %s: exit %d: %s", args, name, code, errb.String())
		}
		if out.Len() != 0 || strings.Contains(errb.String(), pw) {
			t.Errorf("output %q, stderr %q", out.String(), errb.String())
		}
	}
	check := func(wantLines int, pws map[string]string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n != wantLines {
			t.Errorf("%d lines, want %d:\n%s", n, wantLines, b)
		}
		u, err := listener.LoadUsers(path)
		if err != nil {
			t.Fatalf("listener cannot load the file: %v", err)
		}
		for name, pw := range pws {
			if _, err := u.Verify(name, pw); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	run("app1", "first", "-f", path)
	check(1, map[string]string{"app1": "first"})
	run("app2", "second", "-f="+path)
	check(2, map[string]string{"app1": "first", "app2": "second"})
	// A comment and a 0644 mode, as `>>` left them.
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append([]byte("# users\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	run("app1", "changed", "-f", path)
	check(3, map[string]string{"app1": "changed", "app2": "second"})
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "# users\napp1:") {
		t.Errorf("order not kept:\n%s", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	// A directory that cannot be written: exit 73, file untouched.
	var out, errb bytes.Buffer
	if code := runPasswd(stdio{strings.NewReader("x\n"), &out, &errb}, []string{"-f", filepath.Join(dir, "no", "such"), "app3"}); code != exCantCrt {
		t.Errorf("unwritable directory: exit %d, want %d", code, exCantCrt)
	}
}
