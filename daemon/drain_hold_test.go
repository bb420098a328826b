package daemon

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
)

// TestDrainEndsDeadRelayHold: with RELAYQ_DRAIN_ON_STOP, a relay that
// failed before SIGTERM (the dead-relay hold is on) and is back gets the
// queue during the drain: the drain ends the hold as an operator's flush
// does. (It kept the hold, and the drain delivered nothing.)
func TestDrainEndsDeadRelayHold(t *testing.T) {
	dir := t.TempDir()
	relay, spec := startSwitchRelay(t) // down: every session refused
	cl, err := smarthost.New(smarthost.Options{Relays: spec, TLS: smarthost.None, HeloName: "client.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	path := filepath.Join(dir, "queue.db")
	submitDirect(t, path, 1, "b@example.net")
	logs := &syncBuffer{}
	ready := make(chan Info, 1)
	o := Options{
		SpoolPath:     path,
		Deliverer:     cl,
		Workers:       1,
		Log:           maillog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ControlSocket: filepath.Join(dir, "control.sock"),
		Policy:        Policy{BackoffMin: time.Hour, BackoffMax: time.Hour},
		DrainTimeout:  2 * time.Second,
		DrainOnStop:   30 * time.Second,
		Ready:         func(i Info) { ready <- i },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, o) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	for !strings.Contains(logs.String(), "dead-relay hold") {
		select {
		case err := <-done:
			t.Fatalf("Serve: %v\n%s", err, logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	relay.up.Store(true) // back before SIGTERM; the hold has an hour to run
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v\n%s", err, logs)
	}
	if got := relay.counts(); len(got) != 1 || got["Subject: 0"] != 1 {
		t.Errorf("relay got %v, want the message once\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "relayq serve drained") {
		t.Errorf("no 'drained' in the log:\n%s", logs)
	}
}
