// Package mime7 rewrites a message so that a relay can take it: the parts
// that hold 8-bit octets (for a relay without 8BITMIME, RFC 6152) or
// lines longer than 998 octets (RFC 5321 §4.5.3.1.6) are re-encoded as
// quoted-printable or base64 (RFC 2045 §6), so that the message decodes to
// the very octets it had. Everything else is left as it was: the MIME
// structure (boundaries, preamble, epilogue, part headers) and every part
// that needs nothing. As Postfix does, nothing inside multipart/signed or
// multipart/encrypted is touched (it would break the signature): such a
// message is refused with ErrSigned.
package mime7

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest line (without CRLF) that may go out as is.
const MaxLine = 998

// ErrSigned: a part that needs re-encoding is inside multipart/signed or
// multipart/encrypted (RFC 1847); converting it would break the signature.
var ErrSigned = errors.New("a part that needs conversion is inside multipart/signed or multipart/encrypted")

// ErrCannot is wrapped by every other refusal: a part that needs
// conversion cannot be converted without changing what it means (its
// header has 8-bit octets outside an unstructured field, it is already
// declared base64 or quoted-printable, or it is a preamble or epilogue).
var ErrCannot = errors.New("cannot convert")

// Options says what must go.
type Options struct {
	SevenBit bool // re-encode every part with an octet >= 0x80 (relay without 8BITMIME)
}

// Scan reports what a message (CRLF line ends) holds: octets >= 0x80 and
// lines longer than MaxLine.
func Scan(msg []byte) (eightBit, longLines bool) {
	return has8bit(msg), hasLongLine(msg)
}

// Convert returns msg with every part that holds what o (8-bit) or the
// line limit forbids re-encoded; changed is false when msg needs nothing
// (out is then msg itself). The message's top-level header is not
// changed, except for MIME-Version and the content fields of a message
// that must be made MIME.
func Convert(msg []byte, o Options) (out []byte, changed bool, err error) {
	c := &conv{o: o}
	if !c.needs(msg) {
		return msg, false, nil
	}
	var b bytes.Buffer
	if err := c.entity(&b, msg, true, "text/plain"); err != nil {
		return nil, false, err
	}
	return b.Bytes(), true, nil
}

type conv struct{ o Options }

// needs reports whether b holds anything the options or the line limit forbid.
func (c *conv) needs(b []byte) bool {
	return (c.o.SevenBit && has8bit(b)) || hasLongLine(b)
}

// entity writes one message or body part: header, then body.
func (c *conv) entity(w *bytes.Buffer, ent []byte, top bool, defType string) error {
	hdr, body := splitHeader(ent)
	if !c.needs(ent) {
		w.Write(ent)
		return nil
	}
	fields := parseFields(hdr)
	ctype, params := defType, map[string]string{}
	if v, ok := fieldValue(fields, "Content-Type"); ok {
		if t, p, err := mime.ParseMediaType(v); err == nil {
			ctype, params = strings.ToLower(t), p
		} else {
			// RFC 2045 §5.2: an unparsable type is text/plain.
			ctype = "text/plain"
		}
	}
	cte := "7bit"
	if v, ok := fieldValue(fields, "Content-Transfer-Encoding"); ok {
		cte = strings.ToLower(strings.TrimSpace(v))
	}
	_, mimeVersion := fieldValue(fields, "MIME-Version")
	isMIME := !top || mimeVersion

	switch {
	case isMIME && strings.HasPrefix(ctype, "multipart/") && params["boundary"] != "":
		if ctype == "multipart/signed" || ctype == "multipart/encrypted" {
			return ErrSigned
		}
		if err := c.header(w, relabel(fields, c.o), top, relabelExtra(fields, c.o)); err != nil {
			return err
		}
		sub := "text/plain"
		if ctype == "multipart/digest" {
			sub = "message/rfc822"
		}
		return c.multipart(w, body, params["boundary"], sub)
	case isMIME && (ctype == "message/rfc822" || ctype == "message/global") && (cte == "7bit" || cte == "8bit" || cte == "binary"):
		// RFC 2046 §5.2.1: no encoding on message/rfc822; convert inside.
		if err := c.header(w, relabel(fields, c.o), top, relabelExtra(fields, c.o)); err != nil {
			return err
		}
		return c.entity(w, body, false, "text/plain")
	}
	if !c.needs(body) && (top || !c.needs(hdr)) {
		w.Write(ent) // a leaf that needs nothing (top: its header is the caller's)
		return nil
	}
	if cte != "7bit" && cte != "8bit" && cte != "binary" {
		return fmt.Errorf("%w: a part declared %q holds 8-bit octets or over-long lines", ErrCannot, cte)
	}
	enc := chooseEncoding(ctype, body)
	var extra []string
	if top && !mimeVersion {
		// A plain RFC 5322 message becomes a one-part MIME message.
		cs := "utf-8"
		if !utf8.Valid(body) {
			cs = "unknown-8bit" // RFC 1428
		}
		if !has8bit(body) {
			cs = "us-ascii"
		}
		extra = append(extra, "MIME-Version: 1.0", "Content-Type: text/plain; charset="+cs)
		fields = dropFields(fields, "Content-Type")
	}
	extra = append(extra, "Content-Transfer-Encoding: "+enc)
	if err := c.header(w, dropFields(fields, "Content-Transfer-Encoding"), top, strings.Join(extra, "\r\n")); err != nil {
		return err
	}
	return encodeBody(w, body, enc)
}

