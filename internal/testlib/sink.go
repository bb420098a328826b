package testlib

import (
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message a Sink took.
type Message struct {
	From string
	To   []string
	Data string
}

// Sink is a go-smtp server on loopback that takes every message (but the
// recipients Refuse refuses) and records it. No TLS, no AUTH: a relay for
// tests with RELAYQ_TLS=none.
type Sink struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Refuse, when set before mail arrives, answers RCPT: a non-nil error
	// (an *smtp.SMTPError) refuses that recipient.
	Refuse func(rcpt string) error
	// BeforeMail, when set before mail arrives, is called at each MAIL
	// command before it is answered: a test blocks in it to make a slow
	// relay (the client waits, nothing of the message is sent), or
	// returns an error (an *smtp.SMTPError) that refuses the MAIL.
	BeforeMail func() error

	conns atomic.Int64
	mu    sync.Mutex
	msgs  []Message
}

// StartSink starts a Sink that stops when the test ends.
func StartSink(t testing.TB) *Sink {
	t.Helper()
	s := &Sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.conns.Add(1)
		return &sinkSession{s: s}, nil
	}))
	srv.Domain = "sink.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.EnableSMTPUTF8, srv.EnableDSN = true, true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeSMTP(t, srv, l)
	s.Addr = l.Addr().String()
	return s
}

// Relay is the sink as a relay host without MX lookup: "[127.0.0.1]:port".
func (s *Sink) Relay() string { return "[" + strings.Replace(s.Addr, ":", "]:", 1) }

// Messages returns the messages taken so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Senders returns the envelope senders of the messages taken so far.
func (s *Sink) Senders() []string {
	var out []string
	for _, m := range s.Messages() {
		out = append(out, m.From)
	}
	return out
}

// Conns counts the connections accepted so far.
func (s *Sink) Conns() int64 { return s.conns.Load() }

type sinkSession struct {
	s *Sink
	m Message
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.BeforeMail != nil {
		if err := ss.s.BeforeMail(); err != nil {
			return err
		}
	}
	ss.m = Message{From: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.Refuse != nil {
		if err := ss.s.Refuse(to); err != nil {
			return err
		}
	}
	ss.m.To = append(ss.m.To, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.m.Data = string(b)
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.m = Message{} }
func (ss *sinkSession) Logout() error { return nil }
