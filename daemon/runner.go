package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/dsn"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/spool"
	"github.com/relayq/relayq/wire"
)

// Deliverer makes one delivery attempt of a message to the relay.
// *smarthost.Client satisfies it; tests use fakes. The Outcome has one
// entry per m.Recipients, in order; a non-nil error means the message as a
// whole was not delivered (every recipient not Bounced is Deferred).
type Deliverer interface {
	Deliver(ctx context.Context, m *smarthost.Message) (smarthost.Outcome, error)
}

// KindNoRelay is the reason kind of mail deferred because no relay host
// is configured (NoRelay).
const KindNoRelay = "norelay"

// configKinds are the reason kinds a configuration change may fix: mail
// deferred for them is retried at once after a reload or a restart.
var configKinds = []string{smarthost.KindAuth, smarthost.KindTLS, smarthost.KindConnect, smarthost.KindCredential, KindNoRelay}

// Origins of messages the runner submits itself (spool.Envelope.Origin).
const (
	originDSN        = "relayq-dsn"
	originPostmaster = "relayq-postmaster"
)

// errorWait is the pause after a spool error in the scheduler, so that a
// broken spool is not hammered.
const errorWait = time.Second

// runnerConfig is what the runner needs besides the spool and deliverer.
type runnerConfig struct {
	Policy       Policy
	Workers      int
	Lease        time.Duration
	ReportingMTA string
	Postmaster   string
	Log          *maillog.Logger
	Clock        Clock
	Rand         func() float64
	Metrics      *Metrics
	Attempted    func(m *spool.Message, results []spool.Result) // Options.Attempted
}

// runner is the queue runner: one scheduler loop leasing due messages and
// bounded workers delivering them.
type runner struct {
	st   store
	d    Deliverer
	c    runnerConfig
	kick chan struct{}
	gate relayGate // the dead-relay hold
}

