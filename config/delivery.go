package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Delivery holds the keys of the smarthost client: TLS details beyond the
// RELAYQ_TLS policy, SASL, connection reuse and limits, and the
// RFC 5321 §4.5.3.2 client timeouts (defaults as Postfix's smtp_*_timeout).
type Delivery struct {
	// TLSCAFile replaces the system roots for verifying the relay.
	TLSCAFile string `envconfig:"TLS_CA_FILE" desc:"PEM file of CA certificates that verify the relay (default: the system roots)"`
	// TLSCertFile is an optional client certificate (PEM).
	TLSCertFile string `envconfig:"TLS_CERT_FILE" desc:"client certificate (PEM) to present to the relay; needs RELAYQ_TLS_KEY_FILE"`
	// TLSKeyFile is the client certificate's private key (PEM).
	TLSKeyFile string `envconfig:"TLS_KEY_FILE" desc:"private key (PEM) of RELAYQ_TLS_CERT_FILE"`
	// TLSPins are SHA-256 SPKI pins of the relay's certificate.
	TLSPins string `envconfig:"TLS_PINS" desc:"comma-separated SHA-256 pins of the relay's public key (base64, sha256//base64 or hex; relayq probe prints them); one must match"`
	// TLSMinVersion is the minimum TLS version.
	TLSMinVersion string `envconfig:"TLS_MIN_VERSION" default:"1.2" desc:"minimum TLS version: 1.2 or 1.3"`
	// TLSImplicit chooses implicit TLS (RFC 8314) or STARTTLS.
	TLSImplicit string `envconfig:"TLS_IMPLICIT" default:"auto" desc:"implicit TLS: auto (port 465 only), yes (every relay, Postfix smtp_tls_wrappermode), no (always STARTTLS)"`
	// TLSAuthUnverified allows AUTH over TLS whose certificate did not verify.
	TLSAuthUnverified bool `envconfig:"TLS_AUTH_UNVERIFIED" default:"false" desc:"send credentials over TLS whose certificate did not verify (policies encrypt and may); off: only after verification or a matching pin"`
	// Auth says whether a relay with no matching credential gets mail.
	Auth string `envconfig:"AUTH" default:"required" desc:"required: mail goes to a relay only with a matching credential in RELAYQ_AUTHINFO; without one it waits in the queue, deferred, with a reason naming the relay and the file (no credential, no send). none: a relay with no matching credential gets mail without AUTH (a relay that trusts this host by address)"`
	// SASLMechanisms restricts the SASL mechanisms.
	SASLMechanisms string `envconfig:"SASL_MECHANISMS" desc:"comma-separated SASL mechanisms relayq may use (default all: SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN, OAUTHBEARER, XOAUTH2); the strongest offered is used"`
	// DiscardEHLOKeywords are EHLO keywords treated as not offered.
	DiscardEHLOKeywords string `envconfig:"SMTP_DISCARD_EHLO_KEYWORDS" desc:"comma-separated EHLO keywords relayq ignores in every relay's reply, as if not offered (Postfix smtp_discard_ehlo_keywords): chunking for a relay whose BDAT is broken (relayq then sends DATA), pipelining, 8bitmime (relayq then converts 8-bit mail to 7-bit MIME), size, dsn, smtputf8"`
	// HeloName is the EHLO name.
	HeloName string `envconfig:"HELO_NAME" desc:"name sent in EHLO (default: the host name)"`
	// RelayConnections bounds concurrent connections per relay.
	RelayConnections int `envconfig:"RELAY_CONNECTIONS" default:"4" desc:"concurrent connections per relay (all addresses of one RELAYQ_RELAYHOST entry)"`
	// RelayIdleTimeout closes idle reusable connections.
	RelayIdleTimeout time.Duration `envconfig:"RELAY_IDLE_TIMEOUT" default:"5s" desc:"idle connections to the relay are closed after this"`
	// RelayReuseLimit stops reusing a connection once it is this old.
	RelayReuseLimit time.Duration `envconfig:"RELAY_REUSE_LIMIT" default:"300s" desc:"a connection is not reused once this old (Postfix smtp_connection_reuse_time_limit)"`
	// RelayRate limits messages per second per relay.
	RelayRate float64 `envconfig:"RELAY_RATE" default:"0" desc:"messages per second per relay (0: no limit), for providers that throttle"`
	// DeliveryDeadline bounds one delivery attempt (all relays).
	DeliveryDeadline time.Duration `envconfig:"DELIVERY_DEADLINE" default:"60s" desc:"time limit of one delivery attempt over all relays, plus RELAYQ_DELIVERY_DEADLINE_PER_MB per MB of message"`
	// DeliveryDeadlinePerMB extends the deadline for large messages.
	DeliveryDeadlinePerMB time.Duration `envconfig:"DELIVERY_DEADLINE_PER_MB" default:"1s" desc:"added to RELAYQ_DELIVERY_DEADLINE per MB of message"`

	// SMTP client timeouts (RFC 5321 §4.5.3.2).
	ConnectTimeout      time.Duration `envconfig:"SMTP_CONNECT_TIMEOUT" default:"30s" desc:"TCP connect timeout"`
	GreetingTimeout     time.Duration `envconfig:"SMTP_GREETING_TIMEOUT" default:"300s" desc:"wait for the 220 banner"`
	HeloTimeout         time.Duration `envconfig:"SMTP_HELO_TIMEOUT" default:"300s" desc:"wait for the EHLO reply"`
	StartTLSTimeout     time.Duration `envconfig:"SMTP_STARTTLS_TIMEOUT" default:"300s" desc:"wait for the STARTTLS reply"`
	TLSHandshakeTimeout time.Duration `envconfig:"SMTP_TLS_HANDSHAKE_TIMEOUT" default:"60s" desc:"TLS handshake"`
	AuthTimeout         time.Duration `envconfig:"SMTP_AUTH_TIMEOUT" default:"300s" desc:"each AUTH exchange step"`
	MailTimeout         time.Duration `envconfig:"SMTP_MAIL_TIMEOUT" default:"300s" desc:"wait for the MAIL FROM reply"`
	RcptTimeout         time.Duration `envconfig:"SMTP_RCPT_TIMEOUT" default:"300s" desc:"wait for each RCPT TO reply"`
	DataInitTimeout     time.Duration `envconfig:"SMTP_DATA_INIT_TIMEOUT" default:"120s" desc:"wait for the 354 reply to DATA"`
	DataXferTimeout     time.Duration `envconfig:"SMTP_DATA_XFER_TIMEOUT" default:"180s" desc:"each write of the message body"`
	DataDoneTimeout     time.Duration `envconfig:"SMTP_DATA_DONE_TIMEOUT" default:"600s" desc:"wait for the reply after the final dot"`
	RsetTimeout         time.Duration `envconfig:"SMTP_RSET_TIMEOUT" default:"20s" desc:"wait for the RSET reply"`
	QuitTimeout         time.Duration `envconfig:"SMTP_QUIT_TIMEOUT" default:"300s" desc:"wait for the QUIT reply"`
}

