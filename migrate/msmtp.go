package migrate

import (
	"strings"
)

// msmtpAccount is one account of an msmtprc with every command that set
// it (defaults and inherited accounts folded in).
type msmtpAccount struct {
	name string
	from Source // the account line
	cmds map[string]msmtpValue
}

type msmtpValue struct {
	v    string
	from Source
}

func (a *msmtpAccount) get(k string) (string, Source, bool) {
	v, ok := a.cmds[k]
	return v.v, v.from, ok
}

// msmtpWords splits an msmtprc line into its command and argument: the
// argument may be in double quotes, with backslash escapes inside.
func msmtpWords(line string) (cmd, arg string, err error) {
	line = strings.TrimSpace(line)
	var rest string
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		cmd, rest = line[:i], strings.TrimSpace(line[i:])
	} else {
		cmd, rest = line, ""
	}
	if !strings.HasPrefix(rest, `"`) {
		return cmd, rest, nil
	}
	var b strings.Builder
	for i := 1; i < len(rest); i++ {
		switch c := rest[i]; c {
		case '\\':
			if i+1 >= len(rest) {
				return "", "", errUnterminated
			}
			i++
			b.WriteByte(rest[i])
		case '"':
			if strings.TrimSpace(rest[i+1:]) != "" {
				return "", "", errAfterQuote
			}
			return cmd, b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errUnterminated
}

var (
	errUnterminated = syntaxText("unterminated double quote")
	errAfterQuote   = syntaxText("text after the closing double quote")
)

type syntaxText string

func (s syntaxText) Error() string { return string(s) }

// msmtpKnown are the commands relayq import understands or explains; any
// other is reported as not mapped.
var msmtpUnmapped = map[string]string{
	"syslog":                  "relayq logs to syslog (or RELAYQ_LOG_FILE) by itself",
	"timeout":                 "relayq has one timeout per SMTP stage (RELAYQ_SMTP_*_TIMEOUT, Postfix's defaults)",
	"dsn_notify":              "relayq passes the caller's -N on; there is no default NOTIFY",
	"dsn_return":              "relayq passes the caller's -R on; there is no default RET",
	"tls_fingerprint":         "relayq pins with RELAYQ_TLS_PINS (sha256// of the key, as curl); set it by hand if you relied on the fingerprint",
	"tls_crl_file":            "relayq has no CRL option",
	"tls_priorities":          "relayq uses Go's TLS defaults (RELAYQ_TLS_MIN_VERSION sets the floor)",
	"tls_min_dh_prime_bits":   "Go's TLS has no finite-field DH",
	"tls_host_override":       "relayq verifies the host name of the relay host as written",
	"proxy_host":              "relayq connects directly",
	"proxy_port":              "relayq connects directly",
	"source_ip":               "relayq lets the kernel choose the source address",
	"protocol":                "relayq speaks SMTP to the relay",
	"set_from_header":         "relayq adds From when it is missing and never replaces it (unless RELAYQ_SENDER_REWRITE)",
	"add_missing_from_header": "relayq always adds a missing From",
	"add_missing_date_header": "relayq always adds a missing Date",
	"remove_bcc_headers":      "relayq always removes Bcc",
	"undisclosed_recipients":  "relayq keeps the To and Cc headers as written",
	"logfile_time_format":     "relayq logs in its own format (RELAYQ_LOG_FORMAT)",
	"auto_from":               "relayq qualifies bare senders with RELAYQ_DOMAIN",
	"maildomain":              "relayq qualifies bare senders with RELAYQ_DOMAIN",
	"ntlmdomain":              "relayq has no NTLM",
	"eval":                    "relayq import does not run eval commands",
	"tls_cert_file":           "",
	"tls_key_file":            "",
}

// msmtp reads msmtprc files (a system one and a user one may be given
// together: later files override).
func (x *reader) msmtp(fs []File) error {
	defaults := map[string]msmtpValue{}
	accounts := map[string]*msmtpAccount{}
	var order []string
	var defAlias string
	var defFrom Source
	for _, f := range fs {
		var cur map[string]msmtpValue
		err := lines(f.Path, f.Data, func(n int, line string) error {
			at := Source{f.Path, n}
			cmd, arg, err := msmtpWords(line)
			if err != nil {
				return syntax(at, "%v", err)
			}
			switch cmd {
			case "defaults":
				cur = defaults
				return nil
			case "account":
				name, parents, hasParents := strings.Cut(arg, ":")
				name = strings.TrimSpace(name)
				if name == "" {
					return syntax(at, "account without a name")
				}
				if name == "default" && hasParents && !strings.Contains(parents, ",") && strings.TrimSpace(parents) != "" {
					defAlias, defFrom = strings.TrimSpace(parents), at
					cur = nil
					return nil
				}
				a := &msmtpAccount{name: name, from: at, cmds: map[string]msmtpValue{}}
				for k, v := range defaults {
					a.cmds[k] = v
				}
				if hasParents {
					for _, p := range strings.Split(parents, ",") {
						pa := accounts[strings.TrimSpace(p)]
						if pa == nil {
							return syntax(at, "account %q inherits from %q, which is not defined above", name, strings.TrimSpace(p))
						}
						for k, v := range pa.cmds {
							a.cmds[k] = v
						}
					}
				}
				if _, dup := accounts[name]; !dup {
					order = append(order, name)
				}
				accounts[name] = a
				cur = a.cmds
				return nil
			}
			if cur == nil {
				return syntax(at, "%q before any 'defaults' or 'account' line", cmd)
			}
			cur[cmd] = msmtpValue{arg, at}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(accounts) == 0 {
		return syntax(Source{fs[0].Path, 0}, "no account defined")
	}
	name := defAlias
	if name == "" {
		if _, ok := accounts["default"]; ok {
			name = "default"
		} else {
			name = order[0]
			x.note(Differs, accounts[name].from, "no default account: relayq's relay host is the first account, %q (msmtp would need -a)", name)
		}
	} else if accounts[name] == nil {
		return syntax(defFrom, "the default account %q is not defined", name)
	}
	def := accounts[name]
	relay, err := x.msmtpAccount(def, true, "")
	if err != nil {
		return err
	}
	for _, n := range order {
		a := accounts[n]
		if a == def || (n == "default" && defAlias != "") {
			continue
		}
		if _, err := x.msmtpAccount(a, false, relay); err != nil {
			return err
		}
	}
	return nil
}

// msmtpAccount maps one account: the default one to the global settings
// and a host credential; another to a sender relay map line and a sender
// credential keyed by its from address.
func (x *reader) msmtpAccount(a *msmtpAccount, isDefault bool, defaultRelay string) (string, error) {
	host, hostAt, ok := a.get("host")
	if !ok || host == "" {
		if isDefault {
			return "", syntax(a.from, "account %q has no host", a.name)
		}
		x.note(Unmapped, a.from, "account %q has no host", a.name)
		return "", nil
	}
	tlsOn := onOff(a, "tls", false)
	starttls := onOff(a, "tls_starttls", true)
	port, portAt, hasPort := a.get("port")
	if !hasPort {
		port, portAt = "25", hostAt
		if tlsOn && !starttls {
			port = "465"
		}
	}
	relay := relayHost(host, port)
	from, fromAt, hasFrom := a.get("from")
	auth, authAt, _ := a.get("auth")
	auth = strings.ToLower(auth)
	if authAt.File == "" {
		authAt = a.from
	}
	authOn := auth != "" && auth != "off"
	if isDefault {
		x.set("RELAYQ_RELAYHOST", relay, hostAt, "account "+a.name+": host "+host+", port "+port)
		switch {
		case !tlsOn && authOn:
			x.note(Differs, a.from, "account %q: tls is off, but relayq never sends credentials unencrypted: it uses STARTTLS and verifies the certificate (RELAYQ_TLS=verify); a relay without TLS gets no mail until it offers it", a.name)
		case !tlsOn:
			x.set("RELAYQ_TLS", "none", a.from, "account "+a.name+": tls off")
			x.note(Differs, a.from, "account %q: tls off: RELAYQ_TLS=none sends in clear as msmtp did; prefer RELAYQ_TLS=verify if the relay offers STARTTLS", a.name)
		case !starttls:
			x.implicitTLS(port, portAt, "account "+a.name+": tls on, tls_starttls off (TLS from the first byte)")
		}
		if v, at, ok := a.get("tls_trust_file"); ok && v != "" && v != "system" {
			x.set("RELAYQ_TLS_CA_FILE", v, at, "tls_trust_file")
			x.homePath(v, at)
		}
		if v, at, ok := a.get("tls_certcheck"); ok && v == "off" {
			x.note(Differs, at, "tls_certcheck off: relayq verifies the relay's certificate (RELAYQ_TLS=verify); give the relay's CA with RELAYQ_TLS_CA_FILE, or pin it with RELAYQ_TLS_PINS")
		}
		if v, at, ok := a.get("tls_cert_file"); ok && v != "" {
			x.set("RELAYQ_TLS_CERT_FILE", v, at, "tls_cert_file (client certificate)")
		}
		if v, at, ok := a.get("tls_key_file"); ok && v != "" {
			x.set("RELAYQ_TLS_KEY_FILE", v, at, "tls_key_file")
		}
		if v, at, ok := a.get("domain"); ok && v != "" {
			x.set("RELAYQ_HELO_NAME", v, at, "domain (the EHLO name)")
		}
		if v, at, ok := a.get("aliases"); ok && v != "" {
			x.set("RELAYQ_ALIASES", v, at, "aliases")
			x.note(Differs, at, "aliases: relayq reads /etc/aliases syntax; msmtp's catch-all 'default:' entry has no equivalent")
			x.homePath(v, at)
		}
		if v, at, ok := a.get("logfile"); ok && v != "" {
			x.note(Unmapped, at, "logfile %s: relayq logs each message to syslog, or to RELAYQ_LOG_FILE for the daemon and delivery runs", v)
		}
		switch m := saslMech(auth); {
		case m != "":
			x.set("RELAYQ_SASL_MECHANISMS", m, authAt, "auth "+auth)
		case authOn && auth != "on":
			x.note(Differs, authAt, "auth %s: relayq has no such mechanism; it uses the strongest one the relay offers of SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN", auth)
		}
		if !authOn {
			x.set("RELAYQ_AUTH", "none", authAt, "account "+a.name+": no auth (the relay trusts this host)")
		}
		if hasFrom {
			x.msmtpFrom(a, from, fromAt)
		}
		for k, v := range a.cmds {
			if why, ok := msmtpUnmapped[k]; ok && why != "" {
				x.note(Unmapped, v.from, "%s: %s", k, why)
			}
		}
	} else {
		if !hasFrom || strings.Contains(from, "%") {
			x.note(Unmapped, a.from, "account %q: relayq picks a relay by envelope sender; this account has no plain 'from' address to key it by (use it with -a in msmtp)", a.name)
			return relay, nil
		}
		if relay != defaultRelay {
			x.r.RelayMap = append(x.r.RelayMap, MapLine{from, relay, a.from})
		}
	}
	if authOn {
		key := relay
		if !isDefault {
			key = from
		}
		x.msmtpCredential(a, key, auth)
	}
	return relay, nil
}

// msmtpFrom maps the default account's from address.
func (x *reader) msmtpFrom(a *msmtpAccount, from string, at Source) {
	if strings.Contains(from, "%") {
		x.note(Unmapped, at, "from %s: substitution patterns have no equivalent; relayq qualifies bare senders with RELAYQ_DOMAIN", from)
		return
	}
	if v, _, ok := a.get("allow_from_override"); ok && v == "off" {
		x.set("RELAYQ_SENDER_REWRITE", from, at, "from, with allow_from_override off (every message goes out from it; relayq keeps the original From in Reply-To)")
		return
	}
	if x.o.Hostname == "" {
		x.note(Todo, at, "from %s: this host's name has no domain: set RELAYQ_DOMAIN to its fully-qualified name (e.g. host.example.com; relayq check fails until it is set) and add a generic map line '@THAT-NAME %s' (RELAYQ_GENERIC_MAP) so that mail from local users goes out from it", from, from)
		return
	}
	x.r.Generic = append(x.r.Generic, MapLine{"@" + x.o.Hostname, from, at})
	x.note(Differs, at, "from %s: msmtp uses it when the caller gives no sender; relayq rewrites local senders (@%s, RELAYQ_GENERIC_MAP) to it, envelope and From header", from, x.o.Hostname)
}

// msmtpCredential adds the credential of account a under key.
func (x *reader) msmtpCredential(a *msmtpAccount, key, auth string) {
	user, userAt, _ := a.get("user")
	if auth == "oauthbearer" || auth == "xoauth2" {
		x.note(Todo, userAt, "account %q: auth %s: relayq gets and refreshes OAuth tokens itself; write an oauth2: credential (README, OAuth) instead of a token command", a.name, auth)
		return
	}
	if user == "" {
		x.note(Todo, a.from, "account %q: auth without a user: add '%s USER:PASSWORD' to the credentials file", a.name, key)
		return
	}
	pw, pwAt, ok := a.get("password")
	if !ok {
		cmd, at, hasEval := a.get("passwordeval")
		switch {
		case hasEval && x.o.Eval != nil:
			out, err := x.o.Eval(cmd)
			if err != nil {
				x.note(Todo, at, "passwordeval failed (%v): add '%s %s:PASSWORD' to the credentials file", err, key, user)
				return
			}
			pw, pwAt = strings.TrimRight(strings.SplitN(out, "\n", 2)[0], "\r"), at
		case hasEval:
			x.note(Todo, at, "passwordeval was not run (relayq import -eval runs it): add '%s %s:PASSWORD' to the credentials file", key, user)
			return
		default:
			x.note(Todo, a.from, "account %q: no password (msmtp would ask ~/.netrc or a keyring): add '%s %s:PASSWORD' to the credentials file", a.name, key, user)
			return
		}
	}
	if pw == "" {
		x.note(Todo, pwAt, "account %q: empty password: add '%s %s:PASSWORD' to the credentials file", a.name, key, user)
		return
	}
	x.r.Credentials = append(x.r.Credentials, Credential{Key: key, User: user, Password: pw, From: pwAt})
}

// onOff reads an msmtp on/off command ("" means on, as msmtp).
func onOff(a *msmtpAccount, k string, def bool) bool {
	v, _, ok := a.get(k)
	if !ok {
		return def
	}
	return v == "" || v == "on"
}

// saslMech is RELAYQ_SASL_MECHANISMS for an msmtp/ssmtp auth method that
// names one ("" for on/off or one relayq lacks).
func saslMech(auth string) string {
	switch strings.ToLower(auth) {
	case "plain", "login", "cram-md5", "scram-sha-1", "scram-sha-256", "xoauth2", "oauthbearer":
		return strings.ToUpper(auth)
	}
	return ""
}

// homePath notes a path relative to a home directory.
func (x *reader) homePath(p string, at Source) {
	if strings.HasPrefix(p, "~") || !strings.HasPrefix(p, "/") {
		x.note(Todo, at, "%s is not an absolute path: relayq runs as its own user; give the absolute path", p)
	}
}