func newRunner(st store, d Deliverer, c runnerConfig) *runner {
	c.Policy = c.Policy.withDefaults()
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.Lease <= 0 {
		c.Lease = config.Defaults().LeaseTime
	}
	if c.Log == nil {
		c.Log = maillog.New(nil)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.ReportingMTA == "" {
		c.ReportingMTA = "localhost"
	}
	return &runner{st: st, d: d, c: c, kick: make(chan struct{}, 1)}
}

// Kick wakes the scheduler (a new message, a flush, a release). It never
// blocks: kicks coalesce in the channel of capacity 1.
func (r *runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run is the scheduler. It leases due messages — up to twice the number
// of workers ahead, so that one commit leases several — and starts them
// while workers are free; it sleeps until a kick, the next due time or a
// finished delivery. When ctx ends it leases nothing more, releases the
// leased messages not started (due at once), lets attempts in flight
// finish for up to drain, then cuts them off (their leases are released
// too) and returns. With once set (RunOnce) it returns as soon as nothing is
// due and nothing is in flight; it returns the first spool error then.
func (r *runner) run(ctx context.Context, once bool, drain time.Duration) error {
	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	s := &schedule{r: r, once: once, done: make(chan spool.ID, r.c.Workers),
		active: map[spool.ID]bool{}, waiting: map[spool.ID]*spool.Message{}}
	for ctx.Err() == nil {
		leased, timer, finished := s.lease()
		if finished {
			break
		}
		s.start(workCtx)
		if leased > 0 && len(s.ready) == 0 && s.inflight < r.c.Workers {
			// Everything leased was started and workers are free: more
			// may be due; look again at once.
			if timer != nil {
				timer.Stop()
			}
			continue
		}
		if once && s.firstErr != nil && s.inflight == 0 {
			break
		}
		s.wait(ctx, timer)
	}
	s.stop(drain, cancelWork)
	return s.firstErr
}

// schedule is the state of one run of the scheduler.
type schedule struct {
	r        *runner
	once     bool
	done     chan spool.ID // a worker's message when its attempt is over
	inflight int
	ready    []*spool.Message  // leased, not started
	active   map[spool.ID]bool // being attempted: never twice at once
	// waiting holds messages leased again while their previous attempt
	// here is still finishing (it ended its lease, the message became due
	// and was leased before that attempt's worker reported back): they
	// start when it has.
	waiting  map[spool.ID]*spool.Message
	firstErr error // RunOnce: the first spool error
}

// lease leases due messages while there is room (up to twice the workers
// ahead) and returns how many, and a timer for the next wake-up when
// nothing more is due now (the next due time, or a retry after a spool
// error). finished: a RunOnce run has nothing due and nothing in flight.
func (s *schedule) lease() (leased int, timer Timer, finished bool) {
	r := s.r
	ahead := 2 * r.c.Workers // most messages leased at a time
	room := ahead - s.inflight - len(s.ready) - len(s.waiting)
	if room <= 0 || len(s.ready) >= r.c.Workers || (s.firstErr != nil && s.once) {
		return 0, nil, false
	}
	now := r.c.Clock.Now()
	if until, closed := r.gate.closedUntil(); closed {
		// Dead-relay hold: nothing is leased while it lasts, then one
		// message at a time (the probe).
		if s.once {
			// A run without the daemon stops here: the mail it did not
			// try says why in mailq (it had no reason at all before).
			r.holdDue(now)
			return 0, nil, s.inflight == 0 && len(s.ready) == 0
		}
		if until.IsZero() || now.Before(until) || len(s.ready) > 0 {
			if !until.IsZero() {
				r.holdDue(now)
				timer = r.c.Clock.TimerAt(until)
			}
			return 0, timer, false
		}
		room = 1
	}
	msgs, err := r.st.LeaseDue(now, room, r.c.Lease)
	if err != nil {
		r.c.Log.SpoolError("", "lease", err)
		r.c.Metrics.spoolError(err)
		if s.once {
			s.firstErr = err
		} else {
			timer = r.c.Clock.TimerAt(now.Add(errorWait))
		}
	} else {
		r.c.Metrics.spoolOK()
	}
	for _, m := range msgs {
		leased++
		if s.active[m.ID] {
			s.waiting[m.ID] = m
			continue
		}
		s.active[m.ID] = true
		s.ready = append(s.ready, m)
	}
	if err != nil || leased > 0 || len(s.ready) > 0 || s.inflight >= r.c.Workers {
		return leased, timer, false
	}
	if s.once {
		return leased, timer, s.inflight == 0
	}
	next, ok, err := r.st.NextDue()
	switch {
	case err != nil:
		r.c.Log.SpoolError("", "next due", err)
		timer = r.c.Clock.TimerAt(now.Add(errorWait))
	case ok:
		if !next.After(now) {
			// Due when LeaseDue looked, yet not leased (leased here
			// already): do not spin.
			next = now.Add(10 * time.Millisecond)
		}
		timer = r.c.Clock.TimerAt(next)
	}
	return leased, timer, false
}

// start hands ready messages to free workers.
// While the dead-relay hold lasts, what was leased goes back to the spool,
// due when the hold ends, its reason unchanged.
func (s *schedule) start(workCtx context.Context) {
	for s.inflight < s.r.c.Workers && len(s.ready) > 0 {
		ok, probe := s.r.gate.admit(s.r.c.Clock.Now())
		if !ok {
			s.putBack()
			return
		}
		m := s.ready[0]
		s.ready = s.ready[1:]
		s.inflight++
		go func() {
			defer func() { s.done <- m.ID }()
			s.r.attempt(workCtx, m, probe)
		}()
	}
}

// putBack ends the leases of the ready messages during a dead-relay hold:
// due again when it ends (a probe in flight: when it would end again).
func (s *schedule) putBack() {
	until, closed := s.r.gate.closedUntil()
	if !closed {
		return
	}
	if until.IsZero() {
		until = s.r.c.Clock.Now().Add(s.r.c.Policy.BackoffMin)
	}
	_, held, _, _ := s.r.holdReason()
	for _, m := range s.ready {
		reason := m.Reason
		if reason == "" {
			reason = held
		}
		if err := s.r.st.Defer(m.ID, until, reason); err != nil {
			s.r.c.Log.SpoolError(string(m.ID), "release", err)
		}
		delete(s.active, m.ID)
	}
	s.ready = nil
}

// wait sleeps until ctx ends, a kick, the timer, or a finished attempt
// (whose message, if leased again meanwhile, is then ready).
func (s *schedule) wait(ctx context.Context, timer Timer) {
	var wake <-chan time.Time
	if timer != nil {
		wake = timer.C()
		defer timer.Stop()
	}
	select {
	case <-ctx.Done():
	case <-s.r.kick:
	case <-wake:
	case id := <-s.done:
		s.inflight--
		delete(s.active, id)
		if m, ok := s.waiting[id]; ok {
			delete(s.waiting, id)
			s.active[id] = true
			s.ready = append(s.ready, m)
		}
	}
}

// stop ends the run: it releases what was leased and not started (due at
// once), then lets the attempts in flight finish for up to drain before
// cancelWork cuts them off.
func (s *schedule) stop(drain time.Duration, cancelWork context.CancelFunc) {
	for _, m := range s.waiting {
		s.ready = append(s.ready, m)
	}
	for _, m := range s.ready {
		if err := s.r.st.Defer(m.ID, s.r.c.Clock.Now(), "released at shutdown"); err != nil {
			s.r.c.Log.SpoolError(string(m.ID), "release", err)
		}
	}
	if s.inflight == 0 {
		return
	}
	if drain <= 0 {
		cancelWork()
	} else {
		t := time.AfterFunc(drain, cancelWork)
		defer t.Stop()
	}
	for ; s.inflight > 0; s.inflight-- {
		<-s.done
	}
}

// attempt makes one delivery attempt of m's pending recipients and records
// it, in named steps: the smarthost message, the delivery, each
// recipient's result, the lifetime give-up, the next attempt time, then
// notices before the record (at-least-once for both).
func (r *runner) attempt(ctx context.Context, m *spool.Message, probe bool) {
	if probe {
		// A probe that ends before any delivery attempt lets the next
		// message probe (gateResult has ended it otherwise).
		defer r.gate.probeEnded()
	}
	if m.Unrecorded {
		// At-least-once: the previous attempt left no outcome. What is
		// known is said; whether its final dot reached the relay is not.
		r.c.Log.Warn("possible duplicate: the previous attempt of this message recorded no outcome (relayq stopped or lost the spool during it); if it had sent the message, this attempt sends it again",
			"queue_id", string(m.ID), "attempt", m.Attempts, "previous_attempt_started", m.PreviousAttempt)
	}
	pending := pendingRecipients(m)
	if len(pending) == 0 {
		// Every recipient was final before (a crash between the last
		// update and the removal): notices went out before the update.
		r.remove(m)
		return
	}
	open, release, err := r.st.body(m.ID)
	if err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			return // deleted meanwhile (queue delete)
		}
		r.c.Log.SpoolError(string(m.ID), "read body", err)
		r.c.Metrics.spoolError(err)
		r.reschedule(m, "cannot read the message body: "+err.Error())
		return
	}
	defer release()

	out, derr, ok := r.deliver(ctx, m, relayMessage(m, pending, open))
	if !ok {
		return
	}
	r.gateResult(m, out, derr, probe)
	now := r.c.Clock.Now()
	a := r.results(m, pending, out, derr, now)
	r.giveUp(m, a)
	next := r.nextAttempt(ctx, m, a)
	if r.c.Attempted != nil {
		r.c.Attempted(m, a.results)
	}
	r.record(ctx, m, a, next, open)
}

