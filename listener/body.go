package listener

import "io"

// normalizer turns the content go-smtp's data reader delivers (dot-stuffing
// already removed, end marker <CRLF>.<CRLF> not included) into what the
// spool stores: CRLF line ends only. A bare LF becomes CRLF and a CR that
// is not followed by LF becomes a space (as Postfix
// smtpd_forbid_bare_newline=normalize and cleanup_replace_stray_cr_lf); a
// NUL octet fails the message with errNUL, a header (everything before
// the first empty line) longer than maxHeader fails it with
// errHeaderTooBig. The first error sticks in err; n counts octets
// written, eof says the source was read to its end.
type normalizer struct {
	r         io.Reader
	maxHeader int

	in      []byte // read buffer
	out     []byte // normalised octets not yet returned
	pending bool   // a CR was read, its LF may follow
	header  bool   // still in the header
	lineLen int    // octets in the current line so far
	hdrLen  int    // header octets so far

	n   int64
	err error
	eof bool
}

func newNormalizer(r io.Reader, maxHeader int) *normalizer {
	return &normalizer{r: r, maxHeader: maxHeader, in: make([]byte, 32*1024), header: true}
}

func (z *normalizer) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		if z.eof {
			return 0, io.EOF
		}
		n, err := z.r.Read(z.in)
		z.out = z.process(z.in[:n], z.out[:0])
		if err == io.EOF {
			if z.pending {
				z.pending = false
				z.out = z.emit(z.out, ' ')
			}
			if z.err == nil {
				z.eof = true
			}
		} else if err != nil && z.err == nil {
			z.err = err
		}
		if z.err != nil {
			z.out = z.out[:0] // nothing more of a failed message goes on
		}
	}
	k := copy(p, z.out)
	z.out = z.out[k:]
	z.n += int64(k)
	return k, nil
}

// process normalises in, appending to out.
func (z *normalizer) process(in, out []byte) []byte {
	for _, c := range in {
		if z.err != nil {
			return out
		}
		if z.pending {
			z.pending = false
			if c == '\n' {
				out = z.endLine(out)
				continue
			}
			out = z.emit(out, ' ') // stray CR
		}
		switch c {
		case '\r':
			z.pending = true
		case '\n':
			out = z.endLine(out) // bare LF
		case 0:
			z.err = errNUL
		default:
			out = z.emit(out, c)
		}
	}
	return out
}

func (z *normalizer) emit(out []byte, c byte) []byte {
	z.lineLen++
	if z.header {
		z.hdrLen++
		if z.hdrLen > z.maxHeader {
			z.err = errHeaderTooBig
		}
	}
	return append(out, c)
}

func (z *normalizer) endLine(out []byte) []byte {
	if z.header {
		if z.lineLen == 0 {
			z.header = false
		} else {
			z.hdrLen += 2
			if z.hdrLen > z.maxHeader {
				z.err = errHeaderTooBig
			}
		}
	}
	z.lineLen = 0
	return append(out, '\r', '\n')
}
