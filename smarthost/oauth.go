package smarthost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/oauthlogin"
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
	store   TokenStore   // rotated refresh tokens kept across restarts; nil: memory only
	log     *slog.Logger // a store that cannot be written is logged
	mu      sync.Mutex
	m       map[string]*cachedToken
}

// TokenStore keeps the newest refresh token of a credential whose token
// endpoint rotates them, across restarts (authinfo.RotatedTokens). id is
// authinfo.TokenID of the credential.
type TokenStore interface {
	Newest(id string) (string, bool)
	Save(id, refreshToken string) error
}

type cachedToken struct {
	mu      sync.Mutex
	tok     *oauth2.Token
	refresh string // newest refresh token (rotation)
	id      string // authinfo.TokenID: the store's key
	unsaved bool   // refresh is newer than what the store holds (its Save failed)
}

func newTokenCache(hc *http.Client, s *secretSet, store TokenStore, log *slog.Logger) *tokenCache {
	return &tokenCache{hc: hc, secrets: s, store: store, log: log, m: map[string]*cachedToken{}}
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
		o := cr.OAuth
		e = &cachedToken{refresh: o.RefreshToken.Reveal(), id: authinfo.TokenID(cr.Key, cr.User, o.ClientID, o.TokenURL, o.RefreshToken)}
		if tc.store != nil && o.RefreshToken != "" {
			if rt, ok := tc.store.Newest(e.id); ok {
				e.refresh = rt // rotated since the credentials file was written
				tc.secrets.add(rt)
			}
		}
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
	if e.unsaved {
		tc.save(e, o.TokenURL, true)
	}
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
		if err != nil && tc.store != nil {
			// Another relayq process (the daemon, a delivery run, probe)
			// may have used this token and saved the one it got.
			if rt, ok := tc.store.Newest(e.id); ok && rt != e.refresh {
				e.refresh = rt
				tc.secrets.add(rt)
				tok, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: e.refresh}).Token()
			}
		}
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
		return "", fmt.Errorf("OAuth token from %s (%s flow): %w", o.TokenURL, flow, tc.secrets.scrubErr(oauthlogin.Redact(err)))
	}
	tc.secrets.add(tok.AccessToken)
	tc.secrets.add(tok.RefreshToken)
	if tok.AccessToken == "" {
		return "", fmt.Errorf("OAuth token endpoint %s returned no access token", o.TokenURL)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != e.refresh {
		e.refresh, e.unsaved = tok.RefreshToken, true
		tc.save(e, o.TokenURL, false)
	}
	e.tok = tok
	return tok.AccessToken, nil
}

// save keeps e's rotated refresh token in the store. When that fails (a
// full disk, a read-only directory), the token stays marked unsaved and
// each later use of the credential tries again, so that the newest token
// reaches the store once the cause is gone, before a restart needs it.
// retry says this is such a later try. e.mu is held.
func (tc *tokenCache) save(e *cachedToken, tokenURL string, retry bool) {
	if tc.store == nil {
		e.unsaved = false
		return
	}
	if err := tc.store.Save(e.id, e.refresh); err != nil {
		tc.log.Error("OAuth: the rotated refresh token could not be kept (tried again at each use); a restart now would use the old one", "token_url", tokenURL, "error", err)
		return
	}
	e.unsaved = false
	if retry {
		tc.log.Info("OAuth: the rotated refresh token is kept now", "token_url", tokenURL)
	}
}

// TokenInfo says what TokenState found for an OAuth credential.
type TokenInfo struct {
	Flow    string    // refresh_token, client_credentials or static
	Expiry  time.Time // of the access token; zero: not known (static)
	Rotated bool      // the token endpoint issued a new refresh token, kept in the token store
	Stored  bool      // the refresh token used came from the token store (rotated earlier)
}

// String is one line for probe and check; it holds no token.
func (ti TokenInfo) String() string {
	if ti.Flow == "static" {
		return "a fixed access token (static flow: its expiry is not known, it is never renewed)"
	}
	s := "access token obtained (" + ti.Flow + " flow)"
	if !ti.Expiry.IsZero() {
		s += ", valid until " + ti.Expiry.Format(time.RFC3339)
	}
	if ti.Stored {
		s += "; refresh token from the token store (rotated earlier)"
	}
	if ti.Rotated {
		s += "; the endpoint rotated the refresh token: the new one is kept"
	}
	return s
}

// TokenState gets a fresh access token for the OAuth credential cred as
// delivery would (through the token store) and says what it got: relayq
// probe prints it, relayq check fails on an error (a refresh token the
// endpoint refuses). Errors hold no secret.
func (c *Client) TokenState(ctx context.Context, cred Credential) (TokenInfo, error) {
	if cred.OAuth == nil {
		return TokenInfo{}, errors.New("not an OAuth credential")
	}
	flow, err := oauthFlow(cred.OAuth)
	if err != nil {
		return TokenInfo{}, err
	}
	ti := TokenInfo{Flow: flow}
	if flow == "static" {
		return ti, nil
	}
	e := c.tokens.entry(cred)
	e.mu.Lock()
	before := e.refresh
	ti.Stored = before != cred.OAuth.RefreshToken.Reveal()
	e.mu.Unlock()
	if _, err := c.tokens.token(ctx, cred, true); err != nil {
		return ti, errors.New(c.secrets.scrub(err.Error()))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok != nil {
		ti.Expiry = e.tok.Expiry
	}
	ti.Rotated = flow == "refresh_token" && e.refresh != before
	return ti, nil
}
