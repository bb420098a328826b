package smarthost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
)

func TestClassify(t *testing.T) {
	re := func(code int, enh, text string) error {
		return &ReplyError{Command: "X", Code: code, Enhanced: enh, Text: text}
	}
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	cases := []struct {
		name string
		p    phase
		err  error
		want verdict
	}{
		{"ok", phDataDone, nil, verdict{Status: Delivered}},
		{"greeting 554", phGreeting, re(554, "5.3.2", "no"), verdict{Status: Deferred, NextRelay: true, Code: 554, Enhanced: "5.3.2", Text: "no"}},
		{"greeting 421", phGreeting, re(421, "", "busy"), verdict{Status: Deferred, NextRelay: true, Code: 421, Text: "busy"}},
		{"EHLO 550", phHelo, re(550, "", "go away"), verdict{Status: Deferred, NextRelay: true, Code: 550, Text: "go away"}},
		{"STARTTLS 454", phTLS, re(454, "4.7.0", "TLS not available"), verdict{Status: Deferred, NextRelay: true, Code: 454, Enhanced: "4.7.0", Text: "TLS not available"}},
		{"AUTH 535", phAuth, re(535, "5.7.8", "bad"), verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Code: 535, Enhanced: "5.7.8", Text: "bad"}},
		{"AUTH 535 names the credential", phAuth, &authError{err: re(535, "5.7.8", "bad"), mech: "PLAIN", user: "me", source: "/etc/relayq/authinfo:3"},
			verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Code: 535, Enhanced: "5.7.8", Text: `bad (AUTH PLAIN as "me", the credential at /etc/relayq/authinfo:3, refused: check it there)`}},
		{"AUTH 535 credential without source", phAuth, &authError{err: re(535, "5.7.8", "bad"), mech: "LOGIN", user: "me"},
			verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Code: 535, Enhanced: "5.7.8", Text: `bad (AUTH LOGIN as "me" refused)`}},
		{"AUTH 454 throttle keeps the reply", phAuth, &authError{err: re(454, "4.7.0", "Too many login attempts, try again later"), mech: "PLAIN", user: "me", source: "f:1"},
			verdict{Status: Deferred, NextRelay: true, Code: 454, Enhanced: "4.7.0", Text: "Too many login attempts, try again later"}},
		{"AUTH 534", phAuth, re(534, "5.7.9", "weak"), verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Code: 534, Enhanced: "5.7.9", Text: "weak"}},
		{"AUTH 454", phAuth, re(454, "4.7.0", "Temporary authentication failure"), verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Code: 454, Enhanced: "4.7.0", Text: "Temporary authentication failure"}},
		{"AUTH 454 throttle", phAuth, re(454, "4.7.0", "Too many login attempts, try again later"), verdict{Status: Deferred, NextRelay: true, Code: 454, Enhanced: "4.7.0", Text: "Too many login attempts, try again later"}},
		{"AUTH 421", phAuth, re(421, "4.7.0", "slow down"), verdict{Status: Deferred, NextRelay: true, Code: 421, Enhanced: "4.7.0", Text: "slow down"}},
		{"MAIL 451", phMail, re(451, "4.3.0", "later"), verdict{Status: Deferred, Code: 451, Enhanced: "4.3.0", Text: "later"}},
		{"MAIL 553", phMail, re(553, "5.1.8", "bad sender"), verdict{Status: Bounced, Code: 553, Enhanced: "5.1.8", Text: "bad sender"}},
		{"MAIL 552", phMail, re(552, "5.3.4", "too big"), verdict{Status: Bounced, Code: 552, Enhanced: "5.3.4", Text: "too big"}},
		{"MAIL 530 auth required", phMail, re(530, "5.7.0", "Authentication required"), verdict{Status: Deferred, AuthFailed: true, Code: 530, Enhanced: "5.7.0", Text: "Authentication required"}},
		{"MAIL 502 5.7.0 authenticate first", phMail, re(502, "5.7.0", "Please authenticate first"), verdict{Status: Deferred, AuthFailed: true, Code: 502, Enhanced: "5.7.0", Text: "Please authenticate first"}},
		{"MAIL 550 5.7.0 policy", phMail, re(550, "5.7.0", "policy"), verdict{Status: Bounced, Code: 550, Enhanced: "5.7.0", Text: "policy"}},
		{"RCPT 550", phRcpt, re(550, "5.1.1", "unknown"), verdict{Status: Bounced, Code: 550, Enhanced: "5.1.1", Text: "unknown"}},
		{"RCPT 452", phRcpt, re(452, "4.5.3", "too many"), verdict{Status: Deferred, TooMany: true, Code: 452, Enhanced: "4.5.3", Text: "too many"}},
		{"RCPT 552", phRcpt, re(552, "5.5.3", "too many"), verdict{Status: Deferred, TooMany: true, Code: 552, Enhanced: "5.5.3", Text: "too many"}},
		{"RCPT 450", phRcpt, re(450, "4.2.1", "busy"), verdict{Status: Deferred, Code: 450, Enhanced: "4.2.1", Text: "busy"}},
		{"RCPT 421", phRcpt, re(421, "4.4.2", "closing"), verdict{Status: Deferred, NextRelay: true, Code: 421, Enhanced: "4.4.2", Text: "closing"}},
		{"DATA 554", phData, re(554, "5.5.1", "no valid recipients"), verdict{Status: Bounced, Code: 554, Enhanced: "5.5.1", Text: "no valid recipients"}},
		{"DATA 250 instead of 354", phData, re(250, "2.0.0", "ok"), verdict{Status: Deferred, Code: 250, Enhanced: "2.0.0", Text: "unexpected reply to DATA: 250 ok"}},
		{"MAIL 354", phMail, re(354, "", "go"), verdict{Status: Deferred, Code: 354, Text: "unexpected reply to MAIL FROM: 354 go"}},
		{"RCPT 220", phRcpt, re(220, "", "hi"), verdict{Status: Deferred, Code: 220, Text: "unexpected reply to RCPT TO: 220 hi"}},
		{"end 354", phDataDone, re(354, "", "more"), verdict{Status: Deferred, Code: 354, Text: "unexpected reply to end of DATA: 354 more"}},
		{"end 250", phDataDone, re(250, "2.0.0", "ok"), verdict{Status: Delivered, Code: 250, Enhanced: "2.0.0", Text: "ok"}},
		{"end 451", phDataDone, re(451, "4.3.0", "later"), verdict{Status: Deferred, Code: 451, Enhanced: "4.3.0", Text: "later"}},
		{"end 554", phDataDone, re(554, "5.7.1", "spam"), verdict{Status: Bounced, Code: 554, Enhanced: "5.7.1", Text: "spam"}},
		{"size", phMail, &permanentError{"5.3.4", "too big"}, verdict{Status: Bounced, Enhanced: "5.3.4", Text: "too big"}},
		{"TLS required", phTLS, errTLSRequired, verdict{Status: Deferred, NextRelay: true, Enhanced: "4.7.4", Text: "TLS is required, but the relay does not offer STARTTLS; no AUTH and no MAIL sent"}},
		{"handshake", phTLS, &tlsError{errors.New("x509: bad")}, verdict{Status: Deferred, NextRelay: true, Enhanced: "4.7.5", Text: "TLS handshake with the relay failed: x509: bad"}},
		{"no mech", phAuth, &errNoMech{[]string{"PLAIN"}, []string{"SCRAM-SHA-256"}}, verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Enhanced: "4.7.0",
			Text: "no common SASL mechanism: relay offers [PLAIN], credential allows [SCRAM-SHA-256]"}},
		{"no safe auth", phAuth, &errNoSafeAuth{"plaintext"}, verdict{Status: Deferred, NextRelay: true, Enhanced: "4.7.0", Text: "credentials not sent: plaintext"}},
		{"dns", phConnect, &dnsError{errors.New("nx")}, verdict{Status: Deferred, NextRelay: true, Enhanced: "4.4.3", Text: "relay lookup failed: nx"}},
		{"refused", phConnect, errors.New("connection refused"), verdict{Status: Deferred, NextRelay: true, Enhanced: "4.4.1", Text: "cannot connect to relay: connection refused"}},
		{"drop in DATA", phData, io.ErrUnexpectedEOF, verdict{Status: Deferred, NextRelay: true, Enhanced: "4.4.2", Text: "lost connection with relay during DATA: unexpected EOF"}},
		{"timeout after dot", phDataDone, timeout, verdict{Status: Deferred, Enhanced: "4.4.2", Text: "lost connection with relay after end of data: " + timeout.Error()}},
		{"timeout in RCPT", phRcpt, timeout, verdict{Status: Deferred, NextRelay: true, Enhanced: "4.4.2", Text: "lost connection with relay during RCPT TO: " + timeout.Error()}},
		{"cancelled", phMail, context.Canceled, verdict{Status: Deferred, Enhanced: "4.4.7", Text: "delivery time limit reached during MAIL FROM: context canceled"}},
		{"unknown", phMail, errors.New("???"), verdict{Status: Deferred, NextRelay: true, Enhanced: "4.4.2", Text: "lost connection with relay during MAIL FROM: ???"}},
		{"wrapped reply", phRcpt, fmt.Errorf("x: %w", re(550, "5.1.1", "u")), verdict{Status: Bounced, Code: 550, Enhanced: "5.1.1", Text: "u"}},
	}
	for _, tc := range cases {
		if got := classify(tc.p, tc.err); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// TestClassifyUnauthenticated: on a session that did not authenticate,
// "not allowed to relay" at MAIL or RCPT defers with the alarm; the same
// reply after the final dot, or a non-policy 5xx, still bounces.
func TestClassifyUnauthenticated(t *testing.T) {
	re := func(code int, enh, text string) error {
		return &ReplyError{Command: "X", Code: code, Enhanced: enh, Text: text}
	}
	const hint = " (relayq did not authenticate: check the credential for this relay)"
	cases := []struct {
		name string
		p    phase
		err  error
		want verdict
	}{
		{"RCPT 554 5.7.1 relay access denied", phRcpt, re(554, "5.7.1", "Relay access denied"), verdict{Status: Deferred, AuthFailed: true, Code: 554, Enhanced: "5.7.1", Text: "Relay access denied" + hint}},
		{"RCPT 550 5.7.1 unable to relay", phRcpt, re(550, "5.7.1", "Unable to relay"), verdict{Status: Deferred, AuthFailed: true, Code: 550, Enhanced: "5.7.1", Text: "Unable to relay" + hint}},
		{"MAIL 530 5.7.57 M365", phMail, re(530, "5.7.57", "Client not authenticated to send mail"), verdict{Status: Deferred, AuthFailed: true, Code: 530, Enhanced: "5.7.57", Text: "Client not authenticated to send mail"}},
		{"MAIL 550 5.7.0 policy", phMail, re(550, "5.7.0", "policy"), verdict{Status: Deferred, AuthFailed: true, Code: 550, Enhanced: "5.7.0", Text: "policy" + hint}},
		{"RCPT 554 no enhanced relaying denied", phRcpt, re(554, "", "Relaying denied"), verdict{Status: Deferred, AuthFailed: true, Code: 554, Text: "Relaying denied" + hint}},
		{"RCPT 550 5.1.1 unknown user", phRcpt, re(550, "5.1.1", "unknown"), verdict{Status: Bounced, Code: 550, Enhanced: "5.1.1", Text: "unknown"}},
		{"end 554 5.7.1 spam", phDataDone, re(554, "5.7.1", "spam"), verdict{Status: Bounced, Code: 554, Enhanced: "5.7.1", Text: "spam"}},
		{"no credential", phAuth, &errNoCredential{relay: "[127.0.0.1]:587", host: "127.0.0.1", port: 587, file: "/etc/relayq/authinfo"}, verdict{Status: Deferred, NextRelay: true, AuthFailed: true, Enhanced: "4.7.0",
			Text: "no credential for relay [127.0.0.1]:587 (host 127.0.0.1, port 587) in /etc/relayq/authinfo: mail is not sent unauthenticated; add a line for [127.0.0.1]:587 to the file and reload (SIGHUP), or set RELAYQ_AUTH=none if this relay needs no AUTH"}},
	}
	for _, tc := range cases {
		if got := classifyUnauth(tc.p, tc.err); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}
