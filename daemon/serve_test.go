package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/control"
	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/submit"
)

type countingReloader struct {
	mu  sync.Mutex
	n   int
	err error
}

func (c *countingReloader) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.err
}

func (c *countingReloader) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// notifyListener is a fake systemd notification socket.
func notifyListener(t *testing.T, dir string) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 10)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := c.ReadFromUnix(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return path, ch
}

func sendSMTP(t *testing.T, addr, from, to, body string) string {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	return resp.StatusText
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	relay := &fakeRelay{}
	notifyPath, notes := notifyListener(t, dir)
	hup := make(chan os.Signal, 1)
	good, bad := &countingReloader{}, &countingReloader{err: errors.New("authinfo: line 3: bad entry")}
	logs := &syncBuffer{}
	infoCh := make(chan Info, 1)
	sockPath := filepath.Join(dir, "submit.sock")
	o := Options{
		SpoolPath:    filepath.Join(dir, "queue.db"),
		Deliverer:    relay,
		Workers:      2,
		ReportingMTA: "relayq.test",
		Log:          maillog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Listener:     &listener.Options{Hostname: "relayq.test", AuthFailDelay: -1},
		Listen:       []string{"127.0.0.1:0"},
		Socket: func() (*net.UnixListener, error) {
			return listener.ListenUnix(sockPath, 0o666, -1)
		},
		ControlSocket: filepath.Join(dir, "control.sock"),
		ControlPublic: true,
		MetricsListen: "127.0.0.1:0",
		DrainTimeout:  2 * time.Second,
		Reload:        []Reloader{good, bad},
		Hangup:        hup,
		NotifySocket:  notifyPath,
		Ready:         func(i Info) { infoCh <- i },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, o) }()
	var info Info
	select {
	case info = <-infoCh:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve not ready")
	}
	if n := <-notes; n != "READY=1\nSTATUS=delivering" {
		t.Errorf("notify %q", n)
	}

	// Through the TCP listener.
	reply := sendSMTP(t, info.Listen[0].String(), "app@example.com", "user@example.net", "Subject: via tcp\r\n\r\nhello\r\n")
	if !strings.Contains(reply, "queued as") {
		t.Errorf("reply %q", reply)
	}
	// Through the unix submission socket, as sendmail does.
	env := spool.Envelope{From: "cron@example.com", Recipients: []spool.Recipient{{Addr: "root@example.net"}}}
	if _, err := submit.Submit(context.Background(), submit.Options{Socket: sockPath}, env, strings.NewReader("Subject: via socket\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(relay.deliveries()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of 2\n%s", len(relay.deliveries()), logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The control socket answers while the daemon holds the spool.
	cc := &control.Client{Socket: o.ControlSocket, SpoolPath: o.SpoolPath}
	if !cc.DaemonRunning() {
		t.Error("control socket does not answer")
	}

	// Metrics and health.
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + info.Metrics.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	for _, want := range []string{"relayq_delivered_total 2", "# TYPE relayq_attempt_duration_seconds histogram",
		"relayq_attempt_duration_seconds_count 2", "relayq_auth_failures_total 0", "relayq_queue_messages ",
		"relayq_queue_oldest_message_age_seconds "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q:\n%s", code, want, body)
		}
	}
	code, body = get("/healthz")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || h.Status != "ok" {
		t.Errorf("/healthz %d %q %v", code, body, err)
	}

	// SIGHUP reloads; a broken reload is logged and the rest goes on.
	hup <- os.Interrupt
	deadline = time.Now().Add(5 * time.Second)
	for good.count() == 0 || bad.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("reload not called")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if !strings.Contains(logs.String(), "reload failed; the previous configuration stays in force") {
		t.Errorf("failed reload not logged:\n%s", logs)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if n := <-notes; n != "STOPPING=1" {
		t.Errorf("notify %q", n)
	}
	// The spool was closed: it opens again at once.
	sp, err := spool.Open(o.SpoolPath, spool.Options{LockTimeout: -1})
	if err != nil {
		t.Fatalf("spool still locked after Serve: %v", err)
	}
	sp.Close()
	// The listener is closed.
	if c, err := net.DialTimeout("tcp", info.Listen[0].String(), time.Second); err == nil {
		c.Close()
		t.Error("listener still accepts after shutdown")
	}
}

func TestServeSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "queue.db")
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	err = Serve(context.Background(), Options{SpoolPath: path, Deliverer: &fakeRelay{}, LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, spool.ErrLocked) {
		t.Fatalf("Serve on a locked spool: %v", err)
	}
}

func TestServeRefusesOpenRelayBind(t *testing.T) {
	dir := t.TempDir()
	err := Serve(context.Background(), Options{
		SpoolPath: filepath.Join(dir, "queue.db"), Deliverer: &fakeRelay{},
		Listener: &listener.Options{}, Listen: []string{"0.0.0.0:0"},
	})
	if !errors.Is(err, listener.ErrConfig) {
		t.Fatalf("Serve with a public bind and no allow-list or AUTH: %v", err)
	}
	// Nothing was left holding the spool.
	sp, err := spool.Open(filepath.Join(dir, "queue.db"), spool.Options{LockTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	sp.Close()
}

func TestHealthDegradedAndFailing(t *testing.T) {
	m := NewMetrics()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	stats := func() (spool.Stats, error) { return spool.Stats{Count: 3, Oldest: now.Add(-time.Hour)}, nil }
	h := m.handler(stats, func() time.Time { return now }, 15*time.Minute)
	check := func(wantCode int, wantStatus string) {
		t.Helper()
		rec := &recorder{header: http.Header{}}
		req, _ := http.NewRequest("GET", "/healthz", nil)
		h.ServeHTTP(rec, req)
		var hh health
		if err := json.Unmarshal([]byte(rec.body.String()), &hh); err != nil {
			t.Fatal(err)
		}
		if rec.code != wantCode || hh.Status != wantStatus || hh.Queue != 3 || hh.OldestAgeSecs != 3600 {
			t.Errorf("healthz %d %+v, want %d %s", rec.code, hh, wantCode, wantStatus)
		}
	}
	check(200, "ok")
	m.authFailure(now.Add(-time.Minute))
	check(200, "degraded")
	m.spoolError(errors.New("spool write failed"))
	check(503, "failing")
	m.spoolOK()
	check(200, "degraded")
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.WriteString(string(b))
}
func (r *recorder) WriteHeader(c int) { r.code = c }
