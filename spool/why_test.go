package spool

import (
	"strings"
	"testing"
	"time"
)

// TestDelayNoticeMigration: a record written the way relayq wrote the
// delay-notice state before it was a field (a prefix of Reason, through
// Defer/Reschedule as the runner did) reads back as DelayNotified with the
// prefix gone, also after the spool is closed and reopened, and keeps the
// state through later changes.
func TestDelayNoticeMigration(t *testing.T) {
	s, c := openTest(t)
	id := submit(t, s, "body")
	if err := s.Defer(id, c.Now(), legacyDelayMarker+"r said: 451 4.3.0 later"); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !m.DelayNotified || m.Reason != "r said: 451 4.3.0 later" {
		t.Fatalf("migrated: DelayNotified %v reason %q", m.DelayNotified, m.Reason)
	}
	if err := s.RescheduleAs(id, nil, c.Now(), Why{Text: "again", Kind: "auth"}); err != nil {
		t.Fatal(err)
	}
	if m, _ = s.Get(id); !m.DelayNotified || m.Reason != "again" || m.ReasonKind != "auth" {
		t.Fatalf("after reschedule: %+v", m)
	}
}

// TestRetryKinds: after a reload, messages deferred for a configuration
// kind are due now with the reason replaced; others and held ones are
// left alone.
func TestRetryKinds(t *testing.T) {
	s, c := openTest(t)
	later := c.Now().Add(time.Hour)
	auth, other, held := submit(t, s, "a"), submit(t, s, "b"), submit(t, s, "c")
	for id, why := range map[ID]Why{auth: {Text: "535 bad password", Kind: "auth"}, other: {Text: "451 later"}, held: {Text: "no credential", Kind: "credential"}} {
		if err := s.RescheduleAs(id, nil, later, why); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Hold(held); err != nil {
		t.Fatal(err)
	}
	n, err := s.RetryKinds([]string{"auth", "credential"}, "retrying at once after a reload")
	if err != nil || n != 1 {
		t.Fatalf("RetryKinds = %d, %v; want 1", n, err)
	}
	m, _ := s.Get(auth)
	if !m.NextAttempt.Equal(c.Now()) || m.ReasonKind != "" || !strings.HasPrefix(m.Reason, "retrying at once after a reload (was: 535 bad password)") {
		t.Errorf("retried: next %v kind %q reason %q", m.NextAttempt, m.ReasonKind, m.Reason)
	}
	for _, id := range []ID{other, held} {
		if m, _ := s.Get(id); m.NextAttempt.Equal(c.Now()) {
			t.Errorf("%s retried: %+v", id, m)
		}
	}
}

// TestLeaseUnrecorded: a message whose previous lease was never ended (the
// process died during the attempt) is marked Unrecorded when leased again,
// with the start of that attempt; one whose attempt was recorded is not.
func TestLeaseUnrecorded(t *testing.T) {
	s, c := openTest(t)
	id := submit(t, s, "body")
	first := c.Now()
	ms, err := s.LeaseDue(first, 1, time.Minute)
	if err != nil || len(ms) != 1 || ms[0].Unrecorded {
		t.Fatalf("first lease: %+v %v", ms, err)
	}
	// No outcome recorded; the lease runs out.
	ms, err = s.LeaseDue(first.Add(2*time.Minute), 1, time.Minute)
	if err != nil || len(ms) != 1 || ms[0].ID != id || !ms[0].Unrecorded || !ms[0].PreviousAttempt.Equal(first) {
		t.Fatalf("second lease: %+v %v", ms, err)
	}
	if err := s.Defer(id, first.Add(3*time.Minute), "451 later"); err != nil {
		t.Fatal(err)
	}
	ms, err = s.LeaseDue(first.Add(4*time.Minute), 1, time.Minute)
	if err != nil || len(ms) != 1 || ms[0].Unrecorded {
		t.Fatalf("lease after a recorded attempt: %+v %v", ms, err)
	}
}
