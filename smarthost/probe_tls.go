package smarthost

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"time"
)

// probeGreetingWait is how long Probe waits for a banner before it asks
// whether the port speaks TLS from the first byte: an implicit-TLS server
// waits for the client's hello, so a STARTTLS client would otherwise wait
// the whole greeting timeout (300 s) and then report a refusal.
const probeGreetingWait = 5 * time.Second

// sniffImplicitTLS connects to t and, when no banner comes within
// probeGreetingWait, tries a TLS handshake on the same connection. It
// reports true when the server answered the handshake (a TLS server on a
// port configured for STARTTLS). Any banner, error or non-TLS answer is
// false: the normal dial follows and reports as it always does.
func (c *Client) sniffImplicitTLS(ctx context.Context, t target) bool {
	dctx, cancel := context.WithTimeout(ctx, c.o.Timeouts.Connect)
	nc, err := c.o.Dialer.DialContext(dctx, "tcp", net.JoinHostPort(t.addr, strconv.Itoa(t.port)))
	cancel()
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(probeGreetingWait))
	var b [1]byte
	if n, err := nc.Read(b[:]); n > 0 || !isTimeout(err) {
		return false // a banner (or a close): an SMTP server as configured
	}
	_ = nc.SetDeadline(time.Now().Add(c.o.Timeouts.TLSHandshake))
	// Only whether the server speaks TLS matters here, not who it is:
	// the certificate is checked by the delivery that follows, if any.
	tc := tls.Client(nc, &tls.Config{ServerName: t.host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // detection only, nothing is sent
	err = tc.HandshakeContext(ctx)
	if err == nil {
		return true
	}
	// A TLS server that refused our hello still answered in TLS (an alert).
	return strings.Contains(err.Error(), "remote error: tls:")
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
