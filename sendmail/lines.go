package sendmail

import (
	"bufio"
	"errors"
	"io"
	"unicode/utf8"
)

// MaxLine is the longest line relayq queues, without its CRLF (RFC 5321
// §4.5.3.1.6, RFC 5322 §2.1.1; Postfix smtp_line_length_limit).
const MaxLine = 998

// lineReader reads the message a caller hands over and applies the line
// rules of the package doc: LF or CRLF ends a line; any other CR becomes a
// space (as Postfix cleanup_replace_stray_cr_lf); NUL octets are removed.
// It returns lines without their terminator, at most max octets at a time,
// split at a UTF-8 character boundary when longer (the rest follows as
// further pieces).
type lineReader struct {
	r        *bufio.Reader
	pend     []byte // normalized octets of the current line not yet returned
	out      []byte // the slice handed out last (reused)
	lineEnd  bool   // pend holds the whole rest of the current line
	eof      bool
	err      error
	eightBit bool // an octet >= 0x80 was seen
	nulls    int  // NUL octets removed
	strayCR  int  // stray CRs replaced
}

func newLineReader(r io.Reader) *lineReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &lineReader{r: br}
}

// next returns the next piece of a line. complete is true when the piece
// ends its line (a CRLF follows it); false when the line was cut at max and
// continues in the next piece. At the end of input it returns io.EOF (a
// last line without terminator is returned complete first).
func (l *lineReader) next(max int) (piece []byte, complete bool, err error) {
	for {
		if len(l.pend) > max {
			k := cutAt(l.pend, max)
			l.out = append(l.out[:0], l.pend[:k]...)
			l.pend = l.pend[:copy(l.pend, l.pend[k:])]
			return l.out, false, nil
		}
		if l.lineEnd {
			l.out = append(l.out[:0], l.pend...)
			l.pend = l.pend[:0]
			l.lineEnd = false
			return l.out, true, nil
		}
		if l.eof {
			if len(l.pend) > 0 {
				l.lineEnd = true
				continue
			}
			if l.err != nil {
				return nil, false, l.err
			}
			return nil, false, io.EOF
		}
		l.fill()
	}
}

// fill reads one chunk into pend, up to and including a line end.
func (l *lineReader) fill() {
	chunk, err := l.r.ReadSlice('\n')
	nl := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
	if nl {
		chunk = chunk[:len(chunk)-1]
		if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
			chunk = chunk[:n-1]
		}
	} else if n := len(chunk); n > 0 && chunk[n-1] == '\r' && errors.Is(err, bufio.ErrBufferFull) {
		// A CR at the end of a full buffer: it ends the line if LF follows.
		// chunk is only valid until the next read: copy it first.
		l.append(chunk[:n-1])
		if b, perr := l.r.Peek(1); perr == nil && b[0] == '\n' {
			_, _ = l.r.Discard(1)
			l.lineEnd = true
			return
		}
		l.append([]byte{' '})
		l.strayCR++
		return
	}
	l.append(chunk)
	switch {
	case nl:
		l.lineEnd = true
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
	case errors.Is(err, io.EOF):
		l.eof = true
	default:
		l.eof, l.err = true, err
	}
}

// append adds normalized octets to pend.
func (l *lineReader) append(b []byte) {
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\r' && b[i] != 0 {
			if b[i] >= 0x80 {
				l.eightBit = true
			}
			i++
		}
		l.pend = append(l.pend, b[:i]...)
		if i == len(b) {
			return
		}
		if b[i] == '\r' {
			l.pend = append(l.pend, ' ')
			l.strayCR++
		} else {
			l.nulls++
		}
		b = b[i+1:]
	}
}

// cutAt returns where to cut b (len(b) > max) so that the first part is at
// most max octets and does not end inside a UTF-8 sequence.
func cutAt(b []byte, max int) int {
	for k := max; k > 0 && k > max-utf8.UTFMax; k-- {
		if utf8.RuneStart(b[k]) {
			return k
		}
	}
	return max // not UTF-8 here: cut anywhere
}
