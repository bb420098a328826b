package config

import (
	"reflect"
	"strings"
	"testing"
)

// Defaults is the configuration of an empty environment without an env
// file, and every known mechanism passes validation.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadEnviron([]string{"RELAYQ_CONFIG="})
	if err != nil {
		t.Fatal(err)
	}
	d0 := Defaults()
	if !reflect.DeepEqual(c.Core, d0.Core) || !reflect.DeepEqual(c.Delivery, d0.Delivery) || !reflect.DeepEqual(c.Queue, d0.Queue) ||
		!reflect.DeepEqual(c.Intake, d0.Intake) || !reflect.DeepEqual(c.Listener, d0.Listener) || !reflect.DeepEqual(c.Control, d0.Control) {
		t.Errorf("Defaults() differs from an empty configuration")
	}
	d := Delivery{RelayConnections: 1, SASLMechanisms: strings.ToLower(strings.Join(SASLMechanisms, ","))}
	if err := d.Validate(); err != nil && strings.Contains(err.Error(), "SASL") {
		t.Errorf("a known mechanism refused: %v", err)
	}
	d.SASLMechanisms = "PLAIN,KERBEROS_V4"
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), `unknown mechanism "KERBEROS_V4"`) {
		t.Errorf("unknown mechanism: %v", err)
	}
}
