package migrate

import (
	"errors"
	"sort"
	"strings"
)

// m4Call is one macro call of a .mc file: name and arguments, quotes
// (`…') removed.
type m4Call struct {
	name string
	args []string
	at   Source
}

// errUnclosed: a call goes on on the next line.
var errUnclosed = syntaxText("a macro call is not closed")

// stripDnl removes "dnl" and what follows it on a line (m4's comment).
func stripDnl(line string) string {
	for i := 0; ; {
		j := strings.Index(line[i:], "dnl")
		if j < 0 {
			return line
		}
		j += i
		if j == 0 || !isIdent(line[j-1]) {
			return line[:j]
		}
		i = j + 3
	}
}

// m4Calls finds the macro calls in text (dnl comments already removed):
// NAME(arg, `quoted arg', …). errUnclosed when a call is not closed.
func m4Calls(line string, at Source) ([]m4Call, error) {
	var calls []m4Call
	for i := 0; i < len(line); {
		if !isIdent(line[i]) || (i > 0 && isIdent(line[i-1])) {
			i++
			continue
		}
		j := i
		for j < len(line) && isIdent(line[j]) {
			j++
		}
		if j >= len(line) || line[j] != '(' {
			i = j
			continue
		}
		c := m4Call{name: line[i:j], at: at}
		k, depth, quote := j+1, 0, 0
		var arg strings.Builder
		closed := false
		for ; k < len(line) && !closed; k++ {
			ch := line[k]
			switch {
			case ch == '`':
				if quote > 0 {
					arg.WriteByte(ch)
				}
				quote++
			case ch == '\'' && quote > 0:
				quote--
				if quote > 0 {
					arg.WriteByte(ch)
				}
			case quote > 0:
				arg.WriteByte(ch)
			case ch == '(':
				depth++
				arg.WriteByte(ch)
			case ch == ')' && depth > 0:
				depth--
				arg.WriteByte(ch)
			case ch == ')':
				c.args = append(c.args, strings.TrimSpace(arg.String()))
				closed = true
			case ch == ',' && depth == 0:
				c.args = append(c.args, strings.TrimSpace(arg.String()))
				arg.Reset()
			default:
				arg.WriteByte(ch)
			}
		}
		if !closed {
			return nil, errUnclosed
		}
		calls = append(calls, c)
		i = k
	}
	return calls, nil
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// sendmailNoise are .mc macros and definitions with no meaning for relayq.
var sendmailNoise = map[string]bool{
	"divert": true, "VERSIONID": true, "OSTYPE": true, "DOMAIN": true, "MAILER": true, "include": true,
	"undefine": true, "DAEMON_OPTIONS": true, "CLIENT_OPTIONS": true, "LOCAL_CONFIG": true, "MAILER_DEFINITIONS": true,
	"TRUST_AUTH_MECH": true, "LOCAL_DOMAIN": true, "INPUT_MAIL_FILTER": true, "EXPOSED_USER": true,
}

// sendmail reads a sendmail.mc and the authinfo source its
// FEATURE(authinfo) names.
func (x *reader) sendmail(fs []File) error {
	var calls []m4Call
	for _, f := range fs {
		var pending string
		var pendingAt Source
		err := lines(f.Path, f.Data, func(n int, line string) error {
			if pending == "" {
				pendingAt = Source{f.Path, n}
			}
			pending += stripDnl(line)
			cs, err := m4Calls(pending, pendingAt)
			if errors.Is(err, errUnclosed) {
				if n-pendingAt.Line > 50 {
					return syntax(pendingAt, "a macro call (or a `…' quote) is not closed within 50 lines")
				}
				return nil
			}
			pending = ""
			calls = append(calls, cs...)
			return err
		})
		if err == nil && pending != "" {
			err = syntax(pendingAt, "a macro call (or a `…' quote) is not closed at the end of the file")
		}
		if err != nil {
			return err
		}
	}
	defs := map[string]m4Call{}
	var smart *m4Call
	var other []string
	for i, c := range calls {
		switch c.name {
		case "define":
			if len(c.args) < 1 {
				return syntax(c.at, "define() without a name")
			}
			defs[c.args[0]] = c
			if c.args[0] == "SMART_HOST" {
				smart = &calls[i]
			}
		case "FEATURE":
			if len(c.args) == 0 {
				return syntax(c.at, "FEATURE() without a name")
			}
			switch c.args[0] {
			case "authinfo":
				path := "/etc/mail/authinfo"
				if len(c.args) > 1 {
					f := strings.Fields(c.args[1])
					path = strings.TrimSuffix(f[len(f)-1], ".db")
				}
				if err := x.authinfo(path, c.at); err != nil {
					return err
				}
			case "masquerade_envelope", "allmasquerade", "masquerade_entire_domain":
				x.note(Differs, c.at, "FEATURE(%s): relayq qualifies bare senders with RELAYQ_DOMAIN; to rewrite user@host addresses too, add generic map lines ('@host @domain', RELAYQ_GENERIC_MAP)", c.args[0])
			default:
				other = append(other, "FEATURE("+c.args[0]+")")
			}
		case "MASQUERADE_AS":
			if len(c.args) > 0 && c.args[0] != "" {
				x.set("RELAYQ_DOMAIN", c.args[0], c.at, "MASQUERADE_AS")
			}
		default:
			if !sendmailNoise[c.name] {
				other = append(other, c.name)
			}
		}
	}
	if smart == nil || len(smart.args) < 2 || smart.args[1] == "" {
		return syntax(Source{fs[0].Path, 0}, "no define(`SMART_HOST', …): this sendmail delivers directly, not through a smarthost (relayq needs one)")
	}
	host := smart.args[1]
	if _, h, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h // mailer:host (smtp:, esmtp:, relay:)
	}
	port := ""
	if i := strings.LastIndex(host, "]:"); i >= 0 {
		host, port = host[:i+1], host[i+2:]
	}
	why := "SMART_HOST " + smart.args[1]
	for _, k := range []string{"RELAY_MAILER_ARGS", "ESMTP_MAILER_ARGS", "SMTP_MAILER_ARGS"} {
		if d, ok := defs[k]; ok && len(d.args) > 1 {
			f := strings.Fields(d.args[1])
			if len(f) == 3 && f[0] == "TCP" && f[1] == "$h" && port == "" {
				port = f[2]
				why += ", " + k + " " + d.args[1]
			}
		}
	}
	if !strings.HasPrefix(host, "[") {
		x.note(Differs, smart.at, "SMART_HOST %s without brackets: sendmail looked up its MX records; relayq connects to it itself", host)
	}
	x.set("RELAYQ_RELAYHOST", relayHost(host, port), smart.at, why)
	if port == "465" {
		x.note(Differs, smart.at, "port 465: relayq speaks TLS from the first byte there (sendmail needed a stunnel or a mailer with TLS wrapping)")
	}
	x.note(Differs, smart.at, "sendmail used STARTTLS when offered and did not insist on a valid certificate; relayq requires TLS with a verified certificate (RELAYQ_TLS=verify)")
	if len(x.r.Credentials) == 0 {
		x.set("RELAYQ_AUTH", "none", smart.at, "no FEATURE(authinfo) (the relay trusts this host)")
	}
	if d, ok := defs["confCACERT"]; ok && len(d.args) > 1 && d.args[1] != "" && !strings.HasPrefix(d.args[1], "/etc/ssl/certs/ca-certificates") {
		x.set("RELAYQ_TLS_CA_FILE", d.args[1], d.at, "confCACERT")
	}
	if d, ok := defs["confDOMAIN_NAME"]; ok && len(d.args) > 1 && d.args[1] != "" {
		x.set("RELAYQ_HELO_NAME", d.args[1], d.at, "confDOMAIN_NAME ($j, the HELO name)")
	}
	for name, d := range defs {
		switch name {
		case "SMART_HOST", "RELAY_MAILER_ARGS", "ESMTP_MAILER_ARGS", "SMTP_MAILER_ARGS", "confCACERT", "confDOMAIN_NAME":
		case "confAUTH_MECHANISMS":
			x.note(Unmapped, d.at, "confAUTH_MECHANISMS is what sendmail's own server offers; relayq picks the client mechanism from what the relay offers (RELAYQ_SASL_MECHANISMS limits it)")
		default:
			other = append(other, name)
		}
	}
	if len(other) > 0 {
		x.note(Unmapped, Source{fs[0].Path, 0}, "no relayq equivalent: %s", strings.Join(uniqSorted(other), ", "))
	}
	return nil
}

// authinfo copies the entries of sendmail's authinfo source (relayq reads
// that syntax as is).
func (x *reader) authinfo(path string, at Source) error {
	b, name, err := x.open(path)
	if err != nil {
		x.note(Todo, at, "FEATURE(authinfo): cannot read %s (%v): give it to relayq import beside the .mc file", path, err)
		return nil
	}
	return lines(name, b, func(n int, line string) error {
		from := Source{name, n}
		if !strings.HasPrefix(strings.TrimSpace(line), "AuthInfo:") {
			return syntax(from, "want an AuthInfo: entry")
		}
		x.r.Credentials = append(x.r.Credentials, Credential{Raw: strings.TrimSpace(line), From: from})
		return nil
	})
}

func uniqSorted(s []string) []string {
	m := map[string]bool{}
	var out []string
	for _, v := range s {
		if !m[v] {
			m[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
