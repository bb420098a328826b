package spool

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// smallBufs holds one-chunk buffers: most messages fit in one chunk and are
// written in a single transaction with their record.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// Submit queues a new message and returns its ID once the envelope and body
// are committed to disk with fsync. The body is stored exactly as read (the
// caller has normalised it to CRLF, not dot-stuffed). Memory use is bounded
// whatever the body size: a body is written in transactions of at most
// chunkSize*chunksPerTx bytes and the record comes last, so a failed or
// interrupted Submit leaves no message behind. Recipient states start at
// Pending; the message is due at once.
//
// ctx is checked between transactions and just before the record is
// written; once the record is committed, Submit returns its ID even if ctx
// has ended. Errors from writing the file wrap ErrFull; a read error from
// body is returned wrapped.
func (s *Spool) Submit(ctx context.Context, env Envelope, body io.Reader) (ID, error) {
	return s.submit(ctx, env, body, "")
}

// submit is Submit; a non-empty dropID is recorded with the message in the
// same transaction (SubmitDrop).
func (s *Spool) submit(ctx context.Context, env Envelope, body io.Reader, dropID string) (ID, error) {
	if err := checkEnvelope(&env); err != nil {
		return "", fmt.Errorf("submit: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("submit: %w", err)
	}
	rec := newRecord(&env)
	bp := smallBufs.Get().(*[]byte)
	defer smallBufs.Put(bp)
	n, eof, err := fill(body, *bp)
	if err != nil {
		return "", fmt.Errorf("submit: read body: %w", err)
	}
	if eof {
		data := (*bp)[:n]
		rec.Size = int64(n)
		rec.CRC = crc32.Checksum(data, castagnoli())
		return s.commitRecord(ctx, rec, dropID, func(tx *bolt.Tx) ([]byte, error) {
			token, err := newToken(tx)
			if err != nil {
				return nil, err
			}
			return token, putChunks(tx, token, 0, data)
		})
	}
	return s.submitLarge(ctx, rec, dropID, (*bp)[:n], body)
}

// checkEnvelope rejects what the spool cannot store exactly: no
// recipients, or text that is not UTF-8 (the record is JSON, which would
// replace invalid bytes).
func checkEnvelope(env *Envelope) error {
	if len(env.Recipients) == 0 {
		return fmt.Errorf("%w: no recipients", ErrInvalid)
	}
	for name, v := range map[string]string{"sender": env.From, "RET": env.Ret, "ENVID": env.EnvID, "origin": env.Origin} {
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalid, name, v)
		}
	}
	for i, r := range env.Recipients {
		if !utf8.ValidString(r.Addr) || !utf8.ValidString(r.Notify) || !utf8.ValidString(r.ORcpt) {
			return fmt.Errorf("%w: recipient %d (%q) is not valid UTF-8", ErrInvalid, i, r.Addr)
		}
	}
	return nil
}

// newToken allocates a body token: the body bucket's sequence, so tokens
// are never reused and new chunks go to the end of the bucket.
func newToken(tx *bolt.Tx) ([]byte, error) {
	seq, err := tx.Bucket(bucketBody).NextSequence()
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(nil, seq), nil
}

// submitLarge writes a body that does not fit in one chunk: groups of
// chunks in their own transactions (the upload entry marks them as not yet
// owned by a record), then the last group with the record.
func (s *Spool) submitLarge(ctx context.Context, rec *record, dropID string, first []byte, body io.Reader) (id ID, err error) {
	var token []byte // set by the first transaction
	group := make([]byte, chunkSize*chunksPerTx)
	n := copy(group, first)
	var next uint32 // next chunk number
	var size int64
	crc := uint32(0)
	defer func() {
		if err != nil && token != nil {
			s.dropUpload(token)
		}
	}()
	for {
		m, eof, err := fill(body, group[n:])
		if err != nil {
			return "", fmt.Errorf("submit: read body: %w", err)
		}
		n += m
		data := group[:n]
		crc = crc32.Update(crc, castagnoli(), data)
		size += int64(n)
		at := next
		if eof {
			rec.Size, rec.CRC = size, crc
			return s.commitRecord(ctx, rec, dropID, func(tx *bolt.Tx) ([]byte, error) {
				if token == nil { // the body fitted in one transaction after all
					t, err := newToken(tx)
					if err != nil {
						return nil, err
					}
					return t, putChunks(tx, t, at, data)
				}
				if err := putChunks(tx, token, at, data); err != nil {
					return nil, err
				}
				return token, tx.Bucket(bucketUpload).Delete(token)
			})
		}
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("submit: %w", err)
		}
		var newTok []byte
		err = s.c.do(func(tx *bolt.Tx) error {
			t := token
			if t == nil {
				var err error
				if t, err = newToken(tx); err != nil {
					return err
				}
				stamp := binary.BigEndian.AppendUint64(nil, uint64(s.now().UnixNano()))
				if err := tx.Bucket(bucketUpload).Put(t, stamp); err != nil {
					return err
				}
			}
			newTok = t
			return putChunks(tx, t, at, data)
		})
		if err != nil {
			return "", fmt.Errorf("submit: write body: %w", err)
		}
		token = newTok
		next += uint32((n + chunkSize - 1) / chunkSize)
		n = 0
	}
}

