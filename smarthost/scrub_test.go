package smarthost

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// echoEndpoint is a token endpoint that refuses every request and echoes
// the whole request (form values, raw and base64, and the Authorization
// header) in its error response, in the form given.
type echoEndpoint struct {
	form string // "json" (error_description holds the echo), "text" (plain body), "code" (error code holds it)
}

func (e echoEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	vals, _ := url.ParseQuery(string(raw))
	echo := fmt.Sprintf("you sent %s auth=%s secret=%s refresh=%s b64=%s",
		raw, r.Header.Get("Authorization"), vals.Get("client_secret"), vals.Get("refresh_token"),
		base64.StdEncoding.EncodeToString([]byte(vals.Get("client_secret")+":"+vals.Get("refresh_token"))))
	switch e.form {
	case "json":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, echo)
	case "code":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":%q}`, echo)
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, echo)
	}
}

// secretForms are the forms of the test secrets that must never appear.
func secretForms(secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		out = append(out, s, base64.StdEncoding.EncodeToString([]byte(s)), url.QueryEscape(s))
	}
	return out
}

// TestNoSecretInAnyText: a token endpoint that echoes the request (client
// secret, refresh token) gets none of it into the outcome's reply texts
// (what the spool stores and mailq lists), the error, the log or the probe
// report; neither does a relay that echoes the AUTH payload.
func TestNoSecretInAnyText(t *testing.T) {
	const clientSecret, refresh = "cs-Very/Secret+value", "rt-Refresh.Token_42"
	ca := newCA(t)
	cert := ca.good(t)
	for _, form := range []string{"json", "text", "code"} {
		t.Run(form, func(t *testing.T) {
			hs := httptest.NewServer(echoEndpoint{form: form}) // loopback
			defer hs.Close()
			srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"x": "y"}, mechs: []string{"XOAUTH2", "OAUTHBEARER"},
				oauth: &oauthState{valid: map[string]bool{}}})
			cred := credMap{"relay.test": {User: "user@example.org", Source: "test", OAuth: &OAuth{
				TokenURL: hs.URL, ClientID: "client-id", ClientSecret: clientSecret, RefreshToken: refresh}}}
			var logs bytes.Buffer
			var mu sync.Mutex
			var trace []string
			c := newTestClient(t, relayFor(srv), ca, func(o *Options) {
				o.Credentials = cred
				o.HTTPClient = hs.Client()
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				o.Trace = func(l string) { mu.Lock(); trace = append(trace, l); mu.Unlock() }
			})
			out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
			if err == nil || out.Recipients[0].Status != Deferred {
				t.Fatalf("refused token endpoint: %v %+v", err, out)
			}
			var probe bytes.Buffer
			c.Probe(context.Background(), &probe, "", "a@example.org")
			c.log.Error("delivery failed", "err", err, "reason", out.Recipients[0].Text)
			texts := map[string]string{"reason": out.Recipients[0].Text, "error": err.Error(), "log": logs.String(),
				"probe": probe.String(), "trace": strings.Join(trace, "\n")}
			for what, text := range texts {
				for _, s := range secretForms(clientSecret, refresh) {
					if strings.Contains(text, s) {
						t.Errorf("%s holds secret form %q:\n%s", what, s, text)
					}
				}
			}
			if form == "json" && !strings.Contains(err.Error(), "invalid_grant") {
				t.Errorf("error lost the RFC 6749 error code: %v", err)
			}
			if !strings.Contains(probe.String(), "token endpoint refused") {
				t.Errorf("probe does not say the token endpoint refused:\n%s", probe.String())
			}
		})
	}
	t.Run("relay echoes AUTH", func(t *testing.T) {
		const pw = "pw-Echo!d"
		plain := base64.StdEncoding.EncodeToString([]byte("\x00user@example.org\x00" + pw))
		srv := startServer(t, serverConfig{cert: &cert, users: map[string]string{"user@example.org": pw}, mechs: []string{"PLAIN"},
			authErr: &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad: " + plain + " " + pw}})
		cred := credMap{"relay.test": {User: "user@example.org", Password: pw}}
		var logs bytes.Buffer
		c := newTestClient(t, relayFor(srv), ca, func(o *Options) {
			o.Credentials = cred
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		out, err := c.Deliver(context.Background(), testMessage("b@example.com"))
		if err == nil || !out.AuthFailed {
			t.Fatalf("AUTH refusal: %v %+v", err, out)
		}
		var probe bytes.Buffer
		c.Probe(context.Background(), &probe, "", "a@example.org")
		for what, text := range map[string]string{"reason": out.Recipients[0].Text, "error": err.Error(), "log": logs.String(), "probe": probe.String()} {
			for _, s := range []string{pw, plain} {
				if strings.Contains(text, s) {
					t.Errorf("%s holds %q:\n%s", what, s, text)
				}
			}
			if what == "probe" && !strings.Contains(text, "535") {
				t.Errorf("probe lost the reply code:\n%s", text)
			}
		}
	})
}

// TestScrubBase64AnyOffset: a secret is masked in base64 at every offset
// inside a longer encoded string, in both alphabets.
func TestScrubBase64AnyOffset(t *testing.T) {
	s := newSecretSet()
	const secret = "p4ss~w?rd>>"
	s.add(secret)
	s.add("abc") // too short to scrub
	for pre := 0; pre < 7; pre++ {
		for post := 0; post < 4; post++ {
			in := strings.Repeat("\x00", pre) + secret + strings.Repeat("z", post)
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
				e := enc.EncodeToString([]byte(in))
				got := s.scrub("reply " + e + " end")
				if !strings.Contains(got, scrubMask) {
					t.Errorf("pre %d post %d: %q not masked: %q", pre, post, e, got)
				}
			}
		}
	}
	if got := s.scrub("abc " + secret); got != "abc "+scrubMask {
		t.Errorf("plain: %q", got)
	}
}

// TestSecretSetBounded: the set keeps the newest maxSecrets secrets (an
// access token a day for years would otherwise grow it without end).
func TestSecretSetBounded(t *testing.T) {
	s := newSecretSet()
	for i := range maxSecrets + 10 {
		s.add(fmt.Sprintf("token-%06d", i))
	}
	if len(s.seen) != maxSecrets || len(s.order) != maxSecrets {
		t.Fatalf("%d secrets kept, want %d", len(s.seen), maxSecrets)
	}
	if got := s.scrub("token-000000"); got != "token-000000" {
		t.Errorf("oldest secret still masked: %q", got)
	}
	if got := s.scrub(fmt.Sprintf("x token-%06d y", maxSecrets+9)); got != "x "+scrubMask+" y" {
		t.Errorf("newest secret not masked: %q", got)
	}
}