// holdReason is the dead-relay hold's end, the reason a message not
// tried because of it shows, and the kind of the failure behind it.
func (r *runner) holdReason() (until time.Time, reason, kind string, ok bool) {
	until, why, kind, ok := r.gate.hold()
	if !ok {
		return until, "", "", false
	}
	return until, fmt.Sprintf("not tried: the relay is held until %s after a failure: %s", until.UTC().Format(time.RFC3339), why), kind, true
}

// holdDue moves the messages that fall due during a dead-relay hold to
// its end, without an attempt, each with a reason that says why it waits.
func (r *runner) holdDue(now time.Time) {
	until, reason, kind, ok := r.holdReason()
	if !ok {
		return
	}
	if next, due, err := r.st.NextDue(); err != nil || !due || next.After(now) {
		return // nothing due: no write
	}
	for {
		n, err := r.st.DeferDue(now, until, reason, kind, 256)
		if err != nil {
			r.c.Log.SpoolError("", "defer due", err)
			return
		}
		if n < 256 {
			return
		}
	}
}

// gateResult feeds an attempt's outcome to the dead-relay hold and logs
// when it closes or opens.
func (r *runner) gateResult(m *spool.Message, out smarthost.Outcome, derr error, probe bool) {
	reason := ""
	if derr != nil {
		reason = wire.Sanitize(derr.Error())
	}
	wait := func(n int) time.Duration { return r.c.Policy.Backoff(n, r.c.Rand) }
	now := r.c.Clock.Now()
	closed, opened := r.gate.result(now, relayDown(out, derr), probe, wait, reason, out.Kind)
	switch {
	case closed:
		until, _ := r.gate.closedUntil()
		r.c.Log.Warn("relay held: no message is sent until the hold ends, then one probes the relay (dead-relay hold)",
			"queue_id", string(m.ID), "until", until, "reason", reason)
	case opened:
		r.c.Log.Info("relay hold ended: the probe got through", "queue_id", string(m.ID))
		r.Kick()
	}
}

