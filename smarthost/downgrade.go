package smarthost

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/relayq/relayq/smarthost/mime7"
)

// prepared is a message body converted for relays that need it (RFC 6152
// 7-bit downgrade, over-long lines as quoted-printable), made once per
// Deliver call and kept for failover to the next relay.
type prepared struct {
	scanned   bool
	longLines bool
	raw       []byte          // a small body as stored, read once (keepBody)
	bodies    map[bool][]byte // by Options.SevenBit
	errs      map[bool]error
}

// scanLongLines reports whether the body has a line over maxLineOut
// octets, reading it once per message.
func (m *Message) scanLongLines() (bool, error) {
	if m.prep == nil {
		m.prep = &prepared{bodies: map[bool][]byte{}, errs: map[bool]error{}}
	}
	if m.prep.scanned {
		return m.prep.longLines, nil
	}
	rc, err := m.Body()
	if err != nil {
		return false, fmt.Errorf("open body: %w", err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if m.Size > 0 && m.Size <= keepBody {
		// A small body is read once: scanned here and sent from memory.
		b, err := io.ReadAll(io.LimitReader(rc, keepBody+1))
		if err != nil {
			return false, fmt.Errorf("read body: %w", err)
		}
		if len(b) <= keepBody {
			m.prep.raw = b
			m.prep.longLines = hasLongLine(b)
			m.prep.scanned = true
			return m.prep.longLines, nil
		}
		r = io.MultiReader(bytes.NewReader(b), rc) // Size was wrong: stream it
	}
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if err == nil || err == io.EOF {
			l := n - (len(chunk) - len(bytes.TrimRight(chunk, "\r\n"))) // without the line end
			if l > maxLineOut {
				m.prep.longLines = true
				break
			}
			n = 0
			if err == io.EOF {
				break
			}
			continue
		}
		if err != bufio.ErrBufferFull {
			return false, fmt.Errorf("read body: %w", err)
		}
		if n > maxLineOut {
			m.prep.longLines = true
			break
		}
	}
	m.prep.scanned = true
	return m.prep.longLines, nil
}

// keepBody is the largest body kept in memory for the attempt (read once
// for the long-line scan and the send), as large as one BDAT flight.
const keepBody = bdatChunk

// hasLongLine reports whether b has a line over maxLineOut octets
// (without its line end), as scanLongLines counts.
func hasLongLine(b []byte) bool {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		if len(bytes.TrimRight(line, "\r\n")) > maxLineOut {
			return true
		}
	}
	return false
}

// converted returns the body re-encoded by mime7 (sevenBit: every 8-bit
// part too), made once per message and option.
func (m *Message) converted(sevenBit bool) ([]byte, error) {
	if m.prep == nil {
		m.prep = &prepared{bodies: map[bool][]byte{}, errs: map[bool]error{}}
	}
	if b, ok := m.prep.bodies[sevenBit]; ok {
		return b, m.prep.errs[sevenBit]
	}
	raw := m.prep.raw
	if raw == nil {
		rc, err := m.Body()
		if err != nil {
			return nil, fmt.Errorf("open body: %w", err)
		}
		raw, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
	}
	out, _, err := mime7.Convert(raw, mime7.Options{SevenBit: sevenBit})
	m.prep.bodies[sevenBit], m.prep.errs[sevenBit] = out, err
	return out, err
}

// need7bit: the message is 8-bit and the relay lacks 8BITMIME.
func need7bit(cn *conn, m *Message) bool { return m.Body8Bit && !cn.has("8BITMIME") }

// check7bit is the precheck for an 8-bit message to a relay without
// 8BITMIME: it is converted to 7-bit MIME (RFC 6152 §3, as Postfix does),
// or refused with 5.6.3 when it cannot be (a signed or encrypted part,
// an 8-bit field in a part header that is not free text).
func (c *Client) check7bit(cn *conn, m *Message) error {
	if !need7bit(cn, m) {
		return nil
	}
	_, err := m.converted(true)
	if err == nil {
		return nil
	}
	if errors.Is(err, mime7.ErrSigned) || errors.Is(err, mime7.ErrCannot) {
		return &permanentError{Enhanced: "5.6.3", Text: "message has an 8-bit body, the relay does not support 8BITMIME (RFC 6152), and it cannot be converted to 7-bit: " + err.Error()}
	}
	return err
}

// bodyFor opens the body as this relay gets it: converted to 7-bit MIME
// when check7bit said so; with parts holding lines over 998 octets
// re-encoded as quoted-printable when the message is MIME-convertible
// (so that it decodes to the very octets; otherwise dotWriter folds them
// with CRLF SP, as Postfix does); else as stored.
func (c *Client) bodyFor(cn *conn, m *Message) (io.ReadCloser, error) {
	if need7bit(cn, m) {
		b, err := m.converted(true)
		if err != nil {
			return nil, err
		}
		c.log.Info("message converted to 7-bit MIME: the relay does not offer 8BITMIME", "queue_id", m.ID)
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	long, err := m.scanLongLines()
	if err != nil {
		return nil, err
	}
	if long {
		b, err := m.converted(false)
		if err == nil {
			c.log.Info("parts with lines over 998 octets sent quoted-printable", "queue_id", m.ID)
			return io.NopCloser(bytes.NewReader(b)), nil
		}
		c.log.Info("lines over 998 octets folded with CRLF SP: the part cannot be re-encoded", "queue_id", m.ID, "why", err.Error())
	}
	if m.prep.raw != nil {
		return io.NopCloser(bytes.NewReader(m.prep.raw)), nil
	}
	return m.Body()
}
