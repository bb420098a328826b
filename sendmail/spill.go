package sendmail

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// defaultMemBody is how much of a body is kept in memory before it spills
// to a temporary file.
const defaultMemBody = 1 << 20

// spill holds a body: in memory up to limit octets, beyond that in a
// temporary file that is unlinked at once (so nothing is left behind, even
// after a crash).
type spill struct {
	limit int
	dir   string
	mem   bytes.Buffer
	f     *os.File
}

func (s *spill) Write(p []byte) (int, error) {
	limit := s.limit
	if limit <= 0 {
		limit = defaultMemBody
	}
	if s.f == nil && s.mem.Len()+len(p) <= limit {
		return s.mem.Write(p)
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "relayq-body-*")
		if err != nil {
			return 0, fmt.Errorf("temporary file for the message body: %w", err)
		}
		_ = os.Remove(f.Name())
		s.f = f
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			return 0, fmt.Errorf("temporary file for the message body: %w", err)
		}
		s.mem = bytes.Buffer{}
	}
	n, err := s.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("temporary file for the message body: %w", err)
	}
	return n, nil
}

// Reader returns the body from its start.
func (s *spill) Reader() (io.Reader, error) {
	if s.f == nil {
		return bytes.NewReader(s.mem.Bytes()), nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("temporary file for the message body: %w", err)
	}
	return s.f, nil
}

// Close releases the temporary file.
func (s *spill) Close() error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
