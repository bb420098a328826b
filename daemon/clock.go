package daemon

import "time"

// Clock is the runner's time source. Tests inject a fake one whose timers
// fire when the test advances it.
type Clock interface {
	Now() time.Time
	// TimerAt returns a timer that fires once the clock reaches t (at
	// once if it has).
	TimerAt(t time.Time) Timer
}

// Timer is a one-shot timer (a *time.Timer behind an interface).
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// TimerAt returns a real timer firing at t.
func (SystemClock) TimerAt(t time.Time) Timer { return realTimer{time.NewTimer(time.Until(t))} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }
