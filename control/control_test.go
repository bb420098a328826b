package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/spool"
)

func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// openTestSpool opens a spool in a short private directory (unix socket
// paths must fit) and closes it when the test ends.
func openTestSpool(t *testing.T) (*spool.Spool, string) {
	t.Helper()
	dir := shortDir(t)
	sp, err := spool.Open(filepath.Join(dir, "queue.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp, dir
}

func submitN(t *testing.T, s *spool.Spool, n int) []spool.ID {
	t.Helper()
	var ids []spool.ID
	for i := 0; i < n; i++ {
		env := spool.Envelope{
			From:       fmt.Sprintf("sender%d@example.com", i),
			Recipients: []spool.Recipient{{Addr: "a@example.net"}, {Addr: "b@example.net", Notify: "FAILURE"}},
			Origin:     "test",
		}
		body := fmt.Sprintf("Subject: message %d\r\nFrom: sender%d@example.com\r\n\r\nbody %d\r\n", i, i, i)
		id, err := s.Submit(context.Background(), env, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// daemon starts a Server on a socket for an open spool.
func daemon(t *testing.T, dir string, sp *spool.Spool, kick func()) string {
	t.Helper()
	sock := filepath.Join(dir, "c.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ServerOptions{Spool: sp, Kick: kick, PublicList: true, AdminUID: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

// TestClientRoundTrip runs the same queue operations through a daemon's
// control socket and, with no daemon, on the spool file directly.
func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"daemon", "direct"} {
		t.Run(mode, func(t *testing.T) {
			dir := shortDir(t)
			path := filepath.Join(dir, "queue.db")
			sp, err := spool.Open(path, spool.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ids := submitN(t, sp, 3)
			var kicks atomic.Int32
			kick := func() { kicks.Add(1) }
			c := &Client{Socket: filepath.Join(dir, "none.sock"), SpoolPath: path, LockTimeout: time.Second, Kick: kick}
			if mode == "daemon" {
				c.Socket = daemon(t, dir, sp, kick)
				c.Kick = func() { t.Error("client kicked although the daemon runs") }
				defer sp.Close()
			} else {
				sp.Close()
			}
			ctx := context.Background()

			var listed []spool.ID
			if err := c.List(ctx, func(m *spool.Message) error {
				listed = append(listed, m.ID)
				if len(m.Recipients) != 2 || m.Recipients[1].Notify != "FAILURE" || m.Size == 0 {
					t.Errorf("listed %+v", m)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(listed) != fmt.Sprint(ids) {
				t.Errorf("listed %v, want %v", listed, ids)
			}

			d, err := c.Show(ctx, ids[1])
			if err != nil {
				t.Fatal(err)
			}
			if d.Message.ID != ids[1] || d.Message.From != "sender1@example.com" ||
				d.Headers != "Subject: message 1\r\nFrom: sender1@example.com\r\n" || d.Truncated {
				t.Errorf("show: %+v headers %q", d.Message, d.Headers)
			}

			if err := c.Hold(ctx, ids[0]); err != nil {
				t.Fatal(err)
			}
			st, err := c.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Count != 3 || st.Held != 1 || st.Bytes <= 0 || st.Oldest.IsZero() {
				t.Errorf("stats %+v", st)
			}
			if err := c.Release(ctx, ids[0]); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, ids[2]); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Show(ctx, ids[2]); !errors.Is(err, spool.ErrNotFound) {
				t.Errorf("show deleted: %v, want ErrNotFound", err)
			}
			if err := c.Hold(ctx, ids[2]); !errors.Is(err, spool.ErrNotFound) {
				t.Errorf("hold deleted: %v, want ErrNotFound", err)
			}
			n, err := c.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("flush: %d due, want 2", n)
			}
			if err := c.Compact(ctx); err != nil {
				t.Fatal(err)
			}
			st, err = c.Stats(ctx)
			if err != nil || st.Count != 2 || st.Held != 0 {
				t.Errorf("stats after: %+v %v", st, err)
			}
			// release + flush each kick delivery once.
			if k := kicks.Load(); k != 2 {
				t.Errorf("%d kicks, want 2", k)
			}
			if got := c.DaemonRunning(); got != (mode == "daemon") {
				t.Errorf("DaemonRunning = %v", got)
			}
		})
	}
}

func TestClientLockedNoDaemon(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	path := filepath.Join(dir, "queue.db")
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	c := &Client{Socket: filepath.Join(dir, "none.sock"), SpoolPath: path, LockTimeout: 150 * time.Millisecond}
	_, err = c.Stats(context.Background())
	if !errors.Is(err, ErrNoDaemon) || !errors.Is(err, spool.ErrLocked) {
		t.Fatalf("err = %v, want ErrNoDaemon wrapping ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "daemon holds the spool but its control socket does not answer") {
		t.Errorf("message: %v", err)
	}
}

func TestClientNoSpoolFile(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	path := filepath.Join(dir, "sub", "queue.db")
	c := &Client{Socket: filepath.Join(dir, "none.sock"), SpoolPath: path}
	n := 0
	if err := c.List(context.Background(), func(*spool.Message) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("List = %d, %v", n, err)
	}
	if _, err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), "0123456789AB"); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read-only command created %s", filepath.Dir(path))
	}
}

// withUID returns a request whose context carries peer credentials, as
// Serve's ConnContext does.
func withUID(r *http.Request, uid int) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), credKey{}, &unix.Ucred{Uid: uint32(uid)}))
}

func TestServerPermissions(t *testing.T) {
	t.Parallel()
	sp, _ := openTestSpool(t)
	ids := submitN(t, sp, 1)
	id := string(ids[0])
	oid, err := sp.Submit(context.Background(), spool.Envelope{From: "u@example.com", Origin: "uid=1000",
		Recipients: []spool.Recipient{{Addr: "x@example.net"}}}, strings.NewReader("Subject: mine\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	owned := string(oid)
	const daemonUID = 999
	tests := []struct {
		method, path string
		uid          int
		public       bool
		want         int
	}{
		{"GET", "/v1/queue", 1000, true, 200},
		{"GET", "/v1/stats", 1000, true, 200},
		{"GET", "/v1/queue", 1000, false, 403},
		{"GET", "/v1/stats", 1000, false, 403},
		{"GET", "/v1/queue", -1, false, 403}, // no credentials
		{"GET", "/v1/queue", daemonUID, false, 200},
		{"GET", "/v1/queue", 0, false, 200},
		{"GET", "/v1/queue/" + id, 1000, true, 403},
		{"GET", "/v1/queue/" + owned, 1000, false, 200},
		{"GET", "/v1/queue/" + owned, 1001, true, 403},
		{"GET", "/v1/queue/0123456789AB", 1000, true, 403}, // not even "not found"
		{"POST", "/v1/queue/" + owned + "/hold", 1000, true, 403},
		{"POST", "/v1/queue/" + id + "/hold", 1000, true, 403},
		{"POST", "/v1/queue/" + id + "/release", 1000, true, 403},
		{"DELETE", "/v1/queue/" + id, 1000, true, 403},
		{"POST", "/v1/flush", 1000, true, 403},
		{"POST", "/v1/compact", 1000, true, 403},
		{"GET", "/v1/queue/" + id, daemonUID, false, 200},
		{"POST", "/v1/queue/" + id + "/hold", 0, false, 200},
		{"POST", "/v1/queue/" + id + "/release", daemonUID, false, 200},
		{"GET", "/v1/queue/not-an-id", 0, false, 400},
		{"GET", "/v1/queue/0123456789AB", 0, false, 404},
		{"POST", "/v1/queue/" + id, 0, false, 405},
		{"POST", "/v1/flush", daemonUID, false, 200},
		{"GET", "/v1/health", 1000, false, 200}, // a probe may run as any user
		{"GET", "/v1/health", -1, false, 200},
	}
	for _, tt := range tests {
		srv := NewServer(ServerOptions{Spool: sp, PublicList: tt.public, AdminUID: daemonUID})
		req := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.uid >= 0 {
			req = withUID(req, tt.uid)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s %s as uid %d (public %v): %d %s, want %d", tt.method, tt.path, tt.uid, tt.public, rec.Code, rec.Body, tt.want)
			continue
		}
		if rec.Code >= 400 && rec.Code != 405 {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Kind == "" {
				t.Errorf("%s %s: error body %q", tt.method, tt.path, rec.Body)
			}
		}
	}
	// The hold by root above and the release by the daemon user happened.
	m, err := sp.Get(ids[0])
	if err != nil || m.Held {
		t.Errorf("after hold+release: %+v %v", m, err)
	}
}

// TestServerPeerCred checks that Serve takes the uid from SO_PEERCRED: the
// test runs as some uid; with AdminUID set to another uid and PublicList
// off, only root may list.
func TestServerPeerCred(t *testing.T) {
	t.Parallel()
	sp, dir := openTestSpool(t)
	sock := filepath.Join(dir, "c.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getuid()
	srv := NewServer(ServerOptions{Spool: sp, AdminUID: me + 12345})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	c := &Client{Socket: sock, SpoolPath: filepath.Join(dir, "queue.db")}
	err = c.List(context.Background(), func(*spool.Message) error { return nil })
	if me == 0 {
		if err != nil {
			t.Fatalf("root: %v", err)
		}
	} else if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("uid %d: err = %v, want permission denied", me, err)
	}
	// Flush is admin-only: root passes, others are refused, never by
	// falling back to the (locked) spool.
	_, err = c.Flush(context.Background())
	if (me == 0) != (err == nil) {
		t.Fatalf("flush as uid %d: %v", me, err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode %v %v", fi.Mode(), err)
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	sock := filepath.Join(dir, "c.sock")
	// A stale socket is replaced.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = Listen(sock)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A live one is not.
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Errorf("live socket: %v", err)
	}
	// A missing directory is made.
	deep := filepath.Join(dir, "a", "b", "c.sock")
	ln2, err := Listen(deep)
	if err != nil {
		t.Fatalf("missing directory: %v", err)
	}
	ln2.Close()
	// Nor is a regular file.
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := Listen(f); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
}

func TestListStreamEndsEarly(t *testing.T) {
	t.Parallel()
	// A daemon that dies mid-list: the client reports it instead of
	// returning a short list as complete.
	dir := shortDir(t)
	sock := filepath.Join(dir, "c.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		fmt.Fprintln(w, `{"message":{"ID":"0123456789AB"}}`)
	})}
	go hs.Serve(ln)
	defer hs.Close()
	c := &Client{Socket: sock}
	n := 0
	err = c.List(context.Background(), func(*spool.Message) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "ended early") || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestReadHeaders(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("X-Long: "+strings.Repeat("a", 90)+"\r\n", 1000)
	tests := []struct {
		name, body, want string
		trunc            bool
	}{
		{"normal", "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n", false},
		{"no body", "A: 1\r\n", "A: 1\r\n", false},
		{"empty header section", "\r\nbody", "", false},
		{"empty", "", "", false},
		{"truncated", big + "\r\nbody", big[:MaxHeaders], true},
		{"exactly at the bound", strings.Repeat("a", MaxHeaders-4) + "\r\n\r\nbody", strings.Repeat("a", MaxHeaders-4) + "\r\n", false},
	}
	for _, tt := range tests {
		got, trunc, err := readHeaders(&slowReader{s: tt.body})
		if err != nil || got != tt.want || trunc != tt.trunc {
			t.Errorf("%s: got %d bytes trunc=%v err=%v, want %d bytes trunc=%v", tt.name, len(got), trunc, err, len(tt.want), tt.trunc)
		}
	}
}

// slowReader returns at most 7 bytes per Read, to cross chunk borders.
type slowReader struct{ s string }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], r.s)
	r.s = r.s[n:]
	return n, nil
}

func FuzzReadHeaders(f *testing.F) {
	f.Add("A: 1\r\n\r\nbody")
	f.Add("\r\n")
	f.Add("A: 1\r\n\r")
	f.Fuzz(func(t *testing.T, s string) {
		got, trunc, err := readHeaders(&slowReader{s: s})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > MaxHeaders || !strings.HasPrefix(s, got) {
			t.Fatalf("got %q from %q", got, s)
		}
		if !trunc && strings.Contains(got, "\r\n\r\n") {
			t.Fatalf("header section %q contains the blank line", got)
		}
	})
}

func TestLimitListener(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	ln, err := net.Listen("unix", filepath.Join(dir, "l.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ll := limitListener(ln, 2)
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("unix", filepath.Join(dir, "l.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	a, b := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two are open")
	case <-time.After(100 * time.Millisecond):
	}
	a.Close()
	a.Close() // closing twice releases once
	c := <-accepted
	select {
	case <-accepted:
		t.Fatal("the semaphore was released twice")
	case <-time.After(100 * time.Millisecond):
	}
	b.Close()
	c.Close()
}

func TestOwnedBy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		origin string
		uid    int
		want   bool
	}{
		{"uid=1000", 1000, true},
		{"uid=1000 user=app", 1000, true},
		{"uid=1000", 100, false},
		{"uid=100", 1000, false},
		{"uid=1000", -1, false},
		{"127.0.0.1:5243", 1000, false},
		{"127.0.0.1:5243 user=uid=1000", 1000, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if got := ownedBy(&spool.Message{Envelope: spool.Envelope{Origin: tt.origin}}, tt.uid); got != tt.want {
			t.Errorf("ownedBy(%q, %d) = %v", tt.origin, tt.uid, got)
		}
	}
}
