package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/spool"
)

// watchInterval is how often the daemon and a run look for a daemon
// waiting (run) or new drop files (daemon: a stat of the directory).
const watchInterval = 100 * time.Millisecond

// runWithDrops is RunOnce with a drop directory: take the run lock or
// leave (its holder delivers), import and deliver until nothing is left,
// stop early when a daemon waits for the lock, and after letting go of the
// lock look at the drop directory once more, taking the lock again if work
// appeared meanwhile: a writer that found the lock held did not start a
// run, and counts on this last look.
func runWithDrops(ctx context.Context, o Options, st *transient, r *runner, drain time.Duration) error {
	dir := o.DropDir
	for {
		l, ok, err := maildrop.TryRunLock(dir, "run")
		if err != nil {
			return fmt.Errorf("queue run: %w", err)
		}
		if !ok {
			if !o.WaitRunLock {
				// The holder looks at the drop directory after it
				// lets go: the flag makes it run the queue once
				// more (this run may be for messages a flush or a
				// release made due, which no drop file announces).
				pid, role := maildrop.Holder(dir)
				o.Log.Debug("another delivery run or the daemon holds the run lock and delivers", "pid", pid, "role", role)
				if err := maildrop.Kick(dir); err != nil {
					return fmt.Errorf("queue run: %w", err)
				}
				if maildrop.RunActive(dir) {
					return nil
				}
				continue // the holder has just let go: try again
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		err = runLocked(ctx, o, st, r, drain)
		l.Unlock()
		if err != nil {
			return fmt.Errorf("queue run: %w", err)
		}
		if ctx.Err() != nil || maildrop.DaemonWaiting(dir) || !maildrop.Pending(dir) {
			return nil
		}
		o.WaitRunLock = false // -odi's message was tried in the first round
	}
}

// runLocked imports and delivers while this process holds the run lock.
func runLocked(ctx context.Context, o Options, st *transient, r *runner, drain time.Duration) error {
	dir := o.DropDir
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(watchInterval)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if maildrop.DaemonWaiting(dir) {
					o.Log.Info("the daemon is starting: finishing the attempts in flight and leaving the queue to it", "pid", os.Getpid())
					cancel()
					return
				}
			}
		}
	}()
	if err := st.with(func(s *spool.Spool) error { return sweepDrops(s, dir, &o) }); err != nil {
		maildrop.SetProblem(dir, err.Error())
		return err
	}
	for {
		for more := maildrop.Pending(dir); more && runCtx.Err() == nil; {
			err := st.with(func(s *spool.Spool) error {
				var err error
				_, more, err = importDrops(runCtx, s, dir, importBatch, &o)
				return err
			})
			if err != nil && runCtx.Err() == nil {
				maildrop.SetProblem(dir, err.Error())
				return err
			}
			if err == nil {
				maildrop.ClearProblem(dir)
			}
		}
		maildrop.ClearKick(dir)
		if err := r.run(runCtx, true, drain); err != nil {
			return err
		}
		if runCtx.Err() != nil || !linger(runCtx, dir) {
			return nil
		}
	}
}

// runLinger is how long a run that has delivered everything waits for new
// drop files before it lets go of the run lock. Serial callers (a cron
// burst, a script sending one message after another) then find the lock
// held and start no process, and their messages go out over the run's
// open relay connection instead of one new run and connection each.
const runLinger = 250 * time.Millisecond

// linger waits up to runLinger for a file in dir; it reports whether one
// came.
func linger(ctx context.Context, dir string) bool {
	deadline := time.Now().Add(runLinger)
	for {
		if maildrop.Pending(dir) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// watchDrops is the daemon's importer: it imports at once (files left by
// writers while no daemon ran), then whenever the drop directory changes
// (a stat every watchInterval; a full look every few seconds in case a
// change hid in the clock's granularity), and kicks the runner.
func watchDrops(ctx context.Context, s *spool.Spool, o *Options, kick func()) {
	dir := o.DropDir
	if err := sweepDrops(s, dir, o); err != nil {
		o.Log.Error("drop directory: sweep failed", "dir", dir, "error", err)
	}
	var lastMod time.Time
	lastFull := time.Time{}
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		fi, err := os.Stat(dir)
		changed := err != nil || !fi.ModTime().Equal(lastMod) || time.Since(lastFull) > 5*time.Second
		if changed {
			if err == nil {
				lastMod = fi.ModTime()
			}
			lastFull = time.Now()
			maildrop.ClearNoAnswer(dir) // alive: callers may use the socket again
			if maildrop.Pending(dir) {
				maildrop.ClearKick(dir)
				kick()
			}
			for more := true; more && ctx.Err() == nil; {
				var n int
				n, more, err = importDrops(ctx, s, dir, importBatch, o)
				if n > 0 {
					kick()
				}
				if err != nil {
					if ctx.Err() == nil {
						o.Log.Error("drop directory: import failed; trying again", "dir", dir, "error", err)
						maildrop.SetProblem(dir, err.Error())
					}
					lastMod = time.Time{}
					break
				}
				maildrop.ClearProblem(dir)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// takeRunLock is the start of Serve with a drop directory: a daemonless
// run that is delivering must finish and record what it delivered before
// the daemon opens the spool; otherwise the run could not record it, and
// the daemon would send it again once the lease ran out.
func takeRunLock(ctx context.Context, o *Options) (*maildrop.Lock, error) {
	if err := maildrop.Prepare(o.DropDir); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	wait := o.ServeWait
	if wait <= 0 {
		wait = o.LockTimeout
	}
	lock, err := maildrop.WaitRunLock(ctx, o.DropDir, wait, func(pid int, role string) {
		o.Log.Info("waiting for the daemonless delivery run to finish before opening the spool", "pid", pid, "role", role)
	})
	if errors.Is(err, maildrop.ErrDaemonHolds) {
		return nil, fmt.Errorf("serve: %w: %w", spool.ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return lock, nil
}

// startDrops runs the drop directory's importer until shutdown (a closer
// stops it and waits, before the spool is closed).
func (s *server) startDrops() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchDrops(ctx, s.sp, &s.o, s.r.Kick)
	}()
	s.intake = append(s.intake, func(context.Context) { cancel(); <-done })
}
