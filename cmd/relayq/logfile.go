package main

// RELAYQ_LOG_FILE: the daemon's and the delivery runs' logs appended to a
// file, for hosts and containers without syslog or a journal.

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// logFile appends to a file that SIGHUP reopens (after logrotate moved
// it). Each slog record is one Write, and O_APPEND keeps the records of
// several processes (the daemon, a detached delivery run) whole.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openLogFile opens path for appending, creating it with mode 0640.
func openLogFile(path string) (*logFile, error) {
	l := &logFile{path: path}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reload reopens the file (daemon.Reloader, on SIGHUP). If that fails the
// old file stays in use.
func (l *logFile) Reload() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("RELAYQ_LOG_FILE: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// logOutput is where the daemon and the delivery runs log: RELAYQ_LOG_FILE
// when set (nil *logFile otherwise), else w.
func logOutput(path string, w io.Writer) (io.Writer, *logFile, error) {
	if path == "" {
		return w, nil, nil
	}
	l, err := openLogFile(path)
	if err != nil {
		return w, nil, err
	}
	return l, l, nil
}