// operatorKick is the control socket's kick after a flush or a release:
// the operator says "try now", so the dead-relay hold ends too (as
// Postfix's postqueue -f flushes the dead-destination cache).
func (r *runner) operatorKick() {
	r.gate.open()
	r.Kick()
}

// configChanged is called after a reload or at start: the dead-relay hold
// ends and mail deferred for a reason a configuration change may fix
// (authentication, TLS, no credential, no relay host, connection) is
// retried at once, its stale reason replaced.
func (r *runner) configChanged(what string) {
	r.gate.open()
	n, err := r.st.RetryKinds(configKinds, "retrying at once after "+what)
	if err != nil {
		r.c.Log.SpoolError("", "retry after "+what, err)
		return
	}
	if n > 0 {
		r.c.Log.Info("deferred mail retried at once", "after", what, "messages", n)
	}
	r.Kick()
}

// pendingRecipients returns the indexes of m's recipients still pending.
func pendingRecipients(m *spool.Message) []int {
	var pending []int
	for i, rc := range m.Recipients {
		if rc.State == spool.Pending {
			pending = append(pending, i)
		}
	}
	return pending
}

// relayMessage is m as the relay client takes it: its pending recipients
// only, the body read through open.
func relayMessage(m *spool.Message, pending []int, open func() (io.ReadCloser, error)) *smarthost.Message {
	sm := &smarthost.Message{
		ID: string(m.ID), From: m.From, Ret: m.Ret, EnvID: m.EnvID,
		Body8Bit: m.Body8Bit, SMTPUTF8: m.SMTPUTF8, Size: m.Size, Body: open,
	}
	for _, i := range pending {
		rc := m.Recipients[i]
		sm.Recipients = append(sm.Recipients, smarthost.Recipient{Addr: rc.Addr, Notify: rc.Notify, ORcpt: rc.ORcpt})
	}
	return sm
}

