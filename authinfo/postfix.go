package authinfo

import (
	"net/netip"
	"strings"
)

// parsePostfix parses `key user:password` (or `key oauth2:options`). It
// returns a message (never quoting the line) when the entry is bad.
func parsePostfix(key, value string) (*entry, string) {
	norm, kind, msg := postfixKey(key)
	if msg != "" {
		return nil, msg
	}
	e := &entry{norm: norm, kind: kind}
	if hasPrefixFold(value, oauthPrefix) {
		o, msg := parseOAuth(value[len(oauthPrefix):])
		if msg != "" {
			return nil, msg
		}
		if o.user == "" {
			return nil, "OAuth entry without user=…: the user (e.g. the mailbox address) is required"
		}
		e.cred = Credential{User: o.user, AuthID: o.user, OAuth: o.oauth, Mechs: o.mechs}
		if msg := checkOAuthMechs(o.mechs); msg != "" {
			return nil, "OAuth option mech: " + msg
		}
		return e, ""
	}
	// smtp_sasl_glue.c splits the value at the first ':', so passwords may
	// contain ':'.
	user, pass, ok := strings.Cut(value, ":")
	switch {
	case !ok:
		return nil, "expected the value user:password (no ':' found)"
	case user == "":
		return nil, "empty user name before ':' (want user:password)"
	case pass == "":
		return nil, "empty password after ':' (want user:password)"
	}
	e.cred = Credential{User: user, AuthID: user, Password: Secret(pass)}
	return e, ""
}

// postfixKey classifies and normalises a sasl_passwd key: user@domain,
// user+ext@domain or @domain (sender keys); host, host:port, [host] or
// [host]:port (server name or next hop).
func postfixKey(k string) (norm string, kind keyKind, msg string) {
	if hasNonASCII(k) {
		return "", 0, nonASCIIKey // before folding case (Kelvin sign → k)
	}
	s := asciiLower(k)
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		local, dom := s[:at], s[at+1:]
		d, ok := normHostName(dom)
		if !ok {
			return "", 0, "sender key: expected user@domain or @domain, and the part after '@' is not a domain name"
		}
		if strings.ContainsAny(local, "[]:\"") {
			return "", 0, "sender key: expected user@domain or @domain"
		}
		return local + "@" + d, kindSender, ""
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, "host key: '[' without ']' (want [host]:port as in the relay host setting)"
		}
		inner := s[1:end]
		if !validBracketed(inner) {
			return "", 0, "host key: expected a host name or address inside [ ]"
		}
		if rest := s[end+1:]; rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok || !validPort(p) {
				return "", 0, "host key: expected :port after ']' (a number 1-65535 or a service name)"
			}
		}
		return s, kindHost, ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String(), kindHost, ""
	}
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && !validPort(port) {
		return "", 0, "host key: expected host, host:port, [host] or [host]:port (IPv6 addresses go in brackets)"
	}
	h, ok := normHostName(host)
	if !ok {
		if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
			h = a.String()
		} else {
			return "", 0, "host key: expected a host name, [host]:port, user@domain or @domain"
		}
	}
	if hasPort {
		return h + ":" + port, kindHost, ""
	}
	return h, kindHost, ""
}

// validBracketed accepts what Postfix accepts between [ ]: a host name, an
// IPv4 address or "ipv6:" plus an IPv6 address (a bare IPv6 address too).
func validBracketed(s string) bool {
	if v6, ok := strings.CutPrefix(s, "ipv6:"); ok {
		a, err := netip.ParseAddr(v6)
		return err == nil && a.Is6()
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, ok := normHostName(s)
	return ok
}

// validPort accepts 1-65535 or a service name.
func validPort(p string) bool {
	if p == "" || len(p) > 32 {
		return false
	}
	if p[0] >= '0' && p[0] <= '9' {
		n := 0
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
			n = n*10 + int(p[i]-'0')
			if n > 65535 {
				return false
			}
		}
		return n > 0
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// String is for Explain output.
func (k keyKind) String() string {
	switch k {
	case kindSender:
		return "sender"
	case kindAddr:
		return "address"
	case kindDefault:
		return "default"
	}
	return "host"
}
