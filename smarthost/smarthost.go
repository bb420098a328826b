// Package smarthost makes delivery attempts to the smarthost: dial, TLS
// policy, the TLS-before-AUTH check, SASL mechanism choice, MAIL/RCPT/DATA,
// and an Outcome per recipient. It stores nothing and knows no spool.
//
// # Relay hosts
//
// Options.Relays uses Postfix relayhost syntax, several entries separated by
// commas or white space, tried in order (failover):
//
//	[host]:port   address records of host only (no MX lookup)
//	[host]        the same, port 25
//	host:port     MX lookup for host first, address records when it has none
//	host          the same, port 25 (Postfix's relayhost default, service smtp)
//	[192.0.2.1]:587, [::1]:587, [ipv6:2001:db8::1]:465   literal addresses
//
// The port may be a number or one of the names smtp (25), submission (587),
// submissions or smtps (465). Port 465 means implicit TLS (RFC 8314) unless
// Options.Implicit says otherwise; every other port uses STARTTLS
// (RFC 3207). When a relay is found by MX lookup the certificate is checked
// against the MX host name, as Postfix's "verify" level does; use [host]
// to pin the name.
//
// # TLS policies
//
//	verify   TLS required; the chain is checked against the system roots or
//	         Options.RootCAs and the name against the relay host name (SNI).
//	encrypt  TLS required; the certificate is not checked.
//	may      STARTTLS when offered, plaintext otherwise.
//	none     plaintext.
//
// TLS 1.2 is the minimum. Optional SPKI pins (SHA-256 of the server's
// SubjectPublicKeyInfo) must match the leaf certificate under every policy
// that uses TLS. A relay that does not offer STARTTLS when the policy needs
// it is sent neither AUTH nor MAIL: the message is deferred with a reply
// that says why (RFC 3207 §6, RELIABILITY S1). After STARTTLS everything
// learned before — extensions, and any octets the server sent after its 220
// reply — is forgotten and EHLO sent again (RFC 3207 §4.2, CVE-2011-0411).
//
// # Credentials
//
// A credential is sent only over TLS whose certificate verified (or matched
// a pin), or, with Options.AllowUnverifiedAuth, over any TLS; over plaintext
// only when the policy is none and the relay's address is loopback
// (RELIABILITY S3, S5). The mechanism is the strongest that the relay
// offers and the credential allows (authinfo M:, Options.Mechanisms):
// OAUTHBEARER, XOAUTH2 for OAuth credentials; SCRAM-SHA-256, SCRAM-SHA-1,
// CRAM-MD5, PLAIN, LOGIN for passwords.
//
// # Extensions
//
//	SIZE        a message larger than the relay's announced limit is bounced
//	            with 5.3.4 without MAIL (RFC 1870); SIZE= goes with MAIL.
//	8BITMIME    BODY=8BITMIME when Message.Body8Bit. A relay without
//	            8BITMIME gets the message converted to 7-bit MIME
//	            (smarthost/mime7, RFC 6152 §3); 8-bit inside
//	            multipart/signed is bounced with 5.6.3 instead.
//	SMTPUTF8    sent when the message needs it (RFC 6531). Without it at the
//	            relay, the message is bounced with 5.6.7 if an address or a
//	            header line is not ASCII, and delivered plainly otherwise.
//	DSN         NOTIFY, ORCPT (RCPT) and RET, ENVID (MAIL) in xtext when the
//	            relay offers DSN (RFC 3461); Outcome.DSN says whether it did.
//	PIPELINING  [RSET,] MAIL, RCPT… and DATA go as one group (RFC 2920):
//	            two round trips per message on a reused connection.
//	CHUNKING    the body goes as BDAT chunks instead of DATA (RFC 3030),
//	            not dot-stuffed. With PIPELINING a body of up to 256 KiB
//	            goes as "BDAT n LAST" in the same flight as [RSET,] MAIL
//	            and RCPT: one round trip per message; a larger one
//	            follows the replies to MAIL and RCPT in 256 KiB chunks,
//	            at most 8 unanswered. BODY= stays 7BIT or 8BITMIME (the
//	            body is line-oriented text; BINARYMIME is never declared).
//	            A refused chunk ends the transaction; a body that cannot
//	            be read to its end sends no last chunk, so the relay keeps
//	            nothing. Once the last chunk is out, a lost connection
//	            defers (the relay may have the message), as after DATA's
//	            final dot.
//
// A pooled connection is checked before reuse, without blocking, for
// an end of file or an unasked reply from the relay (closed while idle);
// such a connection is replaced before anything is written to it.
//
// The body is sent as stored (CRLF line ends), dot-stuffed (RFC 5321
// §4.5.2) for DATA; a bare LF goes out as CRLF and a stray CR as a space. A part
// with a line over 998 octets is sent quoted-printable (it decodes to the
// same octets); where it cannot be re-encoded the line is folded with CRLF
// SP, as Postfix does.
//
// # Connections
//
// Connections are pooled per relay entry and reused for later messages
// (RSET first), at most Options.MaxConns at a time; an idle one is closed
// after Options.IdleTimeout, none is reused once Options.MaxReuse old. A
// pooled connection the relay has closed is replaced once. Each command
// has its RFC 5321 §4.5.3.2 timeout (Timeouts) and the whole Deliver call
// a deadline (Options.Deadline plus DeadlinePerMB per MB). Replies are
// bounded (RELIABILITY I2): a line of at most 2048 octets, 128 lines.
//
// # Outcomes
//
// outcome.go is the single place where replies and errors become a Status
// (RELIABILITY R1, R3, R4): 2xx delivered, 4xx deferred, 5xx bounced with
// the reply kept; AUTH failures defer and set Outcome.AuthFailed; network
// errors and timeouts move on to the next relay, otherwise defer; unknown
// means temporary.
package smarthost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/wire"
)