// deliver hands sm to the relay client within the lease and logs the
// attempt (and an AUTH failure, loudly). ok is false when the lease ran
// out before the attempt could start: the message was released untried.
func (r *runner) deliver(ctx context.Context, m *spool.Message, sm *smarthost.Message) (out smarthost.Outcome, derr error, ok bool) {
	log := r.c.Log
	// The attempt ends before the lease does, so that no other worker or
	// process can lease the message while it is being sent.
	margin := min(max(r.c.Lease/10, time.Second), r.c.Lease/2)
	limit := m.NextAttempt.Sub(r.c.Clock.Now()) - margin
	if limit <= 0 {
		// Waited too long for a worker: release it untried.
		if err := r.st.Defer(m.ID, r.c.Clock.Now(), "lease ran out before the attempt"); err != nil {
			log.SpoolError(string(m.ID), "release", err)
		}
		return out, nil, false
	}
	actx, cancel := context.WithTimeout(ctx, limit)
	started := time.Now()
	out, derr = r.d.Deliver(actx, sm)
	took := time.Since(started)
	cancel()
	r.c.Metrics.observeAttempt(took)
	addrs := make([]string, len(sm.Recipients))
	for i, rc := range sm.Recipients {
		addrs[i] = rc.Addr
	}
	log.AttemptDone(string(m.ID), out.Relay, m.Attempts, addrs, took, derr)
	if out.AuthFailed {
		reply := ""
		if len(out.Recipients) > 0 {
			reply = out.Recipients[0].Reply.String()
		}
		// As Postfix smtp_sasl_auth_soft_bounce: defer, never bounce, and
		// tell the operator loudly. (A missing credential is no login
		// refused: smarthost logged that alarm in its own words.)
		if out.Kind != smarthost.KindCredential {
			log.AuthFailure(string(m.ID), out.Relay, reply)
		}
		r.c.Metrics.authFailure(r.c.Clock.Now())
	}
	return out, derr, true
}

// attemptResults is what one attempt did: a spool result per pending
// recipient, and which of them (indexes into results) failed for good,
// were relayed to a relay without DSN, or stay deferred.
type attemptResults struct {
	relay                     string
	kind                      string // Outcome.Kind: the relay-level failure's kind
	now                       time.Time
	delay                     time.Duration // since arrival
	results                   []spool.Result
	failed, relayed, deferred []int
	expired                   map[int]bool // results given up on for the lifetime
}

// results turns the relay client's outcome into spool results and logs
// each delivered and bounced recipient.
func (r *runner) results(m *spool.Message, pending []int, out smarthost.Outcome, derr error, now time.Time) *attemptResults {
	log := r.c.Log
	a := &attemptResults{relay: out.Relay, kind: out.Kind, now: now, delay: now.Sub(m.Arrival), results: make([]spool.Result, len(pending)), expired: map[int]bool{}}
	for k, idx := range pending {
		ro := smarthost.RcptOutcome{Status: smarthost.Deferred}
		if k < len(out.Recipients) {
			ro = out.Recipients[k]
		}
		if derr != nil && ro.Status == smarthost.Delivered {
			ro.Status = smarthost.Deferred // no DATA completed: nothing was delivered
		}
		reply := ro.Reply
		reply.Text = wire.Sanitize(reply.Text)
		if reply.Code == 0 && reply.Text == "" {
			if derr != nil {
				reply.Text = wire.Sanitize(derr.Error())
			} else {
				reply.Text = "no reply for this recipient"
			}
		}
		res := spool.Result{Index: idx, Reply: reply, Relay: out.Relay}
		rc := m.Recipients[idx]
		rs := reply.String()
		switch ro.Status {
		case smarthost.Delivered:
			res.State = spool.Delivered
			log.Delivered(string(m.ID), out.Relay, rc.Addr, rs, m.Attempts, a.delay)
			r.c.Metrics.count(&r.c.Metrics.delivered)
			if !out.DSN && dsn.Wants(rc.Notify, dsn.Relayed) {
				a.relayed = append(a.relayed, k) // RFC 3461 §5.2.2
			}
		case smarthost.Bounced:
			res.State = spool.Bounced
			log.Bounced(string(m.ID), out.Relay, rc.Addr, rs, m.Attempts, a.delay)
			r.c.Metrics.count(&r.c.Metrics.bounced)
			a.failed = append(a.failed, k)
		default:
			res.State = spool.Pending
			a.deferred = append(a.deferred, k)
		}
		a.results[k] = res
	}
	return a
}

