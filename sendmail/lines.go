package sendmail

import (
	"bufio"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/relayq/relayq/submit"
)

// MaxLine is the longest line relayq queues, without its CRLF (RFC 5321
// §4.5.3.1.6, RFC 5322 §2.1.1; Postfix smtp_line_length_limit).
const MaxLine = 998

// lineReader reads the message a caller hands over, normalised by
// submit.Normalizer (the intake rules every door shares: LF or CRLF ends a
// line, any other CR becomes a space, NUL octets are removed), and returns
// lines without their terminator, at most max octets at a time, split at a
// UTF-8 character boundary when longer (the rest follows as further
// pieces).
type lineReader struct {
	z       *submit.Normalizer
	r       *bufio.Reader
	pend    []byte // octets of the current line not yet returned
	out     []byte // the slice handed out last (reused)
	lineEnd bool   // pend holds the whole rest of the current line
	eof     bool
	err     error
}

func newLineReader(r io.Reader) *lineReader {
	z := submit.NewNormalizer(r)
	return &lineReader{z: z, r: bufio.NewReaderSize(z, 64<<10)}
}

// eightBit reports whether an octet >= 0x80 was read.
func (l *lineReader) eightBit() bool { return l.z.EightBit }

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

// fill reads one chunk into pend, up to and including a line end. The
// input is normalised, so every CR is followed by LF.
func (l *lineReader) fill() {
	chunk, err := l.r.ReadSlice('\n')
	switch n := len(chunk); {
	case n > 0 && chunk[n-1] == '\n':
		l.pend = append(l.pend, chunk[:n-2]...) // without CRLF
		l.lineEnd = true
		return
	case n > 0 && chunk[n-1] == '\r':
		// A CR at the end of a full buffer: its LF is next.
		l.pend = append(l.pend, chunk[:n-1]...)
		_, _ = l.r.Discard(1)
		l.lineEnd = true
		return
	}
	l.pend = append(l.pend, chunk...)
	switch {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
	case errors.Is(err, io.EOF):
		l.eof = true
	default:
		l.eof, l.err = true, err
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