// Status is the result for one recipient.
type Status int

// Recipient statuses. The zero value is Deferred: unknown means temporary.
const (
	Deferred  Status = iota // try again later
	Delivered               // the relay accepted responsibility (2xx after DATA)
	Bounced                 // permanent failure (5xx): return to sender
)

// String names the status.
func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case Bounced:
		return "bounced"
	default:
		return "deferred"
	}
}

// Recipient is one envelope recipient with its RFC 3461 parameters.
type Recipient struct {
	Addr   string // forward-path without angle brackets
	Notify string // NOTIFY value as given ("SUCCESS,FAILURE", "NEVER"), "" = default
	ORcpt  string // ORCPT decoded, "addr-type;address" (e.g. "rfc822;a@example.com")
}

// Message is what Deliver sends.
type Message struct {
	ID         string // queue ID, for logs
	From       string // reverse-path without angle brackets; "" is the null sender
	Recipients []Recipient
	Ret, EnvID string // RFC 3461 RET ("FULL", "HDRS", "") and ENVID (decoded)
	Body8Bit   bool   // body has 8-bit octets: BODY=8BITMIME
	SMTPUTF8   bool   // UTF-8 in an address or header: SMTPUTF8
	Size       int64  // body size in octets (SIZE=, RFC 1870)
	// Body opens the body (CRLF line ends, not dot-stuffed). It is called
	// at DATA time, maybe more than once (failover).
	Body func() (io.ReadCloser, error)

	prep *prepared // the body converted for relays that need it (downgrade.go)
}

// RcptOutcome is the result for one recipient. Code is the relay's reply
// code; it is 0 when no relay replied and relayq made the result itself
// (connection failure, TLS required, size limit), in which case Enhanced
// and Text still say why.
type RcptOutcome struct {
	Addr       string
	Status     Status
	wire.Reply // the relay's reply, or the local reason when Code is 0
}

// String is "addr: status reply", for logs and test failures.
func (o RcptOutcome) String() string {
	return o.Addr + ": " + o.Status.String() + " " + o.Reply.String()
}

// Outcome is the result of one Deliver call.
type Outcome struct {
	Relay      string        // relay that gave the replies ("" if none was reached), e.g. "smtp.example.com[192.0.2.1]:587"
	Recipients []RcptOutcome // one per Message.Recipients, same order
	AuthFailed bool          // a relay refused AUTH (535, 534, 454 …) or none could be done: raise an alarm; the recipients it concerned are Deferred
	// NoSession reports that the attempt ended without a usable session:
	// no relay address could be reached, greeted, secured and logged in
	// to (a relay-level failure, not the message's: the daemon's
	// dead-relay hold).
	NoSession bool
	// Kind is the kind of the relay-level failure (KindAuth, KindTLS,
	// KindConnect, KindCredential), "" when there was none.
	Kind string
	// DSN reports that the relay announced DSN (RFC 3461) and took the
	// NOTIFY/ORCPT/RET/ENVID parameters. When false, recipients that asked
	// for NOTIFY=SUCCESS are owed a "relayed" DSN (RFC 3461 §5.2.2).
	DSN bool
}

// Credentials finds the credential for a connection (authinfo.Map and
// authinfo.Store satisfy it).
type Credentials interface {
	Lookup(q Query) (Credential, bool)
}

