package submit_test

// Submit against the real listener on a unix socket, with the real spool
// behind it, the way the daemon wires them. An external test package: the
// listener imports submit.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/submit"
)

func TestSubmitThroughListener(t *testing.T) {
	dir, err := os.MkdirTemp("", "subl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sp, err := spool.Open(filepath.Join(dir, "queue.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	srv, err := listener.New(listener.Options{
		Submit:     sp.Submit,
		Hostname:   "host.example",
		TrustedUID: func(int) bool { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "submit.sock")
	ln, err := listener.ListenUnix(sock, 0o666, -1)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUnix(ln)
	defer srv.Close()

	var body bytes.Buffer
	// Complete headers: the listener adds none, so the bytes are compared as sent.
	body.WriteString("From: a@example.com\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <t@example.com>\r\nSubject: through the listener\r\n\r\n")
	for i := 0; body.Len() < 3<<20; i++ {
		fmt.Fprintf(&body, "%sline %d\r\n", strings.Repeat(".", i%2), i)
	}
	env := submit.Envelope{
		From:     "a@example.com",
		Body8Bit: false,
		Ret:      "HDRS",
		EnvID:    "env id+1",
		Recipients: []submit.Recipient{
			{Addr: "b@example.net", Notify: "SUCCESS,DELAY", ORcpt: "rfc822;b@example.net"},
			{Addr: "c@example.net"},
		},
	}
	// The spool path points nowhere: the socket must be used.
	o := submit.Options{Socket: sock, SpoolPath: filepath.Join(dir, "must-not-exist", "q.db"), LockTimeout: 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := submit.Submit(ctx, o, env, bytes.NewReader(body.Bytes()))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	m, err := sp.Get(id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	if m.From != env.From || m.Ret != "HDRS" || m.EnvID != "env id+1" || m.Body8Bit || len(m.Recipients) != 2 ||
		m.Recipients[0].Notify != "SUCCESS,DELAY" || !strings.EqualFold(m.Recipients[0].ORcpt, "rfc822;b@example.net") {
		t.Errorf("queued %+v", m)
	}
	if !strings.HasPrefix(m.Origin, "uid=") {
		t.Errorf("origin %q", m.Origin)
	}
	rc, err := sp.OpenBody(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(body.Bytes()) {
		t.Errorf("body: %d bytes stored, %d sent, contents differ", len(got), body.Len())
	}
	if _, err := os.Stat(filepath.Join(dir, "must-not-exist")); err == nil {
		t.Error("the direct route was used")
	}

	// An 8-bit, SMTPUTF8 message keeps its flags.
	env8 := submit.Envelope{From: "jö@example.com", Body8Bit: true, SMTPUTF8: true, Recipients: []submit.Recipient{{Addr: "ü@example.net"}}}
	id8, err := submit.Submit(ctx, o, env8, strings.NewReader("Subject: ü\r\n\r\nü\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sp.Get(id8); err != nil || !m.Body8Bit || !m.SMTPUTF8 || m.From != "jö@example.com" {
		t.Errorf("8-bit message queued as %+v (%v)", m, err)
	}
}

// failingReader yields n bytes of a message, then fails like a broken
// stdin.
type failingReader struct{ n int }

var errStdin = errors.New("stdin: input/output error")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errStdin
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
		if i%70 == 69 {
			p[i] = '\n'
		}
	}
	r.n -= k
	return k, nil
}

// TestSubmitBodyReadError: when the caller's body fails half way, nothing
// is queued on either route, and the error is the caller's read error.
func TestSubmitBodyReadError(t *testing.T) {
	dir, err := os.MkdirTemp("", "subr")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	env := submit.Envelope{From: "a@example.com", Recipients: []submit.Recipient{{Addr: "b@example.net"}}}

	// Direct.
	direct := filepath.Join(dir, "direct.db")
	_, err = submit.Submit(context.Background(), submit.Options{Socket: filepath.Join(dir, "none"), SpoolPath: direct}, env, &failingReader{n: 300 << 10})
	if !errors.Is(err, errStdin) {
		t.Fatalf("direct: err = %v, want the read error", err)
	}

	// Through the listener.
	// Through the listener: failing in the second BDAT chunk (after one
	// chunk was accepted), and after several chunks.
	sock, sp := startDaemon(t, dir)
	for _, n := range []int{300 << 10, 2<<20 + 5} {
		body := io.MultiReader(strings.NewReader("Subject: cut\r\n\r\n"), &failingReader{n: n})
		_, err = submit.Submit(context.Background(), submit.Options{Socket: sock}, env, body)
		if !errors.Is(err, errStdin) {
			t.Fatalf("socket, failing after %d octets: err = %v, want the read error", n, err)
		}
	}

	for _, s := range []string{direct, ""} {
		var n int
		count := func(*spool.Message) error { n++; return nil }
		if s == "" {
			// The daemon's spool: the listener may still be finishing the
			// aborted transaction; the spool must stay empty regardless.
			time.Sleep(100 * time.Millisecond)
			if err := sp.List(count); err != nil {
				t.Fatal(err)
			}
		} else {
			d, err := spool.Open(s, spool.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.List(count); err != nil {
				t.Fatal(err)
			}
			d.Close()
		}
		if n != 0 {
			t.Errorf("spool %q holds %d messages after a failed body", s, n)
		}
	}
}

// startDaemon serves the submission socket dir/s.sock as the daemon does:
// the real listener over a spool in dir (daemon.db), every peer trusted.
// Both are closed when the test ends. It returns the socket's path and the
// spool.
func startDaemon(t testing.TB, dir string) (string, *spool.Spool) {
	t.Helper()
	sp, err := spool.Open(filepath.Join(dir, "daemon.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	srv, err := listener.New(listener.Options{Submit: sp.Submit, Hostname: "h", TrustedUID: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	ln, err := listener.ListenUnix(sock, 0o666, -1)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUnix(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, sp
}

// TestCutMidDataStoresNothing: a client that hangs up before the end of
// its message (a killed sendmail on the unix socket, a crashed application
// on the TCP listener) leaves nothing in the spool, whatever the point of
// the cut: in the DATA body (small, and large enough to span several
// spool transactions), just before the final dot, in a BDAT chunk, or
// between chunks. A complete message on the same server is stored, so the
// test would see a spool that stores nothing at all.
func TestCutMidDataStoresNothing(t *testing.T) {
	large := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 40000) // 2.5 MB
	cuts := []struct {
		name string
		sent string // after MAIL and RCPT were accepted
	}{
		{"DATA, in the header", "DATA\r\nSubject: cut"},
		{"DATA, in the body", "DATA\r\nSubject: cut\r\n\r\nhalf a bo"},
		{"DATA, large body", "DATA\r\nSubject: cut\r\n\r\n" + large},
		{"DATA, before the final dot", "DATA\r\nSubject: cut\r\n\r\nbody\r\n"},
		{"DATA, dot without its line end", "DATA\r\nSubject: cut\r\n\r\nbody\r\n."},
		{"DATA, nothing sent", "DATA\r\n"},
		{"BDAT LAST, chunk short", "BDAT 100 LAST\r\nSubject: cut\r\n\r\nbody\r\n"},
		{"BDAT LAST, large chunk short", fmt.Sprintf("BDAT %d LAST\r\n%s", 2*len(large), large)},
		{"BDAT, between chunks", "BDAT 20\r\nSubject: cut\r\n\r\nbody\r\n"},
		{"BDAT, first chunk short", "BDAT 100\r\nSubject: cut\r\n"},
	}
	for _, door := range []string{"unix", "tcp"} {
		t.Run(door, func(t *testing.T) {
			dir := t.TempDir()
			sp, err := spool.Open(filepath.Join(dir, "queue.db"), spool.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			srv, err := listener.New(listener.Options{
				Submit:     sp.Submit,
				Hostname:   "host.example",
				TrustedUID: func(int) bool { return true },
			})
			if err != nil {
				t.Fatal(err)
			}
			var network, addr string
			if door == "unix" {
				addr = filepath.Join(dir, "submit.sock")
				ln, err := listener.ListenUnix(addr, 0o666, -1)
				if err != nil {
					t.Fatal(err)
				}
				network = "unix"
				go srv.ServeUnix(ln)
			} else {
				ln, err := listener.ListenTCP("127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				network, addr = "tcp", ln.Addr().String()
				go srv.ServeTCP(ln)
			}
			closed := false
			defer func() {
				if !closed {
					srv.Close()
				}
			}()
			dial := func() (net.Conn, *textproto.Reader) {
				c, err := net.Dial(network, addr)
				if err != nil {
					t.Fatal(err)
				}
				r := textproto.NewReader(bufio.NewReader(c))
				expect := func(want int) {
					if _, _, err := r.ReadResponse(want); err != nil {
						t.Fatalf("want %d: %v", want, err)
					}
				}
				expect(220)
				for _, cmd := range []string{"EHLO client.test", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>"} {
					if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
						t.Fatal(err)
					}
					expect(250)
				}
				return c, r
			}
			for _, cut := range cuts {
				c, r := dial()
				if _, err := io.WriteString(c, cut.sent); err != nil {
					t.Fatalf("%s: %v", cut.name, err)
				}
				// Hang up (the server reads the end of the stream, as
				// after a kill), then wait until the server has closed
				// its side: the session is over.
				if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, r.R)
				c.Close()
			}
			// A complete message: stored.
			c, r := dial()
			io.WriteString(c, "DATA\r\n")
			if _, _, err := r.ReadResponse(354); err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "Subject: whole\r\n\r\nbody\r\n.\r\n")
			if _, _, err := r.ReadResponse(250); err != nil {
				t.Fatalf("complete message: %v", err)
			}
			c.Close()
			// Close waits until every session has finished with its
			// message: after it, the spool holds all it ever will.
			srv.Close()
			closed = true
			var subjects []string
			if err := sp.List(func(m *spool.Message) error {
				rc, err := sp.OpenBody(m.ID)
				if err != nil {
					return err
				}
				defer rc.Close()
				b, err := io.ReadAll(rc)
				if err != nil {
					return err
				}
				_, hdr, _ := strings.Cut(string(b), "Subject: ")
				subject, _, _ := strings.Cut(hdr, "\r\n")
				subjects = append(subjects, subject)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(subjects) != 1 || subjects[0] != "whole" {
				t.Errorf("spool holds %d messages with subjects %q; want only the complete one", len(subjects), subjects)
			}
		})
	}
}
