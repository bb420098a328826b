package main

// Tests that run the relayq binary as a process: `relayq serve` with its
// signals, and the commands that talk to it (healthcheck, sendmail, queue).

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildRelayq builds cmd/relayq into a temporary directory.
func buildRelayq(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs the daemon")
	}
	bin := filepath.Join(t.TempDir(), "relayq")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer is a log both the process and the test touch.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveProc is one `relayq serve` process in a private directory.
type serveProc struct {
	t      *testing.T
	bin    string
	dir    string
	listen string // the TCP listener, host:port
	env    []string
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan error
}

// newServe prepares a daemon relaying to relay ("[127.0.0.1]:port",
// without TLS or AUTH) with extra RELAYQ_* settings.
func newServe(t *testing.T, bin, relay string, extra ...string) *serveProc {
	dir, err := os.MkdirTemp("", "rqp") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "relayq.env")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	p := &serveProc{t: t, bin: bin, dir: dir, listen: listen}
	p.env = append(os.Environ(),
		"RELAYQ_CONFIG="+conf,
		"RELAYQ_RELAYHOST="+relay,
		"RELAYQ_TLS=none",
		"RELAYQ_AUTH=none", // the sink takes mail without AUTH
		"RELAYQ_AUTHINFO="+filepath.Join(dir, "no-authinfo"),
		"RELAYQ_SPOOL="+filepath.Join(dir, "queue.db"),
		"RELAYQ_SOCKET="+filepath.Join(dir, "submit.sock"),
		"RELAYQ_CONTROL_SOCKET="+filepath.Join(dir, "control.sock"),
		"RELAYQ_ALIASES=",
		"RELAYQ_LISTEN="+listen,
		"RELAYQ_DOMAIN=example.com",
		"RELAYQ_LOG_FILE=",
	)
	p.env = append(p.env, extra...)
	return p
}

// start runs `relayq serve` and waits until healthcheck passes.
func (p *serveProc) start() {
	p.t.Helper()
	p.log = &lockedBuffer{}
	p.cmd = exec.Command(p.bin, "serve")
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan error, 1)
	p.exited = exited
	go func(c *exec.Cmd) { exited <- c.Wait() }(p.cmd)
	p.t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = p.cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _, _ := p.run("", "healthcheck"); code == 0 {
			return
		}
		select {
		case err := <-exited:
			p.t.Fatalf("relayq serve exited: %v\n%s", err, p.log)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("relayq serve not healthy after 15s\n%s", p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and waits (at most within) for the exit.
func (p *serveProc) stop(sig syscall.Signal, within time.Duration) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err // for the clean-up
		return err
	case <-time.After(within):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, in the log
		select {
		case err := <-p.exited:
			p.exited <- err // for the clean-up
		case <-time.After(5 * time.Second):
		}
		p.t.Fatalf("relayq serve did not exit within %s of %v\n%s", within, sig, p.log)
		return nil
	}
}

// run runs `relayq ARGS...` with the daemon's environment and stdin.
func (p *serveProc) run(stdin string, args ...string) (code int, out, errOut string) {
	p.t.Helper()
	c := exec.Command(p.bin, args...)
	c.Env = p.env
	c.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	} else if err != nil {
		p.t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

// TestHealthcheckProcess runs relayq healthcheck against no daemon, a
// healthy one, a stopped (SIGSTOP) one and one that stopped.
func TestHealthcheckProcess(t *testing.T) {
	t.Parallel()
	bin := buildRelayq(t)
	p := newServe(t, bin, "[127.0.0.1]:9") // never dialled: nothing is queued

	oneLine := func(what, s, want string) {
		t.Helper()
		if strings.Count(s, "\n") != 1 || !strings.Contains(s, want) {
			t.Errorf("%s: want one line containing %q, got %q", what, want, s)
		}
	}
	code, _, errOut := p.run("", "healthcheck")
	if code != exUnavail {
		t.Errorf("no daemon: exit %d, want %d", code, exUnavail)
	}
	oneLine("no daemon", errOut, "no daemon answers on the control socket")

	p.start()
	code, out, errOut := p.run("", "healthcheck")
	if code != 0 || out != "ok (0 queued)\n" || errOut != "" {
		t.Errorf("healthy: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// A hung daemon: the probe gives up after its timeout.
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	code, _, errOut = p.run("", "healthcheck", "-timeout", "300ms")
	took := time.Since(began)
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code != exUnavail {
		t.Errorf("stopped daemon: exit %d, want %d", code, exUnavail)
	}
	oneLine("stopped daemon", errOut, "does not answer")
	if took > 10*time.Second {
		t.Errorf("stopped daemon: healthcheck returned after %s", took)
	}

	if err := p.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, p.log)
	}
	code, _, errOut = p.run("", "healthcheck")
	if code != exUnavail {
		t.Errorf("after stop: exit %d, want %d", code, exUnavail)
	}
	oneLine("after stop", errOut, "no daemon answers")

	if code, _, _ := p.run("", "healthcheck", "extra"); code != exUsage {
		t.Errorf("healthcheck extra: exit %d, want %d", code, exUsage)
	}
}
