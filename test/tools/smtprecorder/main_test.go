package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRecorder runs the recorder on a free loopback port and returns its
// address and record file; it stops when the test ends.
func startRecorder(t *testing.T, extra ...string) (addr, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "rec")
	addrFile := filepath.Join(dir, "addr")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr strings.Builder
	args := append([]string{"-listen", "127.0.0.1:0", "-record", record, "-addr-file", addrFile}, extra...)
	go func() { done <- run(ctx, args, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case rc := <-done:
			if rc != 0 {
				t.Errorf("run exited %d: %s", rc, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("recorder did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b)), record
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no address file; stderr: %s", stderr.String())
	return "", ""
}

// dialog sends each command and returns the first line of each reply (the
// last line of a multi-line reply).
func dialog(t *testing.T, addr string, cmds ...string) (greeting string, ehlo []string, replies []string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	readReply := func() []string {
		var lines []string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read reply: %v (so far %q)", err, lines)
			}
			l = strings.TrimRight(l, "\r\n")
			lines = append(lines, l)
			if len(l) < 4 || l[3] != '-' {
				return lines
			}
		}
	}
	greeting = readReply()[0]
	for _, cmd := range cmds {
		fmt.Fprintf(c, "%s\r\n", cmd)
		reply := readReply()
		if strings.HasPrefix(cmd, "EHLO") {
			ehlo = reply
		}
		replies = append(replies, reply[len(reply)-1])
	}
	return greeting, ehlo, replies
}

func readRecord(t *testing.T, path string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) >= want || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRecordsEveryCommandAndOffersAuthWithoutTLS(t *testing.T) {
	addr, record := startRecorder(t)
	greeting, ehlo, replies := dialog(t, addr,
		"EHLO client.example",
		"AUTH PLAIN AHUAcA==",
		"MAIL FROM:<a@example.org>",
		"RCPT TO:<b@example.net>",
		"DATA",
		"Subject: x\r\n\r\nbody\r\n.",
		"QUIT")
	if !strings.HasPrefix(greeting, "220 ") {
		t.Errorf("greeting %q", greeting)
	}
	joined := strings.Join(ehlo, "\n")
	if !strings.Contains(joined, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO reply lacks AUTH PLAIN LOGIN:\n%s", joined)
	}
	if strings.Contains(joined, "STARTTLS") {
		t.Errorf("EHLO reply offers STARTTLS:\n%s", joined)
	}
	wantCodes := []string{"250", "235", "250", "250", "354", "250", "221"}
	for i, w := range wantCodes {
		if !strings.HasPrefix(replies[i], w) {
			t.Errorf("reply %d = %q, want %s", i, replies[i], w)
		}
	}
	got := readRecord(t, record, 10)
	want := []string{
		"1 EHLO client.example",
		"1 AUTH PLAIN AHUAcA==",
		"1 MAIL FROM:<a@example.org>",
		"1 RCPT TO:<b@example.net>",
		"1 DATA",
		"1 Subject: x",
		"1 ",
		"1 body",
		"1 .",
		"1 QUIT",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("record:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNoAuthWhenDisabled(t *testing.T) {
	addr, record := startRecorder(t, "-auth=false")
	_, ehlo, replies := dialog(t, addr, "EHLO c", "AUTH PLAIN AHUAcA==", "QUIT")
	if strings.Contains(strings.Join(ehlo, "\n"), "AUTH") {
		t.Errorf("EHLO reply offers AUTH with -auth=false: %q", ehlo)
	}
	if strings.HasPrefix(replies[1], "235") {
		t.Errorf("AUTH accepted with -auth=false: %q", replies[1])
	}
	got := readRecord(t, record, 3)
	if len(got) != 3 || got[1] != "1 AUTH PLAIN AHUAcA==" {
		t.Errorf("record = %q", got)
	}
}

func TestConnectionsAreNumbered(t *testing.T) {
	addr, record := startRecorder(t)
	dialog(t, addr, "EHLO one", "QUIT")
	dialog(t, addr, "EHLO two", "QUIT")
	got := readRecord(t, record, 4)
	want := "1 EHLO one\n1 QUIT\n2 EHLO two\n2 QUIT"
	if strings.Join(got, "\n") != want {
		t.Errorf("record:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no record file", []string{"-listen", "127.0.0.1:0"}, 64},
		{"non-loopback address", []string{"-listen", "0.0.0.0:0", "-record", os.DevNull}, 64},
		{"host name", []string{"-listen", "localhost:0", "-record", os.DevNull}, 64},
		{"bad address", []string{"-listen", "127.0.0.1", "-record", os.DevNull}, 64},
		{"extra argument", []string{"-record", os.DevNull, "x"}, 64},
		{"unknown flag", []string{"-nope"}, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			if got := run(context.Background(), tc.args, &stderr); got != tc.want {
				t.Errorf("run(%q) = %d, want %d; stderr: %s", tc.args, got, tc.want, stderr.String())
			}
			if stderr.Len() == 0 {
				t.Error("no message on stderr")
			}
		})
	}
}
