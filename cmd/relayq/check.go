package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relayq/relayq/aliases"
	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/cmd/internal/personality"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/listener"
	"github.com/relayq/relayq/maildrop"
	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
)

// runCheck is `relayq check`: validate the whole configuration and show
// what relayq will do for each relay host (like `postconf -n` plus
// `postmap -q`), secrets masked. Exit 0 when fine, 78 (EX_CONFIG) with one
// line per problem when not.
func runCheck(s stdio, args []string) int {
	fl := flag.NewFlagSet("check", flag.ContinueOnError)
	fl.SetOutput(s.err)
	fl.Usage = func() {
		fmt.Fprintf(s.err, "usage: relayq check\n\n"+
			"Validates the configuration (relay hosts and that they resolve, TLS settings,\n"+
			"credentials file and sender relay map syntax and permissions, a credential for\n"+
			"each relay host, the listener's users file and TLS, the default sender's domain,\n"+
			"spool, aliases) and prints what relayq will do for each relay host and each sender\n"+
			"relay map entry, secrets masked. For an OAuth credential it asks the token endpoint\n"+
			"for an access token, as delivery would (a refused refresh token is a problem).\n"+
			"Each problem comes with what to change. Exit 0\n"+
			"when fine, 78 when mail cannot be delivered as configured.\n")
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exOK
		}
		return exUsage
	}
	if fl.NArg() > 0 {
		fl.Usage()
		return exUsage
	}
	cfg, code := loadConfig(s)
	if cfg == nil {
		return code
	}
	c := &checker{w: s.out}
	c.settings(cfg)
	for _, w := range cfg.Warnings() {
		c.warn("configuration: %s", w)
	}
	for _, p := range cfg.Problems() {
		c.fail("configuration: %v: the key keeps its default meanwhile; %s", p, personality.ProblemEffect(p))
	}
	relays := c.relays(cfg)
	m := c.credentials(cfg)
	rm := c.senderRelays(cfg)
	c.tls(cfg, relays)
	c.spool(cfg)
	c.dropDir(cfg)
	c.aliases(cfg)
	c.listener(cfg)
	c.sender(cfg)
	for _, r := range relays {
		c.resolves(r)
		c.plan(cfg, r, m)
	}
	c.senderPlan(rm, m, cfg.RequireCredential())
	if len(c.problems) > 0 {
		fmt.Fprintf(s.out, "\n")
		for _, p := range c.problems {
			fmt.Fprintf(s.err, "relayq check: %s\n", p)
		}
		fmt.Fprintf(s.err, "relayq check: %d problem(s): mail will not be relayed as configured\n", len(c.problems))
		return exConfig
	}
	// check reads files and asks DNS; it never logs in. A wrong password
	// passes it, so say what does try it.
	fmt.Fprintf(s.out, "\nrelayq check: configuration OK (passwords are not tried here: relayq probe logs in to the relay)\n")
	return exOK
}

// checker collects the findings of `relayq check`.
type checker struct {
	w        io.Writer
	problems []string
}

func (c *checker) ok(format string, a ...any) {
	fmt.Fprintf(c.w, "ok      %s\n", fmt.Sprintf(format, a...))
}

func (c *checker) warn(format string, a ...any) {
	fmt.Fprintf(c.w, "warning %s\n", fmt.Sprintf(format, a...))
}

func (c *checker) fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintf(c.w, "FAIL    %s\n", msg)
	c.problems = append(c.problems, msg)
}

// settings prints the keys that differ from their defaults (postconf -n),
// secrets masked by config.Describe.
func (c *checker) settings(cfg *config.Config) {
	file := cfg.File()
	if file == "" {
		file = "none"
	}
	fmt.Fprintf(c.w, "configuration file: %s\n", file)
	for _, k := range cfg.Describe() {
		if k.Source == "" || k.Source == "default" || k.Source == "unset" || k.Value == k.Default {
			continue
		}
		fmt.Fprintf(c.w, "  %s=%s   (%s)\n", k.Key, config.Quote(k.Value), k.Source)
	}
	fmt.Fprintln(c.w)
}

