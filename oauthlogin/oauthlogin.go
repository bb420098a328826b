// Package oauthlogin obtains the first OAuth 2.0 refresh token for
// relayq's XOAUTH2/OAUTHBEARER credentials, by the device authorization
// grant (RFC 8628: the user opens a URL on any device and types a code;
// what Microsoft's identity platform offers for SMTP.Send) or the
// authorization-code grant with a loopback redirect and PKCE (RFC 7636,
// RFC 8252 §7.3: what Google offers for installed applications), using
// golang.org/x/oauth2. It returns the token; storing it is the caller's
// (relayq oauth login writes it into the credentials file). It never
// prints a token.
package oauthlogin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Provider holds a provider's endpoints and defaults.
type Provider struct {
	Name                         string
	AuthURL, TokenURL, DeviceURL string
	Scope                        string
	Flow                         string // "device" or "code": the one the provider supports for SMTP
}

// Providers are the presets for the smarthosts users have; {tenant} in
// Microsoft's URLs is replaced by the tenant ("common" by default).
var Providers = map[string]Provider{
	"microsoft": {
		Name:      "microsoft",
		AuthURL:   "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
		TokenURL:  "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
		DeviceURL: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
		Scope:     "https://outlook.office.com/SMTP.Send offline_access",
		Flow:      "device",
	},
	"google": {
		Name:      "google",
		AuthURL:   "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL:  "https://oauth2.googleapis.com/token",
		DeviceURL: "https://oauth2.googleapis.com/device/code",
		Scope:     "https://mail.google.com/",
		Flow:      "code",
	},
}

// Options say whom to ask and how.
type Options struct {
	ClientID, ClientSecret string
	AuthURL, TokenURL      string
	DeviceURL              string
	Scopes                 []string
	// Flow is "device" or "code".
	Flow string
	// Port for the loopback redirect of the code flow; 0: any free port.
	Port int
	// Out receives what the user must do (a URL and a code); never a token.
	Out io.Writer
	// HTTPClient for the endpoints; nil: http.DefaultClient.
	HTTPClient *http.Client
}

// ErrNoRefreshToken is returned when the provider issued no refresh token
// (offline access was not granted): relayq could not renew the access.
var ErrNoRefreshToken = errors.New("the authorization server issued no refresh token (ask for offline access: Microsoft's scope offline_access; Google's access_type=offline, which relayq sends)")

// Login runs the flow and returns the token, which has a refresh token.
func Login(ctx context.Context, o Options) (*oauth2.Token, error) {
	if o.ClientID == "" || o.TokenURL == "" {
		return nil, errors.New("oauth login: a client id and a token URL are needed")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, o.HTTPClient)
	}
	cfg := &oauth2.Config{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: o.AuthURL, TokenURL: o.TokenURL, DeviceAuthURL: o.DeviceURL},
	}
	var tok *oauth2.Token
	var err error
	switch o.Flow {
	case "device":
		tok, err = device(ctx, cfg, o.Out)
	case "code":
		tok, err = code(ctx, cfg, o)
	default:
		return nil, fmt.Errorf("oauth login: flow %q: want device or code", o.Flow)
	}
	if err != nil {
		return nil, fmt.Errorf("oauth login: %w", Redact(err))
	}
	if tok.RefreshToken == "" {
		return nil, fmt.Errorf("oauth login: %w", ErrNoRefreshToken)
	}
	return tok, nil
}

// device is RFC 8628: show the code, poll until the user has approved
// (x/oauth2 honours authorization_pending and slow_down).
func device(ctx context.Context, cfg *oauth2.Config, out io.Writer) (*oauth2.Token, error) {
	if cfg.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("the device flow needs the device authorization URL")
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("device authorization: %w", err)
	}
	uri := da.VerificationURIComplete
	if uri == "" {
		uri = da.VerificationURI
	}
	fmt.Fprintf(out, "To sign in, open %s on any device and enter the code %s\n", da.VerificationURI, da.UserCode)
	if uri != da.VerificationURI {
		fmt.Fprintf(out, "(or open %s)\n", uri)
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(out, "Waiting for approval until %s …\n", da.Expiry.Format(time.TimeOnly))
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, fmt.Errorf("device access token: %w", err)
	}
	return tok, nil
}

// code is the authorization-code grant with PKCE S256 and a loopback
// redirect on 127.0.0.1 (RFC 8252 §7.3): the browser comes back to a
// listener of this process with the code, the state is checked, the code
// exchanged together with the verifier.
func code(ctx context.Context, cfg *oauth2.Config, o Options) (*oauth2.Token, error) {
	if cfg.Endpoint.AuthURL == "" {
		return nil, errors.New("the code flow needs the authorization URL")
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.Port))
	if err != nil {
		return nil, fmt.Errorf("loopback redirect listener: %w", err)
	}
	defer ln.Close()
	cfg.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d/", ln.Addr().(*net.TCPAddr).Port)
	verifier := oauth2.GenerateVerifier()
	state := randomHex(16)
	u := cfg.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("prompt", "consent"))
	fmt.Fprintf(o.Out, "To sign in, open this URL in a browser on this machine (the answer comes back to %s):\n\n%s\n\n", cfg.RedirectURL, u)

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			http.Error(w, "relayq: this answer is not for this sign-in (state differs)", http.StatusBadRequest)
			return // not ours: keep waiting
		case q.Get("error") != "":
			res.err = fmt.Errorf("authorization refused: %s: %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = errors.New("the authorization server's answer has no code")
		default:
			res.code = q.Get("code")
		}
		if res.err != nil {
			fmt.Fprintf(w, "<p>relayq: %s</p>\n", html.EscapeString(res.err.Error()))
		} else {
			fmt.Fprint(w, "<p>relayq: signed in. You can close this window.</p>\n")
		}
		select {
		case got <- res:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if res.err != nil {
		return nil, res.err
	}
	tok, err := cfg.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	return tok, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Redact reduces a token endpoint's refusal to the RFC 6749 §5.2
// error and error_description fields, never its raw body (which may echo
// the request: client secret, refresh token). Both fields are limited to
// the characters RFC 6749 allows there and to a sane length; anything
// else the oauth2 library says is passed on (it holds no body).
func Redact(err error) error {
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
