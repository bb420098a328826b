package main

// relayq oauth login: the first refresh token for an XOAUTH2/OAUTHBEARER
// credential (package oauthlogin), written into the credentials file.

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/oauthlogin"
)

const oauthUsage = `usage: relayq oauth login [-provider microsoft|google] [-tenant T]
                          -client-id ID [-client-secret S | -client-secret-file F]
                          [-user ADDRESS] [-flow device|code] [-scope S] [-mech M]
                          [-auth-url U] [-token-url U] [-device-url U] [-port N]
                          [-authinfo FILE] [-timeout D] RELAY

Signs in to the OAuth 2.0 provider of the relay and stores the refresh
token it issues as RELAY's credential in the credentials file (sasl_passwd
syntax: "RELAY oauth2:user=…,client_id=…,refresh_token=…,token_url=…");
relayq then gets and renews access tokens itself. The token is never
printed. An entry for RELAY is replaced, every other line kept; the file
is written atomically, a new one with mode 0600.

  -provider microsoft  Microsoft 365 / Outlook: the device flow (open a URL on
                       any device, type the code shown); scope SMTP.Send and
                       offline_access; -tenant (default common)
  -provider google     Gmail: the code flow with PKCE, the browser coming back
                       to a listener on 127.0.0.1 (-port, default any);
                       scope https://mail.google.com/
  Without -provider, give -token-url and -device-url (device) or -auth-url
  (code).

  relayq oauth login -provider microsoft -client-id 00000000-... \
      -user me@example.com '[smtp.office365.com]:587'

Exit: 0 signed in and stored, 64 usage, 69 the provider refused or the
sign-in timed out, 73 the credentials file cannot be written.
`

// runOAuth is `relayq oauth SUBCOMMAND`.
func runOAuth(s stdio, args []string) int {
	if len(args) == 0 || args[0] != "login" {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(s.out, oauthUsage)
			return exOK
		}
		fmt.Fprint(s.err, oauthUsage)
		return exUsage
	}
	fl := flag.NewFlagSet("oauth login", flag.ContinueOnError)
	fl.SetOutput(s.err)
	fl.Usage = func() { fmt.Fprint(s.err, oauthUsage) }
	provider := fl.String("provider", "", "")
	tenant := fl.String("tenant", "common", "")
	clientID := fl.String("client-id", "", "")
	clientSecret := fl.String("client-secret", "", "")
	secretFile := fl.String("client-secret-file", "", "")
	user := fl.String("user", "", "")
	flow := fl.String("flow", "", "")
	scope := fl.String("scope", "", "")
	mech := fl.String("mech", "", "")
	authURL := fl.String("auth-url", "", "")
	tokenURL := fl.String("token-url", "", "")
	deviceURL := fl.String("device-url", "", "")
	port := fl.Int("port", 0, "")
	file := fl.String("authinfo", "", "")
	timeout := fl.Duration("timeout", 10*time.Minute, "")
	if err := fl.Parse(args[1:]); err != nil {
		return exUsage
	}
	if fl.NArg() != 1 || *clientID == "" {
		fmt.Fprint(s.err, oauthUsage)
		return exUsage
	}
	relay := fl.Arg(0)
	o := oauthlogin.Options{ClientID: *clientID, ClientSecret: *clientSecret, AuthURL: *authURL,
		TokenURL: *tokenURL, DeviceURL: *deviceURL, Flow: *flow, Port: *port, Out: s.out}
	if *provider != "" {
		p, ok := oauthlogin.Providers[*provider]
		if !ok {
			fmt.Fprintf(s.err, "relayq oauth login: -provider %q: want microsoft or google\n", *provider)
			return exUsage
		}
		t := func(u string) string { return strings.ReplaceAll(u, "{tenant}", *tenant) }
		o.AuthURL, o.TokenURL, o.DeviceURL = cmp.Or(o.AuthURL, t(p.AuthURL)), cmp.Or(o.TokenURL, t(p.TokenURL)), cmp.Or(o.DeviceURL, t(p.DeviceURL))
		o.Flow = cmp.Or(o.Flow, p.Flow)
		*scope = cmp.Or(*scope, p.Scope)
	}
	if o.Flow == "" {
		o.Flow = "device"
		if o.DeviceURL == "" {
			o.Flow = "code"
		}
	}
	if *scope != "" {
		o.Scopes = strings.Fields(*scope)
	}
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			fmt.Fprintf(s.err, "relayq oauth login: %v\n", err)
			return exNoInput
		}
		o.ClientSecret = strings.TrimSpace(string(b))
	}
	if *file == "" {
		*file = config.Defaults().AuthInfo
		if c, err := config.Load(); err == nil {
			*file = c.AuthInfo
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tok, err := oauthlogin.Login(ctx, o)
	if err != nil {
		fmt.Fprintf(s.err, "relayq oauth login: %v\n", err)
		return exUnavail
	}
	opts := []string{}
	add := func(k, v string) {
		if v != "" {
			opts = append(opts, k+"="+oauthEscape(v))
		}
	}
	add("user", *user)
	add("token_url", o.TokenURL)
	add("client_id", o.ClientID)
	add("client_secret", o.ClientSecret)
	add("refresh_token", tok.RefreshToken)
	add("scope", strings.Join(o.Scopes, " "))
	add("mech", *mech)
	replaced, err := authinfo.SetEntry(*file, relay, "oauth2:"+strings.Join(opts, ","))
	if err != nil {
		fmt.Fprintf(s.err, "relayq oauth login: signed in, but the token could not be stored: %v\n", err)
		return exCantCrt
	}
	if replaced {
		// Whatever the entry held (a password too) is gone: say so.
		fmt.Fprintf(s.out, "signed in; replaced the entry for %s in %s (whatever it held before) with the OAuth credential (refresh token stored, not shown)\n", relay, *file)
	} else {
		fmt.Fprintf(s.out, "signed in; added the OAuth credential for %s to %s (refresh token stored, not shown)\n", relay, *file)
	}
	if !tok.Expiry.IsZero() {
		fmt.Fprintf(s.out, "the first access token is valid until %s; relayq renews it with the refresh token\n", tok.Expiry.Format(time.RFC3339))
	}
	fmt.Fprintf(s.out, "next: relayq probe %s\n", relay)
	return exOK
}

// oauthEscape %-encodes what the oauth2: option list cannot hold as is.
func oauthEscape(v string) string {
	return strings.NewReplacer("%", "%25", ",", "%2C").Replace(v)
}
