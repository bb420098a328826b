package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relayq/relayq/spool"
)

// latencyBuckets are the upper bounds (seconds) of the attempt latency
// histogram.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Metrics counts what the runner did, for /metrics and /healthz. The zero
// value is not usable; use NewMetrics. Safe for concurrent use.
type Metrics struct {
	delivered, deferred, bounced, expired, notices, authFailures, spoolErrors atomic.Int64

	mu          sync.Mutex
	buckets     []int64 // cumulative per latencyBuckets, plus +Inf
	latencySum  float64
	latencyN    int64
	lastAuth    time.Time
	lastSpool   error
	lastSpoolAt time.Time
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{buckets: make([]int64, len(latencyBuckets)+1)}
}

func (m *Metrics) count(c *atomic.Int64) { c.Add(1) }

func (m *Metrics) observeAttempt(d time.Duration) {
	s := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, b := range latencyBuckets {
		if s <= b {
			m.buckets[i]++
		}
	}
	m.buckets[len(latencyBuckets)]++
	m.latencySum += s
	m.latencyN++
}

func (m *Metrics) authFailure(at time.Time) {
	m.authFailures.Add(1)
	m.mu.Lock()
	m.lastAuth = at
	m.mu.Unlock()
}

func (m *Metrics) spoolError(err error) {
	m.spoolErrors.Add(1)
	m.mu.Lock()
	m.lastSpool, m.lastSpoolAt = err, time.Now()
	m.mu.Unlock()
}

func (m *Metrics) spoolOK() {
	m.mu.Lock()
	m.lastSpool = nil
	m.mu.Unlock()
}

// Counts is a snapshot of the counters.
type Counts struct {
	Delivered, Deferred, Bounced, Expired, Notices, AuthFailures, SpoolErrors int64
	Attempts                                                                  int64
}

// Counts returns the counters.
func (m *Metrics) Counts() Counts {
	m.mu.Lock()
	n := m.latencyN
	m.mu.Unlock()
	return Counts{
		Delivered: m.delivered.Load(), Deferred: m.deferred.Load(), Bounced: m.bounced.Load(),
		Expired: m.expired.Load(), Notices: m.notices.Load(), AuthFailures: m.authFailures.Load(),
		SpoolErrors: m.spoolErrors.Load(), Attempts: n,
	}
}

// statsFunc returns the queue's size; the daemon passes a cached
// spool.Stats.
type statsFunc func() (spool.Stats, error)

// cachedStats calls fn at most once per ttl (spool.Stats reads every
// record).
func cachedStats(fn statsFunc, ttl time.Duration) statsFunc {
	var mu sync.Mutex
	var last spool.Stats
	var lastErr error
	var at time.Time
	return func() (spool.Stats, error) {
		mu.Lock()
		defer mu.Unlock()
		if at.IsZero() || time.Since(at) >= ttl {
			last, lastErr = fn()
			at = time.Now()
		}
		return last, lastErr
	}
}

// writePrometheus writes the metrics in the Prometheus text exposition
// format (version 0.0.4).
func (m *Metrics) writePrometheus(w io.Writer, st spool.Stats, stErr error, now time.Time) {
	p := func(name, typ, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	if stErr == nil {
		p("relayq_queue_messages", "gauge", "Messages in the queue (held included).", st.Count)
		p("relayq_queue_held_messages", "gauge", "Messages on hold.", st.Held)
		p("relayq_queue_bytes", "gauge", "Octets of message bodies in the queue.", st.Bytes)
		age := 0.0
		if !st.Oldest.IsZero() {
			age = now.Sub(st.Oldest).Seconds()
		}
		p("relayq_queue_oldest_message_age_seconds", "gauge", "Age of the oldest queued message (0 when empty).", fmt.Sprintf("%.3f", age))
	}
	p("relayq_delivered_total", "counter", "Recipients accepted by the relay.", m.delivered.Load())
	p("relayq_deferred_total", "counter", "Recipient attempts deferred (temporary failure).", m.deferred.Load())
	p("relayq_bounced_total", "counter", "Recipients that failed permanently (5xx).", m.bounced.Load())
	p("relayq_expired_total", "counter", "Recipients given up on when the queue lifetime ran out.", m.expired.Load())
	p("relayq_notices_total", "counter", "Delivery status notices (bounces, delay and relay notices) queued.", m.notices.Load())
	p("relayq_auth_failures_total", "counter", "Delivery attempts whose AUTH the relay refused.", m.authFailures.Load())
	p("relayq_spool_errors_total", "counter", "Spool operations that failed.", m.spoolErrors.Load())
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(w, "# HELP relayq_attempt_duration_seconds Time taken by delivery attempts.\n# TYPE relayq_attempt_duration_seconds histogram\n")
	for i, b := range latencyBuckets {
		fmt.Fprintf(w, "relayq_attempt_duration_seconds_bucket{le=\"%g\"} %d\n", b, m.buckets[i])
	}
	fmt.Fprintf(w, "relayq_attempt_duration_seconds_bucket{le=\"+Inf\"} %d\n", m.buckets[len(latencyBuckets)])
	fmt.Fprintf(w, "relayq_attempt_duration_seconds_sum %g\nrelayq_attempt_duration_seconds_count %d\n", m.latencySum, m.latencyN)
}

// health is the /healthz answer.
type health struct {
	Status          string    `json:"status"` // ok, degraded (AUTH refused lately), failing (spool errors)
	Queue           int       `json:"queue"`
	OldestAgeSecs   float64   `json:"oldest_age_seconds"`
	AuthFailures    int64     `json:"auth_failures"`
	LastAuthFailure time.Time `json:"last_auth_failure,omitzero"`
	SpoolError      string    `json:"spool_error,omitempty"`
}

// handler serves /healthz and /metrics.
func (m *Metrics) handler(stats statsFunc, now func() time.Time, authWindow time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		st, err := stats()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.writePrometheus(w, st, err, now())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		st, err := stats()
		t := now()
		h := health{Status: "ok", Queue: st.Count, AuthFailures: m.authFailures.Load()}
		if !st.Oldest.IsZero() {
			h.OldestAgeSecs = t.Sub(st.Oldest).Seconds()
		}
		m.mu.Lock()
		h.LastAuthFailure = m.lastAuth
		spoolErr := m.lastSpool
		m.mu.Unlock()
		code := http.StatusOK
		if !h.LastAuthFailure.IsZero() && t.Sub(h.LastAuthFailure) < authWindow {
			// Mail is deferred, not lost: degraded, but alive (a restart
			// would not help, so liveness probes must not fail on it).
			h.Status = "degraded"
		}
		if err == nil {
			err = spoolErr
		}
		if err != nil {
			h.Status = "failing"
			h.SpoolError = err.Error()
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(h)
	})
	return mux
}
