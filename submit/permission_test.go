package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayq/relayq/internal/testlib"
)

// TestPermissionHint: a user who may not write the spool, with no daemon
// answering (the forgotten export of RELAYQ_SOCKET and RELAYQ_SPOOL), is
// told both keys, their values and what to do, on the drop directory path
// and on the direct path; on the drop directory path (sendmail's) the
// refusal is temporary (exit 75: the caller tries again). It runs the
// submission as uid 65534 (testlib.RunAsNobody), so it needs root.
func TestPermissionHint(t *testing.T) {
	dir, err := os.MkdirTemp("", "rqperm") // short: socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	spoolDir := filepath.Join(dir, "spool") // root's, 0700
	if err := os.Mkdir(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, drop := range []bool{true, false} {
		out, err := testlib.RunAsNobody(t, dir, "TestPermissionHintHelper", "RELAYQ_PERM_HELPER=1",
			"RELAYQ_PERM_SOCKET="+filepath.Join(dir, "none.sock"), "RELAYQ_PERM_SPOOL="+filepath.Join(spoolDir, "queue.db"),
			fmt.Sprintf("RELAYQ_PERM_DROP=%v", drop))
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		wants := []string{"permission denied", "RELAYQ_SOCKET=" + filepath.Join(dir, "none.sock"),
			"RELAYQ_SPOOL=" + filepath.Join(spoolDir, "queue.db"), "start `relayq serve`"}
		if drop {
			wants = append(wants, "temporary: true") // sendmail exits 75: the caller tries again
		}
		for _, want := range wants {
			if !strings.Contains(string(out), want) {
				t.Errorf("drop directory %v: the error lacks %q:\n%s", drop, want, out)
			}
		}
	}
}

// TestPermissionHintHelper is TestPermissionHint's other user.
func TestPermissionHintHelper(t *testing.T) {
	if os.Getenv("RELAYQ_PERM_HELPER") == "" {
		t.Skip("run by TestPermissionHint")
	}
	o := Options{Socket: os.Getenv("RELAYQ_PERM_SOCKET"), SpoolPath: os.Getenv("RELAYQ_PERM_SPOOL")}
	if os.Getenv("RELAYQ_PERM_DROP") == "true" {
		o.DropDir = filepath.Join(filepath.Dir(o.SpoolPath), "maildrop")
	}
	env := Envelope{From: "a@example.com", Recipients: []Recipient{{Addr: "b@example.org"}}}
	_, err := Submit(context.Background(), o, env, io.NopCloser(strings.NewReader("Subject: x\r\n\r\nhi\r\n")))
	fmt.Printf("temporary: %v\nerror: %v\n", errors.Is(err, ErrTemporary), err)
}
