package spool

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func contextBackground() context.Context { return context.Background() }

func sampleRecord() *record {
	r := newRecord(&Envelope{
		From: "sender@example.org",
		Recipients: []Recipient{
			{Addr: "a@example.com", Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;a@example.com"},
			{Addr: "Ünïcode@example.net"},
		},
		Ret: "FULL", EnvID: "QQ314159", Body8Bit: true, SMTPUTF8: true, Origin: "uid=0",
	})
	r.Recipients[1].State = Bounced
	r.Recipients[1].Code, r.Recipients[1].Enhanced, r.Recipients[1].Text = 550, "5.1.1", "user unknown"
	r.Recipients[1].Relay = "[smtp.example.com]:587"
	r.Recipients[1].Updated = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	r.Arrival = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	r.NextAttempt = r.Arrival.Add(time.Hour)
	r.LastAttempt = r.Arrival.Add(time.Minute)
	r.LeaseUntil = r.NextAttempt
	r.Size, r.CRC, r.Attempts, r.Held, r.Reason = 12345, 0xdeadbeef, 3, true, "451 4.3.0 try again"
	r.Body = []byte("01234567")
	return r
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	r := sampleRecord()
	b, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
	}
	m := got.message("01K0WGA2FA46")
	if m.Recipients[1].Reply != (Reply{Code: 550, Enhanced: "5.1.1", Text: "user unknown"}) || m.Attempts != 3 || !m.Held {
		t.Errorf("message %+v", m)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	t.Parallel()
	good, _ := encodeRecord(sampleRecord())
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"newer version", append([]byte{2}, good[1:]...)},
		{"not json", []byte("\x01hello")},
		{"trailing data", append(append([]byte(nil), good...), []byte(`{"x":1}`)...)},
		{"no recipients", []byte(`` + "\x01" + `{"rcpts":[],"body":"MDEyMzQ1Njc="}`)},
		{"bad state", []byte("\x01" + `{"rcpts":[{"addr":"a","state":9}],"body":"MDEyMzQ1Njc="}`)},
		{"negative size", []byte("\x01" + `{"rcpts":[{"addr":"a"}],"size":-1,"body":"MDEyMzQ1Njc="}`)},
		{"negative attempts", []byte("\x01" + `{"rcpts":[{"addr":"a"}],"attempts":-1,"body":"MDEyMzQ1Njc="}`)},
		{"short token", []byte("\x01" + `{"rcpts":[{"addr":"a"}],"body":"MDEy"}`)},
		{"wrong type", []byte("\x01" + `{"rcpts":"a","body":"MDEyMzQ1Njc="}`)},
	} {
		if _, err := decodeRecord(tt.in); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
}

// FuzzDecodeRecord: decoding never panics, and whatever decodes encodes
// back to a record that decodes to the same value.
func FuzzDecodeRecord(f *testing.F) {
	good, _ := encodeRecord(sampleRecord())
	f.Add(good)
	small, _ := encodeRecord(newRecordWithToken())
	f.Add(small)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte("\x01{}"))
	f.Add([]byte("\x02{}"))
	f.Add([]byte("\x01" + `{"rcpts":[{"addr":"a","state":2}],"body":"MDEyMzQ1Njc=","size":1e3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		b, err := encodeRecord(r)
		if err != nil {
			t.Fatalf("encode decoded record: %v", err)
		}
		r2, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		b2, err := encodeRecord(r2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}

func newRecordWithToken() *record {
	r := newRecord(&Envelope{Recipients: []Recipient{{Addr: "x@y"}}})
	r.Body = make([]byte, bodyTokenLen)
	return r
}
