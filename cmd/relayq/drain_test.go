package main

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/internal/testlib"
)

// gate lets MAIL commands at a sink through one token at a time: a
// stalled relay (wait) or one that refuses with 451 (try) until tokens
// are given, a working one once opened.
type gate struct{ tokens chan struct{} }

func newGate() *gate { return &gate{tokens: make(chan struct{}, 1000)} }

func (g *gate) wait() error { <-g.tokens; return nil }
func (g *gate) try() error {
	select {
	case <-g.tokens:
		return nil
	default:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "relay stopped"}
	}
}
func (g *gate) allow(n int) {
	for range n {
		g.tokens <- struct{}{}
	}
}

// subjects counts the sink's messages per Subject.
func subjects(s *testlib.Sink) map[string]int {
	n := map[string]int{}
	for _, m := range s.Messages() {
		for _, line := range strings.Split(m.Data, "\r\n") {
			if v, ok := strings.CutPrefix(line, "Subject: "); ok {
				n[v]++
				break
			}
		}
	}
	return n
}

var stoppedLine = regexp.MustCompile(`msg="relayq serve stopped" queued=(\d+) held=(\d+)`)

// remaining is what the last log line of serve says is left queued.
func remaining(t *testing.T, log string) int {
	t.Helper()
	m := stoppedLine.FindAllStringSubmatch(log, -1)
	if len(m) != 1 {
		t.Fatalf("want one 'relayq serve stopped' line with the count, got %d in\n%s", len(m), log)
	}
	n, _ := strconv.Atoi(m[0][1])
	return n
}

// queueDrainN submits n messages through relayq sendmail while the
// daemon runs; the sink holds back every MAIL.
func queueDrainN(t *testing.T, p *serveProc, n int) {
	t.Helper()
	for i := range n {
		msg := fmt.Sprintf("From: a@example.com\nSubject: drain %d\n\nbody %d\n", i, i)
		if code, out, errOut := p.run(msg, "sendmail", "-f", "a@example.com", "b@example.net"); code != 0 {
			t.Fatalf("sendmail %d: exit %d %s%s", i, code, out, errOut)
		}
	}
}

// stoppedAllDelivered stops serve with SIGTERM and asserts that the sink
// got each of the n messages exactly once and serve says none is left.
func stoppedAllDelivered(t *testing.T, p *serveProc, sink *testlib.Sink, n int) {
	t.Helper()
	if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("serve: %v\n%s", err, p.log)
	}
	got := subjects(sink)
	for i := range n {
		if c := got[fmt.Sprintf("drain %d", i)]; c != 1 {
			t.Errorf("drain %d delivered %d times (in all)", i, c)
		}
	}
	if left := remaining(t, p.log.String()); left != 0 {
		t.Errorf("%d messages left", left)
	}
}

// intakeClosed asserts that, while serve drains, the TCP listener refuses
// connections and healthcheck says it is stopping.
func intakeClosed(t *testing.T, p *serveProc) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.listen, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts while draining")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, _, errOut := p.run("", "healthcheck", "-timeout", "2s")
	if code != exUnavail || !strings.Contains(errOut, "stopping") {
		t.Errorf("healthcheck while draining: exit %d, %q", code, errOut)
	}
}

// TestDrainOnStop runs relayq serve with RELAYQ_DRAIN_ON_STOP against a
// loopback sink that is stopped (every MAIL waits) when SIGTERM comes.
// Relay opened during the drain: every message is delivered once and the
// daemon exits 0 with none left. Relay still stopped at the deadline (two
// let through): the daemon exits 0 saying how many remain, exactly those
// are in the spool, and a restart delivers each of them once.
func TestDrainOnStop(t *testing.T) {
	t.Parallel()
	bin := buildRelayq(t)
	const n = 6
	settings := []string{"RELAYQ_WORKERS=2", "RELAYQ_DRAIN_TIMEOUT=1s"}

	t.Run("queue delivered", func(t *testing.T) {
		t.Parallel()
		sink, g := testlib.StartSink(t), newGate()
		sink.BeforeMail = g.wait
		p := newServe(t, bin, sink.Relay(), append(settings, "RELAYQ_DRAIN_ON_STOP=30s")...)
		p.start()
		queueDrainN(t, p, n)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		intakeClosed(t, p)
		g.allow(1000) // the relay is back
		stoppedAllDelivered(t, p, sink, n)
		if !strings.Contains(p.log.String(), "relayq serve drained") {
			t.Errorf("no 'drained' in the log:\n%s", p.log)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		// The relay refuses MAIL with 451 until tokens are given: the
		// attempts fail fast and are deferred. (A relay that stalls is
		// smarthost's TestCancelEndsStalledAttempt: the cut-off ends such
		// an attempt at once.)
		sink, g := testlib.StartSink(t), newGate()
		sink.BeforeMail = g.try
		p := newServe(t, bin, sink.Relay(), append(settings, "RELAYQ_DRAIN_ON_STOP=2s")...)
		p.start()
		queueDrainN(t, p, n) // each tried at once, refused, deferred for minutes
		g.allow(2)           // two get through the drain's attempts; the rest are refused again
		began := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		intakeClosed(t, p)
		if err := p.stop(syscall.SIGTERM, 20*time.Second); err != nil {
			t.Fatalf("serve: %v\n%s", err, p.log)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("serve took %s to stop after a 2s drain", took)
		}
		delivered := subjects(sink)
		left := remaining(t, p.log.String())
		if len(delivered) != 2 || left != n-2 {
			t.Errorf("delivered %v, %d left; want 2 delivered and %d left\n%s", delivered, left, n-2, p.log)
		}
		if !strings.Contains(p.log.String(), "drain deadline passed") {
			t.Errorf("no 'drain deadline passed' in the log:\n%s", p.log)
		}
		// Exactly those are in the spool (the daemon is gone: mailq reads it).
		code, out, errOut := p.run("", "mailq")
		if code != 0 || strings.Count(out, "b@example.net") != left {
			t.Errorf("mailq: exit %d, %d messages, want %d\n%s%s", code, strings.Count(out, "b@example.net"), left, out, errOut)
		}

		// A restart with the relay open delivers each remaining one once.
		g.allow(1000)
		p.start()
		if code, out, errOut := p.run("", "queue", "flush"); code != 0 {
			t.Fatalf("queue flush: exit %d %s%s", code, out, errOut)
		}
		deadline := time.Now().Add(20 * time.Second)
		for len(subjects(sink)) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stoppedAllDelivered(t, p, sink, n)
	})
}