// header writes the fields, then extra (CRLF-separated lines), then the
// blank line. A field of a nested part with 8-bit octets, when 7 bits are
// needed, is RFC 2047-encoded if it is unstructured; the top-level header
// is the caller's (the relay's SMTPUTF8 decides it).
func (c *conv) header(w *bytes.Buffer, fields []field, top bool, extra string) error {
	for _, f := range fields {
		raw := f.raw
		if !top && (hasLongLine(raw) || c.o.SevenBit && has8bit(raw)) {
			enc, ok := encodeField(f)
			if !ok {
				return fmt.Errorf("%w: header field %s of a body part cannot be made 7-bit", ErrCannot, f.name)
			}
			raw = enc
		}
		w.Write(raw)
	}
	if extra != "" {
		w.WriteString(extra + "\r\n")
	}
	w.WriteString("\r\n")
	return nil
}

// multipart converts the parts between the delimiter lines of boundary;
// the delimiters, preamble and epilogue are kept as they are.
func (c *conv) multipart(w *bytes.Buffer, body []byte, boundary, sub string) error {
	segs, delims := splitParts(body, boundary)
	closed := len(delims) > 0 && isClose(delims[len(delims)-1], boundary)
	for i, s := range segs {
		if i == 0 || i == len(segs)-1 && closed {
			// Preamble or epilogue (or no delimiter at all): kept as is.
			if c.needs(s) {
				return fmt.Errorf("%w: the preamble or epilogue of a multipart holds 8-bit octets or over-long lines", ErrCannot)
			}
			w.Write(s)
		} else if err := c.entity(w, s, false, sub); err != nil {
			return err
		}
		if i < len(delims) {
			w.Write(delims[i])
		}
	}
	return nil
}

// chooseEncoding picks quoted-printable for text with only CRLF line ends,
// base64 for everything else.
func chooseEncoding(ctype string, body []byte) string {
	if !strings.HasPrefix(ctype, "text/") && ctype != "message/delivery-status" {
		return "base64"
	}
	// Text is quoted-printable however much of it is 8-bit (as Postfix
	// does): it stays readable where it is ASCII.
	for i, b := range body {
		if b == '\r' && (i+1 >= len(body) || body[i+1] != '\n') || b == '\n' && (i == 0 || body[i-1] != '\r') || b == 0 {
			return "base64" // a bare CR or LF would not survive QP's line breaks
		}
	}
	return "quoted-printable"
}

// encodeBody writes body in enc, lines ending in CRLF.
func encodeBody(w *bytes.Buffer, body []byte, enc string) error {
	switch enc {
	case "quoted-printable":
		q := quotedprintable.NewWriter(w)
		if _, err := q.Write(body); err != nil {
			return err
		}
		if err := q.Close(); err != nil {
			return err
		}
		// quotedprintable writes its hard line breaks as CRLF already; a
		// body that ended without one ends so too, and the part's end
		// (CRLF before the delimiter) is not the writer's.
		return nil
	default:
		s := base64.StdEncoding.EncodeToString(body)
		for len(s) > 76 {
			w.WriteString(s[:76] + "\r\n")
			s = s[76:]
		}
		if s != "" {
			w.WriteString(s + "\r\n")
		}
		return nil
	}
}

// relabel drops an 8bit or binary Content-Transfer-Encoding of a container
// (multipart, message) whose content is made 7-bit; relabelExtra says 7bit
// instead (RFC 2045 §6.4: the container's label is its content's).
func relabel(fs []field, o Options) []field {
	if !o.SevenBit || relabelExtra(fs, o) == "" {
		return fs
	}
	return dropFields(fs, "Content-Transfer-Encoding")
}

func relabelExtra(fs []field, o Options) string {
	v, ok := fieldValue(fs, "Content-Transfer-Encoding")
	if !o.SevenBit || !ok {
		return ""
	}
	if v = strings.ToLower(v); v == "8bit" || v == "binary" {
		return "Content-Transfer-Encoding: 7bit"
	}
	return ""
}
