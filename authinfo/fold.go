package authinfo

// asciiLower lower-cases A-Z only. Keys and lookups fold case this way:
// strings.ToLower also maps some non-ASCII letters to ASCII ones (the
// Kelvin sign U+212A to 'k', U+0130 to 'i' plus a combining dot), so that
// "exampKe.com" would match the key of example.com.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// hasNonASCII reports an octet >= 0x80.
func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// nonASCIIKey is the message for a credentials or relay map key that is
// not ASCII.
const nonASCIIKey = "key has a non-ASCII character: write host names in ASCII (IDNA xn--... form) and sender keys in ASCII; case folding would make some such keys match other ones"
