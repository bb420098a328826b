package listener

import (
	"io"

	"github.com/relayq/relayq/submit"
)

// normalizer turns the content go-smtp's data reader delivers (dot-stuffing
// already removed, end marker <CRLF>.<CRLF> not included) into what the
// spool stores, by submit.Normalizer: the intake rules every door shares
// (CRLF line ends only, a stray CR becomes a space, NUL octets are
// removed). On top of those it bounds the header (everything before the
// first empty line): one longer than maxHeader fails the message with
// errHeaderTooBig. The first error sticks in err; n counts octets written,
// eof says the source was read to its end.
type normalizer struct {
	z         *submit.Normalizer
	maxHeader int

	header  bool // still in the header
	lineLen int  // octets in the current line so far, CRLF excluded
	hdrLen  int  // header octets so far

	n   int64
	err error
	eof bool
}

func newNormalizer(r io.Reader, maxHeader int) *normalizer {
	return &normalizer{z: submit.NewNormalizer(r), maxHeader: maxHeader, header: true}
}

func (b *normalizer) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	k, err := b.z.Read(p)
	if b.header {
		b.countHeader(p[:k])
		if b.err != nil {
			return 0, b.err // nothing more of a failed message goes on
		}
	}
	b.n += int64(k)
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		b.err = err
	}
	return k, err
}

// countHeader adds the header octets of out (normalised: lines end in
// CRLF) to hdrLen, until the empty line that ends the header.
func (b *normalizer) countHeader(out []byte) {
	for _, c := range out {
		switch c {
		case '\r':
			continue // its LF follows: counted there
		case '\n':
			if b.lineLen == 0 {
				b.header = false
				return
			}
			b.hdrLen += 2
			b.lineLen = 0
		default:
			b.lineLen++
			b.hdrLen++
		}
		if b.hdrLen > b.maxHeader {
			b.err = errHeaderTooBig
			return
		}
	}
}

// completeBody passes a message body through and turns its io.EOF into
// io.ErrUnexpectedEOF when the connection ended before the body did. go-smtp
// reports a DATA body cut short as io.ErrUnexpectedEOF itself, but a BDAT
// LAST chunk cut short reaches the session as a clean end: go-smtp copies
// the chunk with io.Copy from an io.LimitReader, which ends quietly when the
// connection does, and then closes the pipe as if the chunk were complete.
// Only a body whose connection is still open at its end was sent whole.
type completeBody struct {
	r     io.Reader
	ended func() bool
}

func (b completeBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.ended() {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}
