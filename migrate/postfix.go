package migrate

import (
	"cmp"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// postfixParam is one main.cf parameter.
type postfixParam struct {
	v  string
	at Source
}

// postfixRead reads main.cf's logical lines (a line that starts with white
// space continues the one before).
func postfixRead(f File) (map[string]postfixParam, error) {
	ps := map[string]postfixParam{}
	var last string
	err := lines(f.Path, f.Data, func(n int, line string) error {
		at := Source{f.Path, n}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return syntax(at, "a continuation line with no parameter above it")
			}
			p := ps[last]
			p.v = strings.TrimSpace(p.v + " " + strings.TrimSpace(line))
			ps[last] = p
			return nil
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return syntax(at, "want 'name = value'")
		}
		ps[k] = postfixParam{strings.TrimSpace(v), at}
		last = k
		return nil
	})
	return ps, err
}

// postfixVar matches $name and ${name}; compiled on first use (relayq's
// other commands do not pay for it).
var postfixVar = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{?([a-z0-9_]+)\}?`) })

// expand replaces $name and ${name} with the parameter's value (to a
// depth of 5); a name main.cf does not set is left as written.
func expand(ps map[string]postfixParam, v string) string {
	for range 5 {
		if !strings.Contains(v, "$") {
			break
		}
		re := postfixVar()
		v = re.ReplaceAllStringFunc(v, func(m string) string {
			name := re.FindStringSubmatch(m)[1]
			if p, ok := ps[name]; ok {
				return p.v
			}
			return m
		})
	}
	return v
}

// postfixNoise are main.cf parameters that mean nothing to a null client's
// replacement (local delivery, the SMTP server side, Debian's defaults):
// listed in one note, not one each.
var postfixNoise = map[string]bool{
	"biff": true, "append_dot_mydomain": true, "readme_directory": true, "compatibility_level": true,
	"smtpd_banner": true, "smtpd_tls_cert_file": true, "smtpd_tls_key_file": true, "smtpd_tls_security_level": true,
	"smtpd_use_tls": true, "smtpd_tls_session_cache_database": true, "smtp_tls_session_cache_database": true,
	"smtpd_relay_restrictions": true, "smtpd_recipient_restrictions": true, "alias_maps": true, "alias_database": true,
	"mydestination": true, "mailbox_size_limit": true, "recipient_delimiter": true, "inet_protocols": true,
	"local_transport": true, "local_recipient_maps": true, "relay_domains": true, "smtp_tls_loglevel": true,
	"smtp_sasl_security_options": true, "smtp_sasl_tls_security_options": true, "smtp_tls_note_starttls_offer": true,
	"mydomain": true, "home_mailbox": true, "mailbox_command": true, "smtpd_tls_loglevel": true, "debug_peer_level": true,
	"html_directory": true, "manpage_directory": true, "sample_directory": true, "queue_directory": true,
	"command_directory": true, "daemon_directory": true, "data_directory": true, "mail_owner": true, "setgid_group": true,
	"smtp_tls_mandatory_protocols": true, "smtp_tls_protocols": true, "smtp_tls_CApath": true, "maillog_file": true,
	"smtpd_sasl_auth_enable": true, "smtpd_tls_auth_only": true,
}

// postfix reads main.cf and the map sources it names.
func (x *reader) postfix(fs []File) error {
	ps := map[string]postfixParam{}
	for _, f := range fs {
		p, err := postfixRead(f)
		if err != nil {
			return err
		}
		for k, v := range p {
			ps[k] = v
		}
	}
	get := func(k string) (string, Source, bool) {
		p, ok := ps[k]
		return expand(ps, p.v), p.at, ok
	}
	used := map[string]bool{}
	use := func(k string) (string, Source, bool) { used[k] = true; return get(k) }

	relay, relayAt, ok := use("relayhost")
	if !ok || relay == "" {
		return syntax(Source{fs[0].Path, 0}, "no relayhost: this Postfix delivers directly, not through a smarthost (relayq needs one)")
	}
	x.set("RELAYQ_RELAYHOST", relay, relayAt, "relayhost")
	for _, h := range strings.FieldsFunc(relay, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !strings.HasPrefix(h, "[") {
			x.note(Differs, relayAt, "relayhost %s without brackets: Postfix looked up its MX records; relayq connects to %s itself", h, strings.Split(h, ":")[0])
		}
	}
	if v, at, ok := use("smtp_tls_wrappermode"); ok && v == "yes" {
		x.set("RELAYQ_TLS_IMPLICIT", "yes", at, "smtp_tls_wrappermode = yes")
	}
	level, levelAt, hasLevel := use("smtp_tls_security_level")
	if !hasLevel {
		if v, at, ok := use("smtp_enforce_tls"); ok && v == "yes" {
			level, levelAt = "encrypt", at
		} else if v, at, ok := use("smtp_use_tls"); ok && v == "yes" {
			level, levelAt = "may", at
		}
	}
	auth, authAt, _ := use("smtp_sasl_auth_enable")
	authOn := auth == "yes"
	switch level {
	case "", "none":
		if authOn {
			x.note(Differs, levelAt, "smtp_tls_security_level = %s: relayq never sends credentials unencrypted: it uses STARTTLS and verifies the certificate (RELAYQ_TLS=verify)", cmp.Or(level, "none (the default)"))
		} else {
			x.set("RELAYQ_TLS", "none", levelAt, "smtp_tls_security_level = "+cmp.Or(level, "none (default)"))
		}
	case "may", "encrypt":
		x.note(Differs, levelAt, "smtp_tls_security_level = %s: Postfix did not verify the relay's certificate; relayq does (RELAYQ_TLS=verify; RELAYQ_TLS=encrypt is Postfix's encrypt)", level)
	case "verify", "secure":
	case "dane", "dane-only":
		x.note(Differs, levelAt, "smtp_tls_security_level = %s: relayq verifies against the CA roots, not DANE TLSA records", level)
	case "fingerprint":
		x.note(Todo, levelAt, "smtp_tls_security_level = fingerprint: set RELAYQ_TLS_PINS to the relay's key pin (sha256//…, relayq probe prints it)")
	default:
		x.note(Unmapped, levelAt, "smtp_tls_security_level = %s is not a level relayq knows; it verifies", level)
	}
	if v, at, ok := use("smtp_tls_CAfile"); ok && v != "" {
		x.set("RELAYQ_TLS_CA_FILE", v, at, "smtp_tls_CAfile")
	}
	if v, at, ok := use("smtp_tls_cert_file"); ok && v != "" {
		x.set("RELAYQ_TLS_CERT_FILE", v, at, "smtp_tls_cert_file")
	}
	if v, at, ok := use("smtp_tls_key_file"); ok && v != "" {
		x.set("RELAYQ_TLS_KEY_FILE", v, at, "smtp_tls_key_file")
	}
	if v, at, ok := use("smtp_helo_name"); ok && v != "" {
		x.set("RELAYQ_HELO_NAME", v, at, "smtp_helo_name")
	} else if v, at, ok := use("myhostname"); ok && v != "" && !strings.Contains(v, "$") {
		x.set("RELAYQ_HELO_NAME", v, at, "myhostname (Postfix's HELO name)")
	}
	if v, at, ok := use("myorigin"); ok && v != "" {
		if strings.HasPrefix(v, "/") {
			b, path, err := x.open(v)
			if err != nil {
				x.note(Todo, at, "myorigin = %s: cannot read %s (%v): set RELAYQ_DOMAIN to the domain of local senders", v, path, err)
			} else if d := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]); d != "" {
				x.set("RELAYQ_DOMAIN", d, at, "myorigin = "+v)
			}
		} else if !strings.Contains(v, "$") {
			x.set("RELAYQ_DOMAIN", v, at, "myorigin")
		} else {
			x.note(Todo, at, "myorigin = %s: set RELAYQ_DOMAIN to the domain of local senders (the default is this host's name)", ps["myorigin"].v)
		}
	}
	if v, at, ok := use("smtp_sasl_mechanism_filter"); ok && v != "" {
		var ms []string
		for _, m := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			if s := saslMech(m); s != "" {
				ms = append(ms, s)
			}
		}
		if len(ms) > 0 {
			x.set("RELAYQ_SASL_MECHANISMS", strings.Join(ms, ","), at, "smtp_sasl_mechanism_filter")
		} else {
			x.note(Unmapped, at, "smtp_sasl_mechanism_filter = %s names no mechanism relayq has", v)
		}
	}
	if v, at, ok := use("smtp_discard_ehlo_keywords"); ok && v != "" {
		var ks []string
		for _, k := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			// silent-discard is Postfix's switch for not logging the
			// discard; relayq logs nothing per keyword. The keywords'
			// syntax is checked when the result is read back (config).
			if !strings.EqualFold(k, "silent-discard") {
				ks = append(ks, strings.ToLower(k))
			}
		}
		if len(ks) > 0 {
			x.set("RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS", strings.Join(ks, ","), at, "smtp_discard_ehlo_keywords")
		}
	}
	if v, at, ok := use("smtp_sasl_password_maps"); ok && v != "" {
		if !authOn {
			x.note(Differs, authAt, "smtp_sasl_auth_enable is not yes: Postfix did not use the password maps; relayq uses the credentials written (RELAYQ_AUTH=none and an empty credentials file to send without AUTH)")
		}
		err := x.postfixMaps(v, at, func(key, val string, from Source) error {
			user, pw, ok := strings.Cut(val, ":")
			if !ok || user == "" || pw == "" {
				return syntax(from, "want KEY USER:PASSWORD")
			}
			x.r.Credentials = append(x.r.Credentials, Credential{Key: key, User: user, Password: pw, From: from})
			return nil
		})
		if err != nil {
			return err
		}
	} else if !authOn {
		x.set("RELAYQ_AUTH", "none", authAt, "no SASL (the relay trusts this host)")
	}
	if v, at, ok := use("sender_dependent_relayhost_maps"); ok && v != "" {
		if err := x.postfixMaps(v, at, func(key, val string, from Source) error {
			x.r.RelayMap = append(x.r.RelayMap, MapLine{key, val, from})
			return nil
		}); err != nil {
			return err
		}
	}
	if v, at, ok := use("smtp_generic_maps"); ok && v != "" {
		if err := x.postfixMaps(v, at, func(key, val string, from Source) error {
			x.r.Generic = append(x.r.Generic, MapLine{key, val, from})
			return nil
		}); err != nil {
			return err
		}
	}
	if v, at, ok := use("smtp_sender_dependent_authentication"); ok && v == "yes" {
		x.note(Differs, at, "smtp_sender_dependent_authentication: relayq looks credentials up by sender whenever the credentials file has sender keys")
	}
	if v, at, ok := use("inet_interfaces"); ok && v != "loopback-only" && v != "localhost" && v != "127.0.0.1" {
		x.note(Differs, at, "inet_interfaces = %s: relayq's SMTP listener is off unless RELAYQ_LISTEN is set (loopback only unless told otherwise)", v)
	}
	if v, at, ok := use("mynetworks"); ok && v != "" {
		x.note(Differs, at, "mynetworks: relayq's SMTP listener is off; with RELAYQ_LISTEN set, RELAYQ_MYNETWORKS names the clients that may relay without AUTH (none by default)")
	}
	if v, at, ok := use("message_size_limit"); ok {
		x.note(Differs, at, "message_size_limit = %s: relayq's one size limit is RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT (default 10240000), on every door", v)
	}
	var noise, other []string
	for k := range ps {
		switch {
		case used[k]:
		case postfixNoise[k]:
			noise = append(noise, k)
		default:
			other = append(other, k)
		}
	}
	sort.Strings(noise)
	sort.Strings(other)
	for _, k := range other {
		x.note(Unmapped, ps[k].at, "%s: no relayq equivalent", k)
	}
	if len(noise) > 0 {
		x.note(Unmapped, Source{fs[0].Path, 0}, "no meaning for relayq (local delivery, the SMTP server, defaults): %s", strings.Join(noise, ", "))
	}
	return nil
}

// postfixMaps reads each map source a parameter names (type:path, comma
// or space separated): the text source, even when the type is a database
// (hash:/etc/postfix/sasl_passwd reads /etc/postfix/sasl_passwd).
func (x *reader) postfixMaps(v string, at Source, fn func(key, val string, from Source) error) error {
	for _, m := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		typ, path, ok := strings.Cut(m, ":")
		if !ok {
			return syntax(at, "map %q: want type:path", m)
		}
		switch typ {
		case "hash", "btree", "lmdb", "cdb", "dbm", "texthash":
		default:
			x.note(Unmapped, at, "map %s: relayq reads only file maps (hash:, lmdb:, texthash: …); copy its entries by hand", m)
			continue
		}
		b, name, err := x.open(path)
		if err != nil {
			x.note(Todo, at, "map %s: cannot read %s (%v): give it to relayq import beside main.cf", m, path, err)
			continue
		}
		err = lines(name, b, func(n int, line string) error {
			from := Source{name, n}
			if line[0] == ' ' || line[0] == '\t' {
				return syntax(from, "continuation lines are not supported by relayq import; join the line")
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				return syntax(from, "want KEY VALUE")
			}
			return fn(f[0], strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), f[0])), from)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
