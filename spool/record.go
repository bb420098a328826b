package spool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// recordVersion is the first byte of every message record.
const recordVersion = 1

// bodyTokenLen is the length of the key prefix of a message's body chunks.
const bodyTokenLen = 8

// record is the stored form of a message (bucket msg). The JSON field names
// are the on-disk schema: never rename one; add fields with omitempty.
type record struct {
	From       string    `json:"from"`
	Recipients []rcptRec `json:"rcpts"`
	Ret        string    `json:"ret,omitempty"`
	EnvID      string    `json:"envid,omitempty"`
	Body8Bit   bool      `json:"8bit,omitempty"`
	SMTPUTF8   bool      `json:"utf8,omitempty"`
	Origin     string    `json:"origin,omitempty"`

	Arrival     time.Time `json:"arrival"`
	Size        int64     `json:"size"`
	CRC         uint32    `json:"crc"`  // CRC-32C (Castagnoli) of the body
	Body        []byte    `json:"body"` // body token: key prefix of the chunks
	Attempts    int       `json:"attempts,omitempty"`
	LastAttempt time.Time `json:"last,omitzero"`
	NextAttempt time.Time `json:"next"`
	LeaseUntil  time.Time `json:"lease,omitzero"` // a worker holds it until then
	Held        bool      `json:"held,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	// ReasonKind is the kind of the last failure (smarthost.Kind*: "auth",
	// "tls", "connect", "credential", "norelay"; "" for any other):
	// a configuration reload retries the configuration kinds at once.
	ReasonKind string `json:"kind,omitempty"`
	// DelayNotified: the delay notice was sent (once per message).
	// Before it was a field, it was the prefix legacyDelayMarker of Reason;
	// decodeRecord migrates such records.
	DelayNotified bool `json:"delaynotified,omitempty"`
}

// legacyDelayMarker started Reason when the delay notice had been sent
// (spools written before DelayNotified was a field).
const legacyDelayMarker = "(delay notice sent) "

// migrate brings a record written by an older relayq to the current
// form: the delay-notice prefix of Reason becomes DelayNotified. The
// record is written back in the new form at its next change; an older
// relayq reading a new record only loses the delay-notice state (at worst
// a second delay notice).
func (r *record) migrate() {
	if rest, ok := strings.CutPrefix(r.Reason, legacyDelayMarker); ok {
		r.Reason = rest
		r.DelayNotified = true
	}
}

type rcptRec struct {
	Addr     string    `json:"addr"`
	Notify   string    `json:"notify,omitempty"`
	ORcpt    string    `json:"orcpt,omitempty"`
	State    State     `json:"state,omitempty"`
	Code     int       `json:"code,omitempty"`
	Enhanced string    `json:"enh,omitempty"`
	Text     string    `json:"text,omitempty"`
	Relay    string    `json:"relay,omitempty"`
	Updated  time.Time `json:"updated,omitzero"`
}

// encodeRecord returns the stored form of r.
func encodeRecord(r *record) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(recordVersion)
	if err := json.NewEncoder(&buf).Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeRecord parses and checks a stored record. Every error wraps
// ErrCorrupt. data may be bbolt memory: nothing in r refers to it afterwards.
func decodeRecord(data []byte) (*record, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty record", ErrCorrupt)
	}
	switch v := data[0]; {
	case v > recordVersion:
		return nil, fmt.Errorf("%w: record version %d is newer than this relayq supports (%d)", ErrCorrupt, v, recordVersion)
	case v != recordVersion:
		return nil, fmt.Errorf("%w: unknown record version %d", ErrCorrupt, v)
	}
	var r record
	// Unmarshal also rejects trailing data after the object.
	if err := json.Unmarshal(data[1:], &r); err != nil {
		return nil, fmt.Errorf("%w: record: %w", ErrCorrupt, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: record: %w", ErrCorrupt, err)
	}
	r.migrate()
	return &r, nil
}

// check reports values no writer produces.
func (r *record) check() error {
	if len(r.Recipients) == 0 {
		return fmt.Errorf("no recipients")
	}
	for i, rc := range r.Recipients {
		if rc.State > Bounced {
			return fmt.Errorf("recipient %d: invalid state %d", i, rc.State)
		}
	}
	if r.Size < 0 {
		return fmt.Errorf("negative size %d", r.Size)
	}
	if r.Attempts < 0 {
		return fmt.Errorf("negative attempt count %d", r.Attempts)
	}
	if len(r.Body) != bodyTokenLen {
		return fmt.Errorf("body token has %d bytes, want %d", len(r.Body), bodyTokenLen)
	}
	return nil
}

// message returns the public view of r.
func (r *record) message(id ID) *Message {
	m := &Message{
		ID: id,
		Envelope: Envelope{
			From:       r.From,
			Recipients: make([]Recipient, len(r.Recipients)),
			Ret:        r.Ret,
			EnvID:      r.EnvID,
			Body8Bit:   r.Body8Bit,
			SMTPUTF8:   r.SMTPUTF8,
			Origin:     r.Origin,
		},
		Arrival:       r.Arrival,
		Size:          r.Size,
		Attempts:      r.Attempts,
		LastAttempt:   r.LastAttempt,
		NextAttempt:   r.NextAttempt,
		LeaseUntil:    r.LeaseUntil,
		Held:          r.Held,
		Reason:        r.Reason,
		ReasonKind:    r.ReasonKind,
		DelayNotified: r.DelayNotified,
	}
	for i, rc := range r.Recipients {
		m.Recipients[i] = Recipient{
			Addr:    rc.Addr,
			Notify:  rc.Notify,
			ORcpt:   rc.ORcpt,
			State:   rc.State,
			Reply:   Reply{Code: rc.Code, Enhanced: rc.Enhanced, Text: rc.Text},
			Relay:   rc.Relay,
			Updated: rc.Updated,
		}
	}
	return m
}

// newRecord builds the record of a new message from its envelope; recipient
// states start at Pending with no reply.
func newRecord(env *Envelope) *record {
	r := &record{
		From:       env.From,
		Recipients: make([]rcptRec, len(env.Recipients)),
		Ret:        env.Ret,
		EnvID:      env.EnvID,
		Body8Bit:   env.Body8Bit,
		SMTPUTF8:   env.SMTPUTF8,
		Origin:     env.Origin,
	}
	for i, rc := range env.Recipients {
		r.Recipients[i] = rcptRec{Addr: rc.Addr, Notify: rc.Notify, ORcpt: rc.ORcpt}
	}
	return r
}
