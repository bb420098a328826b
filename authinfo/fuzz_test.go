package authinfo

import (
	"encoding/base64"
	"strings"
	"testing"
)

// marker is planted where a secret goes; no error may ever contain it.
const marker = "Qz7SECRETmark"

// checkParse parses text and enforces the secret rules: no panic, no
// marker (plain or as it appears in the file) in an error, and for a map
// that parses, no secret of any entry in Explain or String output.
func checkParse(t *testing.T, text string) {
	m, err := Parse(strings.NewReader(text), "fuzz")
	if err != nil {
		msg := err.Error()
		for _, s := range []string{marker, base64.StdEncoding.EncodeToString([]byte(marker))} {
			if strings.Contains(msg, s) {
				t.Fatalf("error contains the secret: %q\ninput %q", msg, text)
			}
		}
		if !strings.HasPrefix(msg, "fuzz") {
			t.Fatalf("error does not name the file: %q", msg)
		}
		return
	}
	for _, e := range m.order {
		c := e.cred
		secrets := []Secret{c.Password}
		if c.OAuth != nil {
			secrets = append(secrets, c.OAuth.ClientSecret, c.OAuth.RefreshToken, c.OAuth.AccessToken)
		}
		public := strings.Join([]string{e.key, c.User, c.AuthID, c.Realm, c.Source, strings.Join(c.Mechs, " ")}, "\x00")
		if c.OAuth != nil {
			public += "\x00" + c.OAuth.TokenURL + "\x00" + c.OAuth.ClientID + "\x00" + c.OAuth.Scope + "\x00" + c.OAuth.Flow
		}
		q := Query{Host: strings.TrimPrefix(strings.ToLower(e.key), "authinfo:"), NextHop: e.key, Sender: e.key, Addr: e.key}
		out := strings.Join(m.Explain(q), "\n") + c.String() + c.GoString()
		for _, s := range secrets {
			v := s.Reveal()
			if len(v) < 6 || strings.Contains(public, v) || strings.Contains(Mask+" ()\"", v) {
				continue // too short to tell apart, or also in a non-secret field
			}
			if strings.Contains(out, v) {
				t.Fatalf("secret %q shown in %q", v, out)
			}
		}
		if _, ok := m.Lookup(q); !ok && e.kind == kindHost && m.format == FormatPostfix && !strings.HasPrefix(e.key, "[") && !strings.Contains(e.key, ":") {
			t.Fatalf("entry %q not found by its own host name", e.key)
		}
	}
}

func FuzzParseSendmail(f *testing.F) {
	f.Add("AuthInfo:relay.example.com", `"U:user" "I:authid" "P:`, `" "R:realm" "M:PLAIN LOGIN"`)
	f.Add("AuthInfo:192.0.2.1", `"U:user" "P=`, `"`)
	f.Add("AuthInfo:", `"I:x" "P:`, `\" "`)
	f.Add("AuthInfo:IPv6:2001:db8::1", `"U:u" "O:access_token=`, `" "M:XOAUTH2"`)
	f.Add("AuthInfo:h", `"U:u" "O:client_id=c,token_url=https://t/,refresh_token=`, `"`)
	f.Add("AuthInfo:h", `"U:u" "P`, ``)
	f.Add("AuthInfo:h:25", `"U:u" "P:`, `"`)
	f.Add("\tAuthInfo:h", `U:u P:`, `"`)
	f.Fuzz(func(t *testing.T, key, before, after string) {
		line := key + " " + before + marker + after
		checkParse(t, line+"\n")
		checkParse(t, "# c\n"+line+"\nAuthInfo:x \"U:u\" \"P:"+marker+"\"\n")
		// Base64 form of the marker in the password position.
		checkParse(t, key+" "+before+base64.StdEncoding.EncodeToString([]byte(marker))+after+"\n")
	})
}

func FuzzParsePostfix(f *testing.F) {
	f.Add("[smtp.example.com]:587", "user:", "")
	f.Add("smtp.example.com", "user@example.com:pa:", ":ss")
	f.Add("user+ext@example.com", "u:", "")
	f.Add("@example.com", "", "")
	f.Add("[ipv6:2001:db8::1]:submission", "u:", "\n  more")
	f.Add("smtp.example.com", "oauth2:user=u,client_id=c,token_url=https://t.example/,refresh_token=", ",scope=s")
	f.Add("h", "oauth2:user=u,access_token=", "%2")
	f.Add("", "", "")
	f.Add("[h", "u:", "")
	f.Fuzz(func(t *testing.T, key, before, after string) {
		checkParse(t, key+" "+before+marker+after+"\n")
		checkParse(t, key+"\n "+before+marker+after)
		checkParse(t, "h u:p\n"+key+"\t"+before+marker+after+"\n")
		checkParse(t, before+marker+after)
	})
}

// FuzzParseRelayMap: no input makes the relay map parser or its lookups
// panic; errors name the file; what parses is consistent: every value
// parses again to itself, and RelayHost agrees with Lookup.
func FuzzParseRelayMap(f *testing.F) {
	f.Add("alice@example.com", "[smtp.example.com]:587", "")
	f.Add("@example.com", "smtp.example.com:submission, [backup.example]:465", "bob+x@example.com")
	f.Add("user+ext@example.com", "[ipv6:2001:db8::1]:25", "user+ext@example.com")
	f.Add("@example.org", "DUNNO", "a@example.org")
	f.Add("@example.org", "[a.example]:587,\n  b.example", "<A@Example.ORG>")
	f.Add("smtp.example.com", "x", "")
	f.Add("@x", "[", "@x")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, key, value, sender string) {
		for _, text := range []string{key + " " + value + "\n", "# c\n" + key + "\n\t" + value, "@example.net a.example\n" + key + "\t" + value + "\r\n"} {
			m, err := ParseRelayMap(strings.NewReader(text), "fuzz")
			if err != nil {
				if !strings.HasPrefix(err.Error(), "fuzz") {
					t.Fatalf("error does not name the file: %q", err)
				}
				continue
			}
			for _, e := range m.Entries() {
				if e.Relays == "" {
					continue
				}
				if again, msg := relayValue(e.Relays); msg != "" || again != e.Relays {
					t.Fatalf("value %q of %s does not parse again to itself: %q %q", e.Relays, e.Source, again, msg)
				}
			}
			for _, s := range []string{sender, key, "x" + key} {
				e, found := m.Lookup(s)
				relays, ok := m.RelayHost(s)
				if ok != (found && e.Relays != "") || relays != e.Relays {
					t.Fatalf("RelayHost(%q) = %q %v, Lookup = %+v %v", s, relays, ok, e, found)
				}
				if len(m.Explain(s)) < 2 {
					t.Fatalf("Explain(%q) too short", s)
				}
			}
		}
	})
}
