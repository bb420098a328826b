package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayq/relayq/internal/testlib"
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

	out, err := testlib.RunAsNobody(t, dir, "TestPeerCredHelper", "RELAYQ_PEERCRED_HELPER="+sock, "RELAYQ_PEERCRED_SPOOL="+path, "RELAYQ_PEERCRED_ID="+string(ids[0]))
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
