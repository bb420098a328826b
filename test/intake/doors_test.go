// Package intake checks that relayq's two doors, the sendmail command and
// the SMTP listener, store the same octets for the same input: both apply
// submit.Normalizer's rules (docs/architecture.md, "Intake rules").
package intake

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/sendmail"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/submit"
)

// header is a complete header, so that neither door adds a field of its own
// besides its Received line.
const header = "From: a@example.com\r\nTo: b@example.org\r\nDate: Sun, 22 Nov 2026 21:08:12 +0100\r\nMessage-ID: <doors@example.com>\n"

func TestDoorsStoreTheSame(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in string }{
		{"crlf", header + "Subject: crlf\r\n\r\nbody\r\n"},
		{"bare lf", header + "Subject: lf\n\nline1\nline2\n"},
		{"stray cr", header + "Subject: cr\r\n\r\na\rb\r\n"},
		{"cr cr lf", header + "Subject: crcrlf\r\n\r\nx\r\r\ny\r\n"},
		{"lf cr", header + "Subject: lfcr\r\n\r\nx\n\ry\r\n"},
		{"nul in body", header + "Subject: nul\r\n\r\na\x00b\x00\r\n"},
		{"nul in header", header + "Subj\x00ect: nul\r\n\r\nb\r\n"},
		{"nul after cr", header + "Subject: crnul\r\n\r\nx\r\x00\ny\r\n"},
		{"bare lf dot lf", header + "Subject: smuggle\r\n\r\nx\n.\nMAIL FROM:<e@x>\n"},
		{"leading dots", header + "Subject: dots\r\n\r\n..two\r\n.one\r\n"},
		{"8-bit", header + "Subject: 8bit\r\n\r\ngrüße \xff\r\n"},
	}
	dir := t.TempDir()
	viaSendmail := filepath.Join(dir, "sendmail.db")
	viaListener := filepath.Join(dir, "listener.db")
	addr := startListener(t, viaListener)
	for _, tc := range cases {
		in := tc.in
		if !strings.HasSuffix(in, "\r\n") {
			in += "\r\n"
		}
		a := throughSendmail(t, viaSendmail, in)
		b := throughListener(t, viaListener, addr, in)
		if got, want := withoutReceived(t, b), withoutReceived(t, a); got != want {
			t.Errorf("%s: the doors stored different messages\nlistener: %q\nsendmail: %q", tc.name, got, want)
		}
		if bytes.IndexByte([]byte(a), 0) >= 0 || strings.Contains(strings.ReplaceAll(a, "\r\n", ""), "\r") {
			t.Errorf("%s: NUL or bare CR stored: %q", tc.name, a)
		}
	}
}

// throughSendmail queues in with `sendmail -i` into the spool at path and
// returns the stored body.
func throughSendmail(t *testing.T, path, in string) string {
	t.Helper()
	var id submit.ID
	var stderr bytes.Buffer
	o := sendmail.Options{
		Stdin: strings.NewReader(in), Stdout: io.Discard, Stderr: &stderr,
		Identity: sendmail.Identity{UID: 0, User: "root"},
		Hostname: "host.example.org", Domain: "example.org",
		TrustedUsers: []string{"root"},
		Submit: func(ctx context.Context, env submit.Envelope, body io.Reader, _ sendmail.DeliveryMode) (submit.ID, error) {
			var err error
			id, err = submit.Submit(ctx, submit.Options{SpoolPath: path}, env, body)
			return id, err
		},
	}
	if code := sendmail.Main(context.Background(), o, []string{"-i", "-odq", "-f", "a@example.com", "b@example.org"}); code != 0 {
		t.Fatalf("sendmail exited %d: %s", code, stderr.String())
	}
	return stored(t, path, id)
}

// startListener serves SMTP on loopback, queueing into the spool at path.
func startListener(t *testing.T, path string) string {
	t.Helper()
	srv, err := listener.New(listener.Options{
		Hostname: "host.example.org", Domain: "example.org",
		Submit: func(ctx context.Context, env submit.Envelope, body io.Reader) (submit.ID, error) {
			return submit.Submit(ctx, submit.Options{SpoolPath: path}, env, body)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listener.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTCP(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// throughListener sends in as one SMTP transaction (the octets as they
// are, dot-stuffed after CRLF only) and returns the stored body.
func throughListener(t *testing.T, path, addr, in string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	expect := func(code string) string {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("want %s: %v", code, err)
			}
			if !strings.HasPrefix(line, code) {
				t.Fatalf("want %s, got %q", code, line)
			}
			if line[3] == ' ' {
				return line
			}
		}
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	expect("220")
	send("EHLO client.test\r\n")
	expect("250")
	send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
	expect("250")
	expect("250")
	expect("354")
	stuffed := strings.ReplaceAll("\r\n"+in, "\r\n.", "\r\n..")[2:]
	send(stuffed + ".\r\n")
	reply := expect("250")
	_, id, ok := strings.Cut(strings.TrimSpace(reply), "queued as ")
	if !ok {
		t.Fatalf("no queue ID in %q", reply)
	}
	send("QUIT\r\n")
	return stored(t, path, submit.ID(id))
}

// stored returns the body of message id in the spool at path.
func stored(t *testing.T, path string, id submit.ID) string {
	t.Helper()
	s, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.OpenBody(spool.ID(id))
	if err != nil {
		t.Fatalf("body of %s: %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutReceived removes the first field when it is the door's own
// Received: line (with its continuation lines).
func withoutReceived(t *testing.T, msg string) string {
	t.Helper()
	if !strings.HasPrefix(msg, "Received:") {
		t.Fatalf("no Received field first: %q", msg)
	}
	rest := msg
	for {
		_, after, ok := strings.Cut(rest, "\r\n")
		if !ok {
			return ""
		}
		rest = after
		if !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "\t") {
			return rest
		}
	}
}
