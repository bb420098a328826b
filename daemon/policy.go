package daemon

import (
	"math/rand/v2"
	"time"

	"github.com/relayq/relayq/config"
)

// Policy is the retry and give-up policy (RFC 5321 §4.5.4.1).
//
// Backoff: after the n-th failed attempt (n ≥ 1) the message waits
// BackoffMin·2^(n-1), capped at BackoffMax, plus a random extra of up to
// Jitter times that wait. With the defaults (5 min, 1 h, 0.1) the waits are
// about 5, 10, 20, 40, 60, 60 … minutes. relayq uses the attempt count
// rather than Postfix's time-in-queue clipping so that a message that
// waited out a long outage is not retried an hour later than a new one
// failing the same way; both converge on the cap.
//
// Give-up: a message whose recipients are still pending after an attempt
// made QueueLifetime after its arrival (BounceLifetime for mail from the
// null sender) is given up on: its pending recipients become Bounced with
// their last reply and status 4.4.7 ("delivery time expired").
type Policy struct {
	BackoffMin     time.Duration // first wait (0: RELAYQ_BACKOFF_MIN's default)
	BackoffMax     time.Duration // cap (below BackoffMin: RELAYQ_BACKOFF_MAX's default)
	Jitter         float64       // extra random wait as a fraction of the backoff, 0..1
	QueueLifetime  time.Duration // 0: RELAYQ_QUEUE_LIFETIME's default
	BounceLifetime time.Duration // for the null sender; 0: QueueLifetime
	// DelayWarning, when positive, sends one delay notice to the sender of
	// a message still queued this long after arrival (off by default, as
	// Postfix delay_warning_time).
	DelayWarning time.Duration
}

// withDefaults fills what p leaves zero with the defaults of package
// config (RELAYQ_BACKOFF_MIN, RELAYQ_BACKOFF_MAX, RELAYQ_QUEUE_LIFETIME).
func (p Policy) withDefaults() Policy {
	d := &config.Defaults().Queue
	if p.BackoffMin <= 0 {
		p.BackoffMin = d.BackoffMin
	}
	if p.BackoffMax < p.BackoffMin {
		p.BackoffMax = max(d.BackoffMax, p.BackoffMin)
	}
	if p.Jitter < 0 {
		p.Jitter = 0
	}
	if p.Jitter > 1 {
		p.Jitter = 1
	}
	if p.QueueLifetime <= 0 {
		p.QueueLifetime = d.QueueLifetime
	}
	if p.BounceLifetime <= 0 {
		p.BounceLifetime = p.QueueLifetime
	}
	return p
}

// Backoff returns the wait after attempt number attempts (1 = the first
// attempt failed). rnd returns a number in [0, 1); nil uses math/rand/v2.
func (p Policy) Backoff(attempts int, rnd func() float64) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	d := p.BackoffMin
	for i := 1; i < attempts && d < p.BackoffMax; i++ {
		d *= 2
	}
	if d > p.BackoffMax {
		d = p.BackoffMax
	}
	if p.Jitter > 0 {
		if rnd == nil {
			rnd = rand.Float64
		}
		d += time.Duration(float64(d) * p.Jitter * rnd())
	}
	return d
}

// Lifetime returns how long a message from sender is retried.
func (p Policy) Lifetime(sender string) time.Duration {
	if sender == "" {
		return p.BounceLifetime
	}
	return p.QueueLifetime
}
