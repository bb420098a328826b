package smarthost

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/relayq/relayq/config"
)

// Policy is the TLS policy towards the relay (RELAYQ_TLS).
type Policy int

// TLS policies, numbered in the order of config.TLSPolicies (their names);
// see the package doc.
const (
	Verify  Policy = iota // TLS required, certificate verified (default)
	Encrypt               // TLS required, certificate not verified
	May                   // TLS when offered
	None                  // no TLS
)

// ParsePolicy parses a RELAYQ_TLS value, one of config.TLSPolicies
// ("" is verify).
func ParsePolicy(s string) (Policy, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		return Verify, nil
	}
	if i := slices.Index(config.TLSPolicies, v); i >= 0 {
		return Policy(i), nil
	}
	return Verify, fmt.Errorf("unknown TLS policy %q (want one of %s)", s, strings.Join(config.TLSPolicies, ", "))
}

// String names the policy as RELAYQ_TLS does.
func (p Policy) String() string {
	if int(p) < 0 || int(p) >= len(config.TLSPolicies) {
		return config.TLSPolicies[Verify]
	}
	return config.TLSPolicies[p]
}

// requiresTLS reports whether the policy refuses plaintext.
func (p Policy) requiresTLS() bool { return p == Verify || p == Encrypt }

// parsePins decodes SHA-256 SPKI pins: base64 (optionally "sha256//"
// prefixed, as curl --pinnedpubkey) or 64 hex digits.
func parsePins(pins []string) ([][]byte, error) {
	var out [][]byte
	for _, p := range pins {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		s := strings.TrimPrefix(p, "sha256//")
		var b []byte
		var err error
		if len(s) == 64 {
			b, err = hex.DecodeString(s)
		} else {
			b, err = base64.StdEncoding.DecodeString(s)
		}
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("smarthost: TLS pin %q is not a SHA-256 digest in base64 or hex", p)
		}
		out = append(out, b)
	}
	return out, nil
}

// SPKIPin returns the base64 SHA-256 digest of the certificate's
// SubjectPublicKeyInfo: the value to put in a pin.
func SPKIPin(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:])
}

// tlsCheck is the verification result of one handshake.
type tlsCheck struct {
	verified  bool  // chain and name verified
	verifyErr error // why not
	pinned    bool  // a pin matched the leaf
	chain     []*x509.Certificate
}

// errPinMismatch is a handshake failure because no pin matched.
var errPinMismatch = errors.New("server public key matches none of the configured SPKI pins")

// tlsConfig builds the configuration for one connection to host. Under
// verify Go's verification runs as usual; under encrypt and may it runs
// too, but its result is only recorded (it decides whether credentials may
// be sent). Pins always have to match.
func (c *Client) tlsConfig(host string, chk *tlsCheck) *tls.Config {
	cfg := &tls.Config{
		ServerName: host,
		RootCAs:    c.o.RootCAs,
		MinVersion: c.o.MinTLS,
	}
	if c.o.ClientCert != nil {
		cert := c.o.ClientCert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	cfg.InsecureSkipVerify = true // verification is done below, with the same rules
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("server sent no certificate")
		}
		chk.chain = cs.PeerCertificates
		opts := x509.VerifyOptions{
			DNSName:       host,
			Roots:         c.o.RootCAs,
			Intermediates: x509.NewCertPool(),
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		chk.verified = err == nil
		chk.verifyErr = err
		if len(c.pins) > 0 {
			h := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			for _, p := range c.pins {
				if bytes.Equal(p, h[:]) {
					chk.pinned = true
				}
			}
			if !chk.pinned {
				return errPinMismatch
			}
		}
		if c.o.TLS == Verify && err != nil {
			return err
		}
		return nil
	}
	return cfg
}
