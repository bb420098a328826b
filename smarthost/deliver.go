package smarthost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/relayq/relayq/wire"
)

// session is one established connection: greeted, TLS as the policy asks,
// authenticated when a credential applies.
type session struct {
	c         *conn
	key       string
	tgt       target
	created   time.Time
	authed    string // mechanism used, "" when no AUTH
	pool      *relayPool
	idleTimer *time.Timer
	plain     bool // policy may after a failed handshake: no STARTTLS
	needRset  bool // a transaction ran before: RSET first (RFC 5321 §4.1.1.5)
	stop      func() bool
	check     tlsCheck
}

// Deliver makes one delivery attempt for m: the relays in order, each of
// their addresses in order, until one gives an answer for every recipient.
// The error is non-nil only when no recipient was delivered and some were
// left without a final answer (then every recipient not Bounced is
// Deferred, with the reason of the last failure).
func (c *Client) Deliver(ctx context.Context, m *Message) (Outcome, error) {
	out, err := c.deliver(ctx, m)
	// No secret leaves in a reply text or error (a relay or token
	// endpoint may echo one): these are stored, listed and logged.
	c.secrets.scrubOutcome(&out)
	return out, c.secrets.scrubErr(err)
}

func (c *Client) deliver(ctx context.Context, m *Message) (Outcome, error) {
	out := Outcome{Recipients: make([]RcptOutcome, len(m.Recipients))}
	for i, r := range m.Recipients {
		out.Recipients[i] = RcptOutcome{Addr: r.Addr, Status: Deferred, Reply: wire.Reply{Enhanced: "4.4.1", Text: "not attempted"}}
	}
	if err := c.deliverable(m); err != nil {
		return out, err
	}
	limit := c.o.Deadline + time.Duration(m.Size/(1<<20))*c.o.DeadlinePerMB
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	relays, _, err := c.relaysFor(m.From)
	if err != nil {
		return out, err
	}
	pending := checkAddresses(m, &out)
	if len(pending) == 0 {
		return out, nil
	}
	d := &delivery{c: c, ctx: ctx, m: m, out: &out, pending: pending}
	if d.relays(relays) {
		return out, nil
	}
	return out, d.err()
}

