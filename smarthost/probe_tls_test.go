package smarthost

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestProbeDetectsImplicitTLS: probe against an implicit-TLS port that is
// not 465 does not wait the greeting timeout and report a refusal: it sees
// no banner, finds a TLS server and says to set RELAYQ_TLS_IMPLICIT.
func TestProbeDetectsImplicitTLS(t *testing.T) {
	ca := newCA(t)
	cert := ca.good(t)
	srv := startServer(t, serverConfig{cert: &cert, implicit: true, users: map[string]string{"u": "p"}})
	c := newTestClient(t, relayFor(srv), ca, func(o *Options) { o.Timeouts.Greeting = 300 * time.Second })
	var out strings.Builder
	if res := c.Probe(context.Background(), &out, "", ""); res != ProbeConfig {
		t.Errorf("result %v, want %v:\n%s", res, ProbeConfig, out.String())
	}
	if !strings.Contains(out.String(), "RELAYQ_TLS_IMPLICIT=yes") || !strings.Contains(out.String(), "speaks TLS from the first byte") {
		t.Errorf("probe does not say to set RELAYQ_TLS_IMPLICIT:\n%s", out.String())
	}
}
