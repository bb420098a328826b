package sendmail

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/submit"
)

func TestExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		input  string
		setup  func(*testing.T, *Options, *fakeQueue)
		code   int
		stderr string // substring
		queued int
	}{
		{"ok", []string{"bob@example.net"}, "Subject: x\n\nbody\n", nil, ExitOK, "", 1},
		{"unknown option", []string{"-Z", "bob@example.net"}, "", nil, ExitUsage, "unknown option -Z", 0},
		{"no recipients", nil, "Subject: x\n\nbody\n", nil, ExitUsage, "no recipients", 0},
		{"-t finds none", []string{"-t"}, "Subject: x\n\nbody\n", nil, ExitDataErr, "no recipient addresses found", 0},
		{"-t bad header", []string{"-t"}, "To: <bob@example.net\n\nbody\n", nil, ExitDataErr, "To header", 0},
		{"-t dash recipient", []string{"-t"}, "To: -oQ/tmp@x\n\nbody\n", nil, ExitDataErr, "starts with '-'", 0},
		{"injection in -f", []string{"-f", "a@x\nBcc: y@z", "bob@example.net"}, "", nil, ExitUsage, "CR, LF or NUL", 0},
		{"header too big", []string{"bob@example.net"}, "Subject: " + strings.Repeat("x", 2000) + "\n\nbody\n",
			func(_ *testing.T, o *Options, _ *fakeQueue) { o.MaxHeaderSize = 1024 }, ExitDataErr, "header", 0},
		{"header too big, many lines", []string{"bob@example.net"}, strings.Repeat("X-A: 0123456789\n", 200) + "\nbody\n",
			func(_ *testing.T, o *Options, _ *fakeQueue) { o.MaxHeaderSize = 1024 }, ExitDataErr, "header larger than 1024", 0},
		{"mail loop", []string{"bob@example.net"}, strings.Repeat("Received: from a by b; Sun, 1 Nov 2026 10:00:00 +0000\n", 50) + "\nbody\n",
			nil, ExitDataErr, "mail loop", 0},
		{"49 hops fine", []string{"bob@example.net"}, strings.Repeat("Received: from a by b; Sun, 1 Nov 2026 10:00:00 +0000\n", 49) + "\nbody\n",
			nil, ExitOK, "", 1},
		{"untrusted refused", []string{"-f", "boss@example.com", "bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, o *Options, _ *fakeQueue) { o.RefuseUntrusted = true }, ExitNoPerm, "not allowed to set the sender", 0},
		{"own -f allowed when refusing", []string{"-f", "alice", "bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, o *Options, _ *fakeQueue) { o.RefuseUntrusted = true }, ExitOK, "", 1},
		{"trusted user", []string{"-f", "boss@example.com", "bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, o *Options, _ *fakeQueue) {
				o.RefuseUntrusted = true
				o.Identity = Identity{UID: 998, User: "relayq"}
			}, ExitOK, "", 1},
		{"spool locked", []string{"bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, _ *Options, q *fakeQueue) { q.err = fmt.Errorf("submit: %w", submit.ErrLocked) }, ExitTempFail, "try again later", 0},
		{"spool full", []string{"bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, _ *Options, q *fakeQueue) { q.err = fmt.Errorf("submit: %w", submit.ErrFull) }, ExitTempFail, "spool write failed", 0},
		{"unknown failure is temporary", []string{"bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, _ *Options, q *fakeQueue) { q.err = errTest }, ExitTempFail, "test failure", 0},
		{"daemon 5xx", []string{"bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, _ *Options, q *fakeQueue) {
				q.err = &submit.ReplyError{Command: "end of data", Code: 554, Enhanced: "5.0.0", Text: "no"}
			}, ExitUnavail, "554", 0},
		{"daemon 552 size", []string{"bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, _ *Options, q *fakeQueue) {
				q.err = &submit.ReplyError{Command: "end of data", Code: 552, Enhanced: "5.3.4", Text: "too big"}
			}, ExitDataErr, "too big", 0},
		{"daemon 4xx", []string{"bob@example.net"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, _ *Options, q *fakeQueue) {
				q.err = &submit.ReplyError{Command: "end of data", Code: 451, Enhanced: "4.3.0", Text: "later"}
			}, ExitTempFail, "later", 0},
		{"stdin read error", []string{"bob@example.net"}, "",
			func(_ *testing.T, o *Options, _ *fakeQueue) {
				o.Stdin = io.MultiReader(strings.NewReader("Subject: x\n\npart"), errReader{})
			}, ExitIOErr, "reading", 0},
		{"stdin read error streaming", []string{"-B8BITMIME", "bob@example.net"}, "",
			func(_ *testing.T, o *Options, _ *fakeQueue) {
				o.Stdin = io.MultiReader(strings.NewReader("Subject: x\n\npart"), errReader{})
			}, ExitIOErr, "reading", 0},
		{"streaming, submit fails before reading", []string{"-B8BITMIME", "bob@example.net"}, "Subject: x\n\n" + strings.Repeat("body line\n", 100000),
			func(_ *testing.T, o *Options, _ *fakeQueue) {
				o.Submit = func(context.Context, submit.Envelope, io.Reader, DeliveryMode) (submit.ID, error) {
					return "", fmt.Errorf("submit: %w", submit.ErrLocked)
				}
			}, ExitTempFail, "locked", 0},
		{"bad aliases file", []string{"root"}, "Subject: x\n\nbody\n",
			func(t *testing.T, o *Options, _ *fakeQueue) {
				p := filepath.Join(t.TempDir(), "aliases")
				if err := os.WriteFile(p, []byte("root alice\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				o.AliasesPath = p
			}, ExitConfig, "aliases:1: missing ':'", 0},
		{"bad aliases file unused for remote rcpt", []string{"bob@example.net"}, "Subject: x\n\nbody\n",
			func(t *testing.T, o *Options, _ *fakeQueue) {
				p := filepath.Join(t.TempDir(), "aliases")
				if err := os.WriteFile(p, []byte("root alice\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				o.AliasesPath = p
			}, ExitOK, "", 1},
		{"missing aliases file", []string{"root"}, "Subject: x\n\nbody\n",
			func(_ *testing.T, o *Options, _ *fakeQueue) { o.AliasesPath = "/nonexistent/aliases" }, ExitOK, "", 1},
		{"-q interval ignored", []string{"-q30m"}, "", nil, ExitOK, "ignored", 0},
		{"-bd refused", []string{"-bd"}, "", nil, ExitUsage, "relayq serve", 0},
		{"-v reports queue id", []string{"-v", "bob@example.net"}, "Subject: x\n\nbody\n", nil, ExitOK, "queued as TESTID000001", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQueue{}
			o, _, errb := testOptions(q, tc.input)
			if tc.setup != nil {
				tc.setup(t, &o, q)
			}
			code := Main(context.Background(), o, tc.args)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errb)
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errb, tc.stderr)
			}
			if len(q.msgs) != tc.queued {
				t.Errorf("queued %d, want %d", len(q.msgs), tc.queued)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("input/output error") }

func TestDeliveryModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		arg  string
		want DeliveryMode
	}{{"-odb", DeliverBackground}, {"-odq", DeliverQueueOnly}, {"-odi", DeliverInteractive}} {
		q := &fakeQueue{}
		o, _, errb := testOptions(q, "Subject: x\n\nbody\n")
		var asked submit.ID
		o.Deliver = func(ctx context.Context, id submit.ID) ([]RecipientResult, error) {
			asked = id
			return []RecipientResult{{Addr: "bob@example.net", Status: StatusDelivered, Relay: "relay.example.com", Reply: "250 2.0.0 ok"}}, nil
		}
		if code := Main(context.Background(), o, []string{tc.arg, "bob@example.net"}); code != ExitOK {
			t.Fatalf("%s: exit %d: %s", tc.arg, code, errb)
		}
		if q.msgs[0].mode != tc.want {
			t.Errorf("%s: mode %d, want %d", tc.arg, q.msgs[0].mode, tc.want)
		}
		if tc.want == DeliverInteractive {
			if asked != "TESTID000001" {
				t.Errorf("-odi: Deliver asked for %q", asked)
			}
			if !strings.Contains(errb.String(), "<bob@example.net>: delivered via relay.example.com (250 2.0.0 ok)") {
				t.Errorf("-odi report: %q", errb)
			}
		} else if asked != "" {
			t.Errorf("%s: Deliver called", tc.arg)
		}
	}
}

func TestInteractiveReport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		res  []RecipientResult
		err  error
		code int
		want string
	}{
		{[]RecipientResult{{Addr: "a@x", Status: StatusDeferred, Reply: "451 4.3.0 later"}}, nil, ExitOK, "<a@x>: deferred, still queued (451 4.3.0 later)"},
		{[]RecipientResult{{Addr: "a@x", Status: StatusBounced, Reply: "550 5.1.1 no such user"}}, nil, ExitUnavail, "<a@x>: bounced (550 5.1.1 no such user)"},
		{[]RecipientResult{{Addr: "a@x", Status: StatusFinished}}, nil, ExitOK, "<a@x>: left the queue"},
		{nil, errTest, ExitOK, "queued; delivery not confirmed: test failure"},
	}
	for _, tc := range tests {
		q := &fakeQueue{}
		o, _, errb := testOptions(q, "Subject: x\n\nbody\n")
		o.Deliver = func(context.Context, submit.ID) ([]RecipientResult, error) { return tc.res, tc.err }
		if code := Main(context.Background(), o, []string{"-odi", "a@x"}); code != tc.code {
			t.Errorf("exit %d, want %d", code, tc.code)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("stderr %q does not contain %q", errb, tc.want)
		}
	}
}

func TestQueueRun(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	o, _, errb := testOptions(q, "")
	runs := 0
	o.RunQueue = func(context.Context) error { runs++; return nil }
	if code := Main(context.Background(), o, []string{"-q"}); code != ExitOK || runs != 1 {
		t.Errorf("-q: exit %d, runs %d: %s", code, runs, errb)
	}
	o.RunQueue = func(context.Context) error { return fmt.Errorf("flush: %w", submit.ErrLocked) }
	if code := Main(context.Background(), o, []string{"-q"}); code != ExitTempFail {
		t.Errorf("-q with a locked spool: exit %d, want 75", code)
	}
}

// TestLargeBodyBoundedMemory streams a body larger than the in-memory
// limit through both routes (spilled to a temporary file, and streamed
// when 8BITMIME is declared) and checks that it arrives intact.
func TestLargeBody(t *testing.T) {
	t.Parallel()
	line := strings.Repeat("abcdefghij", 7) + "\n"
	body := strings.Repeat(line, 40000) // 2.8 MB
	for _, args := range [][]string{{"-i", "bob@example.net"}, {"-i", "-B8BITMIME", "bob@example.net"}} {
		q := &fakeQueue{}
		o, _, errb := testOptions(q, "Subject: big\n\n"+body)
		o.MemBody = 64 << 10
		o.TempDir = t.TempDir()
		if code := Main(context.Background(), o, args); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb)
		}
		got := string(q.msgs[0].body)
		want := strings.ReplaceAll(body, "\n", "\r\n")
		if !strings.HasSuffix(got, "\r\n\r\n"+want) {
			t.Errorf("%v: body not intact (len %d)", args, len(got))
		}
		ents, _ := os.ReadDir(o.TempDir)
		if len(ents) != 0 {
			t.Errorf("%v: temporary files left: %v", args, ents)
		}
	}
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	o, _, _ := testOptions(q, "Subject: x\n\nbody\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	o.Submit = func(ctx context.Context, env submit.Envelope, body io.Reader, mode DeliveryMode) (submit.ID, error) {
		return "", ctx.Err()
	}
	if code := Main(ctx, o, []string{"bob@example.net"}); code != ExitTempFail {
		t.Errorf("cancelled submission: exit %d, want 75", code)
	}
}

func TestNewaliases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("postmaster: root\nroot: a@example.com, |/bin/cat\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("postmaster: root\nroot a@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args         []string
		path         string
		code         int
		out, errText string
	}{
		{[]string{"-bi"}, good, ExitOK, good + ": 2 aliases", "is a program or file"},
		{[]string{"-I"}, bad, ExitConfig, "", bad + ":2: missing ':'"},
		{[]string{"-bi", "-oA" + good}, bad, ExitOK, good + ": 2 aliases", ""},
		{[]string{"-bi"}, filepath.Join(dir, "none"), ExitOK, "", "does not exist"},
	}
	for _, tc := range tests {
		q := &fakeQueue{}
		o, out, errb := testOptions(q, "")
		o.AliasesPath = tc.path
		if code := Main(context.Background(), o, tc.args); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errb)
		}
		if !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.errText) {
			t.Errorf("%v: out %q err %q", tc.args, out, errb)
		}
	}
}