// RELAYQ_AUTH values.
const (
	AuthRequired = "required" // no credential, no send (the default)
	AuthNone     = "none"     // a relay with no matching credential gets mail unauthenticated
)

// RequireCredential reports whether a relay with no matching credential
// must get no mail (RELAYQ_AUTH is not "none").
func (d *Delivery) RequireCredential() bool { return d.Auth != AuthNone }

// DeliveryList splits a comma- or space-separated list value (RELAYQ_TLS_PINS,
// RELAYQ_SASL_MECHANISMS), dropping empty items.
func DeliveryList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// IsEHLOKeyword reports whether s has the syntax of an EHLO keyword
// (RFC 5321 §4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")).
func IsEHLOKeyword(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks the delivery keys.
func (d *Delivery) Validate() error {
	switch d.Auth {
	case "", AuthRequired, AuthNone:
	default:
		return fmt.Errorf("RELAYQ_AUTH: %q is not %s or %s", d.Auth, AuthRequired, AuthNone)
	}
	switch d.TLSMinVersion {
	case "", "1.2", "1.3":
	default:
		return fmt.Errorf("RELAYQ_TLS_MIN_VERSION: %q is not 1.2 or 1.3", d.TLSMinVersion)
	}
	switch strings.ToLower(d.TLSImplicit) {
	case "", "auto", "yes", "no":
	default:
		return fmt.Errorf("RELAYQ_TLS_IMPLICIT: %q is not auto, yes or no", d.TLSImplicit)
	}
	if (d.TLSCertFile == "") != (d.TLSKeyFile == "") {
		return fmt.Errorf("RELAYQ_TLS_CERT_FILE and RELAYQ_TLS_KEY_FILE must be set together")
	}
	for _, m := range DeliveryList(d.SASLMechanisms) {
		if !slices.Contains(SASLMechanisms, strings.ToUpper(strings.TrimSpace(m))) {
			return fmt.Errorf("RELAYQ_SASL_MECHANISMS: unknown mechanism %q (known: %s)", m, strings.Join(SASLMechanisms, ", "))
		}
	}
	for _, k := range DeliveryList(d.DiscardEHLOKeywords) {
		if !IsEHLOKeyword(k) {
			return fmt.Errorf("RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS: %q is not an EHLO keyword (letters, digits and '-', starting with a letter or digit; RFC 5321 §4.1.1.1)", k)
		}
	}
	if d.RelayConnections < 1 {
		return fmt.Errorf("RELAYQ_RELAY_CONNECTIONS: must be at least 1, not %d", d.RelayConnections)
	}
	if d.RelayRate < 0 {
		return fmt.Errorf("RELAYQ_RELAY_RATE: must not be negative")
	}
	for _, k := range []struct {
		key string
		v   time.Duration
	}{
		{"RELAYQ_RELAY_IDLE_TIMEOUT", d.RelayIdleTimeout}, {"RELAYQ_RELAY_REUSE_LIMIT", d.RelayReuseLimit},
		{"RELAYQ_DELIVERY_DEADLINE", d.DeliveryDeadline},
		{"RELAYQ_SMTP_CONNECT_TIMEOUT", d.ConnectTimeout}, {"RELAYQ_SMTP_GREETING_TIMEOUT", d.GreetingTimeout},
		{"RELAYQ_SMTP_HELO_TIMEOUT", d.HeloTimeout}, {"RELAYQ_SMTP_STARTTLS_TIMEOUT", d.StartTLSTimeout},
		{"RELAYQ_SMTP_TLS_HANDSHAKE_TIMEOUT", d.TLSHandshakeTimeout}, {"RELAYQ_SMTP_AUTH_TIMEOUT", d.AuthTimeout},
		{"RELAYQ_SMTP_MAIL_TIMEOUT", d.MailTimeout}, {"RELAYQ_SMTP_RCPT_TIMEOUT", d.RcptTimeout},
		{"RELAYQ_SMTP_DATA_INIT_TIMEOUT", d.DataInitTimeout}, {"RELAYQ_SMTP_DATA_XFER_TIMEOUT", d.DataXferTimeout},
		{"RELAYQ_SMTP_DATA_DONE_TIMEOUT", d.DataDoneTimeout}, {"RELAYQ_SMTP_RSET_TIMEOUT", d.RsetTimeout},
		{"RELAYQ_SMTP_QUIT_TIMEOUT", d.QuitTimeout},
	} {
		if k.v <= 0 {
			return fmt.Errorf("%s: must be a positive duration, not %v", k.key, k.v)
		}
	}
	return nil
}
