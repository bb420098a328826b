package sendmail

import (
	"errors"
	"fmt"
	"strings"

	"github.com/relayq/relayq/submit"
)

// maxAddressLen bounds one address (RFC 5321 §4.5.3.1.3: a path is at most
// 256 octets including the angle brackets).
const maxAddressLen = 254

// ParseAddressList extracts the addresses of an RFC 5322 address list as
// found in To/Cc/Bcc headers and on sendmail's command line, leniently, as
// Postfix's tokenizer does:
//
//	alice@example.com, "Bob B." <bob@example.com>, carol (Carol C.)
//	undisclosed-recipients:;          (a group: its members, here none)
//	team: dan@example.com, eve;       (group members dan@example.com, eve)
//	<@relay.example:fred@example.com> (source route dropped)
//
// Display names, comments (nested, with quoted pairs) and group names are
// dropped; quoted local parts are kept as written ("john doe"@example.com).
// Bare local names ("root") are kept, to be qualified later. An address
// with a control character, blank space outside quotes, an unbalanced
// quote, bracket or parenthesis, text after <...> in the same item
// ("bad<x>@example.net"), an unquoted special character in a local part
// (j\xrg@example.net), or longer than 254 octets is an error.
func ParseAddressList(s string) ([]string, error) {
	p := &addrParser{s: s}
	return p.list()
}

type addrParser struct {
	s   string
	pos int
}

func (p *addrParser) list() ([]string, error) {
	var out []string
	var text strings.Builder // addr-spec / phrase text of the current item
	angle := ""              // contents of <...> of the current item
	hasAngle := false
	inGroup := false
	finish := func() error {
		var a string
		if hasAngle {
			a = angle
			// Source route: <@a,@b:user@c>.
			if strings.HasPrefix(a, "@") {
				if i := strings.IndexByte(a, ':'); i >= 0 {
					a = a[i+1:]
				}
			}
		} else {
			a = strings.TrimSpace(text.String())
			// "user @ example.com": blanks around '@' and '.' carry no
			// meaning (RFC 5322 obs-local-part/obs-domain CFWS).
			if !strings.Contains(a, `"`) {
				for _, sep := range []string{"@", "."} {
					a = strings.ReplaceAll(a, " "+sep, sep)
					a = strings.ReplaceAll(a, sep+" ", sep)
				}
			}
		}
		a = strings.TrimSpace(a)
		text.Reset()
		angle, hasAngle = "", false
		if a == "" {
			return nil
		}
		if err := checkAddr(a); err != nil {
			return err
		}
		out = append(out, submit.Canonical(a))
		return nil
	}
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '(':
			if err := p.comment(); err != nil {
				return nil, err
			}
			if text.Len() > 0 {
				text.WriteByte(' ') // a comment separates words
			}
		case c == '"':
			q, err := p.quoted()
			if err != nil {
				return nil, err
			}
			text.WriteString(q)
		case c == '<':
			a, err := p.angle()
			if err != nil {
				return nil, err
			}
			angle, hasAngle = a, true
			text.Reset() // the phrase before it is a display name
		case c == '>':
			return nil, errors.New("unbalanced '>'")
		case c == ')':
			return nil, errors.New("unbalanced ')'")
		case c == ',':
			p.pos++
			if err := finish(); err != nil {
				return nil, err
			}
		case c == ':' && !hasAngle && !inGroup:
			// Group: "name:" — the text so far is the group's name.
			p.pos++
			text.Reset()
			inGroup = true
		case c == ';':
			// The end of a group; outside one, a separator as ',' (lists
			// written "a@x; b@y" by Outlook-minded programs).
			p.pos++
			if err := finish(); err != nil {
				return nil, err
			}
			inGroup = false
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			p.pos++
			if text.Len() > 0 {
				text.WriteByte(' ')
			}
		default:
			p.pos++
			if hasAngle {
				// Text after <addr> in the same item ("bad<x>@example.net"):
				// Postfix's sendmail makes two recipients of it, x@myorigin
				// and ""@example.net; reading it as one address would pick
				// a mailbox the caller may not mean. Refused.
				return nil, fmt.Errorf("text %q after <%s> (write one address per item)", p.s[p.pos-1:], angle)
			}
			text.WriteByte(c)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// comment skips a (possibly nested) comment starting at p.pos.
func (p *addrParser) comment() error {
	depth := 0
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch c {
		case '\\':
			p.pos++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
	return errors.New("unterminated comment '('")
}

// quoted returns a quoted string including its quotes, at p.pos.
func (p *addrParser) quoted() (string, error) {
	start := p.pos
	p.pos++
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch c {
		case '\\':
			p.pos++
		case '"':
			if p.pos > len(p.s) {
				p.pos = len(p.s)
			}
			return p.s[start:p.pos], nil
		}
	}
	return "", errors.New("unterminated quoted string")
}

// angle returns the contents of <...> at p.pos, without blank space
// outside quotes and without comments.
func (p *addrParser) angle() (string, error) {
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch c {
		case '>':
			p.pos++
			return b.String(), nil
		case '"':
			q, err := p.quoted()
			if err != nil {
				return "", err
			}
			b.WriteString(q)
		case '(':
			if err := p.comment(); err != nil {
				return "", err
			}
		case '<':
			return "", errors.New("nested '<'")
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", errors.New("unterminated '<'")
}

// checkAddr validates one extracted address.
func checkAddr(a string) error {
	if len(a) > maxAddressLen {
		return fmt.Errorf("address %.40q... longer than %d octets", a, maxAddressLen)
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c < 0x20 || c == 0x7f {
			// Quoted or escaped, a control character is still one.
			return fmt.Errorf("address %q contains a control character", a)
		}
	}
	quoted := false
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			return fmt.Errorf("address %q contains blank space", a)
		case c == ':' && !quoted, c == ';' && !quoted:
			return fmt.Errorf("address %q contains %q", a, c)
		}
	}
	if strings.HasPrefix(a, "@") || strings.HasSuffix(a, "@") {
		return fmt.Errorf("address %q has an empty local part or domain", a)
	}
	if err := submit.CheckWrittenLocal(a); err != nil {
		return fmt.Errorf("address %q: %w", a, err)
	}
	return nil
}