// relays checks RELAYQ_RELAYHOST.
func (c *checker) relays(cfg *config.Config) []smarthost.Relay {
	if strings.TrimSpace(cfg.RelayHost) == "" {
		c.fail("RELAYQ_RELAYHOST is empty: mail stays queued until a relay host is set (e.g. RELAYQ_RELAYHOST=[smtp.example.com]:587)")
		return nil
	}
	rs, err := smarthost.ParseRelays(cfg.RelayHost)
	if err != nil {
		c.fail("RELAYQ_RELAYHOST: %v", err)
		return nil
	}
	specs := make([]string, len(rs))
	for i, r := range rs {
		specs[i] = r.Spec
	}
	c.ok("relay host: %s", strings.Join(specs, ", "))
	return rs
}

// credentials checks RELAYQ_AUTHINFO (syntax and permissions).
func (c *checker) credentials(cfg *config.Config) *authinfo.Map {
	if cfg.AuthInfo == "" {
		c.warn("credentials: RELAYQ_AUTHINFO is empty: AUTH is never attempted")
		return nil
	}
	m, err := authinfo.ParseFile(cfg.AuthInfo)
	var pe *authinfo.PermError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.fail("credentials: %s does not exist, so no relay gets AUTH and an authenticating relay refuses the mail: create it with a line per relay host (install -m 0600 /dev/null %s; then add \"%s user:password\"), or set RELAYQ_AUTHINFO to the file you use", cfg.AuthInfo, cfg.AuthInfo, firstRelay(cfg))
		return nil
	case errors.As(err, &pe) && pe.Kind == authinfo.PermForeignGroup && os.Geteuid() == 0:
		// root checking a root:relayq 0640 file for a daemon that runs as
		// relayq: right for that daemon, refused by a relayq running as root.
		group := strconv.Itoa(pe.Gid)
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
		c.warn("credentials: %s is readable by group %s: fine for a relayq running with that group, refused by one running as root", cfg.AuthInfo, group)
		if m, err = parseUnchecked(cfg.AuthInfo); err != nil {
			c.fail("credentials: %v", err)
			return nil
		}
	case err != nil:
		c.fail("credentials: %v", err)
		return nil
	}
	owner := ""
	if fi, err := os.Stat(cfg.AuthInfo); err == nil {
		owner = fmt.Sprintf(", mode %04o", fi.Mode().Perm())
	}
	sd := ""
	if m.SenderDependent() {
		sd = fmt.Sprintf(", sender-dependent (%d sender keys)", len(m.SenderKeys()))
	}
	c.ok("credentials: %s: %s syntax, %d entries%s%s", cfg.AuthInfo, m.Format(), m.Len(), sd, owner)
	if m.Len() == 0 {
		c.fail("credentials: %s has no entries, so no relay gets AUTH: add a line \"%s user:password\"", cfg.AuthInfo, firstRelay(cfg))
	}
	for _, e := range m.Entries() {
		if len(e.Mechs) > 0 && !slices.ContainsFunc(e.Mechs, speaksMech) {
			c.warn("credentials: %s allows only mechanisms relayq does not speak (%s): AUTH with it always fails", e.Source, strings.Join(e.Mechs, " "))
		}
		if e.OAuth != nil {
			c.oauthToken(cfg, e)
		}
	}
	return m
}

