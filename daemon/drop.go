package daemon

// The drop directory (package maildrop): daemonless sendmail writes one
// file per message there and never opens the spool; the daemonless run
// and the daemon import the files. Who may import and deliver is decided
// by the run lock (maildrop.TryRunLock): a daemonless run holds it for its
// life, the daemon for its life.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/spool"
)

// importBatch bounds how many drop files one spool open imports (a run
// opens the spool per batch, so that mailq and queue commands interleave).
const importBatch = 200

// tempAge is how old a writer's temporary file must be before it is
// removed: its writer died before it was told "accepted".
const tempAge = time.Hour

// importDrops imports at most max messages of dir into s (0: all) and
// reports how many it imported and whether files are left. Each file is
// committed together with its drop ID, then removed, then its drop ID
// forgotten; a crash anywhere in between neither loses nor doubles it. A
// torn file is set aside (NAME.damaged), logged, and never imported.
func importDrops(ctx context.Context, s *spool.Spool, dir string, max int, o *Options) (n int, more bool, err error) {
	log := o.Log
	entries, err := maildrop.List(dir)
	if err != nil {
		return 0, false, err
	}
	var forget []string
	defer func() {
		if ferr := s.ForgetDrops(forget); ferr != nil && err == nil {
			err = ferr
		}
	}()
	for i, e := range entries {
		if e.Damaged {
			continue
		}
		if max > 0 && n >= max {
			return n, len(entries) > i, nil
		}
		if err := ctx.Err(); err != nil {
			return n, true, err
		}
		f, err := maildrop.Open(e.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, maildrop.ErrTorn) {
			log.Error("drop file is damaged: set aside, not imported", "drop_id", e.ID, "path", e.Path, "error", err)
			if serr := maildrop.SetAside(e.Path); serr != nil {
				log.Error("cannot set the damaged drop file aside", "path", e.Path, "error", serr)
			}
			continue
		}
		if err != nil {
			return n, true, err
		}
		id, known, err := s.SubmitDrop(ctx, e.ID, spoolEnvelope(f.Envelope), f.Body())
		f.Close()
		if errors.Is(err, spool.ErrInvalid) {
			log.Error("drop file refused by the spool: set aside, not imported", "drop_id", e.ID, "path", e.Path, "error", err)
			_ = maildrop.SetAside(e.Path)
			continue
		}
		if err != nil {
			return n, true, err
		}
		if known {
			log.Info("drop file was imported before; removing it", "queue_id", string(id), "drop_id", e.ID)
		} else {
			n++
			log.Queued(string(id), f.Envelope.From, len(f.Envelope.Recipients), f.Size, f.Envelope.Origin)
			// sendmail reported the drop ID to its caller.
			log.Info("imported from the drop directory", "queue_id", string(id), "drop_id", e.ID)
		}
		if err := maildrop.Remove(e.Path); err != nil {
			// The entry stays: the next import removes the file.
			log.Error("cannot remove an imported drop file", "queue_id", string(id), "path", e.Path, "error", err)
			continue
		}
		forget = append(forget, e.ID)
	}
	return n, false, nil
}

// sweepDrops forgets drop IDs whose files are gone (a crash between the
// removal of a file and the removal of its entry) and removes writers'
// temporary files older than tempAge.
func sweepDrops(s *spool.Spool, dir string, o *Options) error {
	if n := maildrop.SweepTemp(dir, tempAge); n > 0 {
		o.Log.Info("removed unfinished drop files of writers that died", "dir", dir, "files", n)
	}
	ids, err := s.DropIDs()
	if err != nil {
		return err
	}
	var gone []string
	for _, d := range ids {
		if _, err := os.Lstat(filepath.Join(dir, d)); errors.Is(err, fs.ErrNotExist) {
			gone = append(gone, d)
		}
	}
	return s.ForgetDrops(gone)
}

func spoolEnvelope(e maildrop.Envelope) spool.Envelope {
	env := spool.Envelope{From: e.From, Ret: e.Ret, EnvID: e.EnvID, Body8Bit: e.Body8Bit, SMTPUTF8: e.SMTPUTF8, Origin: e.Origin}
	for _, r := range e.Recipients {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt})
	}
	return env
}
