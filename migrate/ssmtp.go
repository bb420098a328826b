package migrate

import (
	"net"
	"path/filepath"
	"strings"
)

// ssmtp reads ssmtp.conf (Key=Value, keys case-insensitive) and, when
// given, revaliases (local:address[:mailhub[:port]]).
func (x *reader) ssmtp(fs []File) error {
	type kv struct {
		v  string
		at Source
	}
	conf := map[string]kv{}
	var revaliases []File
	for _, f := range fs {
		if filepath.Base(f.Path) == "revaliases" {
			revaliases = append(revaliases, f)
			continue
		}
		err := lines(f.Path, f.Data, func(n int, line string) error {
			at := Source{f.Path, n}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return syntax(at, "want Key=Value")
			}
			k = strings.ToLower(strings.TrimSpace(k))
			if k == "" {
				return syntax(at, "no key before '='")
			}
			conf[k] = kv{strings.TrimSpace(v), at}
			return nil
		})
		if err != nil {
			return err
		}
	}
	yes := func(k string) bool { return strings.EqualFold(conf[k].v, "yes") }
	hub, ok := conf["mailhub"]
	if !ok || hub.v == "" {
		if len(revaliases) == 0 || len(conf) > 0 {
			return syntax(Source{fs[0].Path, 0}, "no mailhub")
		}
	}
	relay := ""
	if ok && hub.v != "" {
		host, port := ssmtpHub(hub.v)
		useTLS, startTLS := yes("usetls"), yes("usestarttls")
		if port == "" {
			port = "25"
			if useTLS && !startTLS {
				port = "465"
			}
		}
		relay = relayHost(host, port)
		x.set("RELAYQ_RELAYHOST", relay, hub.at, "mailhub="+hub.v)
		user, hasUser := conf["authuser"]
		switch {
		case useTLS && !startTLS:
			x.implicitTLS(port, conf["usetls"].at, "UseTLS=YES without UseSTARTTLS (TLS from the first byte)")
		case !useTLS && startTLS && hasUser:
			// sSMTP's smtp_open does STARTTLS only inside if (use_tls).
			x.note(Differs, conf["usestarttls"].at, "UseSTARTTLS=YES without UseTLS=YES: sSMTP does STARTTLS only with UseTLS=YES, so it sent the password in clear; relayq never does: it uses STARTTLS and verifies the certificate (RELAYQ_TLS=verify)")
		case !useTLS && hasUser:
			x.note(Differs, hub.at, "no UseTLS: sSMTP sent the password in clear; relayq never does: it uses STARTTLS and verifies the certificate (RELAYQ_TLS=verify)")
		case !useTLS:
			x.set("RELAYQ_TLS", "none", hub.at, "no UseTLS (sSMTP sent in clear)")
		}
		if useTLS || startTLS {
			if ca, ok := conf["tls_ca_file"]; ok && ca.v != "" {
				x.set("RELAYQ_TLS_CA_FILE", ca.v, ca.at, "TLS_CA_File")
			} else {
				x.note(Differs, hub.at, "sSMTP did not verify the relay's certificate (no TLS_CA_File); relayq does, against the system roots (RELAYQ_TLS_CA_FILE for a private CA)")
			}
		}
		if c, ok := conf["tlscert"]; ok && c.v != "" {
			x.set("RELAYQ_TLS_CERT_FILE", c.v, c.at, "TLSCert (client certificate)")
			if k, ok := conf["tlskey"]; ok && k.v != "" {
				x.set("RELAYQ_TLS_KEY_FILE", k.v, k.at, "TLSKey")
			}
		}
		if hasUser && user.v != "" {
			pw, hasPw := conf["authpass"]
			if !hasPw || pw.v == "" {
				x.note(Todo, user.at, "AuthUser without AuthPass: add '%s %s:PASSWORD' to the credentials file", relay, user.v)
			} else {
				x.r.Credentials = append(x.r.Credentials, Credential{Key: relay, User: user.v, Password: pw.v, From: pw.at})
			}
			if m, ok := conf["authmethod"]; ok {
				if mech := saslMech(m.v); mech != "" {
					x.set("RELAYQ_SASL_MECHANISMS", mech, m.at, "AuthMethod="+m.v)
				}
			}
		} else {
			x.set("RELAYQ_AUTH", "none", hub.at, "no AuthUser (the relay trusts this host)")
		}
	}
	if d, ok := conf["rewritedomain"]; ok && d.v != "" {
		x.set("RELAYQ_DOMAIN", d.v, d.at, "rewriteDomain (the domain of local senders)")
	}
	if h, ok := conf["hostname"]; ok && h.v != "" {
		x.set("RELAYQ_HELO_NAME", h.v, h.at, "hostname")
		if _, ok := conf["rewritedomain"]; !ok {
			x.set("RELAYQ_DOMAIN", h.v, h.at, "hostname (sSMTP's sender domain without rewriteDomain)")
		}
	}
	if r, ok := conf["root"]; ok && r.v != "" {
		x.note(Todo, r.at, "root=%s: sSMTP sent mail for system users there; relayq reads /etc/aliases: add 'root: %s' (and run newaliases, which checks it)", r.v, r.v)
	}
	if f, ok := conf["fromlineoverride"]; ok {
		if strings.EqualFold(f.v, "yes") {
			x.note(Differs, f.at, "FromLineOverride=YES: relayq keeps the message's From as well (it adds one only when missing)")
		} else {
			x.note(Differs, f.at, "FromLineOverride=NO: sSMTP replaced the From header; relayq keeps it and adds one only when missing (RELAYQ_SENDER_REWRITE forces one address)")
		}
	}
	for k, why := range map[string]string{"tls_ca_dir": "relayq takes one CA file (RELAYQ_TLS_CA_FILE)", "debug": "relayq logs with RELAYQ_LOG_LEVEL=debug"} {
		if v, ok := conf[k]; ok {
			x.note(Unmapped, v.at, "%s: %s", k, why)
		}
	}
	for _, f := range revaliases {
		if err := x.revaliases(f, relay); err != nil {
			return err
		}
	}
	return nil
}

// ssmtpHub splits a mailhub (host, host:port, [ip]:port).
func ssmtpHub(s string) (host, port string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p
	}
	return strings.Trim(s, "[]"), ""
}

// revaliases maps sSMTP's per-user sender addresses: a generic map line
// for the user, and a sender relay map line when the user has a mailhub
// of its own.
func (x *reader) revaliases(f File, relay string) error {
	return lines(f.Path, f.Data, func(n int, line string) error {
		at := Source{f.Path, n}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) < 2 || strings.TrimSpace(parts[0]) == "" || strings.TrimSpace(parts[1]) == "" {
			return syntax(at, "want local_account:outgoing_address[:mailhub[:port]]")
		}
		local, addr := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		if !strings.Contains(addr, "@") {
			return syntax(at, "the outgoing address %q has no '@'", addr)
		}
		x.r.Generic = append(x.r.Generic, MapLine{local, addr, at})
		if len(parts) == 3 && strings.TrimSpace(parts[2]) != "" {
			h, p := ssmtpHub(strings.TrimSpace(parts[2]))
			if r := relayHost(h, p); r != relay {
				x.r.RelayMap = append(x.r.RelayMap, MapLine{addr, r, at})
				x.note(Todo, at, "%s sends through %s: add its credential ('%s USER:PASSWORD') to the credentials file; sSMTP used the global AuthUser there too", addr, r, addr)
			}
		}
		return nil
	})
}
