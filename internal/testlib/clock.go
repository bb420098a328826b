// Package testlib holds what relayq's tests share instead of each package
// keeping a private copy: a fake clock, an SMTP sink on loopback, and a
// scripted SMTP server that plays a list of steps. Only tests import it.
package testlib

import (
	"sync"
	"time"
)

// Start is the time a new Clock shows.
var Start = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Clock is a clock whose time moves only when the test moves it; its
// timers fire then. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*Timer
}

// NewClock returns a Clock showing Start.
func NewClock() *Clock { return &Clock{now: Start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Timer is a one-shot timer of a Clock.
type Timer struct {
	c    *Clock
	at   time.Time
	ch   chan time.Time
	done bool
}

// TimerAt returns a timer that fires once the clock reaches at. A timer
// due now, or within a millisecond (a spool queue ID a microsecond in the
// future), fires at once, moving the clock to at.
func (c *Clock) TimerAt(at time.Time) *Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Timer{c: c, at: at, ch: make(chan time.Time, 1)}
	if d := at.Sub(c.now); d <= time.Millisecond {
		if d > 0 {
			c.now = at
		}
		t.ch <- c.now
		t.done = true
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d and fires the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if t.done {
			continue
		}
		if !t.at.After(c.now) {
			t.ch <- c.now
			t.done = true
			continue
		}
		keep = append(keep, t)
	}
	c.timers = keep
}

// C is the channel the timer fires on.
func (t *Timer) C() <-chan time.Time { return t.ch }

// Stop prevents the timer from firing; it reports whether it was pending.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}
