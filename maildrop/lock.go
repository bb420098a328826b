package maildrop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The run lock decides who delivers. A daemonless delivery run holds it
// (flock, exclusive) for its whole life, and the daemon for its whole
// life; a run that cannot take it exits, because whoever holds it will
// deliver, and re-checks the drop directory after it lets go of it (see
// package daemon). A daemon that starts while a run holds it first takes
// the wait lock, which tells the run to finish the attempts in flight and
// leave, and then waits for the run lock.
const (
	runLockName  = ".run.lock"
	waitLockName = ".wait.lock"
)

// pollInterval is how often a waiting daemon tries the run lock.
const pollInterval = 50 * time.Millisecond

// Lock is a held run lock.
type Lock struct{ f *os.File }

// openLock opens (creating) a lock file of dir read-write if it can, else
// read-only: flock needs no write access, so a user who may not write an
// existing lock file can still take it.
func openLock(dir, name string) (*os.File, error) {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		f, err = os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	return f, nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// TryRunLock takes the run lock of dir without waiting; ok is false when
// another process holds it. role ("run", "serve") and the pid are written
// into the lock file for the log lines of a waiting daemon.
func TryRunLock(dir, role string) (l *Lock, ok bool, err error) {
	if _, err := ensureDir(dir); err != nil {
		return nil, false, err
	}
	f, err := openLock(dir, runLockName)
	if err != nil {
		return nil, false, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("run lock: %w", err)
	}
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+role+"\n"), 0)
	}
	return &Lock{f: f}, true, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = flock(l.f, syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// RunActive reports whether a run or a daemon holds the run lock of dir:
// then a new message need not start a run, since the holder checks the
// drop directory after it lets go. Errors say "not active" (start a run).
func RunActive(dir string) bool { return held(dir, runLockName) }

// held reports whether someone holds the lock file name of dir
// exclusively (a shared probe fails).
func held(dir, name string) bool {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = flock(f, syscall.LOCK_UN)
	return false
}

// Holder is what the run lock file says about its holder: "pid role".
func Holder(dir string) (pid int, role string) {
	b, err := os.ReadFile(filepath.Join(dir, runLockName))
	if err != nil {
		return 0, ""
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, ""
	}
	pid, _ = strconv.Atoi(f[0])
	return pid, f[1]
}

// DaemonWaiting reports whether a daemon waits for the run lock of dir (it
// holds the wait lock): a run then stops leasing new work and leaves.
func DaemonWaiting(dir string) bool { return held(dir, waitLockName) }

// ErrDaemonHolds is returned by WaitRunLock when another daemon holds the
// run lock (two daemons on one spool).
var ErrDaemonHolds = errors.New("run lock held by another relayq serve")

// WaitRunLock is the daemon's start: it takes the run lock of dir for the
// daemon's life. While a daemonless run holds it, it holds the wait lock
// (so the run finishes what is in flight and leaves), calls waiting once
// with the holder's pid, and tries again every 50 ms until ctx ends. A
// holder that says it is a daemon (one still stopping) is waited for at
// most serveWait; then WaitRunLock fails with ErrDaemonHolds.
func WaitRunLock(ctx context.Context, dir string, serveWait time.Duration, waiting func(pid int, role string)) (*Lock, error) {
	l, ok, err := TryRunLock(dir, "serve")
	if err != nil || ok {
		return l, err
	}
	w, err := openLock(dir, waitLockName)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	told := false
	start := time.Now()
	for {
		pid, role := Holder(dir)
		if role == "serve" && time.Since(start) >= serveWait {
			return nil, fmt.Errorf("%w (pid %d)", ErrDaemonHolds, pid)
		}
		if !told {
			// Exclusive: other daemons starting queue up here;
			// runs probe it shared.
			if err := flock(w, syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
				told = true
				if waiting != nil {
					waiting(pid, role)
				}
			}
		}
		l, ok, err := TryRunLock(dir, "serve")
		if err != nil || ok {
			if told {
				_ = flock(w, syscall.LOCK_UN)
			}
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// noAnswerName flags a daemon that did not answer on its socket: callers
// that see it fresh go straight to the drop directory instead of waiting
// for the same silence again. The daemon removes it whenever it looks at
// the drop directory (it is alive then).
const noAnswerName = ".noanswer"

// MarkNoAnswer records that the daemon did not answer just now.
func MarkNoAnswer(dir string) {
	p := filepath.Join(dir, noAnswerName)
	if f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o644); err == nil {
		f.Close()
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now)
}

// NoAnswerSince reports whether the daemon was found not answering within
// the last d.
func NoAnswerSince(dir string, d time.Duration) bool {
	fi, err := os.Stat(filepath.Join(dir, noAnswerName))
	return err == nil && time.Since(fi.ModTime()) < d
}

// ClearNoAnswer removes the flag (the daemon is alive).
func ClearNoAnswer(dir string) { _ = os.Remove(filepath.Join(dir, noAnswerName)) }

// problemName holds why the last import failed (the spool could not be
// opened or written: locked, damaged, disk full, permission), so that the
// queue listing can say why a message still waits in the drop directory
// when no daemon logs it. Written by the importer, removed by its next
// successful import.
const problemName = ".import-problem"

// maxProblem bounds the recorded text.
const maxProblem = 1024

// SetProblem records why an import of dir failed (one line, at most
// 1 KiB), replacing the file atomically. Best effort: an error is ignored,
// the importer logs its own.
func SetProblem(dir, text string) {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > maxProblem {
		text = text[:maxProblem]
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+"problem-")
	if err != nil {
		return
	}
	_, werr := tmp.WriteString(text + "\n")
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Chmod(tmp.Name(), 0o644) != nil ||
		os.Rename(tmp.Name(), filepath.Join(dir, problemName)) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// Problem returns the recorded import problem of dir and when it was
// recorded; "" when there is none.
func Problem(dir string) (text string, at time.Time) {
	p := filepath.Join(dir, problemName)
	f, err := os.Open(p)
	if err != nil {
		return "", time.Time{}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProblem+1))
	fi, serr := f.Stat()
	if err != nil || serr != nil {
		return "", time.Time{}
	}
	return strings.TrimSpace(string(b)), fi.ModTime()
}

// ClearProblem removes the recorded import problem (an import succeeded).
func ClearProblem(dir string) { _ = os.Remove(filepath.Join(dir, problemName)) }
