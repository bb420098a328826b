package config

import (
	"strings"
	"testing"
	"time"
)

func validQueue() Queue {
	return Queue{BackoffMin: 5 * time.Minute, BackoffMax: time.Hour, BackoffJitter: 0.1,
		QueueLifetime: 120 * time.Hour, BounceLifetime: 120 * time.Hour, Workers: 8,
		LeaseTime: 5 * time.Minute, DrainTimeout: 30 * time.Second}
}

func TestQueueValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(q *Queue)
		want   string // "" = valid
	}{
		{"defaults", func(q *Queue) {}, ""},
		{"metrics loopback v4", func(q *Queue) { q.MetricsListen = "127.0.0.1:9925" }, ""},
		{"metrics loopback v6", func(q *Queue) { q.MetricsListen = "[::1]:9925" }, ""},
		{"metrics localhost", func(q *Queue) { q.MetricsListen = "localhost:9925" }, ""},
		{"metrics public", func(q *Queue) { q.MetricsListen = "0.0.0.0:9925" }, "RELAYQ_METRICS_LISTEN"},
		{"metrics no port", func(q *Queue) { q.MetricsListen = "127.0.0.1" }, "RELAYQ_METRICS_LISTEN"},
		{"min zero", func(q *Queue) { q.BackoffMin = 0 }, "RELAYQ_BACKOFF_MIN"},
		{"max below min", func(q *Queue) { q.BackoffMax = time.Minute }, "RELAYQ_BACKOFF_MAX"},
		{"jitter", func(q *Queue) { q.BackoffJitter = 1.5 }, "RELAYQ_BACKOFF_JITTER"},
		{"lifetime", func(q *Queue) { q.QueueLifetime = 0 }, "RELAYQ_QUEUE_LIFETIME"},
		{"bounce lifetime", func(q *Queue) { q.BounceLifetime = -1 }, "RELAYQ_BOUNCE_LIFETIME"},
		{"delay warning", func(q *Queue) { q.DelayWarning = -time.Second }, "RELAYQ_DELAY_WARNING"},
		{"workers", func(q *Queue) { q.Workers = 0 }, "RELAYQ_WORKERS"},
		{"lease", func(q *Queue) { q.LeaseTime = time.Millisecond }, "RELAYQ_LEASE_TIME"},
		{"postmaster", func(q *Queue) { q.Postmaster = "a@b\r\nRCPT TO:<x>" }, "RELAYQ_POSTMASTER"},
		{"postmaster dash", func(q *Queue) { q.Postmaster = "-oQ/tmp" }, "RELAYQ_POSTMASTER"},
		{"reporting mta", func(q *Queue) { q.ReportingMTA = "a b" }, "RELAYQ_REPORTING_MTA"},
		{"drain", func(q *Queue) { q.DrainTimeout = -1 }, "RELAYQ_DRAIN_TIMEOUT"},
		{"drain on stop", func(q *Queue) { q.DrainOnStop = -time.Second }, "RELAYQ_DRAIN_ON_STOP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := validQueue()
			tt.change(&q)
			err := q.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
