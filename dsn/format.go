package dsn

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Header folding and copying the original message into the report.

// fold writes one "Key: value" field with CRLF, folding at white space
// before 78 columns where it can (RFC 5322 §2.2.3) and never producing a
// line over 998 octets.
func fold(k, v string) string { return foldIndent(k+": ", v, "\t") }

// foldIndent writes prefix+v as lines of at most 78 columns where white
// space allows and 998 octets always, continuation lines starting with
// indent.
func foldIndent(prefix, v, indent string) string {
	const soft, hard = 78, 998
	var b strings.Builder
	line := prefix
	words := strings.Split(v, " ")
	first := true
	for _, w := range words {
		add := w
		if !first {
			add = " " + w
		}
		if !first && len(line)+len(add) > soft && strings.TrimSpace(line) != "" {
			b.WriteString(line)
			b.WriteString("\r\n")
			line = indent + w
		} else {
			line += add
		}
		first = false
		for len(line) > hard {
			// A single word too long for a line: split it hard; it is
			// a quoted reply, and a fold inside it only adds white space.
			b.WriteString(line[:hard])
			b.WriteString("\r\n")
			line = indent + line[hard:]
		}
	}
	b.WriteString(line)
	b.WriteString("\r\n")
	return b.String()
}

// wrap breaks a text line at white space before 78 columns where it can,
// indenting continuation lines, and never writes a line over 998 octets.
func wrap(s string) string {
	return foldIndent("", s, "    ")
}

// addFields adds key/value pairs to h so that WriteHeader writes them in
// the order given (go-message keeps fields in reverse and writes them
// back to front). Values may contain pre-folded "\r\n\t" sequences.
func addFields(h *textproto.Header, kv ...string) {
	// AddRaw inserts at the top, which WriteHeader writes first: rebuild
	// the header with the old fields followed by the new ones.
	var old [][]byte
	fs := h.Fields()
	for fs.Next() {
		raw, _ := fs.Raw()
		old = append(old, raw)
	}
	var all [][]byte
	all = append(all, old...)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if strings.Contains(v, "\r\n") {
			all = append(all, []byte(kv[i]+": "+v+"\r\n"))
		} else {
			all = append(all, []byte(fold(kv[i], v)))
		}
	}
	*h = textproto.Header{}
	for i := len(all) - 1; i >= 0; i-- {
		h.AddRaw(all[i])
	}
}

// copyHeader copies the header of the message in r (up to the empty line)
// to w, bounded to maxHeaderBytes; a line equal to the boundary delimiter
// is defused.
func copyHeader(w io.Writer, r io.Reader, boundary string) error {
	br := bufio.NewReader(r)
	n := 0
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if t := strings.TrimRight(line, "\r\n"); t == "" {
				return nil
			}
			n += len(line)
			if n > maxHeaderBytes {
				return nil // the rest of an oversized header is left out
			}
			if _, err := io.WriteString(w, defuse(ensureCRLF(line), boundary)); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copyOriginal copies the whole message, defusing boundary lines.
func copyOriginal(w io.Writer, r io.Reader, boundary string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: no boundary can be in its middle part.
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			continue
		}
		if len(line) > 0 {
			s := string(line)
			if bytes.HasPrefix(line, []byte("--")) {
				s = defuse(s, boundary)
			}
			if _, werr := io.WriteString(w, s); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// defuse changes a line that would close our MIME part early (a line
// starting with "--" + our boundary) by prefixing a space. With a random
// boundary this never happens in practice; it guards a chosen one.
func defuse(line, boundary string) string {
	if strings.HasPrefix(line, "--"+boundary) {
		return " " + line
	}
	return line
}

func ensureCRLF(line string) string {
	if strings.HasSuffix(line, "\r\n") {
		return line
	}
	return strings.TrimSuffix(line, "\n") + "\r\n"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
