// Package soak holds the daemon's soak test and its benchmarks: the real
// `relayq serve` binary, a counting SMTP sink in the test process on
// loopback, and chaos (the sink stopped and started, the daemon killed with
// SIGKILL and restarted) while messages are submitted through the SMTP
// listener.
//
//	RELAYQ_SOAK_N=10000 go test -count=1 -v -run TestSoak ./test/t-40-soak   # default 2,000 (1,000 with -short)
//	go test -count=1 -run XXX -bench . -benchtime 1x ./test/t-40-soak   # idle RSS and drain rate
//
// RELAYQ_BIN names a prebuilt relayq binary; otherwise the test builds one.
package soak

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/internal/testlib"
)

// ---------------------------------------------------------------------------
// the sink: a go-smtp server that counts what it receives

type sink struct {
	addr string

	mu      sync.Mutex
	stopSrv func()         // stops the running server; nil while stopped
	got     map[string]int // X-Soak-Seq -> copies received
	tries   map[string]int // X-Soak-Seq/X-Soak-Try -> copies received
	total   int
}

func newSink(t testing.TB) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{addr: ln.Addr().String(), got: map[string]int{}, tries: map[string]int{}}
	s.serve(t, ln)
	return s
}

func (s *sink) serve(t testing.TB, ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	stop := testlib.ServeSMTP(t, srv, ln)
	s.mu.Lock()
	s.stopSrv = stop
	s.mu.Unlock()
}

func (s *sink) start(t testing.TB) {
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // the port may linger briefly
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart sink on %s: %v", s.addr, err)
	}
	s.serve(t, ln)
}

// stop closes the sink's listener and every connection: a message in
// flight is not counted (relayq sees the connection drop and retries).
func (s *sink) stop() {
	s.mu.Lock()
	stop := s.stopSrv
	s.stopSrv = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (s *sink) counts() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got), s.total
}

type sinkSession struct {
	s *sink
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Reset()                               {}
func (ss *sinkSession) Logout() error                        { return nil }
func (ss *sinkSession) AuthMechanisms() []string             { return nil }
func (ss *sinkSession) Auth(string) (interface{}, error)     { return nil, errors.New("no") }
func (ss *sinkSession) Data(r io.Reader) error {
	br := bufio.NewReader(r)
	var seq, try string
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(line, "X-Soak-Seq: "); ok {
			seq = v
		}
		if v, ok := strings.CutPrefix(line, "X-Soak-Try: "); ok {
			try = v
		}
		if line == "" || err != nil {
			break
		}
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.total++
	if seq != "" {
		ss.s.got[seq]++
		ss.s.tries[seq+"/"+try]++
	}
	return nil
}

// ---------------------------------------------------------------------------
// the daemon process

func relayqBin(t testing.TB) string {
	if b := os.Getenv("RELAYQ_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "relayq")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/relayq/relayq/cmd/relayq")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/relayq: %v\n%s", err, out)
	}
	return bin
}

type daemonProc struct {
	t      testing.TB
	bin    string
	dir    string
	env    []string
	listen string
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
	starts int
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newDaemon(t testing.TB, bin, relay string, extra ...string) *daemonProc {
	dir, err := os.MkdirTemp("/tmp", "rq40-") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() { // a failure keeps the spool and the log to look at
			os.RemoveAll(dir)
		}
	})
	conf := filepath.Join(dir, "relayq.env")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{t: t, bin: bin, dir: dir, listen: freePort(t)}
	d.env = append(os.Environ(),
		"RELAYQ_CONFIG="+conf,
		"RELAYQ_RELAYHOST=[127.0.0.1]:"+strings.Split(relay, ":")[1],
		"RELAYQ_TLS=none",
		"RELAYQ_AUTHINFO="+filepath.Join(dir, "no-authinfo"),
		"RELAYQ_AUTH=none", // the sink takes mail without AUTH
		"RELAYQ_SPOOL="+filepath.Join(dir, "queue.db"),
		"RELAYQ_SOCKET="+filepath.Join(dir, "submit.sock"),
		"RELAYQ_CONTROL_SOCKET="+filepath.Join(dir, "control.sock"),
		"RELAYQ_ALIASES="+filepath.Join(dir, "aliases"),
		"RELAYQ_LISTEN="+d.listen,
		"RELAYQ_DOMAIN=soak.test",
		"RELAYQ_LOG_LEVEL=warn",
		"RELAYQ_BACKOFF_MIN=200ms",
		"RELAYQ_BACKOFF_MAX=2s",
		"RELAYQ_LEASE_TIME=3s",
		"RELAYQ_SMTP_CONNECT_TIMEOUT=2s",
		"RELAYQ_DRAIN_TIMEOUT=2s",
	)
	d.env = append(d.env, extra...)
	return d
}

