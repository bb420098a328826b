package smarthost

import (
	"testing"

	"github.com/relayq/relayq/config"
)

// TestPolicyNames: every RELAYQ_TLS value config accepts parses to the
// policy of that name and back; anything else (Postfix's "secure" too,
// which config refuses) is an error.
func TestPolicyNames(t *testing.T) {
	t.Parallel()
	want := map[string]Policy{"verify": Verify, "encrypt": Encrypt, "may": May, "none": None}
	if len(config.TLSPolicies) != len(want) {
		t.Fatalf("config.TLSPolicies %v, want the %d policies", config.TLSPolicies, len(want))
	}
	for _, name := range config.TLSPolicies {
		p, err := ParsePolicy(name)
		if err != nil || p != want[name] || p.String() != name {
			t.Errorf("ParsePolicy(%q) = %v (%q), %v; want %v", name, p, p.String(), err, want[name])
		}
	}
	for in, wantP := range map[string]Policy{"": Verify, " MAY ": May} {
		if p, err := ParsePolicy(in); err != nil || p != wantP {
			t.Errorf("ParsePolicy(%q) = %v, %v", in, p, err)
		}
	}
	for _, bad := range []string{"secure", "dane", "verify,may", "yes"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
}
