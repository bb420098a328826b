package submit

import "io"

// Normalizer turns message content as a door receives it into the form the
// spool stores, with one policy for every door (the sendmail command and
// the SMTP listener alike), so that the same octets are stored whichever
// door a message came in by (RELIABILITY S9):
//
//   - CRLF or a bare LF ends a line; every line end becomes CRLF (Postfix
//     smtpd_forbid_bare_newline = normalize).
//   - A CR not followed by LF becomes a space (Postfix
//     cleanup_replace_stray_cr_lf = yes), so no bare CR is passed on.
//   - A NUL octet is removed (Postfix message_strip_characters = \0): a
//     relay refuses NUL (RFC 5322 §2.3) and it carries no text; removing it
//     keeps cron output that contains one deliverable, where refusing the
//     message would lose it.
//
// Every other octet passes unchanged. Dot-stuffing is not its business:
// the listener's DATA reader has removed it already, and the sendmail
// command's input has none. A Normalizer reads its source to the end; the
// counters say what it changed.
type Normalizer struct {
	r   io.Reader
	in  []byte
	out []byte // normalised octets not yet returned
	cr  bool   // the last octet read was a CR whose LF may follow
	eof bool   // the source is read to its end
	err error  // the source's error, returned once out is drained

	NULs     int64 // NUL octets removed
	StrayCRs int64 // CRs not followed by LF, replaced by a space
	BareLFs  int64 // LFs without CR, made CRLF
	EightBit bool  // an octet >= 0x80 passed
}

// NewNormalizer returns a Normalizer reading from r.
func NewNormalizer(r io.Reader) *Normalizer {
	return &Normalizer{r: r, in: make([]byte, 32<<10)}
}

// Read returns normalised content; io.EOF once the source is read to its
// end, or the source's error.
func (z *Normalizer) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.eof {
			return 0, z.err
		}
		n, err := z.r.Read(z.in)
		z.out = z.process(z.in[:n], z.out[:0])
		if err != nil {
			if z.cr {
				z.cr = false
				z.StrayCRs++
				z.out = append(z.out, ' ')
			}
			z.eof, z.err = true, err
		}
	}
	k := copy(p, z.out)
	z.out = z.out[k:]
	return k, nil
}

// process normalises in, appending to out.
func (z *Normalizer) process(in, out []byte) []byte {
	for len(in) > 0 {
		if z.cr {
			z.cr = false
			if in[0] == '\n' {
				out = append(out, '\r', '\n')
				in = in[1:]
				continue
			}
			z.StrayCRs++
			out = append(out, ' ')
		}
		// Copy the run of plain octets up to the next CR, LF or NUL.
		i := 0
		for i < len(in) {
			c := in[i]
			if c == '\r' || c == '\n' || c == 0 {
				break
			}
			if c >= 0x80 {
				z.EightBit = true
			}
			i++
		}
		out = append(out, in[:i]...)
		if i == len(in) {
			break
		}
		switch in[i] {
		case '\r':
			z.cr = true
		case '\n':
			z.BareLFs++
			out = append(out, '\r', '\n')
		case 0:
			z.NULs++
		}
		in = in[i+1:]
	}
	return out
}
