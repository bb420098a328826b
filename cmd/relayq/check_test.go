package main

import (
	"bufio"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonAnswers: relayq check asks the submission socket for a
// greeting and then says QUIT, so the daemon sees a finished session
// instead of a reset connection (which it logged as a warning on every
// check).
func TestDaemonAnswers(t *testing.T) {
	tests := []struct {
		name     string
		greeting string // "" = no server on the socket
		want     bool
		wantQuit bool
	}{
		{name: "greeting", greeting: "220 host ESMTP relayq\r\n", want: true, wantQuit: true},
		{name: "multi-line greeting", greeting: "220-host ESMTP relayq\r\n220 ready\r\n", want: true, wantQuit: true},
		{name: "refusal", greeting: "554 5.3.2 not now\r\n", want: false},
		{name: "no daemon", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "submit.sock")
			got := make(chan string, 1)
			if tt.greeting != "" {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					conn, err := ln.Accept()
					if err != nil {
						got <- ""
						return
					}
					defer conn.Close()
					if _, err := conn.Write([]byte(tt.greeting)); err != nil {
						got <- ""
						return
					}
					line, _ := bufio.NewReader(conn).ReadString('\n')
					if strings.TrimSpace(line) == "QUIT" {
						_, _ = conn.Write([]byte("221 2.0.0 Bye\r\n"))
					}
					got <- strings.TrimSpace(line)
				}()
			}
			if a := daemonAnswers(sock); a != tt.want {
				t.Fatalf("daemonAnswers = %v, want %v", a, tt.want)
			}
			if tt.greeting == "" {
				return
			}
			line := <-got
			if tt.wantQuit && line != "QUIT" {
				t.Errorf("the server read %q after its greeting, want QUIT", line)
			}
			if !tt.wantQuit && line == "QUIT" {
				t.Errorf("QUIT sent after a refusal")
			}
		})
	}
}
