// Command sendmailbench measures what a sendmail caller waits for with
// relayq, beside the floor of the same machine in the same run, and how
// fast 1,000 submissions are queued and relayed to a local SMTP sink.
// bench/sendmail.sh builds and runs it; see there for the figures it
// prints.
//
// Everything runs on loopback in a private directory: a go-smtp sink
// (no TLS, no AUTH: RELAYQ_TLS=none, no credentials) stands in for the
// smarthost, relayq runs with a private spool and sockets.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	smtp "github.com/emersion/go-smtp"
)

func main() {
	relayq := flag.String("relayq", "", "relayq binary")
	small := flag.String("sendmail", "", "the small sendmail binary (cmd/sendmail, relayq beside it): measured as the caller's sendmail instead of `relayq sendmail`")
	floor := flag.String("floor", "", "floor binary (bench/floor)")
	dir := flag.String("dir", "", "private work directory (created)")
	runs := flag.Int("runs", 200, "runs per latency figure")
	n := flag.Int("n", 1000, "messages per throughput figure")
	par := flag.Int("par", 8, "parallel submitters")
	postfix := flag.String("postfix", "", "Postfix config directory of a running instance: also measure Postfix's sendmail (postdrop) beside the floor")
	flag.Parse()
	if *relayq == "" || *floor == "" || *dir == "" {
		flag.Usage()
		os.Exit(64)
	}
	b := &bench{relayq: *relayq, small: *small, floor: *floor, dir: *dir, runs: *runs, postfix: *postfix}
	if err := b.run(*n, *par); err != nil {
		log.Fatalf("sendmailbench: %v", err)
	}
}

type bench struct {
	relayq, floor, dir string
	small              string // cmd/sendmail binary, "" = `relayq sendmail`
	postfix            string // Postfix config directory, "" = not measured
	runs               int
	msg                []byte
	env                []string
	sink               *sink
	daemon             *exec.Cmd
	floorCmd           *exec.Cmd
	lastMax            time.Duration // the slowest candidate run of the last latency figure
}

