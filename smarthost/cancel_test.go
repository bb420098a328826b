package smarthost

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relayq/relayq/internal/testlib"
)

// An attempt whose context ends (the daemon's drain timeout at SIGTERM)
// ends at once, even when the relay has stopped answering: a cancelled
// attempt must not start a new command timeout (MAIL, RSET or QUIT: five
// minutes each) after the cancel. The relay here takes MAIL and then says
// nothing more; the timeouts are a minute, the cancel comes after 200 ms.
func TestCancelEndsStalledAttempt(t *testing.T) {
	for _, ext := range []string{"250-relay.test\r\n250 PIPELINING\r\n", "250 relay.test\r\n"} {
		srv := testlib.Serve(t, func(c *testlib.Conn) {
			c.Send("220 relay.test ESMTP\r\n")
			if !strings.HasPrefix(c.Cmd(), "EHLO") {
				return
			}
			c.Send(ext)
			for { // MAIL and whatever follows: no reply, ever, until relayq hangs up
				if _, err := c.Line(); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					return
				}
			}
		})
		c := newTestClient(t, rawRelay(srv), nil, func(o *Options) {
			o.TLS = None
			min := time.Minute
			o.Timeouts = Timeouts{Greeting: min, Helo: min, Mail: min, Rcpt: min, Data: min, DataBlock: min, DataDone: min, Rset: min, Quit: min}
			o.Deadline = 10 * time.Minute
		})
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		done := make(chan struct{})
		var out Outcome
		var err error
		go func() {
			out, err = c.Deliver(ctx, testMessage("b@example.com"))
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // half a command timeout: it waited for one
			t.Fatalf("EHLO %q: Deliver still running 30 s after its context ended", ext)
		}
		t.Logf("EHLO %q: Deliver returned %s after the cancel", ext, time.Since(start)-200*time.Millisecond)
		if err == nil || out.Recipients[0].Status != Deferred {
			t.Errorf("EHLO %q: Deliver: %v %+v, want deferred", ext, err, out)
		}
		c.Close()
	}
}
