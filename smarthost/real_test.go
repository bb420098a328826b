package smarthost

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests in this file run against the real Postfix + Dovecot test bed
// (test/smarthost/start.sh). test/t-20-smarthost-real/run.sh starts it and
// sets RELAYQ_TEST_SMARTHOST_ENV to its env file; without that variable
// they skip.

func realEnv(t testing.TB) map[string]string {
	t.Helper()
	p := os.Getenv("RELAYQ_TEST_SMARTHOST_ENV")
	if p == "" {
		t.Skip("RELAYQ_TEST_SMARTHOST_ENV not set: run test/t-20-smarthost-real/run.sh (real Postfix + Dovecot)")
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && !strings.HasPrefix(k, "#") {
			env[k] = strings.Trim(v, `'"`)
		}
	}
	for _, k := range []string{"SMARTHOST_HOST", "SMARTHOST_SUBMISSION_PORT", "SMARTHOST_SMTPS_PORT", "SMARTHOST_CA", "SMARTHOST_USER", "SMARTHOST_PASS", "SMARTHOST_MAILDIR"} {
		if env[k] == "" {
			t.Fatalf("%s: %s missing", p, k)
		}
	}
	return env
}

func realClient(t testing.TB, env map[string]string, relay string, cred Credential, mod func(*Options)) *Client {
	t.Helper()
	pem, err := os.ReadFile(env["SMARTHOST_CA"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", env["SMARTHOST_CA"])
	}
	o := Options{Relays: relay, RootCAs: pool, Credentials: credMap{"*": cred}, HeloName: "relayq-test.example", Deadline: 30 * time.Second}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// realMessage is a message with a unique marker in its Subject.
func realMessage(to string) (*Message, string) {
	b := make([]byte, 8)
	rand.Read(b)
	marker := "relayq-" + hex.EncodeToString(b)
	body := fmt.Sprintf("From: sender@relayq.test\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@relayq.test>\r\n\r\nHello from relayq.\r\n.dot line\r\n", to, marker, marker)
	m := &Message{ID: marker, From: "sender@relayq.test", Recipients: []Recipient{{Addr: to}}, Size: int64(len(body))}
	m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return m, marker
}

// waitMaildir waits until a delivered file contains marker and returns it.
func waitMaildir(t *testing.T, dir, marker string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "new", "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && bytes.Contains(b, []byte(marker)) {
				return b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no message with %s in %s/new", marker, dir)
	return nil
}

func TestRealSmarthost(t *testing.T) {
	env := realEnv(t)
	host := env["SMARTHOST_HOST"]
	sub := fmt.Sprintf("[%s]:%s", host, env["SMARTHOST_SUBMISSION_PORT"])
	smtps := fmt.Sprintf("[%s]:%s", host, env["SMARTHOST_SMTPS_PORT"])
	good := Credential{User: env["SMARTHOST_USER"], Password: Secret(env["SMARTHOST_PASS"]), Source: "env"}

	for _, tc := range []struct {
		name, relay, mech string
	}{
		{"submission STARTTLS PLAIN", sub, "PLAIN"},
		{"submission STARTTLS LOGIN", sub, "LOGIN"},
		{"submission STARTTLS CRAM-MD5", sub, "CRAM-MD5"},
		{"submission STARTTLS SCRAM-SHA-1", sub, "SCRAM-SHA-1"},
		{"submission STARTTLS SCRAM-SHA-256", sub, "SCRAM-SHA-256"},
		{"smtps implicit TLS PLAIN", smtps, "PLAIN"},
		{"smtps implicit TLS LOGIN", smtps, "LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred := good
			cred.Mechs = []string{tc.mech}
			var trace bytes.Buffer
			c := realClient(t, env, tc.relay, cred, func(o *Options) {
				o.Trace = func(l string) { trace.WriteString(l + "\n") }
				if tc.relay == smtps {
					o.Implicit = ImplicitAlways // a free port, not 465
				}
			})
			m, marker := realMessage("rcpt@example.net")
			out, err := c.Deliver(context.Background(), m)
			if err != nil || out.Recipients[0].Status != Delivered || out.Recipients[0].Code != 250 {
				t.Fatalf("Deliver: %v %+v\n%s", err, out, trace.String())
			}
			if !strings.Contains(trace.String(), "> AUTH "+tc.mech) {
				t.Errorf("trace has no AUTH %s:\n%s", tc.mech, trace.String())
			}
			if strings.Contains(trace.String(), env["SMARTHOST_PASS"]) {
				t.Errorf("password in the trace")
			}
			got := waitMaildir(t, env["SMARTHOST_MAILDIR"], marker)
			if !bytes.Contains(got, []byte("\n.dot line\n")) && !bytes.Contains(got, []byte("\r\n.dot line\r\n")) {
				t.Errorf("dot line not restored in the delivered copy:\n%s", got)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		bad := good
		bad.Password = "wrong-password"
		c := realClient(t, env, sub, bad, nil)
		m, _ := realMessage("rcpt@example.net")
		out, err := c.Deliver(context.Background(), m)
		if err == nil || !out.AuthFailed || out.Recipients[0].Status != Deferred || out.Recipients[0].Code != 535 {
			t.Fatalf("Deliver: %v %+v", err, out)
		}
	})

	t.Run("no credentials: relay refused, deferred as auth problem", func(t *testing.T) {
		c := realClient(t, env, sub, good, func(o *Options) { o.Credentials = nil })
		m, _ := realMessage("rcpt@example.net")
		out, _ := c.Deliver(context.Background(), m)
		// Postfix answers 554 5.7.1 Relay access denied at RCPT: a
		// permanent refusal, kept whole for the DSN.
		if r := out.Recipients[0]; r.Code == 0 || r.Status == Delivered {
			t.Fatalf("outcome %+v", r)
		}
	})

	t.Run("untrusted certificate under verify", func(t *testing.T) {
		c := realClient(t, env, sub, good, func(o *Options) { o.RootCAs = x509.NewCertPool() })
		m, _ := realMessage("rcpt@example.net")
		out, err := c.Deliver(context.Background(), m)
		if err == nil || out.Recipients[0].Enhanced != "4.7.5" {
			t.Fatalf("Deliver: %v %+v", err, out)
		}
	})

	t.Run("reuse", func(t *testing.T) {
		c := realClient(t, env, sub, good, nil)
		var markers []string
		for i := 0; i < 3; i++ {
			m, mk := realMessage("rcpt@example.net")
			markers = append(markers, mk)
			if out, err := c.Deliver(context.Background(), m); err != nil || out.Recipients[0].Status != Delivered {
				t.Fatalf("Deliver %d: %v %+v", i, err, out)
			}
		}
		for _, mk := range markers {
			waitMaildir(t, env["SMARTHOST_MAILDIR"], mk)
		}
	})

	// The relay offers CHUNKING: the message goes as BDAT, not
	// dot-stuffed, and arrives as stored (8-bit, dot lines); the same
	// message by DATA arrives the same.
	for _, chunking := range []bool{true, false} {
		verb := map[bool]string{true: "BDAT", false: "DATA"}[chunking]
		t.Run(verb+" byte-identical", func(t *testing.T) {
			var trace bytes.Buffer
			c := realClient(t, env, sub, good, func(o *Options) { o.Trace = func(l string) { trace.WriteString(l + "\n") } })
			dataOnly(c, !chunking)
			m, marker := realMessage("rcpt@example.net")
			body := fmt.Sprintf("From: sender@relayq.test\r\nTo: rcpt@example.net\r\nSubject: %s\r\n"+
				"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"+
				"Gr\xc3\xbc\xc3\x9fe\r\n.\r\n..two dots\r\n.dot line\r\nBDAT 5 LAST\r\n\r\nend\r\n", marker)
			m.Body8Bit, m.Size = true, int64(len(body))
			m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
			out, err := c.Deliver(context.Background(), m)
			if err != nil || out.Recipients[0].Status != Delivered {
				t.Fatalf("Deliver: %v %+v\n%s", err, out, trace.String())
			}
			if !strings.Contains(trace.String(), "> "+verb) {
				t.Fatalf("no %s in the trace:\n%s", verb, trace.String())
			}
			got := waitMaildir(t, env["SMARTHOST_MAILDIR"], marker)
			// The relay adds its trace headers above the message.
			want := strings.ReplaceAll(body, "\r\n", "\n")
			i := bytes.Index(got, []byte("From: sender@relayq.test\n"))
			if i < 0 || string(got[i:]) != want {
				t.Errorf("delivered copy differs:\n got %q\nwant %q", got, want)
			}
		})
	}

	t.Run("probe", func(t *testing.T) {
		c := realClient(t, env, sub, good, nil)
		var b bytes.Buffer
		if r := c.Probe(context.Background(), &b, "", ""); r != ProbeOK {
			t.Fatalf("probe %v:\n%s", r, b.String())
		}
		for _, w := range []string{"banner: 220 ", "EHLO capabilities (before TLS)", "STARTTLS", "verification: OK", "EHLO capabilities (after TLS)", "AUTH SCRAM-SHA-256: 235 2.7.0"} {
			if !strings.Contains(b.String(), w) {
				t.Errorf("probe output lacks %q:\n%s", w, b.String())
			}
		}
	})
}
