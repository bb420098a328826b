package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Queue holds the keys of the delivery daemon (relayq serve and the
// daemonless `relayq queue run`): retry schedule, lifetimes, concurrency,
// notifications and the operator endpoints. Defaults follow Postfix and
// RFC 5321 §4.5.4.1.
type Queue struct {
	// BackoffMin is the wait after the first failed attempt.
	BackoffMin time.Duration `envconfig:"BACKOFF_MIN" default:"5m" desc:"wait after the first temporary failure; doubled after each further one up to RELAYQ_BACKOFF_MAX (Postfix minimal_backoff_time)"`
	// BackoffMax caps the wait between attempts.
	BackoffMax time.Duration `envconfig:"BACKOFF_MAX" default:"1h" desc:"longest wait between two attempts (Postfix maximal_backoff_time is 4000s)"`
	// BackoffJitter spreads retries.
	BackoffJitter float64 `envconfig:"BACKOFF_JITTER" default:"0.1" desc:"random extra wait, as a fraction of the backoff (0 to 1), so that deferred mail does not retry in lock step"`
	// QueueLifetime is how long a message is retried before it bounces.
	QueueLifetime time.Duration `envconfig:"QUEUE_LIFETIME" default:"120h" desc:"how long a message is retried before its pending recipients bounce with 4.4.7 (Postfix maximal_queue_lifetime, RFC 5321 §4.5.4.1: at least 4-5 days)"`
	// BounceLifetime is the lifetime of a message from the null sender.
	BounceLifetime time.Duration `envconfig:"BOUNCE_LIFETIME" default:"120h" desc:"lifetime of mail from the null sender (bounces); given up on silently, logged (Postfix bounce_queue_lifetime)"`
	// DelayWarning sends a delay DSN once a message is this old.
	DelayWarning time.Duration `envconfig:"DELAY_WARNING" default:"0s" desc:"send one delay notice (DSN Action: delayed) to the sender when a message has waited this long; 0: off (Postfix delay_warning_time)"`
	// Workers is the number of concurrent delivery attempts.
	Workers int `envconfig:"WORKERS" default:"8" desc:"concurrent delivery attempts (messages in flight); connections per relay are capped by RELAYQ_RELAY_CONNECTIONS"`
	// LeaseTime bounds one attempt; a crashed attempt's message is retried after it.
	LeaseTime time.Duration `envconfig:"LEASE_TIME" default:"5m" desc:"a message being delivered is reserved this long (recorded before the attempt); an attempt is cut off 30s (a tenth) before it runs out, and after a crash the message is retried when it ends. Keep it above RELAYQ_DELIVERY_DEADLINE plus RELAYQ_DELIVERY_DEADLINE_PER_MB times the largest message in MB"`
	// Postmaster receives copies of undeliverable bounces.
	Postmaster string `envconfig:"POSTMASTER" desc:"address that gets a copy of failure notices that cannot be returned (mail from the null sender that failed); empty: log only"`
	// ReportingMTA names this host in DSNs.
	ReportingMTA string `envconfig:"REPORTING_MTA" desc:"host name in DSN Reporting-MTA and in the notice's From (default: RELAYQ_DOMAIN, else the host name)"`
	// MetricsListen is the loopback address of /healthz and /metrics.
	MetricsListen string `envconfig:"METRICS_LISTEN" desc:"loopback address (e.g. 127.0.0.1:9925) for HTTP /healthz and /metrics (Prometheus text); empty: off"`
	// DrainTimeout bounds the shutdown.
	DrainTimeout time.Duration `envconfig:"DRAIN_TIMEOUT" default:"30s" desc:"on SIGTERM, how long attempts in flight may finish before they are cut off (their mail stays queued)"`
	// DrainOnStop makes SIGTERM deliver the queue before the daemon exits.
	DrainOnStop time.Duration `envconfig:"DRAIN_ON_STOP" default:"0s" desc:"on SIGTERM, first stop accepting mail (listeners and submission socket closed, relayq healthcheck fails) and keep delivering what is queued, for up to this long, until no unheld message is left; then stop as usual (attempts in flight get RELAYQ_DRAIN_TIMEOUT, then stay queued) and log how many messages remain. For a pod or container whose spool goes away with it; its stop grace period (Kubernetes terminationGracePeriodSeconds) must exceed this plus RELAYQ_DRAIN_TIMEOUT. 0: off"`
}

// Validate checks the queue keys.
func (q *Queue) Validate() error {
	var errs []error
	if q.BackoffMin < time.Millisecond {
		errs = append(errs, fmt.Errorf("RELAYQ_BACKOFF_MIN: %s must be at least 1ms", q.BackoffMin))
	}
	if q.BackoffMax < q.BackoffMin {
		errs = append(errs, fmt.Errorf("RELAYQ_BACKOFF_MAX: %s is less than RELAYQ_BACKOFF_MIN (%s)", q.BackoffMax, q.BackoffMin))
	}
	if q.BackoffJitter < 0 || q.BackoffJitter > 1 || q.BackoffJitter != q.BackoffJitter {
		errs = append(errs, fmt.Errorf("RELAYQ_BACKOFF_JITTER: %v is out of range (0 to 1)", q.BackoffJitter))
	}
	if q.QueueLifetime <= 0 {
		errs = append(errs, fmt.Errorf("RELAYQ_QUEUE_LIFETIME: %s must be positive", q.QueueLifetime))
	}
	if q.BounceLifetime <= 0 {
		errs = append(errs, fmt.Errorf("RELAYQ_BOUNCE_LIFETIME: %s must be positive", q.BounceLifetime))
	}
	if q.DelayWarning < 0 {
		errs = append(errs, fmt.Errorf("RELAYQ_DELAY_WARNING: %s must not be negative", q.DelayWarning))
	}
	if q.Workers < 1 || q.Workers > 1000 {
		errs = append(errs, fmt.Errorf("RELAYQ_WORKERS: %d is out of range (1 to 1000)", q.Workers))
	}
	if q.LeaseTime < time.Second {
		errs = append(errs, fmt.Errorf("RELAYQ_LEASE_TIME: %s must be at least 1s", q.LeaseTime))
	}
	if q.Postmaster != "" && (strings.ContainsAny(q.Postmaster, " \t\r\n\x00<>") || strings.HasPrefix(q.Postmaster, "-")) {
		errs = append(errs, fmt.Errorf("RELAYQ_POSTMASTER: %q is not a plain address", q.Postmaster))
	}
	if strings.ContainsAny(q.ReportingMTA, " \t\r\n\x00;") {
		errs = append(errs, fmt.Errorf("RELAYQ_REPORTING_MTA: %q is not a host name", q.ReportingMTA))
	}
	if q.MetricsListen != "" {
		if err := loopbackAddr(q.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("RELAYQ_METRICS_LISTEN: %w", err))
		}
	}
	if q.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("RELAYQ_DRAIN_TIMEOUT: %s must not be negative", q.DrainTimeout))
	}
	if q.DrainOnStop < 0 {
		errs = append(errs, fmt.Errorf("RELAYQ_DRAIN_ON_STOP: %s must not be negative", q.DrainOnStop))
	}
	return errors.Join(errs...)
}

// loopbackAddr accepts host:port where host is a loopback address or
// "localhost".
func loopbackAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", s)
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1, [::1] or localhost); the metrics endpoint is never exposed to the network", s)
	}
	return nil
}
