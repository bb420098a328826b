package smarthost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenEarly is how long before its expiry an access token is renewed.
const tokenEarly = 5 * time.Minute

// tokenCache holds access tokens per OAuth credential. Tokens come from
// the credential's token endpoint: the refresh-token flow (Gmail,
// delegated Microsoft 365) or the client-credentials flow (Microsoft 365
// app-only); a credential with only an access token uses it as is.
type tokenCache struct {
	hc      *http.Client
	secrets *secretSet
	mu      sync.Mutex
	m       map[string]*cachedToken
}

type cachedToken struct {
	mu      sync.Mutex
	tok     *oauth2.Token
	refresh string // newest refresh token (rotation)
}

func newTokenCache(hc *http.Client, s *secretSet) *tokenCache {
	return &tokenCache{hc: hc, secrets: s, m: map[string]*cachedToken{}}
}

// flow returns the credential's OAuth flow: "refresh_token",
// "client_credentials" or "static".
func oauthFlow(o *OAuth) (string, error) {
	f := strings.ToLower(strings.ReplaceAll(o.Flow, "-", "_"))
	switch f {
	case "refresh", "refresh_token":
		return "refresh_token", nil
	case "client_credentials", "client":
		return "client_credentials", nil
	case "static", "token":
		return "static", nil
	case "":
		switch {
		case o.TokenURL != "" && o.RefreshToken != "":
			return "refresh_token", nil
		case o.TokenURL != "" && o.ClientSecret != "":
			return "client_credentials", nil
		case o.AccessToken != "":
			return "static", nil
		}
		return "", errors.New("OAuth credential has neither a token endpoint with a refresh token or client secret, nor an access token")
	}
	return "", fmt.Errorf("unknown OAuth flow %q (want refresh_token, client_credentials or static)", o.Flow)
}

func (tc *tokenCache) entry(cr Credential) *cachedToken {
	key := cr.Source + "\x00" + cr.Key + "\x00" + cr.User + "\x00" + cr.OAuth.ClientID + "\x00" + cr.OAuth.TokenURL
	tc.mu.Lock()
	defer tc.mu.Unlock()
	e := tc.m[key]
	if e == nil {
		e = &cachedToken{refresh: cr.OAuth.RefreshToken.Reveal()}
		tc.m[key] = e
	}
	return e
}

// token returns a valid access token, fetching a new one when the cached
// one expires within tokenEarly or when fresh is set (after the relay
// refused the token).
func (tc *tokenCache) token(ctx context.Context, cr Credential, fresh bool) (string, error) {
	o := cr.OAuth
	flow, err := oauthFlow(o)
	if err != nil {
		return "", err
	}
	if flow == "static" {
		return o.AccessToken.Reveal(), nil
	}
	e := tc.entry(cr)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !fresh && e.tok != nil && e.tok.AccessToken != "" &&
		(e.tok.Expiry.IsZero() || time.Until(e.tok.Expiry) > tokenEarly) {
		return e.tok.AccessToken, nil
	}
	if !fresh && e.tok == nil && o.AccessToken != "" {
		// A configured access token is tried first; its expiry is unknown,
		// so a refusal leads to a fresh one.
		e.tok = &oauth2.Token{AccessToken: o.AccessToken.Reveal()}
		return e.tok.AccessToken, nil
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, tc.hc)
	var scopes []string
	if o.Scope != "" {
		scopes = strings.Fields(strings.ReplaceAll(o.Scope, ",", " "))
	}
	var tok *oauth2.Token
	switch flow {
	case "refresh_token":
		cfg := &oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret.Reveal(),
			Endpoint:     oauth2.Endpoint{TokenURL: o.TokenURL},
			Scopes:       scopes,
		}
		// A new source each time: its own cache must not hide the refusal.
		tok, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: e.refresh}).Token()
	case "client_credentials":
		cfg := &clientcredentials.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret.Reveal(),
			TokenURL:     o.TokenURL,
			Scopes:       scopes,
		}
		tok, err = cfg.Token(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("OAuth token from %s (%s flow): %w", o.TokenURL, flow, tc.secrets.scrubErr(redactOAuthErr(err)))
	}
	tc.secrets.add(tok.AccessToken)
	tc.secrets.add(tok.RefreshToken)
	if tok.AccessToken == "" {
		return "", fmt.Errorf("OAuth token endpoint %s returned no access token", o.TokenURL)
	}
	if tok.RefreshToken != "" {
		e.refresh = tok.RefreshToken
	}
	e.tok = tok
	return tok.AccessToken, nil
}

// redactOAuthErr reduces a token endpoint's refusal to the RFC 6749 §5.2
// error and error_description fields, never its raw body (which may echo
// the request: client secret, refresh token). Both fields are limited to
// the characters RFC 6749 allows there and to a sane length; anything
// else the oauth2 library says is passed on (it holds no body).
func redactOAuthErr(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	code := rfc6749Field(re.ErrorCode, 64)
	if code == "" {
		code = "no error code"
	}
	status := ""
	if re.Response != nil {
		status = " (HTTP " + rfc6749Field(re.Response.Status, 64) + ")"
	}
	msg := "token endpoint refused: " + code + status
	if d := rfc6749Field(re.ErrorDescription, 200); d != "" {
		msg += ": " + d
	}
	return errors.New(msg)
}

// rfc6749Field keeps the characters RFC 6749 allows in error and
// error_description (%x20-21 / %x23-5B / %x5D-7E), at most max of them.
func rfc6749Field(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("...")
			break
		}
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' {
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}