// oauthToken asks the token endpoint of an OAuth credential for an access
// token, as delivery would (through the token store of rotated refresh
// tokens): a refresh token it refuses means no mail goes out.
func (c *checker) oauthToken(cfg *config.Config, e authinfo.Credential) {
	cl, err := smarthost.New(smarthost.Options{Relays: "[localhost]", TokenStore: authinfo.NewRotatedTokens(oauthTokensPath(cfg))})
	if err != nil {
		c.fail("credentials: %s: %v", e.Source, err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ti, err := cl.TokenState(ctx, e)
	if err != nil {
		c.fail("credentials: %s: OAuth: %v; mail to that relay waits until it is fixed (relayq oauth login gets a new refresh token)", e.Source, err)
		return
	}
	c.ok("credentials: %s: OAuth: %s", e.Source, ti)
}

// senderRelays checks RELAYQ_SENDER_RELAYHOST_MAP (syntax and
// permissions); each relay must also be one the delivery client accepts.
// The map is nil when the key is empty or the map is bad.
func (c *checker) senderRelays(cfg *config.Config) *authinfo.RelayMap {
	if cfg.SenderRelayHostMap == "" {
		return nil
	}
	rm, err := authinfo.ParseRelayMapFile(cfg.SenderRelayHostMap)
	if err != nil {
		c.fail("RELAYQ_SENDER_RELAYHOST_MAP: %v", err)
		return nil
	}
	for _, e := range rm.Entries() {
		if e.Relays == "" {
			continue
		}
		if _, err := smarthost.ParseRelays(e.Relays); err != nil {
			c.fail("RELAYQ_SENDER_RELAYHOST_MAP: %s: %v", e.Source, err)
			return nil
		}
	}
	c.ok("sender relay map: %s: %d entries", cfg.SenderRelayHostMap, rm.Len())
	if rm.Len() == 0 {
		c.warn("sender relay map: %s has no entries: every sender's mail goes to RELAYQ_RELAYHOST", cfg.SenderRelayHostMap)
	}
	return rm
}

// senderPlan prints, per entry of the sender relay map, where that
// sender's mail goes and which credential it uses there.
// With require (RELAYQ_AUTH=required), a relay host there without a
// matching credential is a problem: that sender's mail would never leave.
func (c *checker) senderPlan(rm *authinfo.RelayMap, m *authinfo.Map, require bool) {
	if rm == nil || rm.Len() == 0 {
		return
	}
	fmt.Fprintf(c.w, "\nsender relay map %s:\n", rm.Name())
	for _, e := range rm.Entries() {
		if e.Relays == "" {
			fmt.Fprintf(c.w, "  sender %s: DUNNO, the default relay host RELAYQ_RELAYHOST (%s)\n", e.Key, e.Source)
			continue
		}
		fmt.Fprintf(c.w, "  sender %s: relay host %s (%s)\n", e.Key, e.Relays, e.Source)
		rs, _ := smarthost.ParseRelays(e.Relays) // checked by senderRelays
		for _, r := range rs {
			cred := "none: mail is sent without AUTH (RELAYQ_AUTH=none)"
			if require {
				cred = "none: no mail is sent there (RELAYQ_AUTH=required: no credential, no send)"
			}
			cr, ok := m.Lookup(authinfo.Query{Sender: exampleSender(e.Key), Host: r.Host, Port: r.Port, NextHop: r.Spec})
			if ok {
				cred = cr.String()
			}
			fmt.Fprintf(c.w, "    credentials at %s: %s\n", r.Spec, cred)
			if !ok && require {
				c.fail("sender relay map %s: mail from %s goes to %s, which has no credential, so it is never sent (RELAYQ_AUTH=required): add a line \"%s user:password\" to the credentials file, or set RELAYQ_AUTH=none if that relay needs no AUTH", e.Source, e.Key, r.Spec, r.Spec)
			}
		}
	}
}

// exampleSender turns a sender key into an address it matches: @domain
// stands for anyone@domain.
func exampleSender(key string) string {
	if strings.HasPrefix(key, "@") {
		return "anyone" + key
	}
	return key
}

// speaksMech reports whether the delivery client implements mech (it
// refuses unknown names in Options.Mechanisms).
func speaksMech(mech string) bool {
	cl, err := smarthost.New(smarthost.Options{Relays: "[localhost]", Mechanisms: []string{mech}, HeloName: "localhost"})
	if err != nil {
		return false
	}
	_ = cl.Close()
	return true
}

// parseUnchecked parses a credentials file without the owner and mode
// rules (for root checking a file meant for another user).
func parseUnchecked(path string) (*authinfo.Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return authinfo.Parse(f, path)
}

// tls checks the TLS settings: the policy, the CA file, the client
// certificate, the pins and the mechanisms (smarthost.New checks the last
// two), without connecting.
func (c *checker) tls(cfg *config.Config, relays []smarthost.Relay) {
	pol, err := smarthost.ParsePolicy(cfg.TLS)
	if err != nil {
		c.fail("RELAYQ_TLS: %v", err)
		return
	}
	bad := false
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		switch {
		case err != nil:
			c.fail("RELAYQ_TLS_CA_FILE: %v", err)
			bad = true
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			c.fail("RELAYQ_TLS_CA_FILE: %s holds no PEM certificate", cfg.TLSCAFile)
			bad = true
		}
	}
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			c.fail("RELAYQ_TLS_CERT_FILE/RELAYQ_TLS_KEY_FILE: %v", err)
			bad = true
		}
	}
	if len(relays) > 0 {
		cl, err := smarthost.New(smarthost.Options{
			Relays:     cfg.RelayHost,
			TLS:        pol,
			Pins:       config.DeliveryList(cfg.TLSPins),
			Mechanisms: config.DeliveryList(cfg.SASLMechanisms),
			HeloName:   cfg.HeloName,
		})
		if err != nil {
			c.fail("delivery settings: %v", err)
			return
		}
		_ = cl.Close()
	}
	if bad {
		return
	}
	switch pol {
	case smarthost.Verify:
		c.ok("TLS: verify (TLS required, certificate checked%s)", caDesc(cfg))
	case smarthost.Encrypt:
		c.warn("TLS: encrypt: TLS required but the certificate is not checked%s", unverifiedAuth(cfg))
	case smarthost.May:
		c.warn("TLS: may: TLS only when offered; credentials are never sent without TLS%s", unverifiedAuth(cfg))
	case smarthost.None:
		c.warn("TLS: none: no TLS, so no credentials are ever sent (AUTH skipped)")
	}
}

