package daemon

import (
	"context"

	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/wire"
)

// NoRelay is the Deliverer used while no relay host is configured: every
// recipient is deferred with the string as the reason (4.3.5, "system
// incorrectly configured"), so mail stays queued until the configuration
// is fixed and is never bounced for it.
type NoRelay string

// Deliver defers every recipient.
func (n NoRelay) Deliver(ctx context.Context, m *smarthost.Message) (smarthost.Outcome, error) {
	out := smarthost.Outcome{Kind: KindNoRelay}
	for _, r := range m.Recipients {
		out.Recipients = append(out.Recipients, smarthost.RcptOutcome{Addr: r.Addr, Status: smarthost.Deferred, Reply: wire.Reply{Enhanced: "4.3.5", Text: string(n)}})
	}
	return out, nil
}