// SenderRelays is an optional interface of Options.Credentials: a
// per-sender relay host (Postfix sender_dependent_relayhost_maps). When it
// returns ok, its relays replace Options.Relays for that sender, and the
// credential is looked up for them. authinfo.Routes pairs a credentials
// map with a sender relay map.
type SenderRelays interface {
	RelayHost(sender string) (relays string, ok bool)
}

// Dialer opens network connections (*net.Dialer satisfies it).
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Resolver looks up MX and address records (*net.Resolver satisfies it).
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Timeouts are the per-command client timeouts of RFC 5321 §4.5.3.2. Zero
// fields take the defaults (Postfix's smtp_*_timeout values).
type Timeouts struct {
	Connect      time.Duration // TCP connect (30 s)
	Greeting     time.Duration // 220 banner (300 s)
	Helo         time.Duration // EHLO/HELO reply (300 s)
	StartTLS     time.Duration // STARTTLS reply (300 s)
	TLSHandshake time.Duration // TLS handshake (60 s)
	Auth         time.Duration // each AUTH round (300 s)
	Mail         time.Duration // MAIL reply (300 s)
	Rcpt         time.Duration // RCPT reply (300 s)
	Data         time.Duration // 354 reply to DATA (120 s)
	DataBlock    time.Duration // each write of the body (180 s)
	DataDone     time.Duration // reply after the final "." (600 s)
	Rset         time.Duration // RSET reply (20 s)
	Quit         time.Duration // QUIT reply (300 s)
}

func (t Timeouts) withDefaults() Timeouts {
	d := TimeoutsFrom(&config.Defaults().Delivery)
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&d.Connect, t.Connect)
	set(&d.Greeting, t.Greeting)
	set(&d.Helo, t.Helo)
	set(&d.StartTLS, t.StartTLS)
	set(&d.TLSHandshake, t.TLSHandshake)
	set(&d.Auth, t.Auth)
	set(&d.Mail, t.Mail)
	set(&d.Rcpt, t.Rcpt)
	set(&d.Data, t.Data)
	set(&d.DataBlock, t.DataBlock)
	set(&d.DataDone, t.DataDone)
	set(&d.Rset, t.Rset)
	set(&d.Quit, t.Quit)
	return d
}

// Implicit chooses between implicit TLS and STARTTLS.
type Implicit int

// Implicit TLS modes.
const (
	ImplicitAuto   Implicit = iota // implicit TLS on port 465, STARTTLS elsewhere
	ImplicitAlways                 // implicit TLS on every port (Postfix smtp_tls_wrappermode=yes)
	ImplicitNever                  // STARTTLS even on port 465
)

// ParseImplicit reads the RELAYQ_TLS_IMPLICIT values: "auto" (or ""),
// "yes", "no", in any case.
func ParseImplicit(s string) (Implicit, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ImplicitAuto, nil
	case "yes":
		return ImplicitAlways, nil
	case "no":
		return ImplicitNever, nil
	}
	return ImplicitAuto, fmt.Errorf("%q is not auto, yes or no", s)
}

// OnPort reports whether a connection to port starts with TLS (implicit
// TLS, RFC 8314) rather than STARTTLS.
func (i Implicit) OnPort(port int) bool {
	switch i {
	case ImplicitAlways:
		return true
	case ImplicitNever:
		return false
	}
	return port == 465
}

// Options configure a Client. Only Relays is required.
type Options struct {
	Relays string // RELAYQ_RELAYHOST syntax, see the package doc

	TLS                 Policy            // verify (zero value), encrypt, may, none
	Implicit            Implicit          // implicit TLS choice
	RootCAs             *x509.CertPool    // nil: system roots
	ClientCert          *tls.Certificate  // optional client certificate
	Pins                []string          // SHA-256 SPKI pins, base64 ("sha256//" prefix allowed) or hex
	MinTLS              uint16            // minimum TLS version; 0 and anything below are TLS 1.2
	AllowUnverifiedAuth bool              // send credentials over TLS whose certificate did not verify (encrypt, may)
	Credentials         Credentials       // nil: no AUTH
	RequireCredential   bool              // a relay with no matching credential gets no mail (RELAYQ_AUTH=required): deferred, nothing sent
	CredentialsFile     string            // named in the reason when no credential matches (RELAYQ_AUTHINFO)
	Mechanisms          []string          // allowed SASL mechanisms, nil = any (intersected with authinfo M:)
	HeloName            string            // EHLO name; default the host name
	DiscardEHLO         []string          // EHLO keywords treated as not offered (Postfix smtp_discard_ehlo_keywords), any case
	Dialer              Dialer            // default: *net.Dialer
	Resolver            Resolver          // default: SpecialUseResolver(net.DefaultResolver)
	HTTPClient          *http.Client      // OAuth token endpoint client; default http.DefaultClient
	TokenStore          TokenStore        // keeps rotated OAuth refresh tokens across restarts; nil: memory only
	Timeouts            Timeouts          // per-command timeouts
	Deadline            time.Duration     // whole delivery (all relays), default 60 s …
	DeadlinePerMB       time.Duration     // … plus this per MB of body, default 1 s (mox)
	MaxConns            int               // concurrent connections per relay entry (all its addresses), default 4
	IdleTimeout         time.Duration     // idle pooled connections closed after this, default 5 s
	MaxReuse            time.Duration     // a connection is not reused once this old, default 300 s (Postfix smtp_connection_reuse_time_limit)
	RateLimit           float64           // messages per second per relay, 0 = unlimited
	Logger              *slog.Logger      // default: discard
	Trace               func(line string) // protocol trace (AUTH payloads redacted), nil = off
}