func (d *daemonProc) spool() string { return filepath.Join(d.dir, "queue.db") }

// start runs `relayq serve` and waits until its listener answers.
func (d *daemonProc) start() {
	d.t.Helper()
	var err error
	d.log, err = os.OpenFile(filepath.Join(d.dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.cmd = exec.Command(d.bin, "serve")
	d.cmd.Env = d.env
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.starts++
	exited := make(chan error, 1)
	d.exited = exited
	go func(c *exec.Cmd) { exited <- c.Wait() }(d.cmd)
	if d.starts == 1 {
		d.t.Cleanup(func() { d.terminate() })
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.listen, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(d.dir, "serve.log"))
			d.t.Fatalf("relayq serve exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatal("relayq serve did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills the daemon with SIGKILL (no chance to clean up).
func (d *daemonProc) kill9() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
	d.log.Close()
}

// terminate stops the daemon with SIGTERM and waits for it.
func (d *daemonProc) terminate() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Errorf("relayq serve did not stop within 20 s of SIGTERM")
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
	}
	d.cmd = nil
	d.log.Close()
}

func (d *daemonProc) pid() int { return d.cmd.Process.Pid }

// ---------------------------------------------------------------------------
// submitting through the listener

// client sends messages over one SMTP session, reconnecting after errors.
type client struct {
	addr string
	c    *smtp.Client
}

func (cl *client) send(seq, try int) error {
	if cl.c == nil {
		c, err := smtp.Dial(cl.addr)
		if err != nil {
			return err
		}
		if err := c.Hello("soak-client"); err != nil {
			c.Close()
			return err
		}
		cl.c = c
	}
	err := cl.transaction(seq, try)
	if err != nil {
		cl.c.Close()
		cl.c = nil
	}
	return err
}

func (cl *client) transaction(seq, try int) error {
	if err := cl.c.Mail("soak@soak.test", nil); err != nil {
		return err
	}
	if err := cl.c.Rcpt("sink@example.net", nil); err != nil {
		return err
	}
	w, err := cl.c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "From: soak@soak.test\r\nTo: sink@example.net\r\nSubject: soak %d\r\nX-Soak-Seq: %d\r\nX-Soak-Try: %d\r\n\r\n%s", seq, seq, try, body2k)
	return w.Close()
}

func (cl *client) close() {
	if cl.c != nil {
		cl.c.Quit()
		cl.c.Close()
	}
}

var body2k = strings.Repeat(strings.Repeat("x", 62)+"\r\n", 32)

// ---------------------------------------------------------------------------
// the soak test

