package sendmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/relayq/relayq/internal/sysexits"
)

// field is one header field as read: its physical lines, normalized,
// without CRLF. The first line starts with the name and the colon.
type field struct {
	name  string // as written
	key   string // lower case
	lines [][]byte
}

// value returns the field body unfolded (continuation lines joined, their
// leading blank space kept as a single space boundary), trimmed.
func (f *field) value() string {
	var b strings.Builder
	first := f.lines[0]
	i := bytes.IndexByte(first, ':')
	b.Write(first[i+1:])
	for _, l := range f.lines[1:] {
		b.Write(l)
	}
	return strings.TrimSpace(b.String())
}

// newField builds a field from "Name: value" (value may not contain CR/LF).
func newField(name, value string) field {
	return field{name: name, key: strings.ToLower(name), lines: [][]byte{[]byte(name + ": " + value)}}
}

// DataError is a problem with the message itself (exit 65, EX_DATAERR).
type DataError struct{ Msg string }

func (e *DataError) Error() string { return e.Msg }

// ExitCode is 65 (EX_DATAERR).
func (e *DataError) ExitCode() int { return sysexits.DataErr }

func dataErrorf(format string, a ...any) error { return &DataError{fmt.Sprintf(format, a...)} }

// headerResult is what readHeader found.
type headerResult struct {
	fields    []field
	firstBody []byte // a line that ended the header without a blank line before it; nil if none
	blank     bool   // the header ended with a blank line
	ended     bool   // input ended (EOF or a lone dot) inside the header
	size      int
}

// readHeader reads the header section (RFC 5322 §2.2) from lr, at most
// maxSize octets. It ends at a blank line, at a line that is neither a
// field nor a continuation (which becomes the first body line: Postfix
// cleanup does the same), at a lone "." unless ignoreDots, or at the end of
// input. A first line "From " (an mbox separator) is dropped, as Postfix
// sendmail does.
func readHeader(lr *lineReader, ignoreDots bool, maxSize int) (*headerResult, error) {
	h := &headerResult{}
	first := true
	for {
		line, complete, err := lr.next(maxSize + 1)
		if errors.Is(err, io.EOF) {
			h.ended = true
			return h, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read message: %w", err)
		}
		if !complete {
			return nil, dataErrorf("message header line longer than %d octets (header size limit)", maxSize)
		}
		if !ignoreDots && len(line) == 1 && line[0] == '.' {
			h.ended = true
			return h, nil
		}
		if first {
			first = false
			if bytes.HasPrefix(line, []byte("From ")) {
				continue
			}
		}
		if len(line) == 0 {
			h.blank = true
			return h, nil
		}
		h.size += len(line) + 2
		if h.size > maxSize {
			return nil, dataErrorf("message header larger than %d octets (header size limit)", maxSize)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(h.fields) == 0 {
				h.firstBody = append([]byte(nil), line...)
				return h, nil
			}
			f := &h.fields[len(h.fields)-1]
			f.lines = append(f.lines, append([]byte(nil), line...))
			continue
		}
		name, ok := fieldName(line)
		if !ok {
			h.firstBody = append([]byte(nil), line...)
			return h, nil
		}
		h.fields = append(h.fields, field{name: name, key: strings.ToLower(name), lines: [][]byte{append([]byte(nil), line...)}})
	}
}

// fieldName returns the name of a header field line "Name: value"
// (RFC 5322 ftext: printable US-ASCII except ':'; blank space before the
// colon tolerated as obsolete syntax).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return "", false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(name), true
}

// writeField writes a field's lines with CRLF, folding any line longer
// than MaxLine: at the last blank before the limit (the blank starts the
// continuation line), else by inserting CRLF SP at a character boundary
// (as Postfix does for over-long header lines).
func writeField(w *bytes.Buffer, f *field) {
	for _, l := range f.lines {
		writeFolded(w, l)
	}
}

func writeFolded(w *bytes.Buffer, l []byte) {
	for len(l) > MaxLine {
		cut := bytes.LastIndexAny(l[:MaxLine+1], " \t")
		// Never fold inside the field name, nor leave a blank-only line.
		if cut <= 0 || len(bytes.TrimLeft(l[:cut], " \t")) == 0 || bytes.IndexByte(l[:cut], ':') < 0 && !startsBlank(l) {
			k := cutAt(l, MaxLine)
			w.Write(l[:k])
			w.WriteString("\r\n")
			rest := make([]byte, 0, len(l)-k+1)
			rest = append(rest, ' ')
			l = append(rest, l[k:]...)
			continue
		}
		w.Write(l[:cut])
		w.WriteString("\r\n")
		l = l[cut:]
	}
	w.Write(l)
	w.WriteString("\r\n")
}

func startsBlank(l []byte) bool { return len(l) > 0 && (l[0] == ' ' || l[0] == '\t') }
