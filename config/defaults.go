package config

import (
	"fmt"
	"sync"
)

// SASLMechanisms are the SASL mechanisms relayq knows, strongest first
// (RELIABILITY S6): for passwords SCRAM keeps the password from the
// server, CRAM-MD5 at least does not send it, PLAIN is preferred to LOGIN
// as RFC 4616 defines it; for OAuth tokens the standard OAUTHBEARER (RFC
// 7628) before Google's XOAUTH2. RELAYQ_SASL_MECHANISMS may name a subset;
// the relay client uses this order.
var SASLMechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2"}

// OAuthMechanisms are the entries of SASLMechanisms that carry an OAuth
// token instead of a password.
var OAuthMechanisms = []string{"OAUTHBEARER", "XOAUTH2"}

// TLSPolicies are the values of RELAYQ_TLS, strictest first: verify (TLS
// required, certificate checked), encrypt (TLS required, not checked),
// may (TLS when offered), none. smarthost.Policy numbers them in this
// order; the relay client and this package's validation both read them
// from here.
var TLSPolicies = []string{"verify", "encrypt", "may", "none"}

var defaults = sync.OnceValue(func() *Config {
	c, err := LoadEnviron([]string{"RELAYQ_CONFIG="})
	if err != nil {
		panic(fmt.Sprintf("config: the default values do not load: %v", err))
	}
	return c
})

// Defaults is the configuration with every key at its default value (no
// env file, no environment): the one definition of relayq's defaults (the
// default tags). Packages that take an option left zero use the value
// from here, so that `relayq config`, the daemon and a test that builds
// options by hand agree. The result is shared: do not modify it.
func Defaults() *Config { return defaults() }
