package authinfo

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// oauthPrefix starts an OAuth value in sasl_passwd syntax.
const oauthPrefix = "oauth2:"

// oauthOpts is a parsed OAuth option list.
type oauthOpts struct {
	oauth *OAuth
	user  string
	mechs []string
}

// oauthKeys are the option names, in the order the error message lists them.
var oauthKeys = []string{"user", "token_url", "client_id", "client_secret", "refresh_token", "access_token", "scope", "flow", "mech"}

// parseOAuth parses `name=value,name=value…` (values %-decoded). It never
// quotes the input in its message.
func parseOAuth(s string) (oauthOpts, string) {
	var r oauthOpts
	o := &OAuth{}
	seen := map[string]bool{}
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n++
		name, raw, ok := strings.Cut(part, "=")
		if !ok {
			return r, fmt.Sprintf("OAuth option %d: expected name=value", n)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "mechs" || name == "mechanisms" {
			name = "mech"
		}
		known := false
		for _, k := range oauthKeys {
			if k == name {
				known = true
				break
			}
		}
		if !known {
			return r, fmt.Sprintf("OAuth option %d: unknown name (want one of %s)", n, strings.Join(oauthKeys, ", "))
		}
		if seen[name] {
			return r, fmt.Sprintf("OAuth option %s given twice", name)
		}
		seen[name] = true
		v, err := url.PathUnescape(strings.TrimSpace(raw))
		if err != nil {
			return r, fmt.Sprintf("OAuth option %s: bad %%-escape (write '%%' as %%25 and ',' as %%2C)", name)
		}
		if v == "" {
			return r, fmt.Sprintf("OAuth option %s: empty value", name)
		}
		switch name {
		case "user":
			r.user = v
		case "token_url":
			o.TokenURL = v
		case "client_id":
			o.ClientID = v
		case "client_secret":
			o.ClientSecret = Secret(v)
		case "refresh_token":
			o.RefreshToken = Secret(v)
		case "access_token":
			o.AccessToken = Secret(v)
		case "scope":
			o.Scope = v
		case "flow":
			o.Flow = v
		case "mech":
			m, msg := parseMechs(v)
			if msg != "" {
				return r, "OAuth option mech: " + msg
			}
			r.mechs = m
		}
	}
	if msg := checkOAuth(o); msg != "" {
		return r, msg
	}
	r.oauth = o
	return r, ""
}

// checkOAuth settles the flow (inferring it when absent, as documented) and
// checks that the flow has what it needs.
func checkOAuth(o *OAuth) string {
	switch strings.ToLower(strings.ReplaceAll(o.Flow, "-", "_")) {
	case "refresh", "refresh_token":
		o.Flow = FlowRefreshToken
	case "client_credentials", "client":
		o.Flow = FlowClientCredentials
	case "static", "token":
		o.Flow = FlowStatic
	case "":
		switch {
		case o.RefreshToken != "":
			o.Flow = FlowRefreshToken
		case o.ClientSecret != "" && o.TokenURL != "":
			o.Flow = FlowClientCredentials
		case o.AccessToken != "":
			o.Flow = FlowStatic
		default:
			return "OAuth entry needs refresh_token (with token_url and client_id), client_secret (client_credentials flow, with token_url and client_id) or access_token"
		}
	default:
		return "OAuth option flow: want refresh_token, client_credentials or static"
	}
	need := func(have bool, what string) string {
		if have {
			return ""
		}
		return fmt.Sprintf("OAuth %s flow needs %s", o.Flow, what)
	}
	var msgs []string
	switch o.Flow {
	case FlowRefreshToken:
		msgs = []string{need(o.TokenURL != "", "token_url"), need(o.ClientID != "", "client_id"), need(o.RefreshToken != "", "refresh_token")}
	case FlowClientCredentials:
		msgs = []string{need(o.TokenURL != "", "token_url"), need(o.ClientID != "", "client_id"), need(o.ClientSecret != "", "client_secret")}
	case FlowStatic:
		msgs = []string{need(o.AccessToken != "", "access_token")}
	}
	for _, m := range msgs {
		if m != "" {
			return m
		}
	}
	if o.TokenURL != "" {
		if msg := checkTokenURL(o.TokenURL); msg != "" {
			return msg
		}
	}
	return ""
}

// checkTokenURL wants an absolute https URL; plain http only to loopback.
func checkTokenURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return "OAuth option token_url: expected an absolute https:// URL"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || ip != nil && ip.IsLoopback() {
			return ""
		}
		return "OAuth option token_url: plain http is allowed only to loopback; use https"
	}
	return "OAuth option token_url: expected an absolute https:// URL"
}

// checkOAuthMechs wants a mechanism list, when given, to hold only OAuth
// mechanisms.
func checkOAuthMechs(mechs []string) string {
	for _, m := range mechs {
		if m != "XOAUTH2" && m != "OAUTHBEARER" {
			return "an OAuth credential can only be used with XOAUTH2 or OAUTHBEARER"
		}
	}
	return ""
}