func caDesc(cfg *config.Config) string {
	s := " against the system roots"
	if cfg.TLSCAFile != "" {
		s = " against " + cfg.TLSCAFile
	}
	if pins := config.DeliveryList(cfg.TLSPins); len(pins) > 0 {
		s += fmt.Sprintf(", %d key pin(s)", len(pins))
	}
	return s
}

func unverifiedAuth(cfg *config.Config) string {
	if cfg.TLSAuthUnverified {
		return "; RELAYQ_TLS_AUTH_UNVERIFIED=true sends credentials over unverified TLS"
	}
	return "; credentials are sent only over a verified certificate or a matching pin"
}

// spool checks that the spool file can be opened (or created), with a
// short lock wait; a spool held by the running daemon is fine.
func (c *checker) spool(cfg *config.Config) {
	p := cfg.Spool
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		dir, err := creatableIn(filepath.Dir(p))
		if err != nil {
			c.fail("spool: %s does not exist and %s is not writable: %v", p, dir, err)
			return
		}
		c.ok("spool: %s does not exist yet; it will be created (in %s)", p, dir)
		return
	}
	sp, err := spool.Open(p, spool.Options{LockTimeout: 300 * time.Millisecond})
	switch {
	case errors.Is(err, spool.ErrLocked):
		if daemonAnswers(cfg.Socket) {
			c.ok("spool: %s is held by the running daemon (answers on %s)", p, cfg.Socket)
		} else {
			c.warn("spool: %s is locked by another process and no daemon answers on %s (a delivery run or another relayq command?): %v", p, cfg.Socket, err)
		}
	case err != nil:
		c.fail("spool: %v", err)
	default:
		st, serr := sp.Stats()
		_ = sp.Close()
		if serr != nil {
			c.fail("spool: %s: %v", p, serr)
			return
		}
		c.ok("spool: %s opens (%d queued, %d held; no daemon holds it)", p, st.Count, st.Held)
	}
}

// dropDir reports the drop directory: messages waiting to be queued (a
// daemon or a run imports them) and damaged files (set aside, never
// imported: the operator decides).
func (c *checker) dropDir(cfg *config.Config) {
	dir := maildrop.Dir(cfg.Spool)
	es, err := maildrop.List(dir)
	if err != nil {
		c.warn("drop directory: %v", err)
		return
	}
	waiting, damaged := 0, []string{}
	for _, e := range es {
		if e.Damaged {
			damaged = append(damaged, e.Path)
		} else {
			waiting++
		}
	}
	if len(damaged) > 0 {
		c.warn("drop directory: %d damaged file(s) set aside, never queued (inspect, then delete or resubmit): %s", len(damaged), strings.Join(damaged, " "))
	}
	if waiting > 0 {
		c.ok("drop directory: %s holds %d message(s) not yet queued (the daemon or the next delivery run queues them)", dir, waiting)
	}
}

