package authinfo

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
)

const authInfoPrefix = "AuthInfo:"

// parseSendmail parses `AuthInfo:host "U:user" "P:secret" …`. It returns
// a message (never quoting the line) when the entry is bad.
func parseSendmail(key, value string) (*entry, string) {
	e := &entry{}
	target := key[len(authInfoPrefix):]
	switch {
	case target == "":
		e.kind, e.norm = kindDefault, "authinfo:"
	default:
		norm, kind, msg := sendmailTarget(target)
		if msg != "" {
			return nil, msg
		}
		e.kind, e.norm = kind, "authinfo:"+norm
	}
	fields, msg := quotedFields(value)
	if msg != "" {
		return nil, msg
	}
	seen := map[byte]bool{}
	var opts string
	for i, f := range fields {
		if len(f) < 2 || (f[1] != ':' && f[1] != '=') {
			return nil, fmt.Sprintf("field %d: expected \"X:value\" or \"X=base64\" where X is U, I, P, R, M or O", i+1)
		}
		letter := f[0]
		if letter >= 'a' && letter <= 'z' {
			letter -= 'a' - 'A'
		}
		if !strings.ContainsRune("UIPRMO", rune(letter)) {
			return nil, fmt.Sprintf("field %d: unknown field letter (want U authorization id, I authentication id, P password, R realm, M mechanisms or O OAuth options)", i+1)
		}
		if seen[letter] {
			return nil, fmt.Sprintf("field %c given twice", letter)
		}
		seen[letter] = true
		v := f[2:]
		if f[1] == '=' {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Sprintf("field %c=: the value is not valid base64", letter)
			}
			v = string(b)
		}
		if v == "" {
			return nil, fmt.Sprintf("field %c: empty value", letter)
		}
		switch letter {
		case 'U':
			e.cred.User = v
		case 'I':
			e.cred.AuthID = v
		case 'P':
			e.cred.Password = Secret(v)
		case 'R':
			e.cred.Realm = v
		case 'M':
			mechs, msg := parseMechs(v)
			if msg != "" {
				return nil, "field M: " + msg
			}
			e.cred.Mechs = mechs
		case 'O':
			opts = v
		}
	}
	// cf/README: U and I stand for each other when one is missing.
	switch {
	case e.cred.User == "" && e.cred.AuthID == "":
		return nil, "no user: an AuthInfo entry needs \"U:user\" (authorization id) or \"I:user\" (authentication id)"
	case e.cred.User == "":
		e.cred.User = e.cred.AuthID
	case e.cred.AuthID == "":
		e.cred.AuthID = e.cred.User
	}
	switch {
	case opts != "" && e.cred.Password != "":
		return nil, "both a password (P) and OAuth options (O): give one"
	case opts != "":
		o, msg := parseOAuth(opts)
		if msg != "" {
			return nil, "field O: " + msg
		}
		if o.mechs != nil {
			return nil, "field O: give the mechanisms in \"M:\", not as an O option"
		}
		if o.user != "" {
			return nil, "field O: give the user in \"U:\" or \"I:\", not as an O option"
		}
		e.cred.OAuth = o.oauth
		if msg := checkOAuthMechs(e.cred.Mechs); msg != "" {
			return nil, "field M: " + msg
		}
	case e.cred.Password == "":
		return nil, "no password: an AuthInfo entry needs \"P:password\" or \"P=base64\" (or \"O:\" OAuth options)"
	case len(e.cred.Mechs) > 0 && checkOAuthMechs(e.cred.Mechs) == "":
		return nil, "field M: lists only OAuth mechanisms (XOAUTH2, OAUTHBEARER) but the entry has a password; give OAuth options in \"O:\""
	}
	return e, ""
}

// sendmailTarget normalises the part of an AuthInfo key after the colon:
// a host name or an IP address (IPv6 with or without sendmail's "IPv6:"
// prefix), never with a port.
func sendmailTarget(t string) (norm string, kind keyKind, msg string) {
	s := t
	if hasNonASCII(s) {
		return "", 0, "AuthInfo: " + nonASCIIKey
	}
	if hasPrefixFold(s, "IPv6:") {
		a, err := netip.ParseAddr(s[5:])
		if err != nil || !a.Is6() {
			return "", 0, "AuthInfo:IPv6: must be followed by an IPv6 address"
		}
		return a.String(), kindAddr, ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", 0, "AuthInfo address with a zone: use the address alone"
		}
		return a.Unmap().String(), kindAddr, ""
	}
	if strings.HasPrefix(s, "[") {
		return "", 0, "AuthInfo keys take the host name or address without brackets (sendmail looks up AuthInfo:host, then AuthInfo:address)"
	}
	if strings.Contains(s, ":") {
		return "", 0, "AuthInfo keys never carry a port: sendmail looks up the host name alone, then the address, then AuthInfo:"
	}
	h, ok := normHostName(s)
	if !ok {
		return "", 0, "AuthInfo: must be followed by a host name, an IP address or nothing (the default entry)"
	}
	return h, kindHost, ""
}

// quotedFields splits `"U:user" "P:secret"` into its fields. Inside quotes
// a backslash escapes the next character, as in sendmail's tokenizer;
// adjacent quoted strings are separate fields, as they are separate tokens
// there.
func quotedFields(v string) ([]string, string) {
	var out []string
	i := 0
	for {
		for i < len(v) && isBlank(v[i]) {
			i++
		}
		if i == len(v) {
			return out, ""
		}
		if v[i] != '"' {
			return nil, fmt.Sprintf("field %d: expected a quoted field such as \"U:user\" or \"P:password\"", len(out)+1)
		}
		i++
		var b strings.Builder
		closed := false
		for i < len(v) {
			c := v[i]
			i++
			if c == '\\' && i < len(v) {
				b.WriteByte(v[i])
				i++
				continue
			}
			if c == '"' {
				closed = true
				break
			}
			b.WriteByte(c)
		}
		if !closed {
			return nil, fmt.Sprintf("field %d: missing closing quote", len(out)+1)
		}
		if i < len(v) && !isBlank(v[i]) && v[i] != '"' {
			return nil, fmt.Sprintf("field %d: expected white space after the closing quote", len(out)+1)
		}
		out = append(out, b.String())
	}
}

// parseMechs parses a space-separated SASL mechanism list (RFC 4422 §3.1:
// 1–20 characters of A–Z, 0–9, '-' and '_').
func parseMechs(v string) ([]string, string) {
	fs := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == '|' })
	if len(fs) == 0 {
		return nil, "empty mechanism list"
	}
	out := make([]string, 0, len(fs))
	for i, f := range fs {
		f = strings.ToUpper(f)
		if len(f) > 20 || !validMechName(f) {
			return nil, fmt.Sprintf("mechanism %d is not a SASL mechanism name (1-20 characters A-Z 0-9 - _)", i+1)
		}
		dup := false
		for _, o := range out {
			dup = dup || o == f
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out, ""
}

func validMechName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// normHostName lower-cases a DNS host name and drops one trailing dot; ok
// is false for anything that is not letters, digits, '-', '_' and dots.
func normHostName(s string) (string, bool) {
	if hasNonASCII(s) {
		return "", false // before folding case: the Kelvin sign would become 'k'
	}
	s = strings.TrimSuffix(asciiLower(s), ".")
	if s == "" || len(s) > 253 {
		return "", false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return s, true
}
