package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/relayq/relayq/sendmail"
)

// TestNoDeliveryCode keeps the small sendmail small: it must not link TLS,
// HTTP, x509, SASL, OAuth or an SMTP library (their package init and pages
// would be paid by every cron job). `go list -deps` is the build's own view.
func TestNoDeliveryCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{"crypto/tls", "net/http", "crypto/x509", "github.com/emersion/go-sasl",
		"github.com/emersion/go-smtp", "golang.org/x/oauth2", "github.com/xdg-go/",
		"github.com/relayq/relayq/smarthost", "github.com/relayq/relayq/control",
		"github.com/relayq/relayq/listener", "github.com/relayq/relayq/daemon"}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		for _, b := range banned {
			if p == b || strings.HasPrefix(p, b+"/") || (strings.HasSuffix(b, "/") && strings.HasPrefix(p, b)) {
				t.Errorf("cmd/sendmail links %s", p)
			}
		}
	}
	if n == 0 {
		t.Fatal("go list -deps listed nothing")
	}
}

// TestNeedsRelayq: only submission stays in the small binary.
func TestNeedsRelayq(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-t"}, false},
		{[]string{"-odq", "-t"}, false},
		{[]string{"-bi"}, false},
		{[]string{"-bp"}, true},
		{[]string{"-q"}, true},
		{[]string{"-bs"}, true},
		{[]string{"-odi", "-t"}, true},
	} {
		f, err := sendmail.ParseArgs(c.args)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := needsRelayq(f); got != c.want {
			t.Errorf("%v: needsRelayq = %v, want %v", c.args, got, c.want)
		}
	}
}