// commitRecord runs body, which stores the last of the body and returns the
// body token, and stores the record under a new ID, in one transaction;
// with a dropID, also the drop ID's entry (refusing one already there).
func (s *Spool) commitRecord(ctx context.Context, rec *record, dropID string, body func(*bolt.Tx) ([]byte, error)) (ID, error) {
	var id ID
	err := s.c.do(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if dropID != "" && tx.Bucket(bucketMeta).Get(dropKey(dropID)) != nil {
			return errDropKnown
		}
		token, err := body(tx)
		if err != nil {
			return err
		}
		var arrival time.Time
		id, arrival, err = nextID(tx, s.now())
		if err != nil {
			return err
		}
		r := *rec
		r.Body = token
		r.Arrival = arrival
		r.NextAttempt = arrival
		if dropID != "" {
			if err := tx.Bucket(bucketMeta).Put(dropKey(dropID), []byte(id)); err != nil {
				return err
			}
		}
		return putRecord(tx, id, &r, nil)
	})
	if err != nil {
		return "", fmt.Errorf("submit: %w", err)
	}
	return id, nil
}

// dropUpload removes the chunks of an abandoned upload; if that fails too,
// the next Open sweeps them.
func (s *Spool) dropUpload(token []byte) {
	err := s.c.do(func(tx *bolt.Tx) error {
		if _, err := deleteChunks(tx, token); err != nil {
			return err
		}
		return tx.Bucket(bucketUpload).Delete(token)
	})
	if err != nil {
		s.log.Warn("could not remove an abandoned body; it is removed on the next open", "spool", s.path, "err", err)
	}
}

// sweepUploads removes bodies whose Submit never committed a record.
func (s *Spool) sweepUploads() error {
	// Short-lived openers (the CLI) open the file for one operation: do not
	// make them pay a write transaction when there is nothing to sweep.
	var pending bool
	if err := s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketUpload).Cursor().First()
		pending = k != nil
		return nil
	}); err != nil {
		return fmt.Errorf("open spool %s: %w", s.path, err)
	}
	if !pending {
		return nil
	}
	var tokens, chunks int
	err := s.updateDirect(func(tx *bolt.Tx) error {
		tokens, chunks = 0, 0
		up := tx.Bucket(bucketUpload)
		var keys [][]byte
		if err := up.ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			n, err := deleteChunks(tx, k)
			if err != nil {
				return err
			}
			if err := up.Delete(k); err != nil {
				return err
			}
			tokens++
			chunks += n
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open spool %s: sweep unfinished bodies: %w", s.path, err)
	}
	if tokens > 0 {
		s.log.Info("removed bodies of unfinished submits", "spool", s.path, "bodies", tokens, "chunks", chunks)
	}
	return nil
}

// fill reads into buf until it is full or the reader ends. eof reports the
// end of the body (n may be anything up to len(buf)). Only io.EOF from the
// reader ends a body: any other error, io.ErrUnexpectedEOF included (what
// an SMTP data reader returns when the client hangs up before the final
// dot), is returned, so that a body the client never finished is never
// committed. (io.ReadFull cannot be used: it turns a short read ending in
// io.EOF into io.ErrUnexpectedEOF, the same value as a truncated body.)
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		switch {
		case err == io.EOF:
			return n, true, nil
		case err != nil:
			return n, false, err
		}
	}
	return n, false, nil
}
