package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/internal/testlib"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
)

// writeTestFile writes a file with the given mode (umask aside).
func writeTestFile(t *testing.T, p, text string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDaemonOptionsSenderRelays: RELAYQ_SENDER_RELAYHOST_MAP adds the
// relay map's store to the SIGHUP reloaders, after the credentials; a
// missing, unsafe or bad map stops the daemon with the key named.
func TestDaemonOptionsSenderRelays(t *testing.T) {
	dir := t.TempDir()
	cfg := queueConfig()
	cfg.RelayHost = "[smtp.example.com]:587"
	cfg.AuthInfo = writeTestFile(t, filepath.Join(dir, "authinfo"), "[smtp.example.com]:587 user:secret\n", 0o600)
	cfg.SenderRelayHostMap = writeTestFile(t, filepath.Join(dir, "sender_relay"), "@example.org [other.example]:587\n", 0o644)
	o, reload, err := daemonOptions(cfg, maillog.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Deliverer.(*smarthost.Client); !ok || len(reload) != 3 {
		t.Fatalf("deliverer %T, reloaders %v", o.Deliverer, reload)
	}
	if _, ok := reload[0].(*authinfo.Store); !ok {
		t.Errorf("reloader 0 is %T, want the credentials store", reload[0])
	}
	if _, ok := reload[1].(*authinfo.RelayStore); !ok {
		t.Errorf("reloader 1 is %T, want the sender relay map store", reload[1])
	}
	if _, ok := reload[2].(idleSessions); !ok {
		t.Errorf("reloader 2 is %T, want idleSessions (closes relay sessions after the maps)", reload[2])
	}
	// The SIGHUP log names what each reloaded, not a Go type.
	for i, want := range []string{"credentials file " + cfg.AuthInfo, "sender relay map " + cfg.SenderRelayHostMap, "idle relay sessions"} {
		if s, ok := reload[i].(fmt.Stringer); !ok || !strings.HasPrefix(s.String(), want) {
			t.Errorf("reloader %d (%T) is named %v, want %q…", i, reload[i], reload[i], want)
		}
	}

	for name, setup := range map[string]func(){
		"missing": func() { cfg.SenderRelayHostMap = filepath.Join(dir, "missing") },
		"group-writable": func() {
			cfg.SenderRelayHostMap = writeTestFile(t, filepath.Join(dir, "gw"), "@example.org x.example\n", 0o664)
		},
		"bad relay": func() {
			cfg.SenderRelayHostMap = writeTestFile(t, filepath.Join(dir, "bad"), "@example.org [x.example\n", 0o644)
		},
		"host key, no @:": func() {
			cfg.SenderRelayHostMap = writeTestFile(t, filepath.Join(dir, "host"), "x.example y.example\n", 0o644)
		},
	} {
		setup()
		if _, _, err := daemonOptions(cfg, maillog.New(nil)); err == nil || !strings.HasPrefix(err.Error(), "RELAYQ_SENDER_RELAYHOST_MAP: ") {
			t.Errorf("%s map: %v", name, err)
		}
	}
}

// TestWithSenderRelays: the credentials handed to the delivery client
// answer RelayHost from the map and Lookup from the credentials, which
// may be absent.
func TestWithSenderRelays(t *testing.T) {
	dir := t.TempDir()
	cfg := queueConfig()
	creds, err := authinfo.Parse(strings.NewReader("[smtp.example.com]:587 user:secret\n"), "authinfo")
	if err != nil {
		t.Fatal(err)
	}
	got, store, err := withSenderRelays(cfg, creds, nil)
	if err != nil || store != nil || got != smarthost.Credentials(creds) {
		t.Fatalf("no map: %v %v %v", got, store, err)
	}
	cfg.SenderRelayHostMap = writeTestFile(t, filepath.Join(dir, "sender_relay"), "@example.org [other.example]:587\n", 0o644)
	for _, c := range []smarthost.Credentials{creds, nil} {
		got, store, err := withSenderRelays(cfg, c, nil)
		if err != nil || store == nil {
			t.Fatalf("withSenderRelays: %v %v", store, err)
		}
		sr, ok := got.(smarthost.SenderRelays)
		if !ok {
			t.Fatalf("%T is not a SenderRelays", got)
		}
		if r, ok := sr.RelayHost("a@example.org"); !ok || r != "[other.example]:587" {
			t.Errorf("RelayHost: %q %v", r, ok)
		}
		if _, ok := sr.RelayHost("a@example.com"); ok {
			t.Error("an unmapped sender has a relay of its own")
		}
		if _, ok := got.Lookup(authinfo.Query{NextHop: "[smtp.example.com]:587"}); ok != (c != nil) {
			t.Errorf("Lookup with credentials %v: %v", c != nil, ok)
		}
	}
}

// relayEnv points the configuration at files in a new directory: no env
// file, the default relay, a credentials file and a sender relay map.
func relayEnv(t *testing.T, relayHost, authinfoText, mapText string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("RELAYQ_CONFIG", writeTestFile(t, filepath.Join(dir, "relayq.env"), "", 0o644))
	t.Setenv("RELAYQ_RELAYHOST", relayHost)
	t.Setenv("RELAYQ_AUTHINFO", writeTestFile(t, filepath.Join(dir, "authinfo"), authinfoText, 0o600))
	t.Setenv("RELAYQ_SENDER_RELAYHOST_MAP", writeTestFile(t, filepath.Join(dir, "sender_relay"), mapText, 0o644))
	t.Setenv("RELAYQ_SPOOL", filepath.Join(dir, "queue.db"))
	t.Setenv("RELAYQ_SOCKET", filepath.Join(dir, "submit.sock"))
	t.Setenv("RELAYQ_CONTROL_SOCKET", filepath.Join(dir, "control.sock"))
	t.Setenv("RELAYQ_ALIASES", "")
	t.Setenv("RELAYQ_DOMAIN", "example.com")
	// relayq check resolves relay hosts: here every name of example.com,
	// example.net and example.org resolves, nothing else does.
	old := checkResolver
	checkResolver = fakeResolver{}
	t.Cleanup(func() { checkResolver = old })
	return dir
}

type fakeResolver struct{}

func (fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	for _, d := range []string{"example.com", "example.net", "example.org", "example"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return []string{"192.0.2.1"}, nil
		}
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f fakeResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if _, err := f.LookupHost(ctx, name); err != nil {
		return nil, err
	}
	return []*net.MX{{Host: "mx." + name, Pref: 10}}, nil
}

func run(fn func(stdio, []string) int, args ...string) (code int, out, errOut string) {
	var o, e bytes.Buffer
	code = fn(stdio{strings.NewReader(""), &o, &e}, args)
	return code, o.String(), e.String()
}

func TestCheckSenderRelayMap(t *testing.T) {
	dir := relayEnv(t, "[smtp.example.com]:587",
		"[smtp.example.com]:587 def@example.com:Pw1secret\n[other.example]:465 alice@example.com:Pw2secret\n",
		"# relays\n@example.com [other.example]:465\nbob@example.com DUNNO\n@example.net [a.example]:587,\n  b.example\n")
	mapPath := filepath.Join(dir, "sender_relay")
	code, out, errOut := run(runCheck)
	// @example.net's relays have no credential: with RELAYQ_AUTH=required
	// (the default) that mail would never leave, which check says.
	if code != exConfig {
		t.Fatalf("check: exit %d, want %d\n%s%s", code, exConfig, out, errOut)
	}
	for _, want := range []string{
		"sender relay map " + mapPath + ":4: mail from @example.net goes to [a.example]:587, which has no credential, so it is never sent",
		"sender relay map " + mapPath + ":4: mail from @example.net goes to b.example, which has no credential",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check errors lack %q:\n%s", want, errOut)
		}
	}
	for _, want := range []string{
		"ok      sender relay map: " + mapPath + ": 3 entries",
		"sender relay map " + mapPath + ":\n",
		"  sender @example.com: relay host [other.example]:465 (" + mapPath + ":2)\n" +
			"    credentials at [other.example]:465: user \"alice@example.com\" password ******** (" + dir + "/authinfo:2)\n",
		"  sender bob@example.com: DUNNO, the default relay host RELAYQ_RELAYHOST (" + mapPath + ":3)\n",
		"  sender @example.net: relay host [a.example]:587, b.example (" + mapPath + ":4)\n" +
			"    credentials at [a.example]:587: none: no mail is sent there (RELAYQ_AUTH=required: no credential, no send)\n",
		"    credentials at b.example: none: no mail is sent there (RELAYQ_AUTH=required: no credential, no send)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Pw2secret") {
		t.Errorf("check shows a secret:\n%s", out)
	}

	writeTestFile(t, mapPath, "@example.com [other.example]:465\n\n@EXAMPLE.com b.example\n", 0o644)
	if code, out, errOut := run(runCheck); code != exConfig || !strings.Contains(errOut, "RELAYQ_SENDER_RELAYHOST_MAP: "+mapPath+":3: duplicate key") {
		t.Errorf("duplicate key: exit %d\n%s%s", code, out, errOut)
	}
	writeTestFile(t, mapPath, "@example.com [other.example]:465\n", 0o666)
	if code, _, errOut := run(runCheck); code != exConfig || !strings.Contains(errOut, "writable by others (mode 0666)") {
		t.Errorf("world-writable: exit %d\n%s", code, errOut)
	}
}

func TestAuthinfoLookupSenderRelay(t *testing.T) {
	dir := relayEnv(t, "[smtp.example.com]:587", "[smtp.example.com]:587 def@example.com:pw\n",
		"@example.com [other.example]:465\nbob@example.com DUNNO\n@example.org [smtp.example.com]:587, [backup.example]:587\n")
	code, out, _ := run(runAuthinfo, "lookup", "[smtp.example.com]:587", "alice+x@example.com")
	if code != exOK || !strings.Contains(out, "sender relay map:\n  "+dir+"/sender_relay: sender relay map, 3 entries\n") ||
		!strings.Contains(out, "  3. sender \"@example.com\": matches "+dir+"/sender_relay:1\n") ||
		!strings.Contains(out, "note: mail from alice+x@example.com goes to a different relay host, [other.example]:465, not to [smtp.example.com]:587; for its credential there run: relayq authinfo lookup [other.example]:465 alice+x@example.com\n") {
		t.Errorf("mapped sender: exit %d\n%s", code, out)
	}
	for _, sender := range []string{"bob@example.com", "a@example.org", "a@example.net", ""} {
		code, out, _ := run(runAuthinfo, "lookup", "[smtp.example.com]:587", sender)
		if code != exOK || !strings.Contains(out, "sender relay map:\n") || strings.Contains(out, "note:") {
			t.Errorf("sender %q: exit %d\n%s", sender, code, out)
		}
	}
	// -relay-map names another map, or none.
	other := writeTestFile(t, filepath.Join(dir, "other"), "@example.net [x.example]:587\n", 0o644)
	if _, out, _ := run(runAuthinfo, "lookup", "-relay-map", other, "[smtp.example.com]:587", "a@example.net"); !strings.Contains(out, "goes to a different relay host, [x.example]:587") {
		t.Errorf("-relay-map FILE:\n%s", out)
	}
	if _, out, _ := run(runAuthinfo, "lookup", "-relay-map=", "[smtp.example.com]:587", "a@example.com"); strings.Contains(out, "sender relay map") {
		t.Errorf("-relay-map= still uses a map:\n%s", out)
	}
	// A bad map is a configuration error, a missing one no input.
	bad := writeTestFile(t, filepath.Join(dir, "bad"), "@example.net [x.example\n", 0o644)
	if code, _, errOut := run(runAuthinfo, "lookup", "-relay-map", bad, "[smtp.example.com]:587"); code != exConfig || !strings.Contains(errOut, bad+":1: relay 1") {
		t.Errorf("bad map: exit %d %s", code, errOut)
	}
	if code, _, _ := run(runAuthinfo, "lookup", "-relay-map", filepath.Join(dir, "missing"), "[smtp.example.com]:587"); code != exNoInput {
		t.Errorf("missing map: exit %d", code)
	}
}

// TestQueueRunSenderRelay: the daemonless queue run, wired from the
// configuration, sends a mapped sender's mail to the map's relay and the
// rest to RELAYQ_RELAYHOST (go-smtp servers on loopback, no TLS).
func TestQueueRunSenderRelay(t *testing.T) {
	def, mapped := testlib.StartSink(t), testlib.StartSink(t)
	dir := t.TempDir()
	cfg := queueConfig()
	cfg.Spool = filepath.Join(dir, "queue.db")
	cfg.TLS = "none"
	cfg.Auth = "none" // a test relay without AUTH
	cfg.HeloName = "client.test"
	cfg.RelayHost = def.Relay()
	cfg.SenderRelayHostMap = writeTestFile(t, filepath.Join(dir, "sender_relay"), "@example.org "+mapped.Relay()+"\n", 0o644)

	sp, err := spool.Open(cfg.Spool, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"alice+x@example.org", "carol@example.com"} {
		env := spool.Envelope{From: from, Recipients: []spool.Recipient{{Addr: "rcpt@example.net"}}}
		if _, err := sp.Submit(context.Background(), env, strings.NewReader("Subject: t\r\n\r\nhi\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runQueueOnce(ctx, cfg, maillog.New(nil).Logger, nil); err != nil {
		t.Fatal(err)
	}
	if got := mapped.Senders(); strings.Join(got, ",") != "alice+x@example.org" {
		t.Errorf("mapped relay got mail from %q", got)
	}
	if got := def.Senders(); strings.Join(got, ",") != "carol@example.com" {
		t.Errorf("default relay got mail from %q", got)
	}
}

// TestProbeSenderRelay: relayq probe -sender connects where that sender's
// mail would go.
func TestProbeSenderRelay(t *testing.T) {
	def, mapped := testlib.StartSink(t), testlib.StartSink(t)
	relayEnv(t, def.Relay(), "", "@example.org "+mapped.Relay()+"\n")
	t.Setenv("RELAYQ_TLS", "none")
	t.Setenv("RELAYQ_AUTH", "none") // the sinks take mail without AUTH
	t.Setenv("RELAYQ_HELO_NAME", "client.test")
	code, out, errOut := run(runProbe, "-sender", "a@example.org")
	if code != exOK || !strings.Contains(out, "sender a@example.org: relay host "+mapped.Relay()+" (per-sender relay), not "+def.Relay()) ||
		!strings.Contains(out, "connecting to 127.0.0.1[127.0.0.1]:"+mapped.Addr[strings.LastIndex(mapped.Addr, ":")+1:]) {
		t.Errorf("probe -sender a@example.org: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(runProbe, "-sender", "a@example.com")
	if code != exOK || strings.Contains(out, "per-sender relay") || !strings.Contains(out, "connecting to 127.0.0.1[127.0.0.1]:"+def.Addr[strings.LastIndex(def.Addr, ":")+1:]) {
		t.Errorf("probe -sender a@example.com: exit %d\n%s%s", code, out, errOut)
	}
}
