package smarthost

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/relayq/relayq/wire"
)

// phase is the protocol step an error happened in.
type phase int

const (
	phConnect  phase = iota // DNS, TCP connect
	phGreeting              // 220 banner
	phHelo                  // EHLO/HELO
	phTLS                   // STARTTLS reply, handshake, TLS required
	phAuth                  // AUTH
	phMail                  // MAIL FROM
	phRcpt                  // RCPT TO
	phData                  // DATA (the 354), the body
	phDataDone              // the reply after the final "."
)

var phaseNames = [...]string{"connect", "greeting", "EHLO", "STARTTLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "end of DATA"}

func (p phase) String() string { return phaseNames[p] }

// verdict is what one error means for the recipients it concerns and for
// the rest of the delivery.
type verdict struct {
	Status     Status
	NextRelay  bool // try the next relay address / host
	AuthFailed bool // AUTH refused: alarm (Postfix smtp_sasl_auth_soft_bounce)
	TooMany    bool // 452 at RCPT: this and the remaining recipients in a new transaction
	Code       int
	Enhanced   string
	Text       string
}

// errTLSRequired: the policy needs TLS and the relay does not offer it.
var errTLSRequired = errors.New("TLS is required, but the relay does not offer STARTTLS")

// errNoSafeAuth: a credential exists but the connection is not safe for it.
type errNoSafeAuth struct{ why string }

func (e *errNoSafeAuth) Error() string { return "credentials not sent: " + e.why }

// errNoCredential: the relay has no matching credential and the options
// require one (RELAYQ_AUTH=required); nothing was sent.
type errNoCredential struct {
	relay, host string
	port        int
	file        string
}

func (e *errNoCredential) Error() string {
	file := e.file
	if file == "" {
		file = "(no credentials file configured)"
	}
	return fmt.Sprintf("no credential for relay %s (host %s, port %d) in %s: mail is not sent unauthenticated; add a line for %s to the file and reload (SIGHUP), or set RELAYQ_AUTH=none if this relay needs no AUTH",
		e.relay, e.host, e.port, file, e.relay)
}

// permanentError is a local permanent failure (size, 8BITMIME, SMTPUTF8).
type permanentError struct {
	Enhanced string
	Text     string
}

func (e *permanentError) Error() string { return e.Enhanced + " " + e.Text }

// authRelated reports reply codes that mean "not authenticated" rather
// than a judgement on the message (RFC 4954 §6, RFC 3463 X.7.8 etc.).
func authRelated(re *ReplyError) bool {
	if re.Code == 530 || re.Code == 534 || re.Code == 535 || re.Code == 538 {
		return true
	}
	switch re.Enhanced {
	case "5.7.8", "5.7.9", "5.7.11":
		return true
	case "5.7.0":
		// "Authentication required" in its many spellings (530, 502 …).
		return strings.Contains(strings.ToLower(re.Text), "authenticat")
	}
	return false
}

// refusedUnauthenticated reports a MAIL or RCPT refusal that, to a client
// that did not authenticate, means "not allowed to relay" or "log in
// first" (Postfix 554 5.7.1 Relay access denied, Microsoft 365 530 5.7.57,
// Gmail 530 5.7.0, any 5.7.x policy refusal): the client's own
// configuration is wrong, not the message (smtp_sasl_auth_soft_bounce).
func refusedUnauthenticated(p phase, re *ReplyError) bool {
	if p != phMail && p != phRcpt {
		return false
	}
	if strings.HasPrefix(re.Enhanced, "5.7.") || strings.HasPrefix(re.Enhanced, "4.7.") {
		return true
	}
	t := strings.ToLower(re.Text)
	return strings.Contains(t, "relay") || strings.Contains(t, "authenticat") || strings.Contains(t, "not permitted") || strings.Contains(t, "access denied")
}

// throttling reports a temporary "slow down" reply (421 or 454 that says
// so), which is a soft deferral, not an authentication alarm.
func throttling(re *ReplyError) bool {
	if re.Code == 421 {
		return true
	}
	if re.Code != 454 && re.Code != 451 && re.Code != 450 {
		return false
	}
	t := strings.ToLower(re.Text)
	for _, w := range []string{"too many", "rate limit", "throttl", "try again later", "slow down", "exceeded"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// authError is an AUTH that failed, with the credential it used: the
// reason that mailq and the log show for a refused login names the
// entry to fix (file:line), never the secret.
type authError struct {
	err        error
	mech, user string
	source     string // "file:line" of the credentials entry
}

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// which is the " (…)" that says which credential the relay refused.
func (e *authError) which() string {
	if e.source == "" {
		return fmt.Sprintf(" (AUTH %s as %q refused)", e.mech, e.user)
	}
	return fmt.Sprintf(" (AUTH %s as %q, the credential at %s, refused: check it there)", e.mech, e.user, e.source)
}

// classify turns an error in a phase into a verdict. It is the only place
// where relayq decides between delivered, deferred and bounced;
// anything it does not recognise is temporary.
func classify(p phase, err error) verdict { return classifyAuth(p, err, true) }

// classifyUnauth classifies err on a session that did not authenticate
// (AUTH not offered, or RELAYQ_AUTH=none): a "not allowed to relay"
// refusal at MAIL or RCPT defers with an alarm instead of bouncing.
func classifyUnauth(p phase, err error) verdict { return classifyAuth(p, err, false) }

// classifyAuth is classify with the session's authentication state.
func classifyAuth(p phase, err error, authed bool) verdict {
	if err == nil {
		return verdict{Status: Delivered}
	}
	var re *ReplyError
	if errors.As(err, &re) {
		v := verdict{Code: re.Code, Enhanced: re.Enhanced, Text: re.Text, Status: Deferred}
		c := re.Code
		switch {
		case c == 421:
			// Service closing / throttling: soft deferral; another relay may take it.
			v.NextRelay = true
		case p == phGreeting || p == phHelo || p == phTLS:
			// As Postfix smtp_skip_5xx_greeting: the relay is unusable now,
			// not the message.
			v.NextRelay = true
		case p == phAuth:
			v.NextRelay = true
			v.AuthFailed = !throttling(re)
			var ae *authError
			if v.AuthFailed && errors.As(err, &ae) {
				v.Text += ae.which()
			}
		case c >= 200 && c < 400:
			// Only a 2xx after the final "." delivers. Any other positive
			// reply where a different one was due is a protocol error:
			// temporary, never "delivered" (no body went out).
			if p == phDataDone && c < 300 {
				v.Status = Delivered
			} else {
				v.Text = fmt.Sprintf("unexpected reply to %s: %d %s", p, c, re.Text)
			}
		case c >= 400 && c < 500:
			v.TooMany = p == phRcpt && c == 452
		case c == 552 && p == phRcpt:
			// RFC 5321 §4.5.3.1.10: 552 at RCPT is "too many recipients".
			v.TooMany = true
		case authRelated(re):
			// Not authenticated (530 5.7.0, 5.7.8 …): misconfiguration must not
			// bounce the queue (RELIABILITY R3).
			v.AuthFailed = true
		case !authed && refusedUnauthenticated(p, re):
			// Relay access denied to a client that did not log in: a local
			// misconfiguration, never a bounce.
			v.AuthFailed = true
			v.Text = re.Text + " (relayq did not authenticate: check the credential for this relay)"
		case c >= 500:
			v.Status = Bounced
		}
		return v
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return verdict{Status: Bounced, Enhanced: pe.Enhanced, Text: pe.Text}
	}
	v := verdict{Status: Deferred, NextRelay: true}
	var nc *errNoCredential
	if errors.As(err, &nc) {
		return verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Enhanced: "4.7.0", Text: nc.Error()}
	}
	var nm *errNoMech
	var ns *errNoSafeAuth
	var te *tlsError
	var de *dnsError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		v.NextRelay = false
		v.Enhanced, v.Text = "4.4.7", fmt.Sprintf("delivery time limit reached during %s: %v", p, err)
	case errors.Is(err, errTLSRequired):
		v.Enhanced, v.Text = "4.7.4", "TLS is required, but the relay does not offer STARTTLS; no AUTH and no MAIL sent"
	case errors.As(err, &te):
		v.Enhanced, v.Text = "4.7.5", "TLS handshake with the relay failed: "+te.err.Error()
	case errors.As(err, &nm):
		v.AuthFailed = true
		v.Enhanced, v.Text = "4.7.0", nm.Error()
	case errors.As(err, &ns):
		v.Enhanced, v.Text = "4.7.0", ns.Error()
	case errors.As(err, &de):
		v.Enhanced, v.Text = "4.4.3", "relay lookup failed: "+de.Error()
	case p == phConnect:
		v.Enhanced, v.Text = "4.4.1", "cannot connect to relay: "+err.Error()
	case p == phDataDone:
		// The final "." went out but no reply came: the relay may have the
		// message. Defer (at-least-once) instead of racing another relay.
		v.NextRelay = false
		v.Enhanced, v.Text = "4.4.2", fmt.Sprintf("lost connection with relay after end of data: %v", err)
	case p == phAuth:
		v.Enhanced, v.Text = "4.7.0", fmt.Sprintf("authentication failed: %v", err)
		v.AuthFailed = !isNetErr(err)
	default:
		v.Enhanced, v.Text = "4.4.2", fmt.Sprintf("lost connection with relay during %s: %v", p, err)
	}
	return v
}

// Kinds of relay-level failure (Outcome.Kind): the configuration may be
// their cause, so a configuration reload retries mail deferred for them.
const (
	KindAuth       = "auth"       // login refused, no common mechanism, relay access denied without login
	KindTLS        = "tls"        // TLS required but not offered, handshake or verification failed, credentials not safe to send
	KindConnect    = "connect"    // no address reached, greeting or EHLO refused, relay lookup failed
	KindCredential = "credential" // no credential for the relay (no credential, no send)
)

// kindOf is the kind of a session failure in phase p with verdict v.
func kindOf(p phase, err error, v verdict) string {
	var nc *errNoCredential
	var te *tlsError
	var ns *errNoSafeAuth
	switch {
	case errors.As(err, &nc):
		return KindCredential
	case v.AuthFailed || p == phAuth && !errors.As(err, &ns):
		return KindAuth
	case p == phTLS || errors.Is(err, errTLSRequired) || errors.As(err, &te) || errors.As(err, &ns):
		return KindTLS
	case p == phConnect || p == phGreeting || p == phHelo:
		return KindConnect
	}
	return ""
}

// isNetErr reports I/O failures, as opposed to local SASL errors.
func isNetErr(err error) bool {
	type timeout interface{ Timeout() bool }
	var t timeout
	return errors.As(err, &t) || strings.Contains(err.Error(), "EOF") ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe") ||
		errors.Is(err, wire.ErrTooLong)
}

// rcptOutcome fills a recipient's outcome from a verdict.
func (v verdict) rcpt(addr string) RcptOutcome {
	return RcptOutcome{Addr: addr, Status: v.Status, Reply: wire.Reply{Code: v.Code, Enhanced: v.Enhanced, Text: bound(v.Text)}}
}

// bound keeps stored reply text short (RELIABILITY I2).
func bound(s string) string {
	const max = 1000
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
