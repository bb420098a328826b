package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/daemon"
	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
)

func queueConfig() *config.Config {
	cfg := &config.Config{}
	cfg.Spool = "/var/spool/relayq/queue.db"
	cfg.TLS = "verify"
	cfg.Domain = "host.example"
	cfg.BackoffMin, cfg.BackoffMax, cfg.BackoffJitter = 5*time.Minute, time.Hour, 0.1
	cfg.QueueLifetime, cfg.BounceLifetime, cfg.DelayWarning = 120*time.Hour, 48*time.Hour, 4*time.Hour
	cfg.Workers, cfg.LeaseTime, cfg.DrainTimeout = 6, 10*time.Minute, 20*time.Second
	cfg.Postmaster = "postmaster@host.example"
	cfg.LockTimeout = 3 * time.Second
	cfg.RelayConnections = 4
	return cfg
}

func TestDaemonOptions(t *testing.T) {
	cfg := queueConfig()
	o, store, err := daemonOptions(cfg, maillog.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Deliverer.(daemon.NoRelay); !ok || store != nil {
		t.Errorf("no RELAYQ_RELAYHOST: deliverer %T, store %v; want NoRelay (mail stays queued)", o.Deliverer, store)
	}
	want := daemon.Policy{BackoffMin: 5 * time.Minute, BackoffMax: time.Hour, Jitter: 0.1,
		QueueLifetime: 120 * time.Hour, BounceLifetime: 48 * time.Hour, DelayWarning: 4 * time.Hour}
	if o.Policy != want {
		t.Errorf("policy %+v, want %+v", o.Policy, want)
	}
	if o.Workers != 6 || o.Lease != 10*time.Minute || o.DrainTimeout != 20*time.Second || o.LockTimeout != 3*time.Second ||
		o.Postmaster != "postmaster@host.example" || o.ReportingMTA != "host.example" || o.SpoolPath != cfg.Spool {
		t.Errorf("options %+v", o)
	}

	// With a relay host and a credentials file, the deliverer is the
	// smarthost client and the store is returned for SIGHUP.
	dir := t.TempDir()
	auth := filepath.Join(dir, "authinfo")
	if err := os.WriteFile(auth, []byte("[smtp.example.com]:587 user:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.RelayHost = "[smtp.example.com]:587"
	cfg.AuthInfo = auth
	cfg.ReportingMTA = "mta.example"
	o, store, err = daemonOptions(cfg, maillog.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Deliverer.(*smarthost.Client); !ok || store == nil {
		t.Errorf("deliverer %T, store %v", o.Deliverer, store)
	}
	if o.ReportingMTA != "mta.example" {
		t.Errorf("ReportingMTA %q", o.ReportingMTA)
	}

	// A world-readable credentials file is refused with the key named.
	if err := os.Chmod(auth, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := daemonOptions(cfg, maillog.New(nil)); err == nil || !strings.Contains(err.Error(), "RELAYQ_AUTHINFO") {
		t.Errorf("world-readable authinfo: %v", err)
	}
}

func TestServeUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runServe(stdio{strings.NewReader(""), &out, &errb}, []string{"-h"}); code != exOK || !strings.Contains(out.String(), "usage: relayq serve") {
		t.Errorf("-h: %d %q", code, out.String())
	}
	out.Reset()
	errb.Reset()
	if code := runServe(stdio{strings.NewReader(""), &out, &errb}, []string{"extra"}); code != exUsage || !strings.Contains(errb.String(), "unexpected argument") {
		t.Errorf("extra argument: %d %q", code, errb.String())
	}
}

func TestRunQueueOnce(t *testing.T) {
	// A daemonless run on an empty spool with no relay returns at once.
	cfg := queueConfig()
	cfg.Spool = filepath.Join(t.TempDir(), "queue.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runQueueOnce(ctx, cfg, maillog.New(nil).Logger, nil); err != nil {
		t.Fatal(err)
	}
}

// TestServeWarnsUnknownKeys: relayq serve logs the configuration warnings
// (a misspelt RELAYQ_ variable) before anything else, so an operator sees
// why a setting kept its default.
func TestServeWarnsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"relayq.env": 0o644, "authinfo": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("RELAYQ_CONFIG", filepath.Join(dir, "relayq.env"))
	t.Setenv("RELAYQ_RELAYHOST", "[127.0.0.1]:587")
	t.Setenv("RELAYQ_TLS_CA_FLIE", "/etc/ssl/ca.pem")
	// The spool cannot be created (its directory is a file): serve stops,
	// after the warnings. (A world-readable credentials file no longer
	// stops it: mail is accepted and waits, see configProblem.)
	t.Setenv("RELAYQ_SPOOL", filepath.Join(dir, "relayq.env", "queue.db"))
	t.Setenv("RELAYQ_AUTHINFO", filepath.Join(dir, "authinfo"))
	var out, errb bytes.Buffer
	code := runServe(stdio{strings.NewReader(""), &out, &errb}, nil)
	if code == exOK {
		t.Errorf("exit %d, want a failure (the spool cannot be created)", code)
	}
	if !strings.Contains(errb.String(), "RELAYQ_AUTHINFO") || !strings.Contains(errb.String(), "mode 0644") {
		t.Errorf("stderr lacks the credentials file problem: %q", errb.String())
	}
	if !strings.Contains(errb.String(), "RELAYQ_TLS_CA_FLIE") || !strings.Contains(errb.String(), "RELAYQ_TLS_CA_FILE") {
		t.Errorf("exit %d; stderr lacks the warning with its hint: %q", code, errb.String())
	}
}

// errReloader is a reloader whose last load failed.
type errReloader struct{ err error }

func (e errReloader) Reload() error { return e.err }
func (e errReloader) Err() error    { return e.err }

// idleSessions closes the relay's idle sessions after a clean reload and
// keeps them when a reload failed (the old credentials stay in force).
func TestIdleSessionsReloader(t *testing.T) {
	sink := testlib.StartSink(t)
	c, err := smarthost.New(smarthost.Options{Relays: sink.Relay(), TLS: smarthost.None, HeloName: "client.test", IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	deliver := func() {
		t.Helper()
		m := &smarthost.Message{ID: "X", From: "a@example.org", Recipients: []smarthost.Recipient{{Addr: "b@example.net"}}, Size: 4,
			Body: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x\r\n")), nil }}
		if _, err := c.Deliver(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	deliver()
	if err := (idleSessions{c: c, after: []daemon.Reloader{errReloader{errors.New("broken")}}}).Reload(); err != nil {
		t.Fatal(err)
	}
	deliver()
	if n := sink.Conns(); n != 1 {
		t.Errorf("after a failed reload: %d connections, want 1 (the session kept)", n)
	}
	if err := (idleSessions{c: c, after: []daemon.Reloader{errReloader{}}}).Reload(); err != nil {
		t.Fatal(err)
	}
	deliver()
	if n := sink.Conns(); n != 2 {
		t.Errorf("after a clean reload: %d connections, want 2 (a new login)", n)
	}
}

// TestSpoolOwnerHint: serve's hint for a spool it may not open gives the
// chown that makes it the service user's, and a user who is not root and
// meets root's spool directory also learns how to use paths of their own.
func TestSpoolOwnerHint(t *testing.T) {
	for _, tc := range []struct {
		name      string
		euid      int
		wantOwn   bool
		wantChown string
	}{
		{name: "not root, root's directory", euid: 65534, wantOwn: true, wantChown: "run chown -R "},
		{name: "root", euid: 0, wantOwn: false, wantChown: "run chown -R "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := spoolOwnerHint("/relayq-no-such-spool.db", tc.euid, 65534) // "/" is root's
			if !strings.Contains(h, "/ is owned by root:") || !strings.Contains(h, tc.wantChown) {
				t.Errorf("hint %q lacks the owner or the chown", h)
			}
			if got := strings.Contains(h, "set RELAYQ_SPOOL, RELAYQ_SOCKET and RELAYQ_CONTROL_SOCKET"); got != tc.wantOwn {
				t.Errorf("hint %q: paths of one's own mentioned %v, want %v", h, got, tc.wantOwn)
			}
		})
	}
}
