package submit

import (
	"errors"
	"strings"
)

// isAtext reports an RFC 5322 atext octet (UTF-8 octets count too, RFC
// 6532 §3.2).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// IsDotAtom reports whether a local part can be written without quotes
// (RFC 5321 Dot-string: atoms joined by single dots).
func IsDotAtom(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	return atextOrDots(local)
}

// atextOrDots reports whether s holds only atext and dots.
func atextOrDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !isAtext(c) {
			return false
		}
	}
	return true
}

// QuoteLocal returns addr with its local part (all before the last '@')
// written as RFC 5321 requires: as is when it is a Dot-string, else as a
// quoted string with '"' and '\' escaped. addr is the address as an SMTP
// server library hands it over, its quotes removed ("john doe"@example.net
// arrives as john doe@example.net, "x@y"@example.net as x@y@example.net):
// written as is, it would name another mailbox. Every door stores this
// form, and the relay client sends it as stored.
func QuoteLocal(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	local, rest := addr, ""
	if at >= 0 {
		local, rest = addr[:at], addr[at:]
	}
	if local == "" || IsDotAtom(local) {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String() + rest
}

// ErrUnquotedSpecial: an address written by a caller has a character in
// its local part that is only allowed inside quotes.
var ErrUnquotedSpecial = errors.New("local part has a character that must be quoted (write it as \"...\"@domain)")

// CheckWrittenLocal checks the local part of an address as a caller wrote
// it (quotes and escapes still in): either one quoted string, or a
// Dot-string. An unquoted backslash or other special character is refused
// on every door alike (the SMTP server refuses it with 501).
func CheckWrittenLocal(addr string) error {
	local := addr
	if strings.HasPrefix(addr, `"`) {
		return nil // the caller's parser has matched the quotes
	}
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		local = addr[:at]
	}
	if local == "" || strings.Contains(local, `"`) {
		return nil
	}
	if !atextOrDots(local) {
		return ErrUnquotedSpecial
	}
	return nil
}

// Canonical returns an address as a caller wrote it (a quoted local part
// still in quotes) in the form every door stores: the local part unquoted
// and then quoted again only when it is not a Dot-string, so that
// "quoted"@example.net and quoted@example.net are one address, as they are
// when they arrive over SMTP. Anything that is not one quoted string
// followed by "@" or the end is returned as it is.
func Canonical(written string) string {
	if !strings.HasPrefix(written, `"`) {
		return written
	}
	var b strings.Builder
	for i := 1; i < len(written); i++ {
		switch c := written[i]; c {
		case '\\':
			if i+1 >= len(written) {
				return written
			}
			i++
			b.WriteByte(written[i])
		case '"':
			rest := written[i+1:]
			if rest != "" && rest[0] != '@' {
				return written
			}
			return QuoteLocal(b.String() + rest)
		default:
			b.WriteByte(c)
		}
	}
	return written
}
