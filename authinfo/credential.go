package authinfo

import (
	"fmt"
	"log/slog"
	"strings"
)

// Credential is one entry of a credentials file, as Lookup returns it.
type Credential struct {
	User     string   // authorization identity (sendmail U:) / Postfix user
	AuthID   string   // authentication identity (I:), = User when absent
	Password Secret   // password (empty for OAuth credentials)
	Realm    string   // realm (R:); no mechanism relayq speaks uses it
	Mechs    []string // allowed mechanisms (M:), upper case; nil = any
	OAuth    *OAuth   // non-nil for XOAUTH2/OAUTHBEARER credentials
	Source   string   // "file:line" of the entry
	Key      string   // the key that matched, as written in the file
}

// OAuth is an OAuth 2.0 client registration and its tokens, for the
// XOAUTH2 and OAUTHBEARER mechanisms. Flow is one of FlowRefreshToken,
// FlowClientCredentials or FlowStatic (the parser fills it in when the file
// leaves it out); the smarthost package runs the token flows.
type OAuth struct {
	TokenURL, ClientID, Scope, Flow         string
	ClientSecret, RefreshToken, AccessToken Secret
}

// OAuth flows.
const (
	FlowRefreshToken      = "refresh_token"      // RFC 6749 §6: refresh token → access token
	FlowClientCredentials = "client_credentials" // RFC 6749 §4.4
	FlowStatic            = "static"             // a fixed access token, no token endpoint
)

// Query asks for the credential of one connection.
type Query struct {
	Sender  string // envelope sender ("" = null sender)
	Host    string // server name being connected to (no brackets, no port)
	Addr    string // server IP address connected to
	Port    int
	NextHop string // relay host exactly as written in RELAYQ_RELAYHOST, e.g. "[smtp.example.com]:587"
}

// String describes the credential with its secrets masked, e.g.
// `user "bob" password ******** (authinfo:3)`.
func (c Credential) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "user %q", c.User)
	if c.AuthID != "" && c.AuthID != c.User {
		fmt.Fprintf(&b, " authid %q", c.AuthID)
	}
	if c.OAuth != nil {
		fmt.Fprintf(&b, " oauth2 flow %s", c.OAuth.Flow)
		if c.OAuth.TokenURL != "" {
			fmt.Fprintf(&b, " token_url %s", c.OAuth.TokenURL)
		}
		if c.OAuth.ClientID != "" {
			fmt.Fprintf(&b, " client_id %q", c.OAuth.ClientID)
		}
		for _, s := range []struct {
			name string
			v    Secret
		}{{"client_secret", c.OAuth.ClientSecret}, {"refresh_token", c.OAuth.RefreshToken}, {"access_token", c.OAuth.AccessToken}} {
			if s.v != "" {
				fmt.Fprintf(&b, " %s %s", s.name, s.v)
			}
		}
		if c.OAuth.Scope != "" {
			fmt.Fprintf(&b, " scope %q", c.OAuth.Scope)
		}
	} else {
		fmt.Fprintf(&b, " password %s", c.Password)
	}
	if c.Realm != "" {
		fmt.Fprintf(&b, " realm %q", c.Realm)
	}
	if len(c.Mechs) > 0 {
		fmt.Fprintf(&b, " mechanisms %s", strings.Join(c.Mechs, " "))
	}
	if c.Source != "" {
		fmt.Fprintf(&b, " (%s)", c.Source)
	}
	return b.String()
}

// GoString is String: %#v never shows a secret either.
func (c Credential) GoString() string { return "authinfo.Credential{" + c.String() + "}" }

// LogValue logs the credential without its secrets.
func (c Credential) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("user", c.User), slog.String("source", c.Source), slog.String("key", c.Key)}
	if c.OAuth != nil {
		attrs = append(attrs, slog.String("oauth_flow", c.OAuth.Flow))
	}
	return slog.GroupValue(attrs...)
}
