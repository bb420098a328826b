package smarthost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ProbeResult is the overall result of Probe; relayq probe turns it into
// its exit code.
type ProbeResult int

// Probe results.
const (
	ProbeOK           ProbeResult = iota // connected, TLS as required, AUTH accepted (or no credential)
	ProbeConnect                         // no relay address could be reached (DNS, TCP)
	ProbeTemp                            // the relay answered with a temporary failure (4xx, 5xx greeting, dropped)
	ProbeAuth                            // the relay refused the credentials, or none could be used
	ProbeTLS                             // TLS required but not offered, handshake or certificate verification failed
	ProbeConfig                          // the relay argument or the options are wrong
	ProbeNoCredential                    // no credential matches the relay and the options require one: no mail would be sent
)

// String names the result.
func (r ProbeResult) String() string {
	return [...]string{"ok", "connect failure", "temporary failure", "authentication refused", "TLS failure", "configuration error", "no credential for this relay"}[r]
}

// probeReport writes what Probe sees as it happens.
type probeReport struct {
	w     io.Writer
	last  []string // server lines since the last client line
	mechs []string
	mech  string
	tlsN  int
}

func (p *probeReport) printf(format string, a ...any) { fmt.Fprintf(p.w, format, a...) }

func (p *probeReport) trace(dir byte, line string) {
	if dir == '>' {
		p.last = nil
		return
	}
	p.last = append(p.last, line)
}

func (p *probeReport) ehlo(cn *conn) {
	when := "before TLS"
	if cn.tls != nil {
		when = "after TLS"
	}
	p.printf("EHLO capabilities (%s):\n", when)
	if len(cn.ehlo.Lines) > 0 {
		p.printf("  %s\n", cn.ehlo.Lines[0])
	}
	for _, l := range cn.ehlo.Lines[min(1, len(cn.ehlo.Lines)):] {
		p.printf("    %s\n", l)
	}
	if len(cn.discarded) > 0 {
		p.printf("  ignored (RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS): %s\n", strings.Join(cn.discarded, " "))
	}
}

func (p *probeReport) banner(cn *conn) {
	for i, l := range cn.banner.Lines {
		sep := "-"
		if i == len(cn.banner.Lines)-1 {
			sep = " "
		}
		p.printf("banner: %d%s%s\n", cn.banner.Code, sep, l)
	}
}

func (p *probeReport) tlsDone(cn *conn, chk *tlsCheck) {
	p.tlsN++
	if cn.tls != nil && p.tlsN == 1 && len(p.last) > 0 && cn.banner.Code != 0 {
		p.printf("STARTTLS: %s\n", strings.Join(p.last, " / "))
	}
	if cn.injected > 0 {
		p.printf("WARNING: the relay sent %d octets after its 220 reply to STARTTLS; discarded unread (CVE-2011-0411 command injection)\n", cn.injected)
	}
	st := cn.tls
	p.printf("TLS: %s, %s, server name %q\n", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.ServerName)
	p.chain(chk)
}

func (p *probeReport) tlsFailed(cn *conn, chk *tlsCheck, err error) {
	if cn.injected > 0 {
		p.printf("WARNING: the relay sent %d octets after its 220 reply to STARTTLS; discarded unread (CVE-2011-0411 command injection)\n", cn.injected)
	}
	p.printf("TLS handshake failed: %v\n", err)
	if len(chk.chain) > 0 {
		p.chain(chk)
	}
}

func (p *probeReport) chain(chk *tlsCheck) {
	p.printf("certificate chain:\n")
	for i, c := range chk.chain {
		p.printf("  %d subject: %s\n    issuer:  %s\n    valid:   %s to %s\n    names:   %s\n    pin:     sha256//%s\n",
			i, c.Subject, c.Issuer, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339),
			certNames(c), SPKIPin(c))
	}
	if chk.verified {
		p.printf("verification: OK (chain and host name verified)\n")
	} else {
		p.printf("verification: FAILED: %v\n", chk.verifyErr)
	}
	if chk.pinned {
		p.printf("pin: matched\n")
	}
}

func certNames(c *x509.Certificate) string {
	n := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		n = append(n, ip.String())
	}
	if len(n) == 0 {
		return "(none)"
	}
	return strings.Join(n, " ")
}

