package control

import (
	"context"
	"sync"
	"time"

	"github.com/relayq/relayq/spool"
)

// Attempt is one delivery attempt of a message, as the daemon's runner
// reported it: what `sendmail -odi` prints when a daemon runs.
type Attempt struct {
	ID      spool.ID           `json:"id"`
	Origin  string             `json:"origin"` // the message's submitter ("uid=N …"), for the ownership check
	At      time.Time          `json:"at"`
	Results []RecipientOutcome `json:"results"`
}

// RecipientOutcome is one recipient's result in an Attempt.
type RecipientOutcome struct {
	Addr  string      `json:"addr"`
	State spool.State `json:"state"` // Pending (deferred), Delivered or Bounced
	Reply string      `json:"reply,omitempty"`
	Relay string      `json:"relay,omitempty"`
}

// Attempts remembers the first delivery attempt of recent messages and
// lets a caller wait for it. The daemon's runner reports every attempt
// (Record, from daemon.Options.Attempted); the control socket's
// POST /v1/queue/{id}/attempt answers from it, so that sendmail -odi gets
// its message's outcome from the attempt itself, without polling the
// queue, even when the attempt ended before it asked (the message has then
// left the queue). It keeps at most AttemptsKept entries, for at most
// AttemptsTTL each. The zero value is not usable; call NewAttempts.
type Attempts struct {
	mu      sync.Mutex
	first   map[spool.ID]Attempt
	order   []spool.ID // insertion order, for eviction
	waiters map[spool.ID][]chan Attempt
	now     func() time.Time
}

// AttemptsKept bounds the attempts remembered; AttemptsTTL is how long one
// is kept.
const (
	AttemptsKept = 4096
	AttemptsTTL  = 10 * time.Minute
)

// NewAttempts returns an empty Attempts.
func NewAttempts() *Attempts {
	return &Attempts{first: map[spool.ID]Attempt{}, waiters: map[spool.ID][]chan Attempt{}, now: time.Now}
}

// Record notes an attempt of m with its per-recipient results (the runner's
// Attempted hook). Only a message's first attempt is kept: it is the one
// sendmail -odi waits for. It never blocks.
func (a *Attempts) Record(m *spool.Message, results []spool.Result) {
	if a == nil || m == nil {
		return
	}
	at := Attempt{ID: m.ID, Origin: m.Origin, At: a.now()}
	for _, r := range results {
		if r.Index < 0 || r.Index >= len(m.Recipients) {
			continue
		}
		at.Results = append(at.Results, RecipientOutcome{Addr: m.Recipients[r.Index].Addr, State: r.State, Reply: r.Reply.String(), Relay: r.Relay})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range a.waiters[m.ID] {
		ch <- at // buffered, one send per channel
	}
	delete(a.waiters, m.ID)
	if _, seen := a.first[m.ID]; seen {
		return
	}
	a.evict()
	a.first[m.ID] = at
	a.order = append(a.order, m.ID)
}

// evict drops expired entries and, beyond AttemptsKept, the oldest. Called
// with mu held.
func (a *Attempts) evict() {
	cut := 0
	now := a.now()
	for cut < len(a.order) {
		e, ok := a.first[a.order[cut]]
		if ok && len(a.order)-cut < AttemptsKept && now.Sub(e.At) < AttemptsTTL {
			break
		}
		delete(a.first, a.order[cut])
		cut++
	}
	if cut > 0 {
		a.order = append(a.order[:0], a.order[cut:]...)
	}
}

// Last returns the remembered first attempt of id, if any.
func (a *Attempts) Last(id spool.ID) (Attempt, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.first[id]
	if ok && a.now().Sub(at.At) >= AttemptsTTL {
		return Attempt{}, false
	}
	return at, ok
}

// Wait returns id's first attempt: at once when it is remembered, else
// when the runner reports the next attempt of id, or ctx's error. ready
// is called once the wait is registered (an attempt reported from then on
// is not missed): the caller checks there that an attempt can still come
// (the message is queued, not held) and wakes the runner; its error ends
// the wait (unless an attempt was reported meanwhile) and is returned.
func (a *Attempts) Wait(ctx context.Context, id spool.ID, ready func() error) (Attempt, error) {
	a.mu.Lock()
	if at, ok := a.first[id]; ok && a.now().Sub(at.At) < AttemptsTTL {
		a.mu.Unlock()
		return at, nil
	}
	ch := make(chan Attempt, 1)
	a.waiters[id] = append(a.waiters[id], ch)
	a.mu.Unlock()
	var err error
	if ready != nil {
		err = ready()
	}
	if err == nil {
		select {
		case at := <-ch:
			return at, nil
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	a.mu.Lock()
	ws := a.waiters[id]
	for i, w := range ws {
		if w == ch {
			a.waiters[id] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(a.waiters[id]) == 0 {
		delete(a.waiters, id)
	}
	a.mu.Unlock()
	select {
	case at := <-ch: // reported while leaving
		return at, nil
	default:
	}
	return Attempt{}, err
}
