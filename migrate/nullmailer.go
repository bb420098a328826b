package migrate

import (
	"path/filepath"
	"strings"
)

// nullmailer reads nullmailer's control files, known by their names:
// remotes (one relay per line, tried in order), adminaddr, defaultdomain,
// defaulthost and me.
func (x *reader) nullmailer(fs []File) error {
	one := map[string]Setting{} // single-value files: first line
	var remotes []File
	for _, f := range fs {
		base := filepath.Base(f.Path)
		if base == "remotes" {
			remotes = append(remotes, f)
			continue
		}
		err := lines(f.Path, f.Data, func(n int, line string) error {
			if _, seen := one[base]; !seen {
				one[base] = Setting{Value: strings.TrimSpace(line), From: Source{f.Path, n}}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	var relays []string
	for _, f := range remotes {
		err := lines(f.Path, f.Data, func(n int, line string) error {
			r, err := x.nullmailerRemote(line, Source{f.Path, n}, len(relays) == 0)
			if r != "" {
				relays = append(relays, r)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if len(relays) > 0 {
		from := Source{remotes[0].Path, 0}
		why := "remotes"
		if len(relays) > 1 {
			why = "remotes (tried in order, as nullmailer does)"
		}
		x.set("RELAYQ_RELAYHOST", strings.Join(relays, ", "), from, why)
	}
	domain := ""
	if d, ok := one["defaulthost"]; ok && d.Value != "" {
		domain = d.Value
		x.set("RELAYQ_DOMAIN", domain, d.From, "defaulthost (the domain of bare addresses)")
	} else if m, ok := one["me"]; ok && m.Value != "" {
		domain = m.Value
		x.set("RELAYQ_DOMAIN", domain, m.From, "me (nullmailer's default for defaulthost)")
	}
	if dd, ok := one["defaultdomain"]; ok && dd.Value != "" {
		switch {
		case domain == "":
			x.set("RELAYQ_DOMAIN", dd.Value, dd.From, "defaultdomain")
		case !strings.Contains(domain, "."):
			x.set("RELAYQ_DOMAIN", domain+"."+dd.Value, dd.From, "defaulthost or me, with defaultdomain appended (no '.' in it)")
		}
	}
	if m, ok := one["me"]; ok && m.Value != "" {
		helo, why := m.Value, "me (the host's name, also nullmailer's HELO)"
		if dd := one["defaultdomain"].Value; !strings.Contains(helo, ".") && dd != "" {
			helo, why = helo+"."+dd, "me with defaultdomain appended (the host's name, also nullmailer's HELO)"
		}
		x.set("RELAYQ_HELO_NAME", helo, m.From, why)
	}
	if a, ok := one["adminaddr"]; ok && a.Value != "" {
		x.note(Todo, a.From, "adminaddr %s: nullmailer sent all mail for local users there; relayq reads /etc/aliases: add 'root: %s' (and an entry for each local user whose mail should reach it)", a.Value, a.Value)
	}
	return nil
}

// nullmailerRemote maps one remotes line: host, protocol, --options.
func (x *reader) nullmailerRemote(line string, at Source, first bool) (string, error) {
	f := strings.Fields(line)
	host := f[0]
	opts := map[string]string{}
	proto := "smtp"
	for i, w := range f[1:] {
		if i == 0 && !strings.HasPrefix(w, "-") && !strings.Contains(w, "=") {
			proto = strings.ToLower(w)
			continue
		}
		k, v, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
		opts[strings.ToLower(k)] = v
	}
	if proto != "smtp" {
		x.note(Unmapped, at, "%s uses %s: relayq speaks SMTP only; this relay is left out", host, proto)
		return "", nil
	}
	_, implicit := opts["ssl"]
	_, starttls := opts["starttls"]
	port := opts["port"]
	if port == "" {
		port = "25"
		if implicit {
			port = "465"
		}
	}
	relay := relayHost(host, port)
	if implicit {
		x.implicitTLS(port, at, "--ssl (TLS from the first byte)")
		if !first && port != "465" {
			x.note(Differs, at, "RELAYQ_TLS_IMPLICIT applies to every relay host")
		}
	}
	if _, ok := opts["insecure"]; ok {
		x.note(Differs, at, "--insecure: relayq verifies the relay's certificate (RELAYQ_TLS=verify); RELAYQ_TLS_CA_FILE names a private CA")
	} else if (implicit || starttls) && first {
		if ca := opts["x509cafile"]; ca != "" {
			x.set("RELAYQ_TLS_CA_FILE", ca, at, "--x509cafile")
		}
	}
	if c := opts["x509certfile"]; c != "" {
		x.set("RELAYQ_TLS_CERT_FILE", c, at, "--x509certfile (client certificate; nullmailer's file holds the key too)")
		x.set("RELAYQ_TLS_KEY_FILE", c, at, "--x509certfile")
	}
	user, pass := opts["user"], opts["pass"]
	switch {
	case user != "" && pass != "":
		x.r.Credentials = append(x.r.Credentials, Credential{Key: relay, User: user, Password: pass, From: at})
		if !implicit && !starttls {
			x.note(Differs, at, "%s: no --starttls or --ssl: nullmailer sent the password in clear; relayq never does: it uses STARTTLS and verifies the certificate", host)
		}
		if _, ok := opts["auth-login"]; ok {
			x.set("RELAYQ_SASL_MECHANISMS", "LOGIN", at, "--auth-login")
		}
	case user != "":
		x.note(Todo, at, "%s: --user without --pass: add '%s %s:PASSWORD' to the credentials file", host, relay, user)
	default:
		if first {
			x.set("RELAYQ_AUTH", "none", at, "no --user (the relay trusts this host)")
			if !implicit && !starttls {
				x.set("RELAYQ_TLS", "none", at, "no --starttls or --ssl (nullmailer sent in clear)")
			}
		}
	}
	for _, k := range []string{"source", "x509crlfile", "x509fmtder"} {
		if _, ok := opts[k]; ok {
			x.note(Unmapped, at, "--%s has no equivalent in relayq", k)
		}
	}
	return relay, nil
}
