package authinfo

import (
	"fmt"
	"net/netip"
	"strings"
)

// Lookup finds the credential for one connection, as sendmail's authinfo
// ruleset or Postfix's smtp_sasl_passwd_lookup would (see the package doc
// for the order). ok is false when no entry matches: then no AUTH is
// attempted. A nil Map matches nothing.
func (m *Map) Lookup(q Query) (Credential, bool) {
	e := m.lookup(q, nil)
	if e == nil {
		return Credential{}, false
	}
	return e.credential(), true
}

// Explain returns the lookup trail for q, one line per step: the keys
// tried, in order, which one matched and the credential with its secrets
// masked. It is what `relayq authinfo lookup` prints.
func (m *Map) Explain(q Query) []string {
	var trail []string
	say := func(format string, a ...any) { trail = append(trail, fmt.Sprintf(format, a...)) }
	if m == nil {
		say("no credentials file: no AUTH")
		return trail
	}
	switch m.format {
	case FormatEmpty:
		say("%s: no entries", m.name)
	case FormatPostfix:
		sd := "off (no user@domain or @domain keys)"
		if m.senders > 0 {
			sd = fmt.Sprintf("on (%d sender keys)", m.senders)
		}
		say("%s: %s syntax, %d entries; sender-dependent lookups %s", m.name, m.format, len(m.order), sd)
	default:
		say("%s: %s syntax, %d entries", m.name, m.format, len(m.order))
	}
	e := m.lookup(q, say)
	if e == nil {
		say("result: no entry matches; relayq will not attempt AUTH")
		return trail
	}
	say("result: %s", e.credential())
	return trail
}

func (e *entry) credential() Credential {
	c := e.cred
	if c.Mechs != nil {
		c.Mechs = append([]string(nil), c.Mechs...)
	}
	if c.OAuth != nil {
		o := *c.OAuth
		c.OAuth = &o
	}
	return c
}

// lookup runs the steps of the file's format; say, when not nil, is told
// every step.
func (m *Map) lookup(q Query, say func(string, ...any)) *entry {
	if m == nil {
		return nil
	}
	tracing := say != nil
	if !tracing {
		say = func(string, ...any) {}
	}
	step := 0
	try := func(what, key string) *entry {
		step++
		e := m.entries[key]
		switch {
		case !tracing:
		case e == nil:
			say("%d. %s %q: no entry", step, what, key)
		default:
			say("%d. %s %q: matches %s", step, what, key, e.cred.Source)
		}
		return e
	}
	host := normQueryHost(q.Host)
	switch m.format {
	case FormatSendmail:
		// cf/m4/proto.m4, ruleset authinfo: AuthInfo:${server_name},
		// AuthInfo:${server_addr}, AuthInfo: — at most three lookups.
		if host != "" {
			if e := try("server name", "authinfo:"+host); e != nil {
				return e
			}
		} else {
			step++
			say("%d. server name: none given", step)
		}
		addr := strings.Trim(strings.TrimSpace(q.Addr), "[]")
		if hasPrefixFold(addr, "IPv6:") {
			addr = addr[5:]
		}
		if a, err := netip.ParseAddr(addr); err == nil {
			if e := try("server address", "authinfo:"+a.Unmap().WithZone("").String()); e != nil {
				return e
			}
		} else {
			step++
			say("%d. server address: none given", step)
		}
		return try("default", "authinfo:")
	case FormatPostfix:
		// smtp_sasl_glue.c smtp_sasl_passwd_lookup: sender (mail_addr_find),
		// then the server's host name, then the next hop as written.
		if m.senders > 0 {
			keys, why := senderKeys(q.Sender)
			if why != "" {
				step++
				say("%d. sender: %s", step, why)
			}
			for _, k := range keys {
				if e := try("sender", k); e != nil {
					return e
				}
			}
		}
		if host != "" {
			if e := try("server name", host); e != nil {
				return e
			}
		} else {
			step++
			say("%d. server name: none given", step)
		}
		if nh := asciiLower(strings.TrimSpace(q.NextHop)); nh != "" {
			if nh == host {
				step++
				say("%d. next hop %q: same key as the server name", step, nh)
				return nil
			}
			return try("next hop", nh)
		}
		step++
		say("%d. next hop: none given", step)
	}
	return nil
}

// normQueryHost lower-cases the server name and drops brackets and a
// trailing dot; an IP address is written canonically.
func normQueryHost(h string) string {
	h = strings.TrimSuffix(asciiLower(strings.TrimSpace(h)), ".")
	h = strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "ipv6:")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return h
}

// noSplit are local parts Postfix's split_addr never splits at the
// recipient delimiter.
var noSplit = map[string]bool{"postmaster": true, "mailer-daemon": true, "double-bounce": true}

// senderKeys returns the sender lookups of Postfix's mail_addr_find for a
// non-local domain: user+ext@domain, user@domain, @domain. The recipient
// delimiter is '+'. why says why there are none.
func senderKeys(sender string) (keys []string, why string) {
	s := asciiLower(strings.TrimSpace(sender))
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if s == "" {
		return nil, "null sender: no sender lookups"
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return nil, "sender has no domain: no sender lookups"
	}
	local, dom := s[:at], strings.TrimSuffix(s[at+1:], ".")
	keys = append(keys, local+"@"+dom)
	// split_addr: split at the first delimiter, unless the local part
	// starts with it or is postmaster, mailer-daemon or double-bounce.
	if i := strings.IndexByte(local, '+'); i > 0 && !noSplit[local] {
		keys = append(keys, local[:i]+"@"+dom)
	}
	keys = append(keys, "@"+dom)
	return keys, ""
}
