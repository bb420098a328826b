package daemon

import (
	"sync"
	"time"

	"github.com/relayq/relayq/smarthost"
)

// relayGate is the dead-relay hold (Postfix's dead-host cache): after an
// attempt that could not reach the relay or whose login was refused, no
// message is started for a back-off period; then one message alone probes
// the relay. A probe that gets through opens the gate for all; one that
// fails closes it for a longer period (the message backoff: RELAYQ_BACKOFF_MIN
// doubling up to RELAYQ_BACKOFF_MAX). With 10,000 messages queued and the
// relay down, that is one connection per period instead of one per
// message, and a wrong password is tried once per period, not once per
// message (no account lock-out). The gate covers the runner's relay as a
// whole (per-sender relays share it).
type relayGate struct {
	mu       sync.Mutex
	until    time.Time // closed until then (zero: open)
	failures int       // consecutive relay-level failures
	probing  bool      // the probe is in flight
	reason   string    // the failure that closed it
	kind     string    // its kind (smarthost.Kind*)
}

// hold is the current hold: until when, why, and the kind of the failure;
// ok is false when the gate is open or a probe is in flight.
func (g *relayGate) hold() (until time.Time, reason, kind string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.until.IsZero() || g.probing {
		return time.Time{}, "", "", false
	}
	return g.until, g.reason, g.kind, true
}

// relayDown reports an outcome that says the relay as a whole cannot take
// mail now: no session (connection, greeting, TLS or login failed, or no
// credential matches), or a login refused.
func relayDown(out smarthost.Outcome, derr error) bool {
	if derr == nil {
		return false
	}
	return out.NoSession || out.AuthFailed
}

// admit reports whether a message may start now: always when the gate is
// open; when it is closed and its period is over, one message (the probe)
// while no other probe is in flight.
func (g *relayGate) admit(now time.Time) (ok, probe bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.until.IsZero():
		return true, false
	case g.probing || now.Before(g.until):
		return false, false
	}
	g.probing = true
	return true, true
}

// closedUntil is the end of the current hold, zero when the gate is open
// or a probe is in flight (its end wakes the scheduler).
func (g *relayGate) closedUntil() (until time.Time, closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.until.IsZero() {
		return time.Time{}, false
	}
	if g.probing {
		return time.Time{}, true
	}
	return g.until, true
}

// result records an attempt's outcome. It reports whether the gate has
// just closed (down) or opened (up), for the log.
func (g *relayGate) result(now time.Time, down, probe bool, wait func(failures int) time.Duration, reason, kind string) (closed, opened bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	if !down {
		opened = !g.until.IsZero()
		g.until, g.failures, g.reason = time.Time{}, 0, ""
		return false, opened
	}
	if !g.until.IsZero() && !probe {
		// An attempt started before the gate closed: the hold stands.
		return false, false
	}
	g.failures++
	g.until = now.Add(wait(g.failures))
	g.reason, g.kind = reason, kind
	return true, false
}

// probeEnded ends a probe that made no delivery attempt (nothing to
// send, a local problem): the next message probes instead.
func (g *relayGate) probeEnded() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.probing = false
}

// open opens the gate (a reload that may have fixed the cause).
func (g *relayGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.until, g.failures, g.reason = time.Time{}, 0, ""
}