// giveUp bounces what is still pending once the message's lifetime has
// run out (status 4.4.7 in the notice).
func (r *runner) giveUp(m *spool.Message, a *attemptResults) {
	if len(a.deferred) == 0 || a.delay < r.c.Policy.Lifetime(m.From) {
		return
	}
	for _, k := range a.deferred {
		a.results[k].State = spool.Bounced
		rc := m.Recipients[a.results[k].Index]
		r.c.Log.Expired(string(m.ID), rc.Addr, a.results[k].Reply.String(), m.Attempts, a.delay)
		r.c.Metrics.count(&r.c.Metrics.expired)
		a.expired[k] = true
		a.failed = append(a.failed, k)
	}
	a.deferred = nil
}

// nextAttempt is when the deferred recipients are tried again (backoff;
// at once after a shutdown cut the attempt off; early enough for a delay
// notice that is due), and logs each of them as deferred. It is zero when
// nothing is deferred.
func (r *runner) nextAttempt(ctx context.Context, m *spool.Message, a *attemptResults) time.Time {
	if len(a.deferred) == 0 {
		return time.Time{}
	}
	next := a.now.Add(r.c.Policy.Backoff(m.Attempts, r.c.Rand))
	if ctx.Err() != nil {
		// Cut off by the shutdown: release the lease, due at once
		// when the daemon comes back.
		next = a.now
	}
	warned := m.DelayNotified
	if dw := r.c.Policy.DelayWarning; dw > 0 && !warned && a.delay < dw && next.After(m.Arrival.Add(dw)) {
		next = m.Arrival.Add(dw) // wake up in time to send the delay notice
	}
	for _, k := range a.deferred {
		rc := m.Recipients[a.results[k].Index]
		r.c.Log.Deferred(string(m.ID), a.relay, rc.Addr, a.results[k].Reply.String(), m.Attempts, a.delay, next)
		r.c.Metrics.count(&r.c.Metrics.deferred)
	}
	return next
}

// record sends the notices the attempt calls for, then stores it: the
// message is removed when every recipient is final, else the results and
// the end of the lease are one commit. Notices first: a crash in between
// sends a notice twice rather than never (at-least-once, like the mail
// itself).
func (r *runner) record(ctx context.Context, m *spool.Message, a *attemptResults, next time.Time, open func() (io.ReadCloser, error)) {
	log := r.c.Log
	if len(a.failed) > 0 {
		r.notify(m, a.results, a.failed, a.expired, dsn.Failed, a.now, time.Time{}, open)
	}
	if m.From == "" && len(a.failed) > 0 {
		r.holdNotice(m, a)
		return
	}
	if len(a.relayed) > 0 {
		r.notify(m, a.results, a.relayed, nil, dsn.Relayed, a.now, time.Time{}, open)
	}
	if len(a.deferred) == 0 {
		// Every recipient is final: the removal is the record (one commit
		// instead of two). A crash before it retries the message, as a
		// crash before an update would.
		r.delete(m, a.results)
		return
	}
	first := a.results[a.deferred[0]]
	reason := first.Reply.String()
	if a.relay != "" && first.Reply.Code != 0 {
		reason = a.relay + " said: " + reason
	}
	if ctx.Err() != nil {
		reason = "interrupted by shutdown: " + reason
	}
	warned := m.DelayNotified
	if dw := r.c.Policy.DelayWarning; dw > 0 && !warned && a.delay >= dw {
		retryUntil := m.Arrival.Add(r.c.Policy.Lifetime(m.From))
		r.notify(m, a.results, a.deferred, nil, dsn.Delayed, a.now, retryUntil, open)
		warned = true
	}
	// The outcomes, the end of the lease, the reason's kind and the
	// delay-notice state in one commit.
	why := spool.Why{Text: reason, Kind: a.kind, DelayNotified: warned}
	if err := r.st.RescheduleAs(m.ID, a.results, next, why); err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			log.Info("message deleted while it was being delivered", "queue_id", string(m.ID))
			return
		}
		// The lease runs out and the message is tried again; delivered
		// recipients may then be sent twice (at-least-once).
		log.SpoolError(string(m.ID), "reschedule", err)
		r.c.Metrics.spoolError(err)
	}
}