// deliverable refuses a message the client cannot attempt at all.
func (c *Client) deliverable(m *Message) error {
	if len(m.Recipients) == 0 {
		return errors.New("smarthost: message has no recipients")
	}
	if m.Body == nil {
		return errors.New("smarthost: message has no body")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	return nil
}

// checkAddresses bounces the addresses that would break the command line
// (CR, LF, NUL, angle brackets) with a clear reason: all recipients for
// such a sender, else each such recipient. It returns the indexes of the
// recipients still to be tried.
func checkAddresses(m *Message, out *Outcome) (pending []int) {
	if !safeAddr(m.From) {
		v := verdict{Status: Bounced, Enhanced: "5.1.7", Text: fmt.Sprintf("invalid sender address %q", m.From)}
		for i, r := range m.Recipients {
			out.Recipients[i] = v.rcpt(r.Addr)
		}
		return nil
	}
	for i, r := range m.Recipients {
		if r.Addr == "" || !safeAddr(r.Addr) {
			out.Recipients[i] = verdict{Status: Bounced, Enhanced: "5.1.3", Text: fmt.Sprintf("invalid recipient address %q", r.Addr)}.rcpt(r.Addr)
			continue
		}
		pending = append(pending, i)
	}
	return pending
}

// relaysFor returns the relays for mail from sender: its own when
// Options.Credentials is a SenderRelays that names some (own is then
// their spec as given), else Options.Relays.
func (c *Client) relaysFor(sender string) (relays []Relay, own string, err error) {
	sr, ok := c.o.Credentials.(SenderRelays)
	if !ok {
		return c.relays, "", nil
	}
	own, ok = sr.RelayHost(sender)
	if !ok {
		return c.relays, "", nil
	}
	rs, err := ParseRelays(own)
	if err != nil {
		return nil, "", fmt.Errorf("smarthost: per-sender relay for %q: %w", sender, err)
	}
	return rs, own, nil
}

// deliveryError carries the verdict of an error in a transaction.
type deliveryError struct {
	v   verdict
	err error
}

func (e *deliveryError) Error() string { return e.err.Error() }
func (e *deliveryError) Unwrap() error { return e.err }

// done returns a session to its pool or closes it.
func (c *Client) done(s *session, err error) {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if s.c.broken || closed || time.Since(s.created) > c.o.MaxReuse {
		s.c.quit()
		s.pool.release()
		return
	}
	s.c.raw.setHard(time.Time{})
	s.pool.put(s, c.o.IdleTimeout)
}

func (c *Client) poolFor(t target) *relayPool {
	// One pool per relay entry (all its addresses): MaxConns bounds the
	// connections to the relay, as Postfix's per-destination concurrency.
	key := t.relay.Spec
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[key]
	if p == nil {
		p = newRelayPool(c.o.MaxConns)
		c.pools[key] = p
	}
	return p
}

func (c *Client) rateFor(t target) *rateLimiter {
	if c.o.RateLimit <= 0 {
		return nil
	}
	key := t.relay.Spec
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rates[key]
	if r == nil {
		r = &rateLimiter{every: time.Duration(float64(time.Second) / c.o.RateLimit)}
		c.rates[key] = r
	}
	return r
}

// lookupCred finds the credential for a connection to t for sender.
func (c *Client) lookupCred(t target, sender string) (Credential, bool) {
	if c.o.Credentials == nil {
		return Credential{}, false
	}
	cr, ok := c.o.Credentials.Lookup(Query{Sender: sender, Host: t.host, Addr: t.addr, Port: t.port, NextHop: t.relay.Spec})
	if ok {
		c.secrets.addCred(cr)
	}
	return cr, ok
}

// needCred refuses a connection to t without a credential when the
// options require one (no credential, no send): nothing is dialled.
func (c *Client) needCred(t target, hasCred bool) error {
	if hasCred || !c.o.RequireCredential {
		return nil
	}
	return &errNoCredential{relay: t.relay.Spec, host: t.host, port: t.port, file: c.o.CredentialsFile}
}

// session returns a ready connection to t for mail from sender: a pooled
// one (checked with RSET) or a new one. The phase tells where it failed.
func (c *Client) session(ctx context.Context, t target, sender string) (*session, phase, error) {
	cred, hasCred := c.lookupCred(t, sender)
	if err := c.needCred(t, hasCred); err != nil {
		return nil, phAuth, err
	}
	key := credKey(cred, hasCred)
	if rl := c.rateFor(t); rl != nil {
		if err := rl.wait(ctx); err != nil {
			return nil, phConnect, err
		}
	}
	p := c.poolFor(t)
	s, err := p.get(ctx, key)
	if err != nil {
		return nil, phConnect, err
	}
	if s != nil {
		s.c.raw.setHard(deadlineOf(ctx))
		return s, phConnect, nil
	}
	return c.dialPooled(ctx, t, p, cred, hasCred, key)
}

// fresh dials a new connection to t (after a stale pooled one).
func (c *Client) fresh(ctx context.Context, t target, sender string) (*session, phase, error) {
	cred, hasCred := c.lookupCred(t, sender)
	if err := c.needCred(t, hasCred); err != nil {
		return nil, phAuth, err
	}
	key := credKey(cred, hasCred)
	p := c.poolFor(t)
	if err := p.slot(ctx); err != nil {
		return nil, phConnect, err
	}
	return c.dialPooled(ctx, t, p, cred, hasCred, key)
}

// dialPooled dials a new session to t for pool p, whose slot the caller
// holds: released again when the dial fails.
func (c *Client) dialPooled(ctx context.Context, t target, p *relayPool, cred Credential, hasCred bool, key string) (*session, phase, error) {
	s, ph, err := c.dial(ctx, t, cred, hasCred, nil)
	if err != nil {
		p.release()
		return nil, ph, err
	}
	s.key, s.pool = key, p
	return s, ph, nil
}

func credKey(cred Credential, ok bool) string {
	if !ok {
		return "-"
	}
	return cred.Source + "\x00" + cred.Key + "\x00" + cred.User + "\x00" + authID(cred)
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// dial opens and prepares a new connection: connect, implicit TLS or
// greeting + EHLO + STARTTLS + EHLO, then AUTH when a credential applies.
// trace, when set, is used by Probe.
func (c *Client) dial(ctx context.Context, t target, cred Credential, hasCred bool, pr *probeReport) (*session, phase, error) {
	s, ph, err := c.dialOnce(ctx, t, cred, hasCred, pr, false)
	var te *tlsError
	if err != nil && ph == phTLS && errors.As(err, &te) && c.o.TLS == May && !c.o.Implicit.OnPort(t.port) {
		// Policy may: a failed STARTTLS handshake falls back to plaintext
		// on a new connection, as Postfix does (credentials still stay home).
		c.log.Warn("TLS handshake failed under policy may; retrying without TLS", "relay", t.String(), "err", err)
		if pr != nil {
			pr.printf("policy may: retrying without TLS\n")
		}
		return c.dialOnce(ctx, t, cred, hasCred, pr, true)
	}
	return s, ph, err
}

func (c *Client) dialOnce(ctx context.Context, t target, cred Credential, hasCred bool, pr *probeReport, plain bool) (*session, phase, error) {
	dctx, cancel := context.WithTimeout(ctx, c.o.Timeouts.Connect)
	nc, err := c.o.Dialer.DialContext(dctx, "tcp", net.JoinHostPort(t.addr, strconv.Itoa(t.port)))
	cancel()
	if err != nil {
		return nil, phConnect, err
	}
	var trace func(byte, string)
	if c.o.Trace != nil {
		trace = func(dir byte, line string) { c.o.Trace(string(dir) + " " + line) }
	}
	if pr != nil {
		trace = pr.trace
	}
	cn := newConn(nc, c.o.Timeouts, trace)
	cn.discard = c.discard
	cn.raw.setHard(deadlineOf(ctx))
	stop := context.AfterFunc(ctx, cn.raw.expire)
	defer stop()
	s := &session{c: cn, tgt: t, created: time.Now(), plain: plain}
	ph, err := c.prepare(ctx, s, cred, hasCred, pr)
	if err != nil {
		cn.quit()
		return nil, ph, err
	}
	return s, ph, nil
}

func (c *Client) prepare(ctx context.Context, s *session, cred Credential, hasCred bool, pr *probeReport) (phase, error) {
	cn, t := s.c, s.tgt
	if c.o.Implicit.OnPort(t.port) && c.o.TLS != None {
		if err := cn.handshake(c.tlsConfig(t.host, &s.check)); err != nil {
			return phTLS, err
		}
		if pr != nil {
			pr.tlsDone(cn, &s.check)
		}
	}
	err := cn.greet()
	if pr != nil {
		pr.banner(cn)
	}
	if err != nil {
		return phGreeting, err
	}
	if err := cn.hello(c.o.HeloName); err != nil {
		return phHelo, err
	}
	if pr != nil {
		pr.ehlo(cn)
	}
	if cn.tls == nil && c.o.TLS != None && !s.plain {
		switch {
		case cn.has("STARTTLS"):
			if err := cn.startTLS(c.tlsConfig(t.host, &s.check)); err != nil {
				if pr != nil {
					pr.tlsFailed(cn, &s.check, err)
				}
				return phTLS, err
			}
			if pr != nil {
				pr.tlsDone(cn, &s.check)
			}
			if err := cn.hello(c.o.HeloName); err != nil {
				return phHelo, err
			}
			if pr != nil {
				pr.ehlo(cn)
			}
		case c.o.TLS.requiresTLS():
			return phTLS, errTLSRequired
		}
	}
	if !hasCred {
		return phAuth, nil
	}
	mechs := cn.authMechs()
	if pr != nil {
		pr.mechs = mechs
	}
	if len(mechs) == 0 {
		// As Postfix: a relay that offers no AUTH gets the mail without it.
		c.log.Warn("relay offers no AUTH; sending without authentication", "relay", t.String())
		return phAuth, nil
	}
	if err := c.authAllowed(s); err != nil {
		return phAuth, err
	}
	mech, err := chooseMech(mechs, cred, c.o.Mechanisms)
	if err != nil {
		return phAuth, err
	}
	if pr != nil {
		pr.mech = mech
	}
	if err := c.authenticate(ctx, s, mech, cred); err != nil {
		return phAuth, &authError{err: err, mech: mech, user: authID(cred), source: cred.Source}
	}
	s.authed = mech
	return phAuth, nil
}

// authAllowed is the credential guard (RELIABILITY S3, S5): it
// checks the connection itself, whatever the relay advertises.
func (c *Client) authAllowed(s *session) error {
	cn := s.c
	if cn.tls == nil {
		if c.o.TLS == None && isLoopback(cn.raw.RemoteAddr()) {
			return nil
		}
		return &errNoSafeAuth{"the connection is not encrypted (plaintext AUTH only with policy none to a loopback relay)"}
	}
	if cn.tls.Version < tls12 {
		return &errNoSafeAuth{"TLS version below 1.2"}
	}
	if s.check.verified || s.check.pinned || c.o.AllowUnverifiedAuth {
		return nil
	}
	return &errNoSafeAuth{fmt.Sprintf("the relay's certificate did not verify (%v); set a pin or allow unverified AUTH", s.check.verifyErr)}
}

const tls12 = 0x0303

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return false
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return ta.IP.IsLoopback()
}

// authenticate runs AUTH with mech; for OAuth credentials a refused token
// is renewed once and AUTH tried again.
func (c *Client) authenticate(ctx context.Context, s *session, mech string, cred Credential) error {
	if cred.OAuth == nil {
		a, err := saslClient(mech, cred)
		if err != nil {
			return err
		}
		return s.c.auth(a)
	}
	for try := 0; ; try++ {
		tok, err := c.tokens.token(ctx, cred, try > 0)
		if err != nil {
			return err
		}
		oc := &oauthClient{mech: mech, user: authID(cred), host: s.tgt.host, port: s.tgt.port, token: tok}
		err = s.c.auth(oc)
		if err == nil {
			return nil
		}
		var re *ReplyError
		if try > 0 || s.c.broken || !errors.As(err, &re) || re.Code/100 == 2 {
			return err
		}
		c.log.Warn("relay refused the OAuth token; fetching a new one", "relay", s.tgt.String(), "reply", re.Error())
	}
}

// transact runs one or more mail transactions on s for the pending
// recipients and records the outcomes. It returns the recipients still
// pending for another relay (those the relay never answered for) and an
// error when the relay did not answer for every pending recipient.
func (c *Client) transact(ctx context.Context, s *session, m *Message, pending []int, out *Outcome) ([]int, error) {
	for round := 0; len(pending) > 0; round++ {
		rest, err := c.transaction(ctx, s, m, pending, out)
		if err != nil {
			return rest, err
		}
		if len(rest) == len(pending) || round > 100 {
			// 452 for the first recipient: nothing accepted, nothing gained.
			return nil, nil
		}
		pending = rest
	}
	return nil, nil
}

// errStale: a pooled connection turned out to be closed by the relay
// (its RSET got no reply); the caller retries on a new connection.
var errStale = errors.New("pooled connection closed by the relay")

// mailCommand builds MAIL FROM with the extensions the message needs
// (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET/ENVID).
func (c *Client) mailCommand(cn *conn, m *Message) string {
	var sb strings.Builder
	sb.WriteString("MAIL FROM:<" + m.From + ">")
	if cn.has("SIZE") && m.Size > 0 {
		sb.WriteString(" SIZE=" + strconv.FormatInt(m.Size, 10))
	}
	if m.Body8Bit && cn.has("8BITMIME") {
		sb.WriteString(" BODY=8BITMIME")
	}
	if needsUTF8(m) && cn.has("SMTPUTF8") {
		sb.WriteString(" SMTPUTF8")
	}
	if cn.has("DSN") {
		if r := strings.ToUpper(m.Ret); r == "FULL" || r == "HDRS" {
			sb.WriteString(" RET=" + r)
		}
		if m.EnvID != "" {
			sb.WriteString(" ENVID=" + wire.Xtext(m.EnvID))
		}
	}
	return sb.String()
}

// precheck refuses what this relay can never take: a body over its SIZE
// limit (RFC 1870, 5.3.4), 8-bit without 8BITMIME that cannot be made
// 7-bit (RFC 6152, 5.6.3), UTF-8
// without SMTPUTF8 (RFC 6531, 5.6.7).
func (c *Client) precheck(cn *conn, m *Message) error {
	if max := cn.maxSize(); max > 0 && m.Size > max {
		return &permanentError{Enhanced: "5.3.4", Text: fmt.Sprintf("message size %d exceeds the size limit %d of the relay", m.Size, max)}
	}
	if needsUTF8(m) && !cn.has("SMTPUTF8") {
		if !isASCII(m.From) {
			return &permanentError{Enhanced: "5.6.7", Text: "sender address needs SMTPUTF8, which the relay does not support (RFC 6531)"}
		}
		for _, r := range m.Recipients {
			if !isASCII(r.Addr) {
				return &permanentError{Enhanced: "5.6.7", Text: "recipient address needs SMTPUTF8, which the relay does not support (RFC 6531)"}
			}
		}
		ok, err := headersASCII(m)
		if err != nil {
			return err
		}
		if !ok {
			return &permanentError{Enhanced: "5.6.7", Text: "message headers contain UTF-8 and the relay does not support SMTPUTF8 (RFC 6531)"}
		}
	}
	if err := c.check7bit(cn, m); err != nil {
		return err
	}
	return nil
}
