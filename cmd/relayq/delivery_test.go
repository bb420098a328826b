package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayq/relayq/daemon"
	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
)

// TestDeliveryReload: relayq serve's Deliverer leaves the configuration
// error state on a SIGHUP once the file is fixed (a credentials file of
// mode 0644 at start), picks up a credentials file that was missing at
// start, and keeps deferring (a restart is needed) for a bad env value.
func TestDeliveryReload(t *testing.T) {
	sink := testlib.StartSink(t)
	dir := t.TempDir()
	cfg := queueConfig()
	cfg.RelayHost, cfg.TLS, cfg.Auth = sink.Relay(), "none", "none" // the sink takes mail without AUTH
	cfg.AuthInfo = filepath.Join(dir, "authinfo")
	log := maillog.New(nil)
	deliver := func(d daemon.Deliverer) smarthost.Outcome {
		t.Helper()
		m := &smarthost.Message{ID: "X", From: "a@example.org", Recipients: []smarthost.Recipient{{Addr: "b@example.net"}}, Size: 3,
			Body: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x\r\n")), nil }}
		out, err := d.Deliver(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	build := func() *delivery {
		o, _, err := daemonOptions(cfg, log)
		return newDelivery(cfg, log, o.Deliverer, err)
	}

	// Mode 0644 at start: every message deferred with the file's name.
	if err := os.WriteFile(cfg.AuthInfo, []byte("[other.example]:587 u:p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := build()
	t.Cleanup(func() { d.Close() })
	out := deliver(d)
	if out.Kind != daemon.KindNoRelay || out.Recipients[0].Status != smarthost.Deferred || !strings.Contains(out.Recipients[0].Reply.Text, "RELAYQ_AUTHINFO") ||
		!strings.Contains(out.Recipients[0].Reply.Text, "SIGHUP") {
		t.Fatalf("0644 credentials: %+v", out)
	}
	if err := d.Reload(); err == nil {
		t.Error("reload with the file still 0644: no error")
	}
	if err := os.Chmod(cfg.AuthInfo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("reload after chmod 0600: %v", err)
	}
	if out := deliver(d); out.Recipients[0].Status != smarthost.Delivered || len(sink.Messages()) != 1 {
		t.Fatalf("after the fix and SIGHUP: %+v, %d at the relay", out, len(sink.Messages()))
	}
	if err := d.Reload(); err != nil || d.rebuild || len(d.reload) == 0 {
		t.Errorf("later SIGHUPs reload the rebuilt client's stores: err %v, rebuild %v, %d reloaders", err, d.rebuild, len(d.reload))
	}

	// Missing at start: the client runs without it; a SIGHUP after the
	// file is written builds it with the file.
	if err := os.Remove(cfg.AuthInfo); err != nil {
		t.Fatal(err)
	}
	d2 := build()
	t.Cleanup(func() { d2.Close() })
	if !d2.rebuild || len(d2.reload) != 0 {
		t.Fatalf("missing credentials file: rebuild %v", d2.rebuild)
	}
	if err := d2.Reload(); err != nil || !d2.rebuild {
		t.Fatalf("SIGHUP with the file still missing: %v, rebuild %v", err, d2.rebuild)
	}
	if err := os.WriteFile(cfg.AuthInfo, []byte("[other.example]:587 u:p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d2.Reload(); err != nil || d2.rebuild || len(d2.reload) == 0 {
		t.Fatalf("SIGHUP after the file was written: %v, rebuild %v, %d reloaders", err, d2.rebuild, len(d2.reload))
	}

	// A bad env value: only a restart reads it again.
	d3 := newDelivery(cfg, log, nil, envProblem{errors.New("/etc/relayq/relayq.env:3: RELAYQ_TLS: \"bogus\" is not one of verify")})
	if err := d3.Reload(); err != nil {
		t.Fatal(err)
	}
	out = deliver(d3)
	if out.Recipients[0].Status != smarthost.Deferred || !strings.Contains(out.Recipients[0].Reply.Text, "relayq.env:3: RELAYQ_TLS") ||
		!strings.Contains(out.Recipients[0].Reply.Text, "restart") {
		t.Fatalf("env problem after SIGHUP: %+v", out)
	}
}
