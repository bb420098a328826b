package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/smarthost"
)

// runProbe is `relayq probe [-sender ADDR] [-trace] [-send ADDR] [RELAY]`:
// connect to the relay as delivery would, show what it offers and try AUTH
// (with -send, then send one test message). Exit codes: 0 ok, 69
// unreachable (or the test message refused), 75 temporary failure, 77
// AUTH refused, 78 configuration or TLS verification failure.
func runProbe(s stdio, args []string) int {
	fl := flag.NewFlagSet("probe", flag.ContinueOnError)
	fl.SetOutput(s.err)
	sender := fl.String("sender", "", "envelope sender whose credential to use (per-sender authinfo entries)")
	trace := fl.Bool("trace", false, "also print the SMTP dialogue (AUTH payloads redacted)")
	send := fl.String("send", "", "after a successful probe, send one test message to this address and print the relay's reply (its queue ID)")
	fl.Usage = func() {
		fmt.Fprintf(s.err, "usage: relayq probe [-sender ADDR] [-trace] [-send ADDR] [RELAY]\n\n"+
			"Connects to RELAY (Postfix relayhost syntax; default RELAYQ_RELAYHOST) as delivery would,\n"+
			"prints the banner, EHLO capabilities before and after STARTTLS, the certificate chain and\n"+
			"its verification, the AUTH mechanisms, and the relay's answer to AUTH with the configured\n"+
			"credentials. No mail is sent, unless -send ADDR: then one test message goes to ADDR\n"+
			"the way delivery sends mail (not queued, never retried) and the relay's reply, which\n"+
			"names its queue ID, is printed; the envelope sender is -sender, else RELAYQ_SENDER_REWRITE,\n"+
			"else root@RELAYQ_DOMAIN. A port that answers no banner but a TLS handshake is reported\n"+
			"as implicit TLS (set RELAYQ_TLS_IMPLICIT=yes). Exit: 0 ok, 69 unreachable or test message\n"+
			"refused, 75 temporary failure, 77 AUTH refused, 78 configuration or TLS failure.\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return exUsage
	}
	if fl.NArg() > 1 {
		fl.Usage()
		return exUsage
	}
	relay := strings.Join(fl.Args(), "")
	cfg, code := loadConfig(s)
	if code != exOK {
		return code
	}
	if err := cfg.DeliveryProblem(); err != nil {
		// Probing with a default in place of a bad value would test a
		// configuration delivery does not use.
		fmt.Fprintf(s.err, "relayq probe: configuration error (delivery waits until it is fixed):\n%v\n", err)
		return exConfig
	}
	if relay == "" && strings.TrimSpace(cfg.RelayHost) == "" {
		fmt.Fprintf(s.err, "relayq probe: no relay: give one as argument or set RELAYQ_RELAYHOST\n")
		return exConfig
	}
	creds, err := probeCredentials(cfg, s)
	if err != nil {
		fmt.Fprintf(s.err, "relayq probe: %v\n", err)
		return exConfig
	}
	log := newLogger(cfg, s.err)
	creds, _, err = withSenderRelays(cfg, creds, log)
	if err != nil {
		fmt.Fprintf(s.err, "relayq probe: %v\n", err)
		return exConfig
	}
	o, err := smarthostOptions(cfg, creds, log)
	if err != nil {
		fmt.Fprintf(s.err, "relayq probe: %v\n", err)
		return exConfig
	}
	if relay != "" {
		o.Relays = relay
	}
	if *trace {
		o.Trace = func(l string) { fmt.Fprintf(s.out, "  %s\n", l) }
	}
	c, err := smarthost.New(o)
	if err != nil {
		fmt.Fprintf(s.err, "relayq probe: %v\n", err)
		return exConfig
	}
	defer c.Close()
	if *send != "" && (strings.ContainsAny(*send, "<>\r\n \t") || !strings.Contains(*send, "@")) {
		fmt.Fprintf(s.err, "relayq probe: -send %q: expected one address, user@domain\n", *send)
		return exUsage
	}
	switch c.Probe(context.Background(), s.out, relay, *sender) {
	case smarthost.ProbeOK:
		if *send != "" {
			return probeSend(c, s.out, cfg, *sender, *send)
		}
		return exOK
	case smarthost.ProbeConnect:
		return exUnavail
	case smarthost.ProbeTemp:
		return exTempFail
	case smarthost.ProbeAuth:
		return exNoPerm
	default:
		return exConfig
	}
}

// probeCredentials reads RELAYQ_AUTHINFO. A missing file means no
// credentials (said on stderr); any other problem is an error.
func probeCredentials(cfg *config.Config, s stdio) (smarthost.Credentials, error) {
	if cfg.AuthInfo == "" {
		return nil, nil
	}
	m, err := authinfo.ParseFile(cfg.AuthInfo)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(s.err, "relayq probe: no credentials file %s: AUTH will not be tried\n", cfg.AuthInfo)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// withSenderRelays adds the sender relay map (RELAYQ_SENDER_RELAYHOST_MAP)
// to creds, which may be nil: the result is an authinfo.Routes, so that
// the delivery client sends a mapped sender's mail to its own relay host
// (smarthost.SenderRelays). The store is returned for SIGHUP; it is nil,
// and creds returned as they are, when the key is empty. A map that is
// missing, unsafe or bad is an error: mail would go to the wrong relay.
func withSenderRelays(cfg *config.Config, creds smarthost.Credentials, log *slog.Logger) (smarthost.Credentials, *authinfo.RelayStore, error) {
	if cfg.SenderRelayHostMap == "" {
		return creds, nil, nil
	}
	rs, err := authinfo.NewRelayStore(cfg.SenderRelayHostMap)
	if err != nil {
		return nil, nil, fmt.Errorf("RELAYQ_SENDER_RELAYHOST_MAP: %w", err)
	}
	rs.SetLogger(log)
	r := authinfo.Routes{Relays: rs}
	if creds != nil {
		r.Credentials = creds
	}
	return r, rs, nil
}

// oauthTokensPath is where rotated OAuth refresh tokens are kept: beside
// the spool, which the delivering user may write (the credentials file is
// root's).
func oauthTokensPath(cfg *config.Config) string {
	return filepath.Join(filepath.Dir(cfg.Spool), "oauth-tokens.json")
}

// smarthostOptions turns the configuration into the delivery client's
// options (shared by probe and the daemon). creds may be nil (no AUTH).
func smarthostOptions(cfg *config.Config, creds smarthost.Credentials, log *slog.Logger) (smarthost.Options, error) {
	pol, err := smarthost.ParsePolicy(cfg.TLS)
	if err != nil {
		return smarthost.Options{}, fmt.Errorf("RELAYQ_TLS: %w", err)
	}
	o := smarthost.Options{
		Relays:              cfg.RelayHost,
		TLS:                 pol,
		Pins:                config.DeliveryList(cfg.TLSPins),
		AllowUnverifiedAuth: cfg.TLSAuthUnverified,
		Mechanisms:          config.DeliveryList(cfg.SASLMechanisms),
		DiscardEHLO:         config.DeliveryList(cfg.DiscardEHLOKeywords),
		HeloName:            cfg.HeloName,
		MaxConns:            cfg.RelayConnections,
		IdleTimeout:         cfg.RelayIdleTimeout,
		MaxReuse:            cfg.RelayReuseLimit,
		RateLimit:           cfg.RelayRate,
		Deadline:            cfg.DeliveryDeadline,
		DeadlinePerMB:       cfg.DeliveryDeadlinePerMB,
		Logger:              log,
		Timeouts:            smarthost.TimeoutsFrom(&cfg.Delivery),
		TokenStore:          authinfo.NewRotatedTokens(oauthTokensPath(cfg)),
	}
	if creds != nil {
		o.Credentials = creds
	}
	o.RequireCredential, o.CredentialsFile = cfg.RequireCredential(), cfg.AuthInfo
	if o.HeloName == "" && cfg.Domain != "" && !strings.Contains(cfg.Domain, " ") {
		if h, err := os.Hostname(); err == nil && !strings.Contains(h, ".") {
			o.HeloName = h + "." + cfg.Domain
		}
	}
	switch cfg.TLSMinVersion {
	case "1.3":
		o.MinTLS = tls.VersionTLS13
	default:
		o.MinTLS = tls.VersionTLS12
	}
	if o.Implicit, err = smarthost.ParseImplicit(cfg.TLSImplicit); err != nil {
		return o, fmt.Errorf("RELAYQ_TLS_IMPLICIT: %w", err)
	}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return o, fmt.Errorf("RELAYQ_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("RELAYQ_TLS_CA_FILE: %s holds no PEM certificate", cfg.TLSCAFile)
		}
		o.RootCAs = pool
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return o, fmt.Errorf("RELAYQ_TLS_CERT_FILE/RELAYQ_TLS_KEY_FILE: %w", err)
		}
		o.ClientCert = &cert
	}
	return o, nil
}