func (b *bench) run(n, par int) error {
	if err := os.MkdirAll(filepath.Join(b.dir, "spool"), 0o700); err != nil {
		return err
	}
	b.msg = message()
	s, err := startSink()
	if err != nil {
		return err
	}
	defer s.close()
	b.sink = s
	authinfo := filepath.Join(b.dir, "authinfo")
	if err := os.WriteFile(authinfo, nil, 0o600); err != nil {
		return err
	}
	b.env = append(cleanEnv(),
		"RELAYQ_CONFIG=",
		"RELAYQ_SPOOL="+filepath.Join(b.dir, "spool", "queue.db"),
		"RELAYQ_SOCKET="+filepath.Join(b.dir, "submit.sock"),
		"RELAYQ_CONTROL_SOCKET="+filepath.Join(b.dir, "control.sock"),
		"RELAYQ_RELAYHOST=[127.0.0.1]:"+fmt.Sprint(s.port),
		"RELAYQ_TLS=none",
		"RELAYQ_AUTH=none", // the sink trusts loopback; no credential is configured
		"RELAYQ_AUTHINFO="+authinfo,
		"RELAYQ_ALIASES="+filepath.Join(b.dir, "aliases"),
		"RELAYQ_DOMAIN=bench.example",
		"RELAYQ_LISTEN=",
		"RELAYQ_LOG_LEVEL=warn",
	)

	fmt.Printf("relayq sendmail benchmark: %d-octet message, %d runs per latency figure, median of the caller's wait\n", len(b.msg), b.runs)
	fmt.Printf("caller's sendmail: %s\n", strings.Join(b.sendmailCmd().Args, " "))
	fmt.Printf("machine: %d CPUs (runtime.NumCPU), load average %s\n\n", numCPU(), loadavg())

	// Each figure is measured in rounds that alternate a floor run and a
	// candidate run, so that the ratio compares runs made under the same
	// load (the machine may be shared).
	b.floorCmd = exec.Command(b.floor, filepath.Join(b.dir, "floor.out"))
	startOnly, floorA, err := b.latency("relayq start", exec.Command(b.relayq, "sendmail", "-q1h"))
	if err != nil {
		return err
	}
	fmt.Printf("%-44s %8.2f ms\n", "floor (static binary + 1 fsync)", ms(floorA))
	fmt.Printf("%-44s %8.2f ms  (%.1fx floor; process start, config, options; no I/O)\n", "relayq sendmail -q1h (start-up only)", ms(startOnly), ratio(startOnly, floorA))

	noDaemon, floorB, err := b.latency("sendmail, no daemon", b.sendmailCmd())
	if err != nil {
		return err
	}
	fmt.Printf("%-44s %8.2f ms  (%.1fx floor of %.2f ms in the same rounds; max %.2f ms, %.1fx the median)\n", "sendmail -t -i, no daemon (drop directory)", ms(noDaemon), ratio(noDaemon, floorB), ms(floorB), ms(b.lastMax), ratio(b.lastMax, noDaemon))
	if got, ok := b.sink.waitFor(int64(b.runs)+3, 60*time.Second); ok {
		fmt.Printf("%-44s all %d relayed by the detached queue runs\n", "", got)
	} else {
		fmt.Printf("%-44s only %d of %d relayed by the detached queue runs within 60 s\n", "", got, b.runs+3)
	}
	// Daemonless runs share work: one run holds the run lock and relays
	// what the others drop, over the connections it keeps. Let the runs
	// of the latency figure end first (a run lingers 250 ms for more), so
	// that the figure counts the connections of its own runs.
	time.Sleep(time.Second)
	conns := b.sink.conns.Load()
	sub, rel, got, err := b.throughput(n, 1)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%d serial submissions (no daemon)", n)
	if got < int64(n) {
		fmt.Printf("%-44s submitted in %.2f s (%.0f/s); only %d relayed within 120 s\n", what, sub.Seconds(), float64(n)/sub.Seconds(), got)
	} else {
		fmt.Printf("%-44s submitted in %.2f s (%.0f/s), all relayed to the sink in %.2f s (%.0f/s) over %d SMTP connection(s)\n",
			what, sub.Seconds(), float64(n)/sub.Seconds(), rel.Seconds(), float64(n)/rel.Seconds(), b.sink.conns.Load()-conns)
	}

	if err := b.startDaemon(); err != nil {
		fmt.Printf("\ndaemon: %v\nfigures with the daemon running: not measured\n", err)
		return nil
	}
	defer b.stopDaemon()
	withDaemon, floorC, err := b.latency("sendmail, daemon", b.sendmailCmd())
	if err != nil {
		return err
	}
	fmt.Printf("%-44s %8.2f ms  (%.1fx floor of %.2f ms in the same rounds)\n", "sendmail -t -i, daemon running (socket)", ms(withDaemon), ratio(withDaemon, floorC), ms(floorC))
	if b.postfix != "" {
		// Postfix's sendmail hands the message to postdrop, which writes
		// it to the maildrop queue (fsync) before the caller goes on:
		// the same promise, measured in the same alternating rounds.
		pf, floorD, err := b.latency("postfix sendmail", exec.Command("/usr/sbin/sendmail", "-C", b.postfix, "-t", "-i"))
		if err != nil {
			return err
		}
		fmt.Printf("%-44s %8.2f ms  (%.1fx floor of %.2f ms in the same rounds)\n", "Postfix sendmail -t -i (postdrop)", ms(pf), ratio(pf, floorD), ms(floorD))
		fmt.Printf("%-44s %8.2f\n", "relayq (daemon) / Postfix, floor-normalised", ratio(withDaemon, pf)*ratio(floorD, floorC))
	}
	// Let the latency runs' messages drain before the throughput runs.
	b.sink.waitFor(int64(2*(b.runs+3)), 60*time.Second)

	for _, p := range []int{1, par} {
		sub, rel, got, err := b.throughput(n, p)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("%d serial submissions (daemon)", n)
		if p > 1 {
			what = fmt.Sprintf("%d submissions, %d-way parallel (daemon)", n, p)
		}
		if got < int64(n) {
			fmt.Printf("%-44s submitted in %.2f s (%.0f/s); only %d relayed within 120 s\n", what, sub.Seconds(), float64(n)/sub.Seconds(), got)
			continue
		}
		fmt.Printf("%-44s submitted in %.2f s (%.0f/s), all relayed to the sink in %.2f s (%.0f/s)\n",
			what, sub.Seconds(), float64(n)/sub.Seconds(), rel.Seconds(), float64(n)/rel.Seconds())
	}
	fmt.Printf("\nreference (issue 6, 2-core machine): floor ~1.2 ms, dma 3.3 ms, nullmailer 5.3 ms, Postfix 12 ms, msmtp 48 ms; target with the daemon: within 2x of the floor\n")
	return nil
}

