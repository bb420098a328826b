package listener_test

// Benchmarks of the listener with the real spool behind it (bbolt, fsync
// on). This is an external test package so that the spool import stays
// out of the listener package itself (which may import only submit and
// maillog).
//
//	go test -run '^$' -bench 'Listener' -benchtime 1x ./listener
//
// BenchmarkListenerVsPostfix needs root, Postfix (/usr/sbin/postfix) and
// its smtp-source; it starts a throwaway Postfix instance on a loopback
// port that puts every message on hold (queued with fsync, never
// delivered), and drives relayq's listener and Postfix's smtpd with the
// same smtp-source command in alternating rounds. Knobs (environment):
// RELAYQ_BENCH_ROUNDS (default 5), RELAYQ_BENCH_MESSAGES (per round,
// default 2000), RELAYQ_BENCH_SESSIONS (default 20), RELAYQ_BENCH_KEEP=1
// to keep the connections open between messages (smtp-source -d).

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/spool"
)

// startRelayq serves the listener on a loopback port with a fresh spool
// in dir, logging like production (text, info level) to a file.
func startRelayq(tb testing.TB, dir string) (addr string, sp *spool.Spool, stop func()) {
	tb.Helper()
	sp, err := spool.Open(filepath.Join(dir, "queue.db"), spool.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "relayq.log"))
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := listener.New(listener.Options{
		Submit:   sp.Submit,
		Hostname: "bench.relayq.test",
		Log:      maillog.Wrap(slog.New(slog.NewTextHandler(logf, nil))),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ln) }()
	return ln.Addr().String(), sp, func() {
		srv.Close()
		<-done
		sp.Close()
		logf.Close()
	}
}

// message is a 2 KB message (headers and body).
func message() string {
	var b strings.Builder
	b.WriteString("From: bench@example.com\r\nTo: sink@example.org\r\nSubject: listener benchmark\r\nMessage-ID: <bench@example.com>\r\n\r\n")
	for b.Len() < 2048-2 {
		b.WriteString(strings.Repeat("0123456789", 7) + "\r\n")
	}
	return b.String()[:2046] + "\r\n"
}

