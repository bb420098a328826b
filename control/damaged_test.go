package control

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/spool"
)

// TestListDamagedRecord: a damaged record does not hide the others, through
// the daemon's socket or on the file directly; the damaged one comes back
// as a *spool.DamagedError with its ID, and nothing else is an error.
func TestListDamagedRecord(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"daemon", "direct"} {
		t.Run(mode, func(t *testing.T) {
			dir := shortDir(t)
			path := filepath.Join(dir, "queue.db")
			sp, err := spool.Open(path, spool.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ids := submitN(t, sp, 3)
			sp.Close()
			testlib.DamageRecord(t, path, string(ids[1]))
			c := &Client{Socket: filepath.Join(dir, "none.sock"), SpoolPath: path, LockTimeout: time.Second}
			if mode == "daemon" {
				sp, err := spool.Open(path, spool.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer sp.Close()
				c.Socket = daemon(t, dir, sp, func() {})
			}
			var listed []spool.ID
			err = c.List(context.Background(), func(m *spool.Message) error { listed = append(listed, m.ID); return nil })
			if len(listed) != 2 || listed[0] != ids[0] || listed[1] != ids[2] {
				t.Errorf("listed %v, want %v and %v", listed, ids[0], ids[2])
			}
			damaged, rest := spool.Damaged(err)
			if rest != nil || len(damaged) != 1 || damaged[0].ID != ids[1] || !errors.Is(damaged[0], spool.ErrCorrupt) ||
				!strings.Contains(damaged[0].Error(), string(ids[1])) {
				t.Errorf("error %v: damaged %v, rest %v", err, damaged, rest)
			}
		})
	}
}
