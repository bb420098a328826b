package wire

import (
	"strings"
	"unicode/utf8"
)

// Sanitize returns s safe to store, print or quote on one line (see the
// package doc): TAB, CR and LF become a space; every other control
// character (C0, DEL, C1) and every octet that is not valid UTF-8 becomes
// '?', as Postfix's printable() does with the replies it reads.
func Sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\t' || r == '\r' || r == '\n':
			b.WriteByte(' ')
		case r < 0x20 || (r >= 0x7f && r < 0xa0) || (r == utf8.RuneError && n == 1):
			b.WriteByte('?')
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
