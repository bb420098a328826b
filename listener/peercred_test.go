package listener

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv names the socket a re-executed test binary submits to (see
// TestMain): the way to be a client with another uid.
const helperEnv = "RELAYQ_LISTENER_TEST_CLIENT_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		if err := helperClient(path, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "helper client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperClient submits one message on the unix socket and prints every
// reply line.
func helperClient(path string, out io.Writer) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	reply := func() error {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			fmt.Fprint(out, l)
			if len(l) < 4 || l[3] != '-' {
				return nil
			}
		}
	}
	if err := reply(); err != nil {
		return err
	}
	for _, cmd := range []string{"EHLO localhost", "MAIL FROM:<someone@example.com>", "RCPT TO:<b@example.org>", "DATA", "Subject: from nobody\r\n\r\nhi\r\n.", "QUIT"} {
		if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
			return err
		}
		if err := reply(); err != nil {
			return err
		}
	}
	return nil
}

// TestPeerCredOtherUser runs the client as "nobody" (uid 65534) in a
// child process: the envelope's Origin must name that uid, and since
// nobody is not trusted and sets another sender, the message carries an
// X-Authentication-Warning.
func TestPeerCredOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the client is run as uid 65534 (setuid in the child)")
	}
	dir, err := os.MkdirTemp("", "relayq-peercred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "submit.sock")
	k := &sink{}
	srv, err := New(Options{Submit: k.Submit, Hostname: "relay.test", Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenUnix(path, 0o666, -1)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUnix(ln)
	defer srv.Close()

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as uid 65534: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "250 2.0.0 Ok: queued as TESTID000001") {
		t.Fatalf("client saw:\n%s", out)
	}
	msgs := k.all()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if msgs[0].env.Origin != "uid=65534" {
		t.Errorf("origin %q, want uid=65534", msgs[0].env.Origin)
	}
	name, err := userLookupID(65534)
	if err != nil {
		name = "uid 65534"
	}
	want := "X-Authentication-Warning: relay.test: " + name + " set sender to someone@example.com using -f\r\nSubject: from nobody\r\n"
	if !strings.HasPrefix(msgs[0].body, want) {
		t.Errorf("body %q, want prefix %q", msgs[0].body, want)
	}
}
