package submit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/spool"
)

// TestSizeLimitEveryDoor: the direct and drop routes refuse a message over
// MaxSize as the socket does (552 there): a *TooBigError that names the
// limit and exits 65, nothing stored, no delivery run started; a message of
// exactly MaxSize octets passes.
func TestSizeLimitEveryDoor(t *testing.T) {
	const limit = 1000
	for _, route := range []string{"direct", "drop"} {
		t.Run(route, func(t *testing.T) {
			dir := t.TempDir()
			kicked := 0
			o := Options{
				Socket:      filepath.Join(dir, "missing.sock"),
				SpoolPath:   filepath.Join(dir, "queue.db"),
				LockTimeout: time.Second,
				Kick:        func() { kicked++ },
				MaxSize:     limit,
			}
			if route == "drop" {
				o.DropDir = filepath.Join(dir, "drop")
				o.DropKick = func() { kicked++ }
			}
			big := "Subject: big\r\n\r\n" + strings.Repeat("x", limit) + "\r\n"
			_, err := Submit(context.Background(), o, envelope(), strings.NewReader(big))
			var tb *TooBigError
			if !errors.As(err, &tb) || tb.Limit != limit {
				t.Fatalf("err = %v, want a TooBigError with limit %d", err, limit)
			}
			if c := sysexits.Code(err, sysexits.TempFail); c != sysexits.DataErr {
				t.Errorf("exit code %d, want 65", c)
			}
			if !strings.Contains(err.Error(), "RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT") {
				t.Errorf("error does not name the limit: %v", err)
			}
			if kicked != 0 {
				t.Errorf("a delivery run was started for a refused message")
			}
			if route == "drop" {
				if es, _ := maildrop.List(o.DropDir); len(es) != 0 {
					t.Errorf("drop directory holds %d files after a refusal", len(es))
				}
				left, _ := os.ReadDir(o.DropDir)
				if len(left) != 0 {
					t.Errorf("drop directory not empty: %v", left)
				}
			} else {
				s, err := spool.Open(o.SpoolPath, spool.Options{})
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				_ = s.List(func(*spool.Message) error { n++; return nil })
				s.Close()
				if n != 0 {
					t.Errorf("spool holds %d messages after a refusal", n)
				}
			}
			fits := "Subject: s\r\n\r\n" + strings.Repeat("y", limit-len("Subject: s\r\n\r\n")-2) + "\r\n"
			if _, err := Submit(context.Background(), o, envelope(), strings.NewReader(fits)); err != nil {
				t.Errorf("a message of exactly the limit was refused: %v", err)
			}
		})
	}
}
