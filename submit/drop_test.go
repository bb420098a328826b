package submit

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relayq/relayq/maildrop"
)

// hungDaemon listens on a unix socket and plays a daemon that stops
// answering: before the greeting (SIGSTOP before the connection), or after
// the final dot (stopped while committing).
func hungDaemon(t *testing.T, path string, afterDot bool) *atomic.Int32 {
	t.Helper()
	var accepted atomic.Int32
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				if !afterDot {
					io.Copy(io.Discard, c) // reads, never answers
					return
				}
				r := bufio.NewReader(c)
				io.WriteString(c, "220 relayq.test ESMTP\r\n")
				data := false
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case data && l == ".\r\n":
						io.Copy(io.Discard, r) // no reply to the final dot
						return
					case data:
					case strings.HasPrefix(l, "EHLO"):
						io.WriteString(c, "250-relayq.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
					case strings.HasPrefix(l, "DATA"):
						data = true
						io.WriteString(c, "354 go ahead\r\n")
					default:
						io.WriteString(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	return &accepted
}

func dropEnvelope() Envelope {
	return Envelope{From: "a@example.com", Recipients: []Recipient{{Addr: "b@example.net"}}}
}

// A daemon that accepts the connection but never answers cannot have
// queued anything: Submit gives up after AnswerTimeout and writes the
// message to the drop directory.
func TestHungDaemonFallsBackToDropDir(t *testing.T) {
	tmp := t.TempDir()
	sock := filepath.Join(tmp, "submit.sock")
	accepted := hungDaemon(t, sock, false)
	dir := filepath.Join(tmp, "maildrop")
	var kicks atomic.Int32
	o := Options{Socket: sock, SpoolPath: filepath.Join(tmp, "queue.db"), DropDir: dir, DropKick: func() { kicks.Add(1) }, AnswerTimeout: 200 * time.Millisecond}
	body := "Subject: hung\r\n\r\nbody\r\n"
	id, err := Submit(context.Background(), o, dropEnvelope(), strings.NewReader(body))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	f, err := maildrop.Open(filepath.Join(dir, string(id)))
	if err != nil {
		t.Fatalf("drop file %s: %v", id, err)
	}
	got, _ := io.ReadAll(f.Body())
	f.Close()
	if string(got) != body {
		t.Errorf("dropped body %q", got)
	}
	if kicks.Load() != 1 {
		t.Errorf("%d kicks", kicks.Load())
	}
	if _, err := os.Stat(o.SpoolPath); err == nil {
		t.Error("the spool was opened")
	}
	// The next caller does not wait for the same silence: straight to
	// the drop directory, without connecting.
	if _, err := Submit(context.Background(), o, dropEnvelope(), strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (the second caller should skip the silent daemon)", n)
	}
	if es, _ := maildrop.List(dir); len(es) != 2 {
		t.Errorf("%d drop files, want 2", len(es))
	}
}

// After the final dot the daemon may have queued the message: no
// fallback (it would send the message twice), a temporary failure.
func TestNoFallbackAfterFinalDot(t *testing.T) {
	tmp := t.TempDir()
	sock := filepath.Join(tmp, "submit.sock")
	hungDaemon(t, sock, true)
	dir := filepath.Join(tmp, "maildrop")
	o := Options{Socket: sock, SpoolPath: filepath.Join(tmp, "queue.db"), DropDir: dir, AnswerTimeout: 200 * time.Millisecond, Timeout: 300 * time.Millisecond}
	_, err := Submit(context.Background(), o, dropEnvelope(), strings.NewReader("Subject: dot\r\n\r\nbody\r\n"))
	if err == nil || !TempFail(err) {
		t.Fatalf("Submit = %v, want a temporary failure", err)
	}
	if maildrop.Pending(dir) {
		t.Error("a drop file was written after the final dot")
	}
}

// Without a drop directory a hung daemon is a prompt temporary failure
// (the direct route would wait for the daemon's spool lock).
func TestHungDaemonWithoutDropDir(t *testing.T) {
	tmp := t.TempDir()
	sock := filepath.Join(tmp, "submit.sock")
	hungDaemon(t, sock, false)
	o := Options{Socket: sock, SpoolPath: filepath.Join(tmp, "queue.db"), AnswerTimeout: 200 * time.Millisecond}
	_, err := Submit(context.Background(), o, dropEnvelope(), strings.NewReader("x\r\n"))
	if !TempFail(err) || !errors.Is(err, errNoAnswer) {
		t.Fatalf("Submit = %v, want a temporary 'does not answer'", err)
	}
}

// No daemon: the drop directory, never the spool file.
func TestNoDaemonDropDir(t *testing.T) {
	tmp := t.TempDir()
	o := Options{Socket: filepath.Join(tmp, "none.sock"), SpoolPath: filepath.Join(tmp, "queue.db"), DropDir: filepath.Join(tmp, "maildrop")}
	id, err := Submit(context.Background(), o, dropEnvelope(), strings.NewReader("x\r\n"))
	if err != nil || !maildrop.ValidID(string(id)) {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	if _, err := os.Stat(o.SpoolPath); err == nil {
		t.Error("the spool was opened")
	}
}
