package smarthost

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// scrubMask replaces a secret in any text relayq stores, logs or prints.
const scrubMask = "********"

// scrubMin is the shortest secret (and base64 fragment) scrubbed: shorter
// ones would blank out ordinary words of replies.
const scrubMin = 4

// secretSet is every secret the client has handled (passwords, client
// secrets, refresh and access tokens, including rotated and fetched
// ones). Each is kept in plain form and as the base64 fragments that
// appear whatever its offset in an encoded string (a SASL PLAIN or
// XOAUTH2 response a relay might echo), in std and URL alphabets, and
// %-escaped as a token request carries it.
type secretSet struct {
	mu    sync.RWMutex
	seen  map[string][]string // secret → its forms
	order []string            // secrets, oldest first
	pats  []string            // every form, longest first, so that a longer form is masked whole
}

// maxSecrets bounds the set: access tokens rotate (about one an hour per
// OAuth credential), and a daemon runs for months. The oldest secret is
// dropped first; an expired access token no longer needs masking, and a
// credential in use is added again at its next lookup.
const maxSecrets = 512

func newSecretSet() *secretSet { return &secretSet{seen: map[string][]string{}} }

// add records a secret.
func (s *secretSet) add(secret string) {
	if len(secret) < scrubMin {
		return
	}
	s.mu.RLock()
	_, known := s.seen[secret]
	s.mu.RUnlock()
	if known {
		return
	}
	// As sent: plain, %-escaped in a form or URL (a token request), and
	// base64 of each (SASL, HTTP Basic authorization of the client).
	plain := []string{secret, url.QueryEscape(secret), url.PathEscape(secret)}
	forms := slices.Clone(plain)
	for _, p := range plain {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			forms = append(forms, b64Fragments(enc, p)...)
		}
	}
	forms = slices.DeleteFunc(forms, func(f string) bool { return len(f) < scrubMin })
	slices.Sort(forms)
	forms = slices.Compact(forms)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.seen[secret]; known {
		return
	}
	s.seen[secret] = forms
	s.order = append(s.order, secret)
	if len(s.order) > maxSecrets {
		delete(s.seen, s.order[0])
		s.order = s.order[1:]
	}
	s.pats = s.pats[:0]
	for _, fs := range s.seen {
		s.pats = append(s.pats, fs...)
	}
	slices.Sort(s.pats)
	s.pats = slices.Compact(s.pats)
	slices.SortStableFunc(s.pats, func(a, b string) int { return len(b) - len(a) })
}

// addCred records the secrets of a credential.
func (s *secretSet) addCred(cr Credential) {
	s.add(cr.Password.Reveal())
	if o := cr.OAuth; o != nil {
		s.add(o.ClientSecret.Reveal())
		s.add(o.RefreshToken.Reveal())
		s.add(o.AccessToken.Reveal())
	}
}

// b64Fragments returns, for each of the three byte offsets at which the
// secret can start inside an encoded string, the run of base64 characters
// that depend on the secret's bytes alone.
func b64Fragments(enc *base64.Encoding, secret string) []string {
	var out []string
	for k := range 3 {
		buf := make([]byte, k+len(secret))
		copy(buf[k:], secret)
		e := enc.EncodeToString(buf)
		n := k + len(secret)
		first := (8*k + 5) / 6 // ceil(8k/6): first character with only secret bits
		last := 8 * n / 6      // characters before this one end inside the secret
		if last-first >= scrubMin {
			out = append(out, e[first:last])
		}
	}
	return out
}

// scrub masks every known secret in text.
func (s *secretSet) scrub(text string) string {
	if s == nil || text == "" {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.pats {
		if strings.Contains(text, p) {
			text = strings.ReplaceAll(text, p, scrubMask)
		}
	}
	return text
}

// scrubbedError is an error whose text has the known secrets masked; it
// still unwraps to the cause for errors.Is.
type scrubbedError struct {
	err error
	s   *secretSet
}

func (e *scrubbedError) Error() string { return e.s.scrub(e.err.Error()) }
func (e *scrubbedError) Unwrap() error { return e.err }

func (s *secretSet) scrubErr(err error) error {
	if err == nil {
		return nil
	}
	return &scrubbedError{err: err, s: s}
}

// scrubOutcome masks secrets in every recipient's reply text.
func (s *secretSet) scrubOutcome(out *Outcome) {
	for i := range out.Recipients {
		out.Recipients[i].Text = s.scrub(out.Recipients[i].Text)
	}
}

// scrubWriter masks secrets in what is written through it (each Write is
// one formatted report line or more).
type scrubWriter struct {
	w io.Writer
	s *secretSet
}

func (w scrubWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.s.scrub(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// scrubHandler is a slog.Handler that masks secrets in the message and in
// every attribute value before the wrapped handler sees them.
type scrubHandler struct {
	h slog.Handler
	s *secretSet
}

func (h scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, h.s.scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, nr)
}

func (h scrubHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.s.scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, x := range g {
			out[i] = h.attr(x)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.s.scrub(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.s.scrub(x.String()))
		case []string:
			y := make([]string, len(x))
			for i := range x {
				y[i] = h.s.scrub(x[i])
			}
			return slog.Any(a.Key, y)
		}
		return slog.String(a.Key, h.s.scrub(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h scrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return scrubHandler{h: h.h.WithAttrs(out), s: h.s}
}

func (h scrubHandler) WithGroup(name string) slog.Handler {
	return scrubHandler{h: h.h.WithGroup(name), s: h.s}
}
