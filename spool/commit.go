package spool

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many writes share one transaction.
const maxBatch = 1000

// committer is the spool's group commit: one goroutine takes every write
// queued since its last commit and runs them in a single bbolt transaction,
// so concurrent writers share one fsync. A single writer pays no extra delay:
// its write starts as soon as the previous commit ends.
//
// Write functions must be idempotent and keep their results in variables
// they set on every run: when one function fails, the transaction is rolled
// back, that function gets its error, and the others run again in a new
// transaction. A function's effects count only when do returns nil.
type committer struct {
	s       *Spool
	mu      sync.Mutex
	queue   []*commitReq
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

type commitReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

func startCommitter(s *Spool) *committer {
	c := &committer{s: s, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// do queues fn and waits until its transaction is committed (nil) or fn or
// the commit failed.
func (c *committer) do(fn func(*bolt.Tx) error) error {
	r := &commitReq{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return fmt.Errorf("spool %s: %w", c.s.path, errClosed)
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return <-r.done
}

// stop serves what is queued, then ends the goroutine.
func (c *committer) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	debug.SetPanicOnFault(true) // this goroutine is ours alone
	last := 1                   // size of the previous batch
	var lastDur time.Duration   // how long its commit took
	sinceTrim := 0              // writes committed since the last trimMapped
	for {
		c.gather(last, lastDur)
		c.mu.Lock()
		n := min(len(c.queue), maxBatch)
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		if len(c.queue) == 0 {
			c.queue = nil
		}
		stopped := c.stopped
		c.mu.Unlock()
		if n == 0 {
			if stopped {
				return
			}
			<-c.wake
			continue
		}
		start := time.Now()
		c.run(batch)
		last, lastDur = n, time.Since(start)
		if sinceTrim += n; sinceTrim >= trimEvery {
			sinceTrim = 0
			c.s.trimMapped()
		}
	}
}

// gather waits briefly for the writers of the previous batch to queue their
// next writes. Without it, writers that were all released by one commit come
// back one by one: the first would start a commit of its own and the rest
// would wait for it, halving the batch size. It waits only while fewer
// writes are queued than the previous batch had, and at most a quarter of
// the previous commit's time (capped at 2 ms); a lone writer never waits.
func (c *committer) gather(last int, lastDur time.Duration) {
	if last <= 1 {
		return
	}
	var timer *time.Timer
	for {
		c.mu.Lock()
		queued, stopped := len(c.queue), c.stopped
		c.mu.Unlock()
		if queued == 0 || queued >= last || stopped {
			break
		}
		if timer == nil {
			timer = time.NewTimer(min(lastDur/4, 2*time.Millisecond))
			defer timer.Stop()
		}
		select {
		case <-c.wake:
		case <-timer.C:
			return
		}
	}
}

// run commits batch, retrying without any function that fails.
func (c *committer) run(batch []*commitReq) {
	s := c.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	for len(batch) > 0 {
		failed := -1
		var fnErr error
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = s.corruptPanic(r)
				}
			}()
			return s.db.Update(func(tx *bolt.Tx) error {
				for i, r := range batch {
					if err := s.callGuarded(r.fn, tx); err != nil {
						failed, fnErr = i, err
						return err
					}
				}
				return nil
			})
		}()
		if failed >= 0 {
			batch[failed].done <- fnErr
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			continue
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("spool %s: commit: %w: %w", s.path, ErrFull, err)
		}
		for _, r := range batch {
			r.done <- err
		}
		return
	}
}