// Probe connects to relay (Postfix relayhost syntax; "" = Options.Relays)
// as delivery would and writes a report to w: the banner, the EHLO
// capabilities before and after STARTTLS, the certificate chain with the
// verification result, the AUTH mechanisms and the relay's answer to AUTH
// with the credential for sender (no mail is sent; secrets are never
// written). Without relay, the relays are sender's own when the
// credentials name some (SenderRelays), as for delivery. It stops at the
// first address that answers.
func (c *Client) Probe(ctx context.Context, w io.Writer, relay, sender string) ProbeResult {
	w = scrubWriter{w: w, s: c.secrets}
	var relays []Relay
	var err error
	if relay == "" {
		var own string
		relays, own, err = c.relaysFor(sender)
		if err == nil && own != "" {
			fmt.Fprintf(w, "sender %s: relay host %s (per-sender relay), not %s\n", sender, own, c.o.Relays)
		}
	} else {
		relays, err = ParseRelays(relay)
	}
	if err != nil {
		fmt.Fprintf(w, "%v\n", err)
		return ProbeConfig
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Deadline)
	defer cancel()
	p := &probeReport{w: w}
	res := ProbeConnect
	for _, r := range relays {
		p.printf("relay %s (TLS policy %s)\n", r.Spec, c.o.TLS)
		tgts, err := resolve(ctx, c.o.Resolver, r)
		if err != nil {
			p.printf("  %v\n", err)
			continue
		}
		for _, t := range tgts {
			mode := "STARTTLS"
			if c.o.Implicit.OnPort(t.port) && c.o.TLS != None {
				mode = "implicit TLS"
			} else if c.o.TLS == None {
				mode = "no TLS"
			}
			p.printf("connecting to %s (%s)\n", t, mode)
			cred, hasCred := c.lookupCred(t, sender)
			if hasCred {
				allowed := "any"
				if len(cred.Mechs) > 0 {
					allowed = strings.Join(cred.Mechs, " ")
				}
				kind := "password"
				if cred.OAuth != nil {
					kind = "OAuth"
				}
				p.printf("credential: %s user %q from %s (mechanisms allowed: %s)\n", kind, authID(cred), cred.Source, allowed)
				if cred.OAuth != nil {
					ti, err := c.TokenState(ctx, cred)
					if err != nil {
						p.printf("OAuth token: %v\n", err)
						p.printf("result: %s\n", ProbeAuth)
						return ProbeAuth
					}
					p.printf("OAuth token: %s\n", ti)
				}
			} else if err := c.needCred(t, false); err != nil {
				// The connection is still probed (TLS, AUTH offered), but
				// delivery would send nothing: that is the result.
				p.printf("credential: %v\n", err)
			} else {
				p.printf("credential: none found for this relay; AUTH will not be tried (RELAYQ_AUTH=none)\n")
			}
			if !c.o.Implicit.OnPort(t.port) && c.sniffImplicitTLS(ctx, t) {
				p.printf("no banner within %s, and the server answered a TLS handshake: port %d speaks TLS from the first byte (implicit TLS, as port 465 does)\n", probeGreetingWait, t.port)
				p.printf("set RELAYQ_TLS_IMPLICIT=yes for this relay (delivery would wait the greeting timeout, %s, and defer)\n", c.o.Timeouts.Greeting)
				p.printf("result: %s\n", ProbeConfig)
				return ProbeConfig
			}
			s, ph, err := c.dial(ctx, t, cred, hasCred, p)
			res = c.probeVerdict(p, ph, err, hasCred, s)
			if res == ProbeOK && c.needCred(t, hasCred) != nil {
				res = ProbeNoCredential
			}
			if s != nil {
				s.c.quit()
			}
			if res != ProbeConnect {
				p.printf("result: %s\n", res)
				return res
			}
		}
	}
	p.printf("result: %s\n", res)
	return res
}

func (c *Client) probeVerdict(p *probeReport, ph phase, err error, hasCred bool, s *session) ProbeResult {
	if err == nil {
		if hasCred {
			if s.authed != "" {
				p.printf("AUTH mechanisms offered: %s\n", strings.Join(p.mechs, " "))
				p.printf("AUTH %s: %s\n", s.authed, strings.Join(p.last, " / "))
			} else {
				p.printf("AUTH: the relay offers no AUTH; mail would be sent without authentication\n")
			}
		} else if s != nil {
			p.printf("AUTH mechanisms offered: %s\n", strings.Join(s.c.authMechs(), " "))
		}
		return ProbeOK
	}
	v := classify(ph, err)
	switch ph {
	case phConnect:
		p.printf("connect failed: %v\n", err)
		return ProbeConnect
	case phGreeting:
		p.printf("greeting refused: %v\n", err)
		return ProbeTemp
	case phHelo:
		p.printf("EHLO refused: %v\n", err)
		return ProbeTemp
	case phTLS:
		if errors.Is(err, errTLSRequired) {
			p.printf("STARTTLS not offered, but policy %s requires TLS: no AUTH and no mail would be sent\n", c.o.TLS)
		}
		var re *ReplyError
		if errors.As(err, &re) {
			p.printf("STARTTLS refused: %v\n", err)
			return ProbeTemp
		}
		var te *tlsError
		if !errors.As(err, &te) && !errors.Is(err, errTLSRequired) {
			p.printf("TLS failed: %v\n", err)
			return ProbeTemp
		}
		return ProbeTLS
	case phAuth:
		p.printf("AUTH mechanisms offered: %s\n", strings.Join(p.mechs, " "))
		var re *ReplyError
		if errors.As(err, &re) {
			p.printf("AUTH %s refused: %d %s %s\n", p.mech, re.Code, re.Enhanced, re.Text)
			if v.AuthFailed {
				return ProbeAuth
			}
			return ProbeTemp
		}
		p.printf("AUTH not completed: %v\n", err)
		var ns *errNoSafeAuth
		if errors.As(err, &ns) {
			return ProbeTLS
		}
		if isNetErr(err) {
			return ProbeTemp
		}
		return ProbeAuth
	}
	p.printf("failed: %v\n", err)
	return ProbeTemp
}
