package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionStamped builds relayq as scripts/package does (-ldflags -X)
// and runs every spelling users try.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "relayq")
	b := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/relayq/relayq/internal/buildinfo.Version=9.8.7-test", ".")
	if out, err := b.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"version", "-V", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("relayq %s: %v", arg, err)
		}
		if first, _, _ := strings.Cut(string(out), "\n"); first != "relayq 9.8.7-test" {
			t.Errorf("relayq %s: first line %q, want %q", arg, first, "relayq 9.8.7-test")
		}
		if !strings.Contains(string(out), "go: go1.") {
			t.Errorf("relayq %s: no Go version in\n%s", arg, out)
		}
	}
}

func TestVersionUnstamped(t *testing.T) {
	var out, errb strings.Builder
	if code := dispatch([]string{"relayq", "version"}, stdio{strings.NewReader(""), &out, &errb}); code != exOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "relayq ") || !strings.Contains(out.String(), "\ngo: ") {
		t.Errorf("output:\n%s", out.String())
	}
	if code := dispatch([]string{"relayq", "version", "extra"}, stdio{strings.NewReader(""), &out, &errb}); code != exUsage {
		t.Errorf("relayq version extra: exit %d, want %d", code, exUsage)
	}
}
