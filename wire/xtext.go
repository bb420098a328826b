package wire

import (
	"errors"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// Xtext encodes s as RFC 3461 §4 xtext: the octets '!' to '~' except '+'
// and '=' stand as they are; every other octet becomes '+' and two
// upper-case hex digits.
func Xtext(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('+')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// errXtext is returned by DecodeXtext for text that is not xtext.
var errXtext = errors.New("not RFC 3461 xtext")

// DecodeXtext decodes RFC 3461 §4 xtext. Hex digits may be given in either
// case; an octet outside '!'..'~', a bare '=' or a '+' not followed by two
// hex digits is an error.
func DecodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", errXtext
			}
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", errXtext
			}
			b.WriteByte(h<<4 | l)
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", errXtext
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
