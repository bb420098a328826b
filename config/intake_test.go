package config

import (
	"strings"
	"testing"
)

func TestIntakeValidate(t *testing.T) {
	ok := Intake{TrustedUsers: []string{"root", "relayq"}, UntrustedSender: "warn", MaxHeaderSize: 102400, HopCountLimit: 50}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		change func(*Intake)
		want   string
	}{
		{func(c *Intake) { c.UntrustedSender = "ignore" }, "RELAYQ_UNTRUSTED_SENDER"},
		{func(c *Intake) { c.TrustedUsers = []string{"root", ""} }, "RELAYQ_TRUSTED_USERS"},
		{func(c *Intake) { c.TrustedUsers = []string{"ro ot"} }, "RELAYQ_TRUSTED_USERS"},
		{func(c *Intake) { c.GenericMap = "generic" }, "RELAYQ_GENERIC_MAP"},
		{func(c *Intake) { c.SenderRewrite = "alerts" }, "RELAYQ_SENDER_REWRITE"},
		{func(c *Intake) { c.SenderRewrite = "Alerts <a@example.com>" }, "RELAYQ_SENDER_REWRITE"},
		{func(c *Intake) { c.SenderRewrite = "-oQ@example.com" }, "RELAYQ_SENDER_REWRITE"},
		{func(c *Intake) { c.MaxHeaderSize = 10 }, "RELAYQ_MAX_HEADER_SIZE"},
		{func(c *Intake) { c.HopCountLimit = 0 }, "RELAYQ_HOPCOUNT_LIMIT"},
	}
	for _, tc := range tests {
		c := ok
		c.TrustedUsers = append([]string(nil), ok.TrustedUsers...)
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate() = %v, want an error naming %s", c, err, tc.want)
		}
	}
	good := ok
	good.GenericMap, good.SenderRewrite = "/etc/relayq/generic", "alerts@example.com"
	if err := good.Validate(); err != nil {
		t.Errorf("valid settings refused: %v", err)
	}
}

func TestIntakeFromEnvironment(t *testing.T) {
	c, err := LoadEnviron([]string{"RELAYQ_CONFIG=", "RELAYQ_TRUSTED_USERS=root,backup", "RELAYQ_UNTRUSTED_SENDER=refuse", "RELAYQ_SENDER_REWRITE=alerts@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.TrustedUsers, ",") != "root,backup" || c.UntrustedSender != "refuse" || c.SenderRewrite != "alerts@example.com" || c.MaxHeaderSize != 102400 || c.HopCountLimit != 50 {
		t.Errorf("intake keys %+v", c.Intake)
	}
	if _, err := LoadEnviron([]string{"RELAYQ_CONFIG=", "RELAYQ_UNTRUSTED_SENDER=maybe"}); err == nil || !strings.Contains(err.Error(), "RELAYQ_UNTRUSTED_SENDER") {
		t.Errorf("bad policy accepted: %v", err)
	}
}
