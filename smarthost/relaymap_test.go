package smarthost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/authinfo"
)

// writeMap writes a map file for authinfo (0600: fine for both kinds).
func writeMap(t *testing.T, p, text string) string {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSenderRelayMap: delivery with authinfo.Routes built from a real
// sasl_passwd file and a real sender relay map, both loaded from disk as
// the daemon does. A mapped sender's mail goes to its relay with that
// relay's credential; everyone else's (DUNNO, other domains, the null
// sender) to the default relay with its own; a reloaded map applies to
// the next message.
func TestSenderRelayMap(t *testing.T) {
	ca := newCA(t)
	defCert := ca.leaf(t, []string{"relay.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	otherCert := ca.leaf(t, []string{"other.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	def := startServer(t, serverConfig{cert: &defCert, users: map[string]string{"default@example.org": "pw-default"}})
	other := startServer(t, serverConfig{cert: &otherCert, users: map[string]string{"alice@example.com": "pw-other"}})
	defRelay := fmt.Sprintf("[relay.test]:%d", def.port)
	otherRelay := fmt.Sprintf("[other.test]:%d", other.port)

	dir := t.TempDir()
	creds, err := authinfo.NewStore(writeMap(t, filepath.Join(dir, "authinfo"),
		defRelay+" default@example.org:pw-default\n"+otherRelay+" alice@example.com:pw-other\n"))
	if err != nil {
		t.Fatal(err)
	}
	mapPath := filepath.Join(dir, "sender_relay")
	relays, err := authinfo.NewRelayStore(writeMap(t, mapPath, "@example.com "+otherRelay+"\nbob@example.com DUNNO\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, defRelay, ca, func(o *Options) {
		o.Credentials = authinfo.Routes{Credentials: creds, Relays: relays}
		o.Resolver = &fakeResolver{hosts: map[string][]string{"relay.test": {"127.0.0.1"}, "other.test": {"127.0.0.1"}}}
	})

	send := func(from string) Outcome {
		t.Helper()
		m := testMessage("x@example.net")
		m.From = from
		out, err := c.Deliver(context.Background(), m)
		if err != nil || out.Recipients[0].Status != Delivered {
			t.Fatalf("Deliver from %q: %v %+v", from, err, out.Recipients[0])
		}
		return out
	}
	for _, tc := range []struct {
		from, relay string
	}{
		{"alice+news@example.com", "other.test"},
		{"carol@EXAMPLE.com", "other.test"},
		{"bob@example.com", "relay.test"}, // DUNNO
		{"dave@example.net", "relay.test"},
		{"", "relay.test"}, // the null sender never matches
	} {
		if out := send(tc.from); !strings.HasPrefix(out.Relay, tc.relay+"[127.0.0.1]:") {
			t.Errorf("mail from %q went to %s, want %s", tc.from, out.Relay, tc.relay)
		}
	}
	auths, mails, _, _, _ := other.got.snapshot()
	if strings.Join(auths, ",") != "PLAIN alice@example.com" || len(mails) != 2 ||
		!strings.HasPrefix(mails[0], "alice+news@example.com") || !strings.HasPrefix(mails[1], "carol@EXAMPLE.com") {
		t.Errorf("mapped relay: auths %q mails %q", auths, mails)
	}
	auths, mails, _, _, _ = def.got.snapshot()
	if strings.Join(auths, ",") != "PLAIN default@example.org" || len(mails) != 3 {
		t.Errorf("default relay: auths %q mails %q", auths, mails)
	}

	// SIGHUP-style reload: example.com's mail goes to the default relay
	// now, without a new client.
	writeMap(t, mapPath, "@example.org "+otherRelay+"\n")
	if err := relays.Reload(); err != nil {
		t.Fatal(err)
	}
	if out := send("alice@example.com"); !strings.HasPrefix(out.Relay, "relay.test[") {
		t.Errorf("after the reload, mail went to %s", out.Relay)
	}

	// Probe without a relay argument goes where the sender's mail goes.
	var b bytes.Buffer
	if r := c.Probe(context.Background(), &b, "", "someone@example.org"); r != ProbeOK {
		t.Fatalf("Probe: %v\n%s", r, b.String())
	}
	if !strings.Contains(b.String(), "sender someone@example.org: relay host "+otherRelay+" (per-sender relay)") ||
		!strings.Contains(b.String(), "connecting to other.test[127.0.0.1]") {
		t.Errorf("Probe report:\n%s", b.String())
	}
}

// TestRelayMapSyntaxAgrees: a relay host the sender relay map accepts is
// one ParseRelays accepts (authinfo checks the syntax on its own, as it
// may not import this package), with the same relays in the same order.
func TestRelayMapSyntaxAgrees(t *testing.T) {
	for _, v := range []string{
		"[smtp.example.com]:587", "smtp.example.com", "smtp.example.com:submission", "[smtp.example.com]",
		"[192.0.2.1]:25", "192.0.2.1", "[2001:db8::1]:465", "[IPv6:2001:db8::1]", "[::ffff:192.0.2.1]:587",
		"a.example:SMTPS, [b.example]:2525\tc_d.example.", "x", "smtp.example.com:00587",
	} {
		checkRelaySyntaxAgrees(t, v, true)
	}
	for _, v := range []string{"[a.example", "a.example:0", "2001:db8::1", "[ipv6:a.example]", "a..example", "[]", ":25"} {
		checkRelaySyntaxAgrees(t, v, false)
	}
}

// FuzzRelayMapSyntax: ParseRelays accepts whatever the sender relay map
// accepts.
func FuzzRelayMapSyntax(f *testing.F) {
	for _, s := range []string{"[smtp.example.com]:587", "a.example:smtps, [::1]", "[ipv6:2001:db8::1]:25", "x:+25", "[fe80::1%eth0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) { checkRelaySyntaxAgrees(t, v, false) })
}

// checkRelaySyntaxAgrees parses v as the value of a relay map entry; when
// that succeeds, ParseRelays must too. mustParse: the map must accept v.
func checkRelaySyntaxAgrees(t *testing.T, v string, mustParse bool) {
	t.Helper()
	if strings.ContainsAny(v, "\r\n") {
		return // not one line
	}
	m, err := authinfo.ParseRelayMap(strings.NewReader("@example.com "+v+"\n"), "map")
	if err != nil {
		if mustParse {
			t.Errorf("relay map refused %q: %v", v, err)
		}
		return
	}
	relays, ok := m.RelayHost("a@example.com")
	if !ok {
		return // DUNNO
	}
	rs, err := ParseRelays(relays)
	if err != nil {
		t.Fatalf("relay map accepted %q (as %q), ParseRelays refuses it: %v", v, relays, err)
	}
	specs := make([]string, len(rs))
	for i, r := range rs {
		specs[i] = r.Spec
	}
	if strings.Join(specs, ", ") != relays {
		t.Errorf("ParseRelays(%q) = %q", relays, specs)
	}
}
