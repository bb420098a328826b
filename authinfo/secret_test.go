package authinfo

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretMasking(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-Pa55"
	s := Secret(pw)
	if s.Reveal() != pw {
		t.Fatal("Reveal")
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v"} {
		if got := fmt.Sprintf(verb, s); strings.Contains(got, pw) || !strings.Contains(got, Mask) {
			t.Errorf("Sprintf(%q) = %q", verb, got)
		}
	}
	if got := fmt.Sprint(s); got != Mask {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintf("%#v", s); got != `authinfo.Secret("********")` {
		t.Errorf("%%#v = %q", got)
	}
	if got := fmt.Sprintf("%q", Secret("")); got != `""` {
		t.Errorf("empty secret %%q = %q", got)
	}

	c := Credential{User: "bob", AuthID: "bob", Password: s, Mechs: []string{"PLAIN"}, Source: "f:1", Key: "h",
		OAuth: nil}
	oc := Credential{User: "me", OAuth: &OAuth{TokenURL: "https://t/", ClientID: "cid", ClientSecret: "cs-" + pw, RefreshToken: "rt-" + pw, AccessToken: "at-" + pw, Flow: FlowRefreshToken}}
	for _, v := range []any{c, &c, oc, &oc, oc.OAuth, *oc.OAuth, []Credential{c, oc}, map[string]Secret{"k": s}, struct{ P Secret }{s}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, pw) {
				t.Errorf("Sprintf(%q, %T) = %q shows the secret", verb, v, got)
			}
		}
	}
	if got := c.String(); got != `user "bob" password ******** mechanisms PLAIN (f:1)` {
		t.Errorf("String = %q", got)
	}

	// JSON and XML.
	for _, v := range []any{s, c, oc, oc.OAuth} {
		b, err := json.Marshal(v)
		if err != nil || bytes.Contains(b, []byte(pw)) {
			t.Errorf("json.Marshal(%T) = %s, %v", v, b, err)
		}
		if !bytes.Contains(b, []byte(Mask)) {
			t.Errorf("json.Marshal(%T) = %s lacks the mask", v, b)
		}
	}
	type doc struct{ P Secret }
	if b, err := xml.Marshal(doc{s}); err != nil || bytes.Contains(b, []byte(pw)) {
		t.Errorf("xml.Marshal = %s, %v", b, err)
	}

	// log/slog, text and JSON handlers, as attribute and inside a group.
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("auth", "password", s, "cred", c, "oauth", oc, slog.Any("secret", s), slog.Group("g", "p", s))
		l.Info("any", "ptr", &c, "list", []Secret{s})
	}
	if out := buf.String(); strings.Contains(out, pw) || !strings.Contains(out, Mask) {
		t.Errorf("slog output shows the secret or lacks the mask:\n%s", out)
	}

	// A panic value or error built with %v does not show it either.
	err := fmt.Errorf("auth with %v failed: %w", c, errors.New("535"))
	if strings.Contains(err.Error(), pw) {
		t.Errorf("error = %q", err)
	}
}
