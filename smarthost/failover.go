package smarthost

import (
	"context"
	"errors"
	"fmt"

	"github.com/relayq/relayq/wire"
)

// delivery is one Deliver call working through the relays.
type delivery struct {
	c       *Client
	ctx     context.Context
	m       *Message
	out     *Outcome
	pending []int // recipients without a final answer yet
	lastErr error
}

// setAll records v for every pending recipient.
func (d *delivery) setAll(v verdict) {
	for _, i := range d.pending {
		d.out.Recipients[i] = v.rcpt(d.m.Recipients[i].Addr)
	}
}

// failed records a session that could not be set up on t.
func (d *delivery) failed(t target, p phase, err error) verdict {
	d.lastErr = err
	v := classify(p, err)
	d.setAll(v)
	if p != phConnect {
		// It answered (a greeting, an EHLO, a TLS or AUTH
		// refusal): the replies are this relay's.
		d.out.Relay = t.String()
	}
	d.out.AuthFailed = d.out.AuthFailed || v.AuthFailed
	d.out.NoSession = true
	d.out.Kind = kindOf(p, err, v)
	return v
}

// send runs the transaction on s and returns s to the pool.
func (d *delivery) send(s *session) error {
	d.out.Relay = s.tgt.String()
	d.out.NoSession, d.out.Kind = false, ""
	d.out.DSN = s.c.has("DSN")
	s.stop = context.AfterFunc(d.ctx, s.c.raw.expire)
	var err error
	d.pending, err = d.c.transact(d.ctx, s, d.m, d.pending, d.out)
	d.c.done(s, err)
	return err
}

// relays tries the relays in order, each of their addresses in order; it
// reports whether one gave an answer for every recipient.
func (d *delivery) relays(relays []Relay) bool {
	for _, r := range relays {
		tgts, err := resolve(d.ctx, d.c.o.Resolver, r)
		if err != nil {
			d.lastErr = err
			d.setAll(classify(phConnect, err))
			d.out.NoSession, d.out.Kind = true, KindConnect
			continue
		}
		for _, t := range tgts {
			if d.ctx.Err() != nil {
				return false
			}
			done, next := d.target(t)
			if done {
				return true
			}
			if !next {
				return false
			}
		}
	}
	return false
}

// target tries one address: done when every recipient got an answer,
// next when the following address or relay is worth trying.
func (d *delivery) target(t target) (done, next bool) {
	s, p, err := d.c.session(d.ctx, t, d.m.From)
	if err != nil {
		v := d.failed(t, p, err)
		if v.AuthFailed {
			// The alarm (RELIABILITY R3): mail waits, a person must act.
			msg := "relay refused authentication; mail deferred"
			if kindOf(p, err, v) == KindCredential {
				msg = "no credential for the relay; mail deferred, nothing sent (no credential, no send)"
			}
			d.c.log.Error(msg, "queue_id", d.m.ID, "relay", t.String(),
				"reply", wire.Reply{Code: v.Code, Enhanced: v.Enhanced, Text: v.Text}.String())
		}
		return false, v.Status != Bounced && v.NextRelay
	}
	err = d.send(s)
	if errors.Is(err, errStale) {
		// The pooled connection was dead: once more on a new one.
		s, p, err2 := d.c.fresh(d.ctx, t, d.m.From)
		if err2 != nil {
			v := d.failed(t, p, err2)
			return false, v.Status != Bounced && v.NextRelay
		}
		err = d.send(s)
	}
	if err == nil {
		return true, false
	}
	d.lastErr = err
	var de *deliveryError
	return false, !errors.As(err, &de) || de.v.NextRelay
}

// err is the error of a delivery that no relay completed. The contract: an
// error means nothing was delivered. When an earlier transaction
// delivered some recipients (452 split, then a failure), the outcome
// stands on its own: those are Delivered, the rest Deferred.
func (d *delivery) err() error {
	for _, r := range d.out.Recipients {
		if r.Status == Delivered {
			return nil
		}
	}
	lastErr := d.lastErr
	if lastErr == nil {
		lastErr = d.ctx.Err()
	}
	if lastErr == nil {
		lastErr = errors.New("no relay reached")
	}
	return fmt.Errorf("smarthost: message %s not delivered: %w", d.m.ID, lastErr)
}
