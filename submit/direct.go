package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/relayq/relayq/spool"
)

// submitDirect opens the spool for one submission: bounded lock wait,
// Submit (returns after fsync), Close, then Kick. The lock is held only for
// the write, never across network I/O.
func submitDirect(ctx context.Context, o Options, env Envelope, body io.Reader) (ID, error) {
	s, err := spool.Open(o.SpoolPath, spool.Options{LockTimeout: o.LockTimeout})
	if errors.Is(err, fs.ErrPermission) && o.Socket != "" {
		return "", fmt.Errorf("submit: %w %s", err, o.permissionHint())
	}
	if err != nil {
		return "", fmt.Errorf("submit: %w", err)
	}
	id, err := s.Submit(ctx, env, body)
	cerr := s.Close()
	if err != nil {
		return "", err // spool.Submit's errors start with "submit: "
	}
	// The message is committed; a failing Close cannot undo that, and
	// reporting failure now would make the caller send it twice.
	_ = cerr
	if o.Kick != nil {
		o.Kick()
	}
	return id, nil
}