// daemonAnswers reports whether something answers with an SMTP greeting on
// the daemon's submission socket. It ends the session with QUIT, as a
// client should: hanging up with the greeting unread made the daemon log
// "connection reset by peer" for every relayq check.
func daemonAnswers(socket string) bool {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	text := textproto.NewConn(conn)
	if _, _, err := text.ReadResponse(220); err != nil {
		return false
	}
	if err := text.PrintfLine("QUIT"); err == nil {
		_, _, _ = text.ReadResponse(221)
	}
	return true
}

// aliases checks the aliases file when there is one.
func (c *checker) aliases(cfg *config.Config) {
	if cfg.Aliases == "" {
		c.ok("aliases: none (RELAYQ_ALIASES is empty)")
		return
	}
	_, err := aliases.ParseFile(cfg.Aliases)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.warn("aliases: %s does not exist: mail to local names (root, …) goes to NAME@RELAYQ_DOMAIN unchanged", cfg.Aliases)
	case err != nil:
		c.fail("aliases: %v", err)
	default:
		c.ok("aliases: %s", cfg.Aliases)
	}
}

// plan prints what delivery will do for one relay: where it connects, the
// TLS it insists on and which credential it uses (authinfo Explain).
func (c *checker) plan(cfg *config.Config, r smarthost.Relay, m *authinfo.Map) {
	fmt.Fprintf(c.w, "\nrelay %s:\n", r.Spec)
	how := "connect to " + r.Host
	if r.MX {
		how = "look up the MX hosts of " + r.Host + " and connect to them"
	}
	tlsHow := "STARTTLS"
	if mode, _ := smarthost.ParseImplicit(cfg.TLSImplicit); mode.OnPort(r.Port) {
		tlsHow = "implicit TLS"
	}
	fmt.Fprintf(c.w, "  %s on port %d, %s, TLS policy %s\n", how, r.Port, tlsHow, cfg.TLS)
	if m == nil {
		if cfg.RequireCredential() {
			fmt.Fprintf(c.w, "  credentials: none: no mail is sent there (RELAYQ_AUTH=required: no credential, no send)\n")
		} else {
			fmt.Fprintf(c.w, "  credentials: none: mail is sent without AUTH (RELAYQ_AUTH=none)\n")
		}
		return
	}
	q := authinfo.Query{Host: r.Host, Port: r.Port, NextHop: r.Spec}
	if a, err := netip.ParseAddr(r.Host); err == nil {
		q.Addr = a.String()
	} else if m.HasAddressKeys() && !r.MX {
		q.Addr = resolveFirst(r.Host)
	}
	if r.MX {
		fmt.Fprintf(c.w, "  (the server name is each MX host's; below, %s stands in for it)\n", r.Host)
	}
	fmt.Fprintf(c.w, "  credentials for the null sender and senders without their own entry:\n")
	for _, l := range m.Explain(q) {
		fmt.Fprintf(c.w, "    %s\n", l)
	}
	if _, ok := m.Lookup(q); !ok && m.Len() > 0 && !m.SenderDependent() && !r.MX {
		gets := "no mail (RELAYQ_AUTH=required: no credential, no send)"
		if !cfg.RequireCredential() {
			gets = "mail without AUTH (RELAYQ_AUTH=none)"
		}
		c.fail("credentials: no entry of %s matches relay %s, so it gets %s (keys: %s): add a line \"%s user:password\", or make the key match RELAYQ_RELAYHOST exactly", m.Name(), r.Spec, gets, strings.Join(m.Keys(), ", "), r.Spec)
	}
	for _, k := range m.SenderKeys() {
		q.Sender = exampleSender(k)
		if cr, ok := m.Lookup(q); ok {
			fmt.Fprintf(c.w, "  sender %s: %s\n", k, cr)
		}
	}
}

