package control

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealth asks a daemon's control socket whether it is fit, in each
// state relayq healthcheck must tell apart.
func TestHealth(t *testing.T) {
	t.Parallel()
	sp, dir := openTestSpool(t)
	submitN(t, sp, 2)

	// serve starts a server whose Health says health.
	serve := func(t *testing.T, name string, public bool, health func() error) string {
		sock := filepath.Join(dir, name)
		ln, err := Listen(sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(ServerOptions{Spool: sp, PublicList: public, AdminUID: 1 << 30, Health: health})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		t.Cleanup(func() { cancel(); <-done })
		return sock
	}
	// A socket that accepts and never answers (a hung daemon).
	hung := filepath.Join(dir, "hung.sock")
	hl, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	go func() {
		for {
			c, err := hl.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	tests := []struct {
		name      string
		sock      string
		wantErr   string // "" healthy
		wantQueue int
	}{
		{"healthy", serve(t, "ok.sock", true, nil), "", 2},
		{"draining", serve(t, "drain.sock", true, func() error { return errors.New("draining: not accepting mail") }), "draining: not accepting mail", 0},
		{"no daemon", filepath.Join(dir, "none.sock"), "no daemon answers on the control socket", 0},
		{"hung daemon", hung, "does not answer", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{Socket: tc.sock, SpoolPath: filepath.Join(dir, "queue.db"), Timeout: 300 * time.Millisecond}
			h, err := c.Health(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Status != "ok" {
				t.Errorf("status %q", h.Status)
			}
			if h.Queue == nil || *h.Queue != tc.wantQueue {
				t.Errorf("queue %v, want %d", h.Queue, tc.wantQueue)
			}
		})
	}

	// The queue's size only to those who may read stats.
	for _, public := range []bool{true, false} {
		srv := NewServer(ServerOptions{Spool: sp, PublicList: public, AdminUID: 999})
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, withUID(httptest.NewRequest("GET", "/v1/health", nil), 1000))
		var h Health
		if err := json.Unmarshal(rec.Body.Bytes(), &h); rec.Code != 200 || err != nil || h.Status != "ok" {
			t.Fatalf("public %v: %d %s", public, rec.Code, rec.Body)
		}
		if (h.Queue != nil) != public {
			t.Errorf("public %v: queue %v told to uid 1000", public, h.Queue)
		}
	}
}
