package smarthost

import (
	"context"
	"sync"
	"time"
)

// relayPool bounds the connections to one relay (Options.MaxConns)
// and keeps idle ones for reuse, closing them after Options.IdleTimeout.
// A connection is pooled under a key that names the credential it
// authenticated with, so a connection is reused only for mail that would
// have used the same credential.
type relayPool struct {
	mu   sync.Mutex
	max  int
	live int
	idle []*session
	wake chan struct{} // closed (and replaced) when a slot or idle session appears
}

func newRelayPool(max int) *relayPool {
	return &relayPool{max: max, wake: make(chan struct{})}
}

func (p *relayPool) signal() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// get returns an idle session with the key, or (nil, nil) with a slot
// reserved for a new connection (the caller must call release when that
// connection ends or cannot be made).
func (p *relayPool) get(ctx context.Context, key string) (*session, error) {
	for {
		p.mu.Lock()
		for i := len(p.idle) - 1; i >= 0; i-- {
			if s := p.idle[i]; s.key == key {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				p.mu.Unlock()
				s.idleTimer.Stop()
				return s, nil
			}
		}
		if p.live < p.max {
			p.live++
			p.mu.Unlock()
			return nil, nil
		}
		if len(p.idle) > 0 {
			// All slots busy or idle under other keys: retire the oldest idle
			// connection and take its slot.
			s := p.idle[0]
			p.idle = p.idle[1:]
			p.mu.Unlock()
			s.idleTimer.Stop()
			s.c.quit()
			return nil, nil
		}
		w := p.wake
		p.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// slot reserves a slot for a new connection, retiring an idle one when
// all are taken.
func (p *relayPool) slot(ctx context.Context) error {
	for {
		s, err := p.get(ctx, "\x00no such key")
		if err != nil || s == nil {
			return err
		}
	}
}

// release gives back the slot of a connection that was closed.
func (p *relayPool) release() {
	p.mu.Lock()
	p.live--
	p.signal()
	p.mu.Unlock()
}

// put makes a session idle; it is closed after idle (slot released).
func (p *relayPool) put(s *session, idle time.Duration) {
	p.mu.Lock()
	p.idle = append(p.idle, s)
	s.idleTimer = time.AfterFunc(idle, func() {
		p.mu.Lock()
		for i, x := range p.idle {
			if x == s {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				p.live--
				p.signal()
				p.mu.Unlock()
				s.c.quit()
				return
			}
		}
		p.mu.Unlock()
	})
	p.signal()
	p.mu.Unlock()
}

// closeIdle closes every idle session.
func (p *relayPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.live -= len(idle)
	p.signal()
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range idle {
		s.idleTimer.Stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.c.quit()
		}()
	}
	wg.Wait()
}

// rateLimiter spaces message starts to one per interval (per relay).
type rateLimiter struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

// wait blocks until the next message may start.
func (r *rateLimiter) wait(ctx context.Context) error {
	r.mu.Lock()
	now := time.Now()
	t := r.next
	if t.Before(now) {
		t = now
	}
	r.next = t.Add(r.every)
	r.mu.Unlock()
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
