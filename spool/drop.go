package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Drop IDs: a message imported from the drop directory (package maildrop)
// is committed together with the entry "drop/<drop ID>" = queue ID in the
// meta bucket. The importer removes the drop file after the commit and the
// entry after that (ForgetDrops); a crash in between leaves a file whose
// entry says it is in the spool already, so it is never imported twice.

const dropPrefix = "drop/"

func dropKey(dropID string) []byte { return []byte(dropPrefix + dropID) }

// errDropKnown: the drop ID's entry exists (the file was imported before).
var errDropKnown = errors.New("drop ID already imported")

// SubmitDrop is Submit for a message of the drop directory: the drop ID is
// recorded in the same transaction as the message. If the drop ID is
// already recorded (an import that crashed before removing its file),
// nothing is stored and known is true with the queue ID it got then.
func (s *Spool) SubmitDrop(ctx context.Context, dropID string, env Envelope, body io.Reader) (id ID, known bool, err error) {
	if dropID == "" {
		return "", false, fmt.Errorf("submit: %w: empty drop ID", ErrInvalid)
	}
	if id, ok, err := s.DropImported(dropID); err != nil || ok {
		return id, ok, err
	}
	id, err = s.submit(ctx, env, body, dropID)
	if errors.Is(err, errDropKnown) {
		id, _, err = s.DropImported(dropID)
		return id, true, err
	}
	return id, false, err
}

// DropImported reports whether dropID has been imported and under which
// queue ID.
func (s *Spool) DropImported(dropID string) (ID, bool, error) {
	var id ID
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(dropKey(dropID)); v != nil {
			id, ok = ID(v), true
		}
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("spool %s: %w", s.path, err)
	}
	return id, ok, nil
}

// DropIDs returns every drop ID recorded (imports whose file may still be
// there).
func (s *Spool) DropIDs() ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		p := []byte(dropPrefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			out = append(out, string(k[len(p):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.path, err)
	}
	return out, nil
}

// ForgetDrops removes the entries of drop IDs whose files are gone.
func (s *Spool) ForgetDrops(dropIDs []string) error {
	if len(dropIDs) == 0 {
		return nil
	}
	err := s.c.do(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		for _, d := range dropIDs {
			if err := b.Delete(dropKey(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool %s: forget drop IDs: %w", s.path, ioErr(err))
	}
	return nil
}