// holdNotice keeps a null-sender message (a bounce, a delay notice, a
// postmaster copy) that the relay refused or that ran out of time: it is
// never bounced (RFC 5321 §6.1) and never dropped, but held, its failed
// recipients pending again, with the reason in mailq, until an operator
// releases it (after fixing the cause) or deletes it.
func (r *runner) holdNotice(m *spool.Message, a *attemptResults) {
	first := a.results[a.failed[0]]
	for _, k := range a.failed {
		a.results[k].State = spool.Pending
	}
	why := first.Reply.String()
	if a.relay != "" && first.Reply.Code != 0 {
		why = a.relay + " said: " + why
	}
	reason := fmt.Sprintf("held: a notice from the null sender cannot be delivered (%s); it is never bounced or dropped: fix the cause, then relayq queue release %s (or relayq queue delete %s)", why, m.ID, m.ID)
	if err := r.st.HoldWith(m.ID, a.results, reason); err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			r.c.Log.Info("message deleted while it was being delivered", "queue_id", string(m.ID))
			return
		}
		r.c.Log.SpoolError(string(m.ID), "hold", err)
		r.c.Metrics.spoolError(err)
		return
	}
	r.c.Log.Warn("notice held: the relay refused it", "queue_id", string(m.ID), "reason", why)
}

// reschedule ends the lease of m after a local problem.
func (r *runner) reschedule(m *spool.Message, reason string) {
	next := r.c.Clock.Now().Add(r.c.Policy.Backoff(m.Attempts, r.c.Rand))
	if err := r.st.Defer(m.ID, next, reason); err != nil {
		r.c.Log.SpoolError(string(m.ID), "defer", err)
	}
}

// remove deletes a message whose recipients are all final.
func (r *runner) remove(m *spool.Message) {
	cur, err := r.st.Get(m.ID)
	if err != nil {
		if !errors.Is(err, spool.ErrNotFound) {
			r.c.Log.SpoolError(string(m.ID), "get", err)
		}
		return
	}
	var delivered, bounced int
	for _, rc := range cur.Recipients {
		switch rc.State {
		case spool.Delivered:
			delivered++
		case spool.Bounced:
			bounced++
		default:
			// Not final after all (should not happen): keep it queued.
			r.reschedule(cur, "recipient still pending")
			return
		}
	}
	if err := r.st.Delete(m.ID); err != nil && !errors.Is(err, spool.ErrNotFound) {
		r.c.Log.SpoolError(string(m.ID), "delete", err)
		r.c.Metrics.spoolError(err)
		return
	}
	r.c.Log.Removed(string(m.ID), delivered, bounced)
}

// delete removes m after an attempt that made every pending recipient
// final (results); recipients not in results were final before.
func (r *runner) delete(m *spool.Message, results []spool.Result) {
	var delivered, bounced int
	final := map[int]spool.State{}
	for _, res := range results {
		final[res.Index] = res.State
	}
	for i, rc := range m.Recipients {
		st, ok := final[i]
		if !ok {
			st = rc.State
		}
		switch st {
		case spool.Delivered:
			delivered++
		case spool.Bounced:
			bounced++
		}
	}
	if err := r.st.Delete(m.ID); err != nil && !errors.Is(err, spool.ErrNotFound) {
		r.c.Log.SpoolError(string(m.ID), "delete", err)
		r.c.Metrics.spoolError(err)
		return
	}
	r.c.Log.Removed(string(m.ID), delivered, bounced)
}
