package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/relayq/relayq/spool"
)

// TestPeerCredOtherUser runs a client as uid 65534 (nobody) against a
// server run by root: it may list (PublicList) but not show, hold or flush,
// and a refused change never falls back to the spool file. Needs root to
// switch uid.
func TestPeerCredOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the client as another uid; TestServerPeerCred covers the non-root side")
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "queue.db")
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ids := submitN(t, sp, 2)
	sock := daemon(t, dir, sp, nil)

	// A copy of the test binary that nobody may execute.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	if err := copyFile(exe, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPeerCredHelper$")
	cmd.Env = append(os.Environ(), "RELAYQ_PEERCRED_HELPER="+sock, "RELAYQ_PEERCRED_SPOOL="+path, "RELAYQ_PEERCRED_ID="+string(ids[0]))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := []string{"list: 2 <nil>", "show: forbidden", "hold: forbidden", "flush: forbidden", "delete: forbidden"}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("helper output lacks %q:\n%s", w, out)
		}
	}
	if m, err := sp.Get(ids[0]); err != nil || m.Held {
		t.Errorf("message changed: %+v %v", m, err)
	}
}

// TestPeerCredHelper is the client side of TestPeerCredOtherUser.
func TestPeerCredHelper(t *testing.T) {
	sock := os.Getenv("RELAYQ_PEERCRED_HELPER")
	if sock == "" {
		t.Skip("helper process for TestPeerCredOtherUser")
	}
	c := &Client{Socket: sock, SpoolPath: os.Getenv("RELAYQ_PEERCRED_SPOOL")}
	ctx := context.Background()
	id := spool.ID(os.Getenv("RELAYQ_PEERCRED_ID"))
	n := 0
	err := c.List(ctx, func(*spool.Message) error { n++; return nil })
	fmt.Printf("list: %d %v\n", n, err)
	report := func(op string, err error) {
		if errors.Is(err, os.ErrPermission) {
			fmt.Printf("%s: forbidden\n", op)
		} else {
			fmt.Printf("%s: %v\n", op, err)
		}
	}
	_, err = c.Show(ctx, id)
	report("show", err)
	report("hold", c.Hold(ctx, id))
	_, err = c.Flush(ctx)
	report("flush", err)
	report("delete", c.Delete(ctx, id))
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