// message is a 2 KB message as `sendmail -t` callers hand it over.
func message() []byte {
	var b bytes.Buffer
	b.WriteString("From: Bench <bench@bench.example>\nTo: sink@example.net\nSubject: benchmark message\nContent-Type: text/plain; charset=us-ascii\n\n")
	line := "The quick brown fox jumps over the lazy dog, again and again and again.\n"
	for b.Len() < 2048-len(line) {
		b.WriteString(line)
	}
	for b.Len() < 2047 {
		b.WriteByte('.')
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// sendmailCmd is the caller's `sendmail -t -i`: the small binary when
// given (what /usr/sbin/sendmail is), else `relayq sendmail`.
func (b *bench) sendmailCmd() *exec.Cmd {
	if b.small != "" {
		return exec.Command(b.small, "-t", "-i")
	}
	return exec.Command(b.relayq, "sendmail", "-t", "-i")
}

// latency runs 3 warm-up rounds and then b.runs rounds of one floor run
// followed by one run of template (a fresh copy each time); it returns the
// median wall time (start to exit) of the candidate and of the floor.
func (b *bench) latency(what string, template *exec.Cmd) (cand, floor time.Duration, err error) {
	var ct, ft []time.Duration
	b.lastMax = 0
	for i := 0; i < b.runs+3; i++ {
		f, err := b.once(b.floorCmd)
		if err != nil {
			return 0, 0, fmt.Errorf("floor: %w", err)
		}
		d, err := b.once(template)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", what, err)
		}
		if i >= 3 {
			ct, ft = append(ct, d), append(ft, f)
			b.lastMax = max(b.lastMax, d)
		}
	}
	return median(ct), median(ft), nil
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func (b *bench) once(template *exec.Cmd) (time.Duration, error) {
	c := exec.Command(template.Path, template.Args[1:]...)
	c.Env = b.env
	c.Stdin = bytes.NewReader(b.msg)
	var errb bytes.Buffer
	c.Stderr = &errb
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", strings.Join(c.Args, " "), err, errb.String())
	}
	return d, nil
}

// throughput submits n messages with p submitters; it returns the time to
// submit them all and the time until the sink has them all.
func (b *bench) throughput(n, p int) (submitted, relayed time.Duration, got int64, err error) {
	base := b.sink.count.Load()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < p; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := b.once(b.sendmailCmd()); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, 0, 0, first
	}
	submitted = time.Since(start)
	got, _ = b.sink.waitFor(base+int64(n), 120*time.Second)
	return submitted, time.Since(start), got - base, nil
}

func (b *bench) startDaemon() error {
	c := exec.Command(b.relayq, "serve")
	c.Env = b.env
	logf, err := os.Create(filepath.Join(b.dir, "serve.log"))
	if err != nil {
		return err
	}
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		return fmt.Errorf("relayq serve: %w", err)
	}
	b.daemon = c
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	sock := filepath.Join(b.dir, "submit.sock")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b.daemon = nil
			out, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("relayq serve exited (%v): %s", err, strings.TrimSpace(string(out)))
		default:
		}
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			go func() { <-exited }()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.stopDaemon()
	return errors.New("relayq serve: submission socket did not appear within 10 s")
}

func (b *bench) stopDaemon() {
	if b.daemon == nil || b.daemon.Process == nil {
		return
	}
	_ = b.daemon.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	b.daemon = nil
}

// sink is a go-smtp server on loopback that counts the messages relayed to it.
type sink struct {
	srv   *smtp.Server
	ln    net.Listener
	port  int
	count atomic.Int64
	conns atomic.Int64 // SMTP connections accepted
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.conns.Add(1)
		return &sinkSession{s: s}, nil
	}))
	s.srv.Domain = "sink.bench.example"
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) close() { _ = s.srv.Close() }

// waitFor waits until the sink has counted at least want messages.
func (s *sink) waitFor(want int64, timeout time.Duration) (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		got := s.count.Load()
		if got >= want {
			return got, true
		}
		select {
		case <-ctx.Done():
			return got, false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type sinkSession struct{ s *sink }

func (*sinkSession) Reset()                               {}
func (*sinkSession) Logout() error                        { return nil }
func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	ss.s.count.Add(1)
	return nil
}

func numCPU() int { return runtime.NumCPU() }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// cleanEnv is the environment without RELAYQ_* settings of the caller.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAYQ_") {
			out = append(out, kv)
		}
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
