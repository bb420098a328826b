package spool

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestProcCmdlineSanitised: a lock holder's command line is printed in the
// ErrLocked message; a terminal escape in it (any process chooses its own
// argv) must not reach the terminal.
func TestProcCmdlineSanitised(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	// argv[0] carries the escapes (sleep ignores it); argv[1] must stay a
	// valid interval, or sleep exits at once and its command line is gone.
	cmd.Args = []string{"\x1b]0;pwned\x07\x1b[2J\u009bsleep\r\n", "30"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	got := ""
	for i := 0; i < 500 && !strings.Contains(got, "sleep"); i++ {
		got = procCmdline(cmd.Process.Pid) // empty until the exec is done
		time.Sleep(10 * time.Millisecond)
	}
	if got == "" {
		t.Fatal("no command line read")
	}
	if strings.ContainsAny(got, "\x1b\x07\r\n\u009b") {
		t.Errorf("control characters kept: %q", got)
	}
	if !strings.Contains(got, "sleep") || !strings.HasSuffix(got, " 30") {
		t.Errorf("command line %q lost its text", got)
	}
}

// TestDamageText: the ErrCorrupt text says what is wrong and what to do,
// never the Go runtime's panic text.
func TestDamageText(t *testing.T) {
	var runtimeErr any
	func() {
		defer func() { runtimeErr = recover() }()
		var a []int
		i := len(a) + 1
		_ = a[i] // index out of range: a runtime.Error
	}()
	for _, r := range []any{runtimeErr, "page 7 already freed"} {
		got := damage(r)
		if strings.Contains(got, "runtime error") || strings.Contains(got, "already freed") || !strings.Contains(got, "restore it from a backup") {
			t.Errorf("damage(%v) = %q", r, got)
		}
	}
}
