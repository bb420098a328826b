package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDeliveryDefaultsAndValidate(t *testing.T) {
	var d Delivery
	for _, f := range fields("", &d) {
		if f.Default != "" {
			if err := setField(f.Default, f.v); err != nil {
				t.Fatalf("%s default %q: %v", f.Key, f.Default, err)
			}
		}
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if d.RelayConnections != 4 || d.DataDoneTimeout != 600*time.Second || d.RsetTimeout != 20*time.Second || d.TLSImplicit != "auto" {
		t.Errorf("defaults: %+v", d)
	}
	cases := []struct {
		mod  func(*Delivery)
		want string
	}{
		{func(d *Delivery) { d.TLSMinVersion = "1.1" }, "RELAYQ_TLS_MIN_VERSION"},
		{func(d *Delivery) { d.TLSImplicit = "maybe" }, "RELAYQ_TLS_IMPLICIT"},
		{func(d *Delivery) { d.TLSCertFile = "/x.pem" }, "RELAYQ_TLS_KEY_FILE"},
		{func(d *Delivery) { d.SASLMechanisms = "PLAIN, NTLM" }, `unknown mechanism "NTLM"`},
		{func(d *Delivery) { d.RelayConnections = 0 }, "RELAYQ_RELAY_CONNECTIONS"},
		{func(d *Delivery) { d.RelayRate = -1 }, "RELAYQ_RELAY_RATE"},
		{func(d *Delivery) { d.DataDoneTimeout = 0 }, "RELAYQ_SMTP_DATA_DONE_TIMEOUT"},
		{func(d *Delivery) { d.SASLMechanisms = "scram-sha-256 plain" }, ""},
		{func(d *Delivery) { d.DiscardEHLOKeywords = "chunking, PIPELINING 8bitmime,x-ext" }, ""},
		{func(d *Delivery) { d.DiscardEHLOKeywords = "chunking,BDAT 5" }, ""}, // "5" is a keyword too
		{func(d *Delivery) { d.DiscardEHLOKeywords = "-chunking" }, `RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS: "-chunking" is not an EHLO keyword`},
		{func(d *Delivery) { d.DiscardEHLOKeywords = "chunking;pipelining" }, `"chunking;pipelining" is not an EHLO keyword`},
		{func(d *Delivery) { d.DiscardEHLOKeywords = "8bitmime=yes" }, `"8bitmime=yes" is not an EHLO keyword`},
	}
	for _, tc := range cases {
		x := d
		tc.mod(&x)
		err := x.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %q", err, tc.want)
		}
	}
}

func TestDeliveryList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                         nil,
		"PLAIN":                    {"PLAIN"},
		" PLAIN, LOGIN\tCRAM-MD5 ": {"PLAIN", "LOGIN", "CRAM-MD5"},
		",,":                       nil,
	} {
		got := DeliveryList(in)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DeliveryList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeliveryThroughLoad(t *testing.T) {
	env := t.TempDir() + "/relayq.env"
	if err := os.WriteFile(env, []byte("RELAYQ_RELAY_CONNECTIONS=8\nRELAYQ_SMTP_RCPT_TIMEOUT=90s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadEnviron([]string{"RELAYQ_CONFIG=" + env, "RELAYQ_TLS_PINS=sha256//abc, def", "RELAYQ_RELAY_RATE=2.5"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RelayConnections != 8 || c.RcptTimeout != 90*time.Second || c.RelayRate != 2.5 ||
		!reflect.DeepEqual(DeliveryList(c.TLSPins), []string{"sha256//abc", "def"}) {
		t.Errorf("loaded %+v", c.Delivery)
	}
	err = loadProblem(LoadEnviron([]string{"RELAYQ_CONFIG=" + env, "RELAYQ_SASL_MECHANISMS=NTLM"}))
	if err == nil || !strings.Contains(err.Error(), "RELAYQ_SASL_MECHANISMS") {
		t.Errorf("bad mechanism: %v", err)
	}
}
