package config

import (
	"strings"
	"testing"
)

// TestSenderRelayHostMap: RELAYQ_SENDER_RELAYHOST_MAP is off by default,
// read from the env file, an absolute path, and listed by `relayq config`.
func TestSenderRelayHostMap(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + writeFile(t, dir, "none.env", "")})
	if err != nil {
		t.Fatal(err)
	}
	if c.SenderRelayHostMap != "" {
		t.Errorf("default %q, want off", c.SenderRelayHostMap)
	}
	f := writeFile(t, dir, "relayq.env", "RELAYQ_SENDER_RELAYHOST_MAP=/etc/relayq/sender_relay\n")
	c, err = LoadEnviron([]string{"RELAYQ_CONFIG=" + f})
	if err != nil {
		t.Fatal(err)
	}
	if c.SenderRelayHostMap != "/etc/relayq/sender_relay" {
		t.Errorf("from the file: %q", c.SenderRelayHostMap)
	}
	found := false
	for _, k := range c.Describe() {
		if k.Key == "RELAYQ_SENDER_RELAYHOST_MAP" {
			found = k.Value == "/etc/relayq/sender_relay" && k.Source == f+":1" && strings.Contains(k.Desc, "sender_dependent_relayhost_maps")
		}
	}
	if !found {
		t.Error("relayq config does not list RELAYQ_SENDER_RELAYHOST_MAP with its value, source and description")
	}
	err = loadProblem(LoadEnviron([]string{"RELAYQ_CONFIG=" + f, "RELAYQ_SENDER_RELAYHOST_MAP=sender_relay"}))
	if err == nil || !strings.Contains(err.Error(), `RELAYQ_SENDER_RELAYHOST_MAP: "sender_relay" is not an absolute path`) {
		t.Errorf("relative path: %v", err)
	}
}
