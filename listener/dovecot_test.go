package listener

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startDovecot runs a private Dovecot (auth service only, passwd-file
// users) and returns its auth-client socket. It is stopped by PID at the
// end of the test.
func startDovecot(t *testing.T, users string) string {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		t.Skip("dovecot not installed (Debian dovecot-core; test/smarthost/install.sh installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("dovecot's master process needs root")
	}
	dir, err := os.MkdirTemp("", "relayq-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "dovecot.conf")
	cfg := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
instance_name = relayq-listener-test-%[2]d
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = %[3]s
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
}
`, dir, os.Getpid(), passwd)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	cmd := exec.Command(bin, "-F", "-c", conf)
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	sock := filepath.Join(dir, "run", "auth-client")
	for i := 0; i < 200; i++ {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return sock
		}
		time.Sleep(25 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
	so, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	t.Fatalf("dovecot did not create %s\n%s\n%s", sock, log, so)
	return ""
}

func TestDovecotAuth(t *testing.T) {
	sock := startDovecot(t, "dave:{PLAIN}dave pw\nalice:{PLAIN}dovecot-alice\n")
	users := usersFile(t, "alice", "file-alice")
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, DovecotSocket: sock, Users: users, MyNetworks: []netipPrefix{mustPrefix("10.0.0.0/8")}})
	tests := []struct {
		name, auth, second, reply string
	}{
		{"plain good", "AUTH PLAIN " + b64("\x00dave\x00dave pw"), "", "235"},
		{"login good", "AUTH LOGIN " + b64("dave"), b64("dave pw"), "235"},
		// The users file decides for the names it lists.
		{"file user", "AUTH PLAIN " + b64("\x00alice\x00file-alice"), "", "235"},
		{"file user dovecot pw", "AUTH PLAIN " + b64("\x00alice\x00dovecot-alice"), "", "535"},
		// Failures last: Dovecot's auth penalty slows later attempts.
		{"plain bad", "AUTH PLAIN " + b64("\x00dave\x00wrong"), "", "535 5.7.8"},
		{"unknown", "AUTH PLAIN " + b64("\x00nobody\x00x"), "", "535 5.7.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, "tcp", addr)
			r.cmd("EHLO c.test", "250")
			if tt.second != "" {
				r.cmd(tt.auth, "334")
				r.cmd(tt.second, tt.reply)
			} else {
				r.cmd(tt.auth, tt.reply)
			}
			if tt.reply == "235" {
				r.cmd("MAIL FROM:<d@example.com>", "250")
			} else {
				r.cmd("MAIL FROM:<d@example.com>", "530")
			}
		})
	}
}

func TestDovecotDown(t *testing.T) {
	_, addr := startTCP(t, Options{Submit: (&sink{}).Submit, DovecotSocket: filepath.Join(t.TempDir(), "no-such-socket")})
	r := dialRaw(t, "tcp", addr)
	r.cmd("EHLO c.test", "250")
	r.cmd("AUTH PLAIN "+b64("\x00dave\x00pw"), "454 4.7.0")
	// Not counted as a failed password: more attempts are answered.
	r.cmd("AUTH PLAIN "+b64("\x00dave\x00pw"), "454 4.7.0")
	r.cmd("AUTH PLAIN "+b64("\x00dave\x00pw"), "454 4.7.0")
	r.cmd("AUTH PLAIN "+b64("\x00dave\x00pw"), "454 4.7.0")
}

func TestDovecotEscape(t *testing.T) {
	for _, s := range []string{"plain", "tab\there", "nl\nx", "\x01one", "\x01t literal", "cr\r"} {
		if got := dovecotUnescape(dovecotEscape(s)); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
}
