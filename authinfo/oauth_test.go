package authinfo

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestOAuth(t *testing.T) {
	t.Parallel()
	const tok = "https://oauth2.example.com/token"
	opts := "flow=refresh_token,client_id=cid,client_secret=csec,refresh_token=rtok,token_url=" + tok + ",scope=https://mail.example.com/"
	tests := []struct {
		name, text string
		user       string
		want       OAuth
		mechs      string
	}{
		{"sasl_passwd refresh flow", "[smtp.example.com]:587 oauth2:user=me@example.com," + opts + "\n", "me@example.com",
			OAuth{TokenURL: tok, ClientID: "cid", ClientSecret: "csec", RefreshToken: "rtok", Scope: "https://mail.example.com/", Flow: FlowRefreshToken}, ""},
		{"sasl_passwd mechanism option", "[smtp.example.com]:587 OAUTH2: user = me@example.com , access_token=at%2C1 , mech=xoauth2|oauthbearer\n", "me@example.com",
			OAuth{AccessToken: "at,1", Flow: FlowStatic}, "XOAUTH2 OAUTHBEARER"},
		{"sendmail O field", `AuthInfo:smtp.example.com "U:me@example.com" "O:` + opts + `" "M:XOAUTH2"` + "\n", "me@example.com",
			OAuth{TokenURL: tok, ClientID: "cid", ClientSecret: "csec", RefreshToken: "rtok", Scope: "https://mail.example.com/", Flow: FlowRefreshToken}, "XOAUTH2"},
		{"sendmail O= base64", `AuthInfo:smtp.example.com "I:me@example.com" "O=` + base64.StdEncoding.EncodeToString([]byte("client_id=cid,client_secret=cs,token_url="+tok)) + `"` + "\n", "me@example.com",
			OAuth{TokenURL: tok, ClientID: "cid", ClientSecret: "cs", Flow: FlowClientCredentials}, ""},
		{"flow inferred: refresh", "smtp.example.com oauth2:user=u,client_id=c,refresh_token=r,token_url=" + tok + "\n", "u",
			OAuth{TokenURL: tok, ClientID: "c", RefreshToken: "r", Flow: FlowRefreshToken}, ""},
		{"flow alias client", "smtp.example.com oauth2:user=u,flow=client,client_id=c,client_secret=s,token_url=http://127.0.0.1:8080/t\n", "u",
			OAuth{TokenURL: "http://127.0.0.1:8080/t", ClientID: "c", ClientSecret: "s", Flow: FlowClientCredentials}, ""},
		{"percent-escapes", "smtp.example.com oauth2:user=u,access_token=a%25b%2Cc+d/e=\n", "u",
			OAuth{AccessToken: "a%b,c+d/e=", Flow: FlowStatic}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.text)
			c, ok := m.Lookup(Query{Host: "smtp.example.com", NextHop: "[smtp.example.com]:587"})
			if !ok || c.OAuth == nil {
				t.Fatalf("got %v %v", c, ok)
			}
			if c.User != tt.user || c.AuthID != tt.user || c.Password != "" || *c.OAuth != tt.want || strings.Join(c.Mechs, " ") != tt.mechs {
				t.Errorf("got user %q password set %v oauth %#v mechs %q", c.User, c.Password != "", *c.OAuth, c.Mechs)
				t.Logf("secrets: %q %q %q", c.OAuth.ClientSecret.Reveal(), c.OAuth.RefreshToken.Reveal(), c.OAuth.AccessToken.Reveal())
			}
		})
	}
}

func TestOAuthErrors(t *testing.T) {
	t.Parallel()
	const secret = "T0kenS3cret"
	tests := []struct {
		name, text, want string
	}{
		{"no user", "h oauth2:access_token=" + secret, "without user="},
		{"unknown option", "h oauth2:user=u,acess_token=" + secret, "OAuth option 2: unknown name"},
		{"option without =", "h oauth2:user=u," + secret, "OAuth option 2: expected name=value"},
		{"option twice", "h oauth2:user=u,access_token=a,access_token=" + secret, "access_token given twice"},
		{"empty value", "h oauth2:user=u,access_token=", "access_token: empty value"},
		{"bad escape", "h oauth2:user=u,access_token=%zz" + secret, "bad %-escape"},
		{"nothing to get a token with", "h oauth2:user=u,client_id=" + secret, "needs refresh_token"},
		{"refresh flow without client_id", "h oauth2:user=u,refresh_token=" + secret + ",token_url=https://t.example/", "needs client_id"},
		{"refresh flow without token_url", "h oauth2:user=u,client_id=c,refresh_token=" + secret, "needs token_url"},
		{"client flow without secret", "h oauth2:user=u,flow=client_credentials,client_id=c,token_url=https://t.example/", "needs client_secret"},
		{"static flow without token", "h oauth2:user=u,flow=static,client_id=" + secret, "needs access_token"},
		{"unknown flow", "h oauth2:user=u,flow=implicit,access_token=" + secret, "want refresh_token, client_credentials or static"},
		{"plain http token endpoint", "h oauth2:user=u,client_id=c,refresh_token=" + secret + ",token_url=http://t.example/token", "only to loopback"},
		{"relative token endpoint", "h oauth2:user=u,client_id=c,refresh_token=" + secret + ",token_url=/token", "absolute https"},
		{"password mechanism", "h oauth2:user=u,access_token=" + secret + ",mech=PLAIN", "only be used with XOAUTH2 or OAUTHBEARER"},
		{"sendmail: P and O", `AuthInfo:h "U:u" "P:p" "O:access_token=` + secret + `"`, "both a password"},
		{"sendmail: user in O", `AuthInfo:h "U:u" "O:user=x,access_token=` + secret + `"`, "give the user in"},
		{"sendmail: mech in O", `AuthInfo:h "U:u" "O:mech=XOAUTH2,access_token=` + secret + `"`, "give the mechanisms in"},
		{"sendmail: password mechanism for OAuth", `AuthInfo:h "U:u" "O:access_token=` + secret + `" "M:LOGIN"`, "only be used with XOAUTH2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.text), "f")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}
