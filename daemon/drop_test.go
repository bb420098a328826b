package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/spool"
)

func dropEnv(rcpt string) maildrop.Envelope {
	return maildrop.Envelope{From: "s@example.com", Recipients: []maildrop.Recipient{{Addr: rcpt}}, Origin: "uid=1000"}
}

func writeDrops(t *testing.T, dir string, n int, tag string) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id, err := maildrop.Write(dir, dropEnv("r@example.net"), strings.NewReader(fmt.Sprintf("Subject: %s-%d\r\n\r\nbody\r\n", tag, i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// countBodies counts each delivered body; every message must be there
// exactly once.
func countBodies(t *testing.T, relay *fakeRelay) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, d := range relay.deliveries() {
		n[d.body]++
	}
	return n
}

func wantEachOnce(t *testing.T, relay *fakeRelay, tag string, n int) {
	t.Helper()
	got := countBodies(t, relay)
	for i := 0; i < n; i++ {
		b := fmt.Sprintf("Subject: %s-%d\r\n\r\nbody\r\n", tag, i)
		if got[b] != 1 {
			t.Errorf("message %s-%d delivered %d times, want once", tag, i, got[b])
		}
	}
}

// A crash between the commit of an imported message and the removal of
// its drop file leaves the file: the next import recognises its drop ID
// and only removes it. A torn file is set aside, never imported, and the
// complete files beside it are imported.
func TestImportIdempotentAndTorn(t *testing.T) {
	tmp := t.TempDir()
	path := filepath.Join(tmp, "queue.db")
	dir := maildrop.Dir(path)
	ids := writeDrops(t, dir, 3, "imp")

	// "Crash" after committing the first file: commit, do not remove.
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	qid, known, err := importOne(t, sp, dir, ids[0])
	if err != nil || known {
		t.Fatalf("SubmitDrop: %v known=%v", err, known)
	}
	// The same drop ID again is known, and stores nothing.
	qid2, known, err := importOne(t, sp, dir, ids[0])
	if err != nil || !known || qid2 != qid {
		t.Fatalf("second SubmitDrop: %v known=%v id %s/%s", err, known, qid2, qid)
	}
	if st, _ := sp.Stats(); st.Count != 1 {
		t.Fatalf("%d messages after a repeated SubmitDrop, want 1", st.Count)
	}
	sp.Close()

	// A torn file: a complete one cut short, under a drop ID of its own.
	full, _ := os.ReadFile(filepath.Join(dir, ids[1]))
	torn := "0000000000000000001"
	if err := os.WriteFile(filepath.Join(dir, torn), full[:len(full)-5], 0o600); err != nil {
		t.Fatal(err)
	}

	relay := &fakeRelay{}
	logs := &syncBuffer{}
	o := Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: time.Second,
		Log: maillog.New(slog.NewTextHandler(logs, nil))}
	if err := RunOnce(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	wantEachOnce(t, relay, "imp", 3)
	if n := len(relay.deliveries()); n != 3 {
		t.Errorf("%d deliveries, want 3", n)
	}
	if maildrop.Pending(dir) {
		t.Error("files left to import")
	}
	if _, err := os.Stat(filepath.Join(dir, torn+maildrop.DamagedSuffix)); err != nil {
		t.Errorf("torn file not set aside: %v", err)
	}
	if !strings.Contains(logs.String(), "drop file is damaged") {
		t.Errorf("torn file not logged:\n%s", logs)
	}
	sp, err = spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if st, _ := sp.Stats(); st.Count != 0 {
		t.Errorf("%d messages left in the spool", st.Count)
	}
	if d, _ := sp.DropIDs(); len(d) != 0 {
		t.Errorf("drop IDs left: %v", d)
	}
}

// A crash after the file was removed but before its drop ID was forgotten
// leaves only the entry; the next run forgets it.
func TestSweepForgetsStaleDropIDs(t *testing.T) {
	tmp := t.TempDir()
	path := filepath.Join(tmp, "queue.db")
	dir := maildrop.Dir(path)
	ids := writeDrops(t, dir, 1, "stale")
	sp, _ := spool.Open(path, spool.Options{})
	if _, _, err := importOne(t, sp, dir, ids[0]); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	os.Remove(filepath.Join(dir, ids[0]))
	relay := &fakeRelay{}
	if err := RunOnce(context.Background(), Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	wantEachOnce(t, relay, "stale", 1)
	sp, _ = spool.Open(path, spool.Options{})
	defer sp.Close()
	if d, _ := sp.DropIDs(); len(d) != 0 {
		t.Errorf("drop IDs left: %v", d)
	}
}

// A run that finds the run lock held leaves the work to the holder.
func TestRunLeavesWorkToLockHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	dir := maildrop.Dir(path)
	writeDrops(t, dir, 2, "held")
	l, ok, err := maildrop.TryRunLock(dir, "run")
	if err != nil || !ok {
		t.Fatal(err)
	}
	relay := &fakeRelay{}
	if err := RunOnce(context.Background(), Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if n := len(relay.deliveries()); n != 0 {
		t.Fatalf("%d deliveries while another process holds the run lock", n)
	}
	l.Unlock()
	if err := RunOnce(context.Background(), Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	wantEachOnce(t, relay, "held", 2)
}

// The daemon starting while a daemonless run delivers waits for the run
// (which stops leasing, finishes the attempt in flight and records it),
// then delivers the rest: every message exactly once.
func TestServeWaitsForRun(t *testing.T) {
	tmp := t.TempDir()
	path := filepath.Join(tmp, "queue.db")
	dir := maildrop.Dir(path)
	writeDrops(t, dir, 6, "wait")
	runRelay := &fakeRelay{hold: make(chan struct{})}
	runDone := make(chan error, 1)
	go func() {
		runDone <- RunOnce(context.Background(), Options{SpoolPath: path, DropDir: dir, Deliverer: runRelay, Workers: 1, LockTimeout: 5 * time.Second})
	}()
	waitUntil(t, "the run holds the lock", func() bool { return maildrop.RunActive(dir) })
	waitUntil(t, "the run's first attempt", func() bool {
		runRelay.mu.Lock()
		defer runRelay.mu.Unlock()
		return runRelay.inflight > 0
	})

	logs := &syncBuffer{}
	relay := &fakeRelay{}
	ready := make(chan Info, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serveDone := make(chan error, 1)
	go func() {
		serveDone <- Serve(ctx, Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: 5 * time.Second,
			Log: maillog.New(slog.NewTextHandler(logs, nil)), Ready: func(i Info) { ready <- i }})
	}()
	waitUntil(t, "the daemon waits", func() bool { return maildrop.DaemonWaiting(dir) })
	if !strings.Contains(logs.String(), "waiting for the daemonless delivery run") {
		t.Errorf("the daemon does not say it waits:\n%s", logs)
	}
	select {
	case <-ready:
		t.Fatal("the daemon started while the run held the lock")
	case <-time.After(300 * time.Millisecond):
	}
	close(runRelay.hold) // the attempt in flight ends
	if err := <-runDone; err != nil {
		t.Fatalf("run: %v", err)
	}
	select {
	case <-ready:
	case err := <-serveDone:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not start after the run")
	}
	waitUntil(t, "all delivered", func() bool { return len(relay.deliveries())+len(runRelay.deliveries()) >= 6 })
	cancel()
	if err := <-serveDone; err != nil {
		t.Fatal(err)
	}
	if n := len(runRelay.deliveries()); n < 1 || n > 2 {
		t.Errorf("the run delivered %d, want its attempts in flight only", n)
	}
	all := countBodies(t, runRelay)
	for b, n := range countBodies(t, relay) {
		all[b] += n
	}
	for i := 0; i < 6; i++ {
		if n := all[fmt.Sprintf("Subject: wait-%d\r\n\r\nbody\r\n", i)]; n != 1 {
			t.Errorf("wait-%d delivered %d times", i, n)
		}
	}
}

// Files dropped while the daemon runs (it did not answer on its socket)
// are imported and delivered.
func TestServeImportsNewDrops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	dir := maildrop.Dir(path)
	writeDrops(t, dir, 2, "before")
	relay := &fakeRelay{}
	ready := make(chan Info, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: time.Second, Ready: func(i Info) { ready <- i }})
	}()
	<-ready
	writeDrops(t, dir, 3, "after")
	waitUntil(t, "5 deliveries", func() bool { return len(relay.deliveries()) >= 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantEachOnce(t, relay, "before", 2)
	wantEachOnce(t, relay, "after", 3)
	if maildrop.RunActive(dir) {
		t.Error("the run lock is still held after Serve returned")
	}
}

// importOne commits one drop file and leaves the file (a crash before
// its removal).
func importOne(t *testing.T, sp *spool.Spool, dir, id string) (spool.ID, bool, error) {
	t.Helper()
	f, err := maildrop.Open(filepath.Join(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return sp.SubmitDrop(context.Background(), id, spoolEnvelope(f.Envelope), f.Body())
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A run that finds the lock held leaves a wake-up flag, so the holder runs
// the queue once more after it lets go (a flush or release made messages
// due that no drop file announces); the holder's next pass clears it.
func TestRefusedRunKicksHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	dir := maildrop.Dir(path)
	submitDirect(t, path, 1, "due@example.net") // due, no drop file
	l, ok, err := maildrop.TryRunLock(dir, "run")
	if err != nil || !ok {
		t.Fatal(err)
	}
	relay := &fakeRelay{}
	o := Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: time.Second}
	if err := RunOnce(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !maildrop.Pending(dir) {
		t.Fatal("no wake-up for the holder")
	}
	l.Unlock()
	if err := RunOnce(context.Background(), o); err != nil { // the holder's look after letting go
		t.Fatal(err)
	}
	if n := len(relay.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
	if maildrop.Pending(dir) {
		t.Error("the wake-up flag was not cleared")
	}
}

// A second daemon on the same spool finds the run lock held by a daemon
// and fails as before (spool locked, exit 75) after its lock wait.
func TestSecondServeFindsRunLockHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	dir := maildrop.Dir(path)
	l, ok, err := maildrop.TryRunLock(dir, "serve")
	if err != nil || !ok {
		t.Fatal(err)
	}
	defer l.Unlock()
	err = Serve(context.Background(), Options{SpoolPath: path, DropDir: dir, Deliverer: &fakeRelay{}, LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, spool.ErrLocked) || !errors.Is(err, maildrop.ErrDaemonHolds) {
		t.Fatalf("Serve = %v, want spool locked by another relayq serve", err)
	}
}

// A run that cannot import (here the spool file is damaged) records why
// beside the drop files, so that the queue listing can say it without a
// daemon or syslog; the next successful import removes the note, and every
// message is then delivered once.
func TestImportProblemRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	dir := maildrop.Dir(path)
	writeDrops(t, dir, 2, "prob")
	if err := os.WriteFile(path, []byte("not a bbolt file, a bad copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	relay := &fakeRelay{}
	o := Options{SpoolPath: path, DropDir: dir, Deliverer: relay, LockTimeout: time.Second}
	if err := RunOnce(context.Background(), o); err == nil {
		t.Fatal("a run with a damaged spool succeeded")
	}
	p, at := maildrop.Problem(dir)
	if !strings.Contains(p, path) || at.IsZero() {
		t.Fatalf("recorded problem %q at %v, want one naming %s", p, at, path)
	}
	if n := len(relay.deliveries()); n != 0 {
		t.Fatalf("%d deliveries", n)
	}
	if err := os.Remove(path); err != nil { // the operator's fix
		t.Fatal(err)
	}
	if err := RunOnce(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if p, _ := maildrop.Problem(dir); p != "" {
		t.Errorf("problem %q still recorded after a successful import", p)
	}
	wantEachOnce(t, relay, "prob", 2)
}
