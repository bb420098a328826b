package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Records are appended; after logrotate moves the file, Reload (SIGHUP)
// makes a new one and the moved file gets nothing more.
func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relayq.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte("one\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("two\n")) // still the old file, as with any daemon before its SIGHUP
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("three\n"))
	for file, want := range map[string]string{path + ".1": "earlier\none\ntwo\n", path: "three\n"} {
		got, err := os.ReadFile(file)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", file, got, err, want)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, %v; want 0640", fi.Mode(), err)
	}
	// A reopen that fails keeps the file in use.
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil { // cannot be opened for writing
		t.Fatal(err)
	}
	if err := l.Reload(); err == nil || !strings.Contains(err.Error(), "RELAYQ_LOG_FILE") {
		t.Errorf("Reload onto a directory: %v", err)
	}
	l.Write([]byte("four\n"))
	if got, _ := os.ReadFile(path + ".2"); string(got) != "three\nfour\n" {
		t.Errorf("after a failed reopen: %q, want the old file to go on", got)
	}
}

// The delivery run logs to RELAYQ_LOG_FILE; when it cannot be opened, the
// run logs where it would have and says why.
func TestBackgroundLoggerLogFile(t *testing.T) {
	cfg := queueConfig()
	cfg.LogFormat, cfg.LogLevel = "text", "info"
	cfg.LogFile = filepath.Join(t.TempDir(), "relayq.log")
	var errb bytes.Buffer
	backgroundLogger(cfg, &errb).Info("delivered", "queue_id", "ABC")
	got, err := os.ReadFile(cfg.LogFile)
	if err != nil || !strings.Contains(string(got), "msg=delivered queue_id=ABC") || errb.Len() != 0 {
		t.Errorf("log file %q (%v), stderr %q", got, err, errb.String())
	}

	cfg.LogFile = filepath.Join(t.TempDir(), "missing-dir", "relayq.log")
	errb.Reset()
	backgroundLogger(cfg, &errb).Info("delivered", "queue_id", "DEF")
	if s := errb.String(); !strings.Contains(s, "cannot open the log file") || !strings.Contains(s, "queue_id=DEF") {
		t.Errorf("fallback: %q", s)
	}
}

// relayq serve with a log file it cannot open stops with 73 (EX_CANTCREAT)
// and says which key.
func TestServeLogFileUnopenable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "relayq.env"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RELAYQ_CONFIG", filepath.Join(dir, "relayq.env"))
	t.Setenv("RELAYQ_SPOOL", filepath.Join(dir, "queue.db"))
	t.Setenv("RELAYQ_LOG_FILE", filepath.Join(dir, "no", "such", "dir.log"))
	var out, errb bytes.Buffer
	if code := runServe(stdio{strings.NewReader(""), &out, &errb}, nil); code != exCantCrt || !strings.Contains(errb.String(), "RELAYQ_LOG_FILE") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