// BenchmarkListener: b.N messages of 2 KB through 20 parallel sessions
// of a Go SMTP client (one connection per session, kept open), each
// acknowledged only after the spool commit (fsync).
func BenchmarkListener(b *testing.B) {
	addr, sp, stop := startRelayq(b, b.TempDir())
	defer stop()
	msg := message()
	const sessions = 20
	var next sync.WaitGroup
	work := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	errc := make(chan error, sessions)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	for s := 0; s < sessions; s++ {
		next.Add(1)
		go func() {
			defer next.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			expect := func(code string) error {
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return err
					}
					if !strings.HasPrefix(l, code) {
						return fmt.Errorf("reply %q, want %s", l, code)
					}
					if len(l) < 4 || l[3] != '-' {
						return nil
					}
				}
			}
			if err := expect("220"); err != nil {
				errc <- err
				return
			}
			fmt.Fprintf(c, "EHLO bench.test\r\n")
			if err := expect("250"); err != nil {
				errc <- err
				return
			}
			for range work {
				// Lock-step, as smtp-source: MAIL, RCPT, DATA, body.
				for _, step := range []struct{ cmd, code string }{
					{"MAIL FROM:<bench@example.com>\r\n", "250"},
					{"RCPT TO:<sink@example.org>\r\n", "250"},
					{"DATA\r\n", "354"},
					{msg + ".\r\n", "250"},
				} {
					if _, err := c.Write([]byte(step.cmd)); err != nil {
						errc <- err
						return
					}
					if err := expect(step.code); err != nil {
						errc <- err
						return
					}
				}
			}
			fmt.Fprintf(c, "QUIT\r\n")
		}()
	}
	next.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	st, err := sp.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if st.Count != b.N {
		b.Fatalf("spool holds %d messages, want %d", st.Count, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// postfixSink is a throwaway Postfix instance whose smtpd puts every
// message on hold: cleanup writes (and fsyncs) the queue file, nothing is
// delivered.
type postfixSink struct {
	dir  string
	port int
}

func startPostfix(tb testing.TB) *postfixSink {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to run a Postfix instance")
	}
	for _, p := range []string{"/usr/sbin/postfix", "/usr/sbin/smtp-source"} {
		if _, err := os.Stat(p); err != nil {
			tb.Skipf("%s not installed (Debian postfix)", p)
		}
	}
	dir, err := os.MkdirTemp("", "relayq-bench-postfix-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	for _, d := range []string{"etc", "queue", "data", "log"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	if err := exec.Command("chown", "postfix:postfix", filepath.Join(dir, "data")).Run(); err != nil {
		tb.Fatalf("chown data dir: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	name := fmt.Sprintf("postfix-relayqbench%d", os.Getpid())
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
config_directory = %[1]s/etc
queue_directory = %[1]s/queue
data_directory = %[1]s/data
meta_directory = /etc/postfix
multi_instance_name = %[2]s
syslog_name = %[2]s
maillog_file = %[1]s/log/maillog
maillog_file_prefixes = %[1]s/log
myhostname = sink.relayq.test
mydomain = relayq.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
relayhost =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_data_restrictions = check_client_access static:HOLD
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_error_sleep_time = 0
default_process_limit = 100
notify_classes =
`, dir, name)
	masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, port)
	os.WriteFile(filepath.Join(dir, "etc", "main.cf"), []byte(mainCF), 0o644)
	os.WriteFile(filepath.Join(dir, "etc", "master.cf"), []byte(masterCF), 0o644)
	pf := &postfixSink{dir: dir, port: port}
	if out, err := exec.Command("postfix", "-c", filepath.Join(dir, "etc"), "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log", "maillog"))
		pf.stop(tb)
		tb.Fatalf("postfix start: %v\n%s\n%s", err, out, log)
	}
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", pf.addr(), time.Second)
		if err == nil {
			l, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(l, "220") {
				break
			}
		}
		if i > 100 {
			pf.stop(tb)
			tb.Fatalf("postfix smtpd on %s does not answer", pf.addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pf
}

func (p *postfixSink) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// stop ends the instance's master process by its PID (it stops its
// children) and removes the directory.
func (p *postfixSink) stop(tb testing.TB) {
	defer os.RemoveAll(p.dir)
	b, err := os.ReadFile(filepath.Join(p.dir, "queue", "pid", "master.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 200; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Errorf("postfix master %d still running after SIGTERM", pid)
}

// held counts the messages Postfix has queued (hold queue files).
func (p *postfixSink) held() int {
	n := 0
	filepath.Walk(filepath.Join(p.dir, "queue", "hold"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// smtpSource runs Postfix's smtp-source and returns the wall time.
func smtpSource(tb testing.TB, addr string, sessions, messages int, keep bool) time.Duration {
	args := []string{"-s", strconv.Itoa(sessions), "-m", strconv.Itoa(messages), "-l", "2048",
		"-f", "bench@example.com", "-t", "sink@example.org", "-M", "bench.test"}
	if keep {
		args = append(args, "-d")
	}
	args = append(args, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "/usr/sbin/smtp-source", args...).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		tb.Fatalf("smtp-source %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return d
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkListenerVsPostfix: relayq's listener (real spool, fsync) and
// Postfix's smtpd (hold queue, fsync) under the same smtp-source load, in
// alternating rounds; it reports both medians and their ratio. Run it
// with -benchtime 1x: one iteration is the whole comparison.
func BenchmarkListenerVsPostfix(b *testing.B) {
	pf := startPostfix(b)
	defer pf.stop(b)
	rounds := envInt("RELAYQ_BENCH_ROUNDS", 5)
	msgs := envInt("RELAYQ_BENCH_MESSAGES", 2000)
	sessions := envInt("RELAYQ_BENCH_SESSIONS", 20)
	keep := os.Getenv("RELAYQ_BENCH_KEEP") == "1"

	for i := 0; i < b.N; i++ {
		var rq, px []float64
		for r := 0; r < rounds; r++ {
			dir := b.TempDir()
			addr, sp, stop := startRelayq(b, dir)
			// Alternate who goes first, so that neither always gets the
			// warmer page cache.
			runRQ := func() {
				d := smtpSource(b, addr, sessions, msgs, keep)
				rq = append(rq, float64(msgs)/d.Seconds())
			}
			runPF := func() {
				before := pf.held()
				d := smtpSource(b, pf.addr(), sessions, msgs, keep)
				px = append(px, float64(msgs)/d.Seconds())
				if got := pf.held() - before; got != msgs {
					b.Errorf("postfix queued %d of %d messages", got, msgs)
				}
			}
			if r%2 == 0 {
				runRQ()
				runPF()
			} else {
				runPF()
				runRQ()
			}
			st, err := sp.Stats()
			stop()
			if err != nil {
				b.Fatal(err)
			}
			if st.Count != msgs {
				b.Fatalf("relayq spool holds %d of %d messages", st.Count, msgs)
			}
			b.Logf("round %d: relayq %.0f msgs/s, postfix %.0f msgs/s", r+1, rq[len(rq)-1], px[len(px)-1])
		}
		mrq, mpx := median(rq), median(px)
		b.Logf("smtp-source -s %d -m %d -l 2048%s: median relayq %.0f msgs/s, postfix smtpd %.0f msgs/s, ratio %.2f (%d rounds)",
			sessions, msgs, map[bool]string{true: " -d", false: ""}[keep], mrq, mpx, mrq/mpx, rounds)
		b.ReportMetric(mrq, "relayq-msgs/s")
		b.ReportMetric(mpx, "postfix-msgs/s")
		b.ReportMetric(mrq/mpx, "ratio")
	}
}
