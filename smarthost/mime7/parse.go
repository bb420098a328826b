package mime7

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"
)

// field is one header field as it came (folded lines and CRLFs included).
type field struct {
	name string
	raw  []byte
}

// splitHeader splits an entity at the blank line that ends its header;
// the header keeps its last CRLF, the body starts after the blank line.
// An entity without a blank line is all header (no body).
func splitHeader(ent []byte) (hdr, body []byte) {
	if bytes.HasPrefix(ent, []byte("\r\n")) {
		return nil, ent[2:]
	}
	if i := bytes.Index(ent, []byte("\r\n\r\n")); i >= 0 {
		return ent[:i+2], ent[i+4:]
	}
	return ent, nil
}

// parseFields splits a header into fields (a line starting with a blank
// continues the field before it).
func parseFields(hdr []byte) []field {
	var fs []field
	start := -1 // offset of the field being read
	name := ""
	pos := 0
	flush := func(end int) {
		if start >= 0 {
			fs = append(fs, field{name: name, raw: hdr[start:end]})
		}
	}
	for pos < len(hdr) {
		n := bytes.Index(hdr[pos:], []byte("\r\n"))
		next := len(hdr)
		if n >= 0 {
			next = pos + n + 2
		}
		if (hdr[pos] == ' ' || hdr[pos] == '\t') && start >= 0 {
			pos = next
			continue
		}
		flush(pos)
		nm, _, _ := bytes.Cut(hdr[pos:next], []byte(":"))
		start, name = pos, strings.TrimSpace(string(nm))
		pos = next
	}
	flush(len(hdr))
	return fs
}

// value is the field's unfolded value.
func (f field) value() string {
	_, v, ok := bytes.Cut(f.raw, []byte(":"))
	if !ok {
		return ""
	}
	s := strings.NewReplacer("\r\n", "").Replace(string(v))
	return strings.TrimSpace(s)
}

func fieldValue(fs []field, name string) (string, bool) {
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			return f.value(), true
		}
	}
	return "", false
}

func dropFields(fs []field, name string) []field {
	var out []field
	for _, f := range fs {
		if !strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	return out
}

// unstructured are the fields whose value is free text (RFC 5322 §3.6.5,
// RFC 2045 §8), which RFC 2047 encoded-words may replace as a whole.
var unstructured = map[string]bool{"subject": true, "comments": true, "content-description": true}

// encodeField returns an unstructured UTF-8 field as RFC 2047 encoded
// words, folded under 78 octets per line.
func encodeField(f field) ([]byte, bool) {
	v := f.value()
	if !unstructured[strings.ToLower(f.name)] || !utf8.ValidString(v) {
		return nil, false
	}
	words := strings.Fields(mime.QEncoding.Encode("utf-8", v))
	var b strings.Builder
	b.WriteString(f.name + ":")
	n := b.Len()
	for _, wd := range words {
		if n+1+len(wd) > 76 && n > len(f.name)+1 {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteString(" " + wd)
		n += 1 + len(wd)
	}
	b.WriteString("\r\n")
	return []byte(b.String()), true
}

// splitParts cuts a multipart body at its delimiter lines. segs[0] is the
// preamble, then one segment per part, then (after a close delimiter) the
// epilogue; delims[i] follows segs[i] and holds the delimiter line with
// the CRLF before it (which belongs to the delimiter, RFC 2046 §5.1.1) and
// the one after it.
func splitParts(body []byte, boundary string) (segs, delims [][]byte) {
	dash := []byte("--" + boundary)
	start, pos := 0, 0
	for pos < len(body) {
		end := bytes.Index(body[pos:], []byte("\r\n"))
		next := len(body)
		if end >= 0 {
			next = pos + end + 2
		}
		line := body[pos:next]
		if bytes.HasPrefix(line, dash) && isDelimTail(line[len(dash):]) {
			ds := pos
			if pos-2 >= start && pos >= 2 && body[pos-2] == '\r' && body[pos-1] == '\n' {
				ds = pos - 2
			}
			segs = append(segs, body[start:ds])
			delims = append(delims, body[ds:next])
			start = next
			if bytes.HasPrefix(line[len(dash):], []byte("--")) {
				break // close delimiter: the rest is the epilogue
			}
		}
		pos = next
	}
	segs = append(segs, body[start:])
	return segs, delims
}

// isDelimTail: what may follow "--boundary" on a delimiter line: "--"
// (close), then transport padding (blanks), then the line end.
func isDelimTail(t []byte) bool {
	t = bytes.TrimPrefix(t, []byte("--"))
	t = bytes.TrimRight(t, "\r\n")
	return len(bytes.Trim(t, " \t")) == 0
}

func isClose(delim []byte, boundary string) bool {
	return bytes.Contains(delim, []byte("--"+boundary+"--"))
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// hasLongLine reports a line longer than MaxLine octets (without CRLF).
func hasLongLine(b []byte) bool {
	for len(b) > MaxLine {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return len(b) > MaxLine
		}
		l := i
		if l > 0 && b[l-1] == '\r' {
			l--
		}
		if l > MaxLine {
			return true
		}
		b = b[i+1:]
	}
	return false
}
