package submit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/submit"
)

// BenchmarkSubmit measures one Submit of a 2 KB message as the sendmail CLI
// makes it: "daemon" through the listener's unix socket into the daemon's
// open spool (fsync per message), "direct" opening, writing (fsync) and
// closing the spool file itself. Report: go test -run - -bench Submit
// ./submit (ns/op is the caller's wait, minus process start).
func BenchmarkSubmit(b *testing.B) {
	body := "From: a@example.com\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 27)
	env := submit.Envelope{From: "a@example.com", Recipients: []submit.Recipient{{Addr: "b@example.net"}}}

	b.Run("daemon", func(b *testing.B) {
		dir, _ := os.MkdirTemp("", "bsub")
		defer os.RemoveAll(dir)
		sock, _ := startDaemon(b, dir)
		o := submit.Options{Socket: sock, SpoolPath: filepath.Join(dir, "unused.db")}
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := submit.Submit(context.Background(), o, env, strings.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		dir, _ := os.MkdirTemp("", "bsub")
		defer os.RemoveAll(dir)
		o := submit.Options{Socket: filepath.Join(dir, "none.sock"), SpoolPath: filepath.Join(dir, "queue.db"), LockTimeout: 5 * time.Second}
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := submit.Submit(context.Background(), o, env, bytes.NewReader([]byte(body))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
