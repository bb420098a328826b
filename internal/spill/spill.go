// Package spill is relayq's one body buffer: a message body kept in memory
// up to a limit and beyond it in a temporary file that is unlinked as soon
// as it is created, so nothing is left behind, even after a crash. A
// Buffer can be read from its start any number of times (a delivery tried
// on a second relay, a body read twice to learn whether it is 8-bit).
package spill

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// DefaultLimit is the number of octets kept in memory when Buffer.Limit is 0.
const DefaultLimit = 1 << 20

// Buffer holds a body. The zero value keeps DefaultLimit octets in memory
// and spills into os.TempDir(). Write appends; Open reads from the start;
// Release removes the file.
type Buffer struct {
	Limit int    // octets kept in memory; 0 means DefaultLimit
	Dir   string // directory of the temporary file; "" means os.TempDir()

	mem  bytes.Buffer
	f    *os.File
	size int64
}

// Copy returns a Buffer holding everything read from r (up to its end),
// kept as the zero Buffer keeps it.
func Copy(r io.Reader) (*Buffer, error) {
	b := &Buffer{}
	if _, err := io.Copy(b, r); err != nil {
		b.Release()
		return nil, fmt.Errorf("copy body: %w", err)
	}
	return b, nil
}

// Write appends p, moving the body to a temporary file when it passes the
// limit.
func (b *Buffer) Write(p []byte) (int, error) {
	limit := b.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if b.f == nil && b.mem.Len()+len(p) <= limit {
		n, err := b.mem.Write(p)
		b.size += int64(n)
		return n, err
	}
	if b.f == nil {
		f, err := os.CreateTemp(b.Dir, "relayq-body-*")
		if err != nil {
			return 0, fmt.Errorf("temporary file for the message body: %w", err)
		}
		_ = os.Remove(f.Name()) // unlinked: gone when closed, even after a crash
		if _, err := f.Write(b.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("temporary file for the message body: %w", err)
		}
		b.f = f
		b.mem = bytes.Buffer{}
	}
	n, err := b.f.Write(p)
	b.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("temporary file for the message body: %w", err)
	}
	return n, nil
}

// Size is the number of octets written.
func (b *Buffer) Size() int64 { return b.size }

// Spilled reports whether the body is in a temporary file.
func (b *Buffer) Spilled() bool { return b.f != nil }

// Open returns a reader of the whole body from its start. Readers are
// independent; each may be read while others are.
func (b *Buffer) Open() (io.ReadCloser, error) {
	if b.f == nil {
		return io.NopCloser(bytes.NewReader(b.mem.Bytes())), nil
	}
	return io.NopCloser(io.NewSectionReader(b.f, 0, b.size)), nil
}

// Release closes the temporary file, if any; the Buffer is not to be used
// afterwards.
func (b *Buffer) Release() {
	if b.f != nil {
		_ = b.f.Close()
		b.f = nil
	}
	b.mem = bytes.Buffer{}
}
