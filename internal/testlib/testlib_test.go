package testlib

import (
	"bufio"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t.Parallel()
	c := NewClock()
	if !c.Now().Equal(Start) {
		t.Fatalf("Now %v", c.Now())
	}
	due := c.TimerAt(Start.Add(-time.Second))
	later := c.TimerAt(Start.Add(time.Minute))
	stopped := c.TimerAt(Start.Add(time.Minute))
	select {
	case <-due.C():
	default:
		t.Fatal("a timer already due did not fire")
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop of a pending timer")
	}
	c.Advance(59 * time.Second)
	select {
	case <-later.C():
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Second)
	select {
	case at := <-later.C():
		if !at.Equal(Start.Add(time.Minute)) {
			t.Fatalf("fired at %v", at)
		}
	default:
		t.Fatal("did not fire when due")
	}
	select {
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
}

func TestSink(t *testing.T) {
	t.Parallel()
	s := StartSink(t)
	s.Refuse = func(rcpt string) error {
		if rcpt == "bad@example.net" {
			return fmt.Errorf("refused")
		}
		return nil
	}
	err := smtp.SendMail(s.Addr, nil, "a@example.org", []string{"b@example.net"}, []byte("Subject: x\r\n\r\nhi\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := smtp.SendMail(s.Addr, nil, "a@example.org", []string{"bad@example.net"}, []byte("x\r\n")); err == nil {
		t.Fatal("refused recipient accepted")
	}
	m := s.Messages()
	if len(m) != 1 || m[0].From != "a@example.org" || strings.Join(m[0].To, ",") != "b@example.net" || !strings.HasSuffix(m[0].Data, "hi\r\n") {
		t.Fatalf("messages %+v", m)
	}
	if s.Conns() != 2 || !strings.HasPrefix(s.Relay(), "[127.0.0.1]:") {
		t.Fatalf("conns %d relay %s", s.Conns(), s.Relay())
	}
}

func TestPlay(t *testing.T) {
	t.Parallel()
	n := 0
	srv := ServeSteps(t,
		Step{On: "EHLO", Reply: "250-relay.test\r\n250 PIPELINING"},
		Step{On: "RCPT TO:<once@x>", Reply: "451 4.3.0 later", Once: true},
		Step{On: "RCPT", Func: func(string) string { n++; return fmt.Sprintf("250 ok %d", n) }},
		Step{On: ".", Reply: "250 2.0.0 queued"},
	)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	read := func() string {
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return strings.Join(lines, "|") + "|" + err.Error()
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
			if len(l) < 4 || l[3] == ' ' {
				return strings.Join(lines, "|")
			}
		}
	}
	for _, tc := range []struct{ send, want string }{
		{"", "220 relay.test ESMTP"},
		{"EHLO c.test", "250-relay.test|250 PIPELINING"},
		{"MAIL FROM:<a@x>", "250 ok"},
		{"RCPT TO:<once@x>", "451 4.3.0 later"},
		{"RCPT TO:<once@x>", "250 ok 1"},
		{"DATA", "354 go"},
		{"body\r\n..dot\r\n.", "250 2.0.0 queued"},
		{"NOOP", "250 ok"},
		{"QUIT", "221 bye"},
	} {
		if tc.send != "" {
			fmt.Fprintf(c, "%s\r\n", tc.send)
		}
		if got := read(); got != tc.want {
			t.Fatalf("after %q: %q, want %q", tc.send, got, tc.want)
		}
	}
	if got := srv.Commands(); strings.Join(got, "|") != "EHLO c.test|MAIL FROM:<a@x>|RCPT TO:<once@x>|RCPT TO:<once@x>|DATA|NOOP|QUIT" || srv.Count("rcpt") != 2 {
		t.Fatalf("commands %q", got)
	}
}
