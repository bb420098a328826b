package testlib

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Nobody is the uid and gid RunAsNobody runs as (nobody, nogroup).
const Nobody = 65534

// RunAsNobody runs the test named test of the current test binary as
// uid and gid 65534 (nobody), with env added to the environment, in dir
// (which that user must be able to enter), and returns its combined
// output. The binary is copied into dir first, so that nobody may execute
// it. The test skips itself unless run by root (only root may switch).
func RunAsNobody(t testing.TB, dir, test string, env ...string) ([]byte, error) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another uid")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(exe)+".nobody")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}}
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
