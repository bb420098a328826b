package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// chunkSize is the largest body chunk stored under one key.
const chunkSize = 64 << 10

// chunksPerTx is how many chunks one transaction of a large body writes;
// chunkSize*chunksPerTx bounds the body bytes Submit holds in memory.
const chunksPerTx = 16

// castagnoli is the CRC-32C table, made on first use: building it (with
// its SSE4.2 tables) costs every process start, and the sendmail command
// that hands its message to the daemon never needs it.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// chunkKey is the key of chunk n of the body with the given token.
func chunkKey(token []byte, n uint32) []byte {
	k := make([]byte, 0, bodyTokenLen+4)
	k = append(k, token...)
	return binary.BigEndian.AppendUint32(k, n)
}

// putChunks stores data as chunks first, first+1, … of token.
func putChunks(tx *bolt.Tx, token []byte, first uint32, data []byte) error {
	b := tx.Bucket(bucketBody)
	for n := first; len(data) > 0; n++ {
		c := data[:min(len(data), chunkSize)]
		data = data[len(c):]
		if err := b.Put(chunkKey(token, n), c); err != nil {
			return err
		}
	}
	return nil
}

// deleteChunks removes every chunk of token and returns how many there were.
// On a damaged file a delete may not take effect; that is reported as
// ErrCorrupt rather than looping.
func deleteChunks(tx *bolt.Tx, token []byte) (int, error) {
	c := tx.Bucket(bucketBody).Cursor()
	n := 0
	var prev []byte
	for k, _ := c.Seek(token); k != nil && bytes.HasPrefix(k, token); k, _ = c.Seek(token) {
		if prev != nil && bytes.Compare(k, prev) <= 0 {
			return n, fmt.Errorf("%w: body chunk %x does not go away", ErrCorrupt, k)
		}
		prev = append(prev[:0], k...)
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// OpenBody returns a reader of the message body exactly as submitted. It
// reads one chunk per read transaction, so memory stays bounded and no
// transaction is held open between reads. At the end it checks the length
// and CRC-32C and returns an error wrapping ErrCorrupt instead of io.EOF if
// they do not match; if the message is deleted while being read, the error
// wraps ErrNotFound.
func (s *Spool) OpenBody(id ID) (io.ReadCloser, error) {
	var r *record
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = s.getRecord(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &bodyReader{s: s, id: id, token: r.Body, size: r.Size, crc: r.CRC}, nil
}

type bodyReader struct {
	s      *Spool
	id     ID
	token  []byte
	size   int64
	crc    uint32
	next   uint32 // next chunk number
	buf    []byte // current chunk
	off    int    // read offset in buf
	total  int64  // bytes loaded so far
	sum    uint32
	err    error // sticky
	closed bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.closed {
		return 0, fmt.Errorf("read body of %s: reader closed", b.id)
	}
	for b.off == len(b.buf) {
		if b.err != nil {
			return 0, b.err
		}
		b.load()
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	return n, nil
}

// load reads the next chunk into buf, or sets err at the end.
func (b *bodyReader) load() {
	if b.buf == nil {
		b.buf = make([]byte, 0, min(b.size, chunkSize))
	}
	found := false
	err := b.s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBody).Get(chunkKey(b.token, b.next))
		if v == nil {
			return nil
		}
		found = true
		b.buf = append(b.buf[:0], v...)
		unmapPages(v)
		return nil
	})
	b.off = 0
	if err != nil || !found {
		b.buf = b.buf[:0]
	}
	switch {
	case err != nil:
		b.err = fmt.Errorf("read body of %s: %w", b.id, err)
	case found:
		b.next++
		b.total += int64(len(b.buf))
		b.sum = crc32.Update(b.sum, castagnoli(), b.buf)
		if b.total > b.size {
			b.buf = b.buf[:0]
			b.err = fmt.Errorf("spool %s: message %s: %w: body longer than its recorded size %d", b.s.path, b.id, ErrCorrupt, b.size)
		}
	case b.total != b.size:
		b.err = b.missing()
	case b.sum != b.crc:
		b.err = fmt.Errorf("spool %s: message %s: %w: body checksum mismatch", b.s.path, b.id, ErrCorrupt)
	default:
		b.err = io.EOF
	}
}

// missing explains a body that ends early: deleted meanwhile, or damaged.
func (b *bodyReader) missing() error {
	err := b.s.view(func(tx *bolt.Tx) error {
		_, err := b.s.getRecord(tx, b.id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("read body of %s: message deleted while reading: %w", b.id, err)
	}
	return fmt.Errorf("spool %s: message %s: %w: body has %d of %d bytes (chunk %d missing)", b.s.path, b.id, ErrCorrupt, b.total, b.size, b.next)
}

// Close releases the reader; it does not touch the message.
func (b *bodyReader) Close() error {
	b.closed = true
	b.buf = nil
	return nil
}

var pageSize = uintptr(os.Getpagesize())

// unmapPages tells the kernel this process is done with the whole pages
// under v, a value in bbolt's read-only shared file mapping, so reading a
// large body back does not pile the file's pages up in the resident set.
// The data stays in the page cache and the mapping stays valid: a later
// access faults the page back in. Only call it inside the read transaction
// that returned v (bbolt cannot remap the file meanwhile).
func unmapPages(v []byte) {
	if len(v) == 0 {
		return
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	start := (addr + pageSize - 1) &^ (pageSize - 1)
	end := (addr + uintptr(len(v))) &^ (pageSize - 1)
	if end <= start {
		return
	}
	p := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(v)), start-addr)), end-start)
	_ = unix.Madvise(p, unix.MADV_DONTNEED) // advice only: an error changes nothing
}