func TestSoak(t *testing.T) {
	// 2,000 messages in a plain `go test ./...` (CI), 1,000 with -short;
	// run.sh (test/run-all) sets RELAYQ_SOAK_N=10000.
	n := 2000
	if testing.Short() {
		n = 1000
	}
	if v, err := strconv.Atoi(os.Getenv("RELAYQ_SOAK_N")); err == nil && v > 0 {
		n = v
	}
	bin := relayqBin(t)
	sk := newSink(t)
	d := newDaemon(t, bin, sk.addr)
	d.start()

	var mu sync.Mutex
	acked := map[int]bool{}
	resubmits := 0
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{addr: d.listen}
			defer cl.close()
			for seq := range jobs {
				for try := 1; ; try++ {
					if err := cl.send(seq, try); err == nil {
						mu.Lock()
						acked[seq] = true
						if try > 1 {
							resubmits++
						}
						mu.Unlock()
						break
					}
					time.Sleep(50 * time.Millisecond)
					if try > 2000 {
						t.Errorf("message %d never acknowledged", seq)
						return
					}
				}
			}
		}()
	}

	// Chaos, driven by how far submission got.
	chaosDone := make(chan struct{})
	events := []struct {
		at   float64
		what string
		do   func()
	}{
		{0.10, "sink stopped", sk.stop},
		{0.20, "sink started", func() { sk.start(t) }},
		{0.30, "daemon killed with SIGKILL and restarted", func() { d.kill9(); time.Sleep(200 * time.Millisecond); d.start() }},
		{0.45, "sink stopped", sk.stop},
		{0.55, "daemon killed with SIGKILL and restarted", func() { d.kill9(); time.Sleep(200 * time.Millisecond); d.start() }},
		{0.65, "sink started", func() { sk.start(t) }},
		{0.80, "sink stopped", sk.stop},
		{0.90, "sink started", func() { sk.start(t) }},
	}
	go func() {
		defer close(chaosDone)
		for _, e := range events {
			for ackedCount() < int(e.at*float64(n)) {
				time.Sleep(5 * time.Millisecond)
			}
			e.do()
			t.Logf("%6d acknowledged: %s", ackedCount(), e.what)
		}
	}()

	start := time.Now()
	for i := 1; i <= n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	<-chaosDone
	t.Logf("%d messages acknowledged in %s (%d resubmitted by clients after a broken session)", ackedCount(), time.Since(start).Round(time.Millisecond), resubmits)

	// Every acknowledged message must arrive. The wait is shorter than
	// the scenario's time limit (run-all, 180 s), so that a stall is
	// reported with the daemon's goroutines (SIGQUIT makes the Go runtime
	// print them to serve.log) instead of the scenario being killed.
	deadline := time.Now().Add(100 * time.Second)
	for {
		missing := 0
		sk.mu.Lock()
		for seq := range acked {
			if sk.got[strconv.Itoa(seq)] == 0 {
				missing++
			}
		}
		sk.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			if d.cmd != nil {
				_ = d.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-d.exited:
				case <-time.After(10 * time.Second):
				}
				d.cmd = nil
			}
			log, _ := os.ReadFile(filepath.Join(d.dir, "serve.log"))
			t.Fatalf("%d acknowledged messages never delivered (spool and log kept in %s)\nlog tail:\n%s", missing, d.dir, tail(string(log), 60000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	distinct, total := sk.counts()
	sk.mu.Lock()
	redelivered := 0 // the same submission delivered twice (attempt in flight at a kill or sink stop)
	for _, c := range sk.tries {
		if c > 1 {
			redelivered += c - 1
		}
	}
	sk.mu.Unlock()
	t.Logf("soak: %d acknowledged, %d delivered (distinct), %d received in all: %d duplicates "+
		"(%d redeliveries of one submission, %d from clients resubmitting after a broken session), 0 lost; %s total",
		len(acked), distinct, total, total-distinct, redelivered, total-distinct-redelivered, time.Since(start).Round(time.Millisecond))
	fmt.Printf("SOAK n=%d acknowledged=%d lost=0 duplicates=%d redeliveries=%d client_resubmits=%d daemon_starts=%d elapsed=%s\n",
		n, len(acked), total-distinct, redelivered, total-distinct-redelivered, d.starts, time.Since(start).Round(time.Millisecond))
	if distinct < len(acked) {
		t.Fatalf("lost messages: %d acknowledged, %d delivered", len(acked), distinct)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