// Client delivers messages; it is safe for concurrent use and keeps a pool
// of connections per relay.
type Client struct {
	o       Options
	relays  []Relay
	pins    [][]byte
	log     *slog.Logger
	tokens  *tokenCache
	secrets *secretSet // every secret handled, masked in all text that leaves

	mu     sync.Mutex
	pools  map[string]*relayPool
	rates  map[string]*rateLimiter
	closed bool

	discard map[string]bool // Options.DiscardEHLO, upper case; read-only after New (its conns share it)
}

// New checks the options and returns a Client.
func New(o Options) (*Client, error) {
	relays, err := ParseRelays(o.Relays)
	if err != nil {
		return nil, err
	}
	if o.TLS < Verify || o.TLS > None {
		return nil, fmt.Errorf("smarthost: unknown TLS policy %d", o.TLS)
	}
	pins, err := parsePins(o.Pins)
	if err != nil {
		return nil, err
	}
	for _, m := range o.Mechanisms {
		if !knownMech(m) {
			return nil, fmt.Errorf("smarthost: unknown SASL mechanism %q (known: %s)", m, strings.Join(allMechs, ", "))
		}
	}
	if o.MinTLS < tls.VersionTLS12 {
		o.MinTLS = tls.VersionTLS12
	}
	if o.HeloName == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		o.HeloName = h
	}
	if strings.ContainsAny(o.HeloName, " \t\r\n") {
		return nil, fmt.Errorf("smarthost: HELO name %q contains white space", o.HeloName)
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{}
	}
	if o.Resolver == nil {
		o.Resolver = SpecialUseResolver(net.DefaultResolver)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	o.Timeouts = o.Timeouts.withDefaults()
	if o.Deadline <= 0 {
		o.Deadline = 60 * time.Second
	}
	if o.DeadlinePerMB <= 0 {
		o.DeadlinePerMB = time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Second
	}
	if o.MaxReuse <= 0 {
		o.MaxReuse = 300 * time.Second
	}
	if o.RateLimit < 0 {
		return nil, fmt.Errorf("smarthost: negative rate limit %v", o.RateLimit)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secrets := newSecretSet()
	if tr := o.Trace; tr != nil {
		o.Trace = func(line string) { tr(secrets.scrub(line)) }
	}
	scrubbed := slog.New(scrubHandler{h: log.Handler(), s: secrets})
	c := &Client{
		o:       o,
		relays:  relays,
		pins:    pins,
		log:     scrubbed,
		tokens:  newTokenCache(o.HTTPClient, secrets, o.TokenStore, scrubbed),
		secrets: secrets,
		pools:   map[string]*relayPool{},
		rates:   map[string]*rateLimiter{},
		discard: map[string]bool{},
	}
	for _, k := range o.DiscardEHLO {
		c.discard[strings.ToUpper(strings.TrimSpace(k))] = true
	}
	return c, nil
}

// Close closes the pooled connections. Deliveries running concurrently
// finish; their connections are closed instead of pooled.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	pools := c.pools
	c.pools = map[string]*relayPool{}
	c.mu.Unlock()
	for _, p := range pools {
		p.closeIdle()
	}
	return nil
}

// CloseIdle closes the pooled connections that are idle; the client stays
// usable. The daemon calls it after reloading the credentials, so that the
// next delivery logs in with the new ones instead of reusing a session
// authenticated with the old (a revoked password keeps no session alive).
// Sessions in use finish and are pooled as usual.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	pools := make([]*relayPool, 0, len(c.pools))
	for _, p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		p.closeIdle()
	}
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("smarthost: client closed")