// firstRelay is the first relay of RELAYQ_RELAYHOST as written, for the
// line a message suggests adding; a placeholder when there is none.
func firstRelay(cfg *config.Config) string {
	if rs, err := smarthost.ParseRelays(cfg.RelayHost); err == nil && len(rs) > 0 {
		return rs[0].Spec
	}
	return "[smtp.example.com]:587"
}

// checkResolver answers relayq check's name lookups (tests replace it).
var checkResolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
} = smarthost.SpecialUseResolver(net.DefaultResolver)

// resolves checks that a relay host's name resolves (its MX records, for
// an MX relay); an address needs no lookup. 5 s limit.
func (c *checker) resolves(r smarthost.Relay) {
	if _, err := netip.ParseAddr(r.Host); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if r.MX {
		var mx []*net.MX
		if mx, err = checkResolver.LookupMX(ctx, r.Host); err == nil && len(mx) == 0 {
			err = errors.New("no MX records")
		}
	} else {
		_, err = checkResolver.LookupHost(ctx, r.Host)
	}
	if err != nil {
		c.fail("relay host %s does not resolve (%v): correct the name in RELAYQ_RELAYHOST, or write the address as [192.0.2.1]:587", r.Spec, err)
		return
	}
	c.ok("relay host %s resolves", r.Spec)
}

// listener checks RELAYQ_LISTEN: the users file loads (mode 0600/0400, as
// serve requires), and an address that is not loopback has STARTTLS.
func (c *checker) listener(cfg *config.Config) {
	addrs := strings.FieldsFunc(cfg.Listen, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(addrs) == 0 {
		return
	}
	if cfg.SMTPDUsers != "" {
		if u, err := listener.LoadUsers(cfg.SMTPDUsers); err != nil {
			c.fail("listener: RELAYQ_SMTPD_USERS: %v (relayq passwd -f %s NAME writes it with mode 0600)", err, cfg.SMTPDUsers)
		} else {
			c.ok("listener: users file %s: %d users", cfg.SMTPDUsers, u.Len())
		}
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			c.fail("listener: RELAYQ_LISTEN %q: %v (want host:port, e.g. 127.0.0.1:2525)", a, err)
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() || host == "localhost" {
			c.ok("listener: %s (loopback)", a)
			continue
		}
		if cfg.SMTPDTLSCert == "" {
			c.fail("listener: %s is not a loopback address and has no TLS: mail and client passwords would cross the network in clear; set RELAYQ_SMTPD_TLS_CERT and RELAYQ_SMTPD_TLS_KEY, or listen on 127.0.0.1", a)
			continue
		}
		c.ok("listener: %s with STARTTLS (%s)", a, cfg.SMTPDTLSCert)
	}
}

// sender checks that the default sender (user@RELAYQ_DOMAIN, or the
// host's name without it) and RELAYQ_SENDER_REWRITE are fully qualified:
// relays refuse a sender like root@localhost or root@vm.
func (c *checker) sender(cfg *config.Config) {
	domain, from := cfg.Domain, "RELAYQ_DOMAIN"
	if domain == "" {
		domain, _ = os.Hostname()
		from = "the host name (RELAYQ_DOMAIN is empty)"
	}
	if !fullyQualified(domain) {
		c.fail("default sender: user@%s (root@, cron@, …), from %s, is not a fully-qualified address and relays refuse it: set RELAYQ_DOMAIN=example.com (your mail domain)", domain, from)
	} else {
		c.ok("default sender: user@%s", domain)
	}
	if cfg.SenderRewrite != "" {
		_, d, ok := strings.Cut(cfg.SenderRewrite, "@")
		if !ok || !fullyQualified(d) {
			c.fail("RELAYQ_SENDER_REWRITE: %q is not a fully-qualified address: write user@example.com", cfg.SenderRewrite)
		}
	}
}

// fullyQualified: a domain with a dot, not localhost or localdomain.
func fullyQualified(d string) bool {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	return strings.Contains(d, ".") && !strings.HasSuffix(d, ".localdomain") && !strings.HasSuffix(d, ".local") && d != "localhost"
}

// resolveFirst returns the first address of host, or "" (2 s limit).
func resolveFirst(host string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := checkResolver.LookupHost(ctx, host)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	return addrs[0]
}
