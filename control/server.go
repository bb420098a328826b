package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/internal/unixsock"
	"github.com/relayq/relayq/spool"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	Spool      *spool.Spool // the daemon's open spool
	Kick       func()       // wakes the runner after flush and release; may be nil
	Logger     *slog.Logger // changes are logged (op, queue_id, uid); nil discards
	PublicList bool         // every local user may list and stat (RELAYQ_MAILQ_PUBLIC)
	// AdminUID is the daemon user's uid, allowed everything besides root;
	// a negative value means os.Getuid().
	AdminUID int
	// Attempts, when set, answers POST /v1/queue/{id}/attempt (sendmail
	// -odi): the daemon's runner records every attempt in it.
	Attempts *Attempts
	// Wake wakes the runner without ending a dead-relay hold (unlike Kick,
	// which operators' flush and release use); may be nil.
	Wake func()
	// Health, when set, is asked by GET /v1/health after the spool was
	// read: a non-nil error (the daemon is draining, the spool failed
	// lately) is the answer's reason, 503.
	Health func() error
}

// Server answers control requests for the daemon's open spool.
type Server struct {
	o   ServerOptions
	log *slog.Logger
	mux *http.ServeMux
}

// NewServer returns a Server for o.Spool.
func NewServer(o ServerOptions) *Server {
	if o.AdminUID < 0 {
		o.AdminUID = os.Getuid()
	}
	s := &Server{o: o, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/queue", s.reader(s.list))
	m.HandleFunc("GET /v1/stats", s.reader(s.stats))
	m.HandleFunc("GET /v1/queue/{id}", s.show) // root, the daemon user, or the message's submitter
	m.HandleFunc("POST /v1/queue/{id}/hold", s.admin(s.change("hold", o.Spool.Hold, false)))
	m.HandleFunc("POST /v1/queue/{id}/release", s.admin(s.change("release", o.Spool.Release, true)))
	m.HandleFunc("DELETE /v1/queue/{id}", s.admin(s.change("delete", o.Spool.Delete, false)))
	m.HandleFunc("POST /v1/queue/{id}/attempt", s.attempt) // root, the daemon user, or the message's submitter
	m.HandleFunc("POST /v1/flush", s.admin(s.flush))
	m.HandleFunc("POST /v1/compact", s.admin(s.compact))
	m.HandleFunc("GET /v1/health", s.health) // everyone: a probe may run as any user
	s.mux = m
	return s
}

// Handler returns the HTTP handler; requests must carry the peer
// credentials in their context (Serve arranges that), else only what
// PublicList allows is served.
func (s *Server) Handler() http.Handler { return s.mux }

// Listen creates the control socket at path with mode 0666 (access is
// checked per request), and its directory (mode 0755) when missing. A stale
// socket file left by a dead daemon is replaced; a socket that still
// answers, or one that cannot be checked, is an error (unixsock.Listen).
func Listen(path string) (net.Listener, error) {
	return unixsock.Listen("control socket", path, 0o666, -1)
}

// Serve answers requests on ln until ctx ends, then waits up to 5 s for
// requests in flight and returns nil. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if cred, ok := peerCred(c); ok {
				return context.WithValue(ctx, credKey{}, cred)
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(limitListener(ln, MaxConns)) }()
	select {
	case err := <-done:
		return fmt.Errorf("control socket: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	<-done
	return nil
}

// MaxConns bounds the control connections served at once; further ones
// wait in the socket's backlog. Every local user may connect, so without a
// bound they could exhaust the daemon's file descriptors.
const MaxConns = 32

// limitListener returns ln accepting at most n connections at a time.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limited{Listener: ln, sem: make(chan struct{}, n)}
}

type limited struct {
	net.Listener
	sem chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

type credKey struct{}

// peerCred reads SO_PEERCRED of a control connection.
func peerCred(c net.Conn) (*unix.Ucred, bool) {
	if lc, ok := c.(*limitedConn); ok {
		c = lc.Conn
	}
	cred, err := unixsock.PeerCred(c)
	return cred, err == nil
}

// uidOf returns the peer uid of r, or -1 when unknown.
func uidOf(r *http.Request) int {
	if cred, ok := r.Context().Value(credKey{}).(*unix.Ucred); ok {
		return int(cred.Uid)
	}
	return -1
}

func (s *Server) privileged(uid int) bool {
	return uid == 0 || (uid >= 0 && uid == s.o.AdminUID)
}

// reader allows list and stats to everyone when PublicList is set.
func (s *Server) reader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if uid := uidOf(r); !s.o.PublicList && !s.privileged(uid) {
			writeError(w, fmt.Errorf("uid %d may not list the queue (RELAYQ_MAILQ_PUBLIC=false): %w", uid, os.ErrPermission))
			return
		}
		h(w, r)
	}
}

// admin allows h to root and the daemon user only.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if uid := uidOf(r); !s.privileged(uid) {
			writeError(w, fmt.Errorf("uid %d may not do this; only root and the daemon user may: %w", uid, os.ErrPermission))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	kind, code := kindOf(err)
	writeJSON(w, code, errorBody{Error: err.Error(), Kind: kind})
}

func pathID(r *http.Request) (spool.ID, error) {
	id, err := spool.ParseID(r.PathValue("id"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return id, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	n := 0
	err := s.o.Spool.List(func(m *spool.Message) error {
		n++
		if err := enc.Encode(listLine{Message: m}); err != nil {
			return err
		}
		return r.Context().Err()
	})
	damaged, err := spool.Damaged(err)
	for _, d := range damaged {
		_ = enc.Encode(listLine{Damaged: &damagedLine{ID: d.ID, Error: d.Error()}})
	}
	if err != nil {
		kind, _ := kindOf(err)
		_ = enc.Encode(listLine{Error: err.Error(), Kind: kind})
	} else {
		_ = enc.Encode(listLine{End: true, Count: n})
	}
	_ = bw.Flush()
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st, err := s.o.Spool.Stats()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// health answers whether the daemon is fit to take mail: its spool can be
// read now and Health finds nothing wrong.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	st, err := s.o.Spool.Stats()
	if err == nil && s.o.Health != nil {
		err = s.o.Health()
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error(), Kind: kindUnhealthy})
		return
	}
	h := Health{Status: "ok"}
	if s.o.PublicList || s.privileged(uidOf(r)) {
		h.Queue = &st.Count
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	uid := uidOf(r)
	if !s.privileged(uid) {
		// The submitter may look at their own message (sendmail -odi
		// waits for its delivery this way); anyone else learns nothing,
		// not even whether the ID exists.
		m, err := s.o.Spool.Get(id)
		if err != nil || !ownedBy(m, uid) {
			writeError(w, fmt.Errorf("uid %d may not show %s; only root, the daemon user and its sender may: %w", uid, id, os.ErrPermission))
			return
		}
	}
	d, err := detail(s.o.Spool, id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// MaxAttemptWait bounds how long POST /v1/queue/{id}/attempt waits for
// the attempt (its "wait" parameter); DefaultAttemptWait is its default.
const (
	MaxAttemptWait     = 5 * time.Minute
	DefaultAttemptWait = 2 * time.Minute
)

// errHeld ends an attempt wait for a message on hold: no attempt comes.
var errHeld = errors.New("on hold")

// attempt is sendmail -odi's wait with a daemon: it answers with the
// message's first delivery attempt (remembered, or the next one, the
// runner woken for it), with {"gone":true} when the message left the queue
// without a remembered attempt, or with the queued record (its reason)
// when it is held or the wait ran out.
func (s *Server) attempt(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if s.o.Attempts == nil {
		writeError(w, fmt.Errorf("this daemon keeps no attempt reports: %w", ErrBadRequest))
		return
	}
	wait := DefaultAttemptWait
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, fmt.Errorf("wait=%q: want a duration such as 2m: %w", v, ErrBadRequest))
			return
		}
		wait = min(d, MaxAttemptWait)
	}
	uid := uidOf(r)
	if !s.privileged(uid) {
		// As show: the submitter may follow their own message, nobody
		// else learns anything, not even whether the ID exists.
		owned := false
		if at, ok := s.o.Attempts.Last(id); ok {
			owned = originOwnedBy(at.Origin, uid)
		} else if m, err := s.o.Spool.Get(id); err == nil {
			owned = ownedBy(m, uid)
		}
		if !owned {
			writeError(w, fmt.Errorf("uid %d may not follow %s; only root, the daemon user and its sender may: %w", uid, id, os.ErrPermission))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	at, err := s.o.Attempts.Wait(ctx, id, func() error {
		m, err := s.o.Spool.Get(id)
		if err != nil {
			return err
		}
		if m.Held {
			return errHeld
		}
		if s.o.Wake != nil {
			s.o.Wake()
		}
		return nil
	})
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, AttemptAnswer{Attempt: &at})
	case errors.Is(err, spool.ErrNotFound):
		writeJSON(w, http.StatusOK, AttemptAnswer{Gone: true})
	case errors.Is(err, errHeld), errors.Is(err, context.DeadlineExceeded):
		m, gerr := s.o.Spool.Get(id)
		if errors.Is(gerr, spool.ErrNotFound) {
			writeJSON(w, http.StatusOK, AttemptAnswer{Gone: true})
			return
		}
		if gerr != nil {
			writeError(w, gerr)
			return
		}
		writeJSON(w, http.StatusOK, AttemptAnswer{Queued: m})
	default:
		writeError(w, err)
	}
}

// ownedBy reports whether m was submitted by local user uid: its Origin,
// as the submission socket and the CLI's direct route record it, starts
// with "uid=N".
func ownedBy(m *spool.Message, uid int) bool {
	return originOwnedBy(m.Origin, uid)
}

// originOwnedBy is ownedBy on a message's Origin.
func originOwnedBy(origin string, uid int) bool {
	if uid < 0 {
		return false
	}
	f := strings.Fields(origin)
	if len(f) == 0 {
		return false
	}
	n, ok := strings.CutPrefix(f[0], "uid=")
	return ok && n == strconv.Itoa(uid)
}

func (s *Server) change(op string, fn func(spool.ID) error, kick bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, err)
			return
		}
		if err := fn(id); err != nil {
			writeError(w, err)
			return
		}
		s.log.Info("queue "+op, "queue_id", string(id), "uid", uidOf(r))
		if kick && s.o.Kick != nil {
			s.o.Kick()
		}
		writeJSON(w, http.StatusOK, okBody{OK: true})
	}
}

func (s *Server) flush(w http.ResponseWriter, r *http.Request) {
	n, err := s.o.Spool.Flush()
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("queue flush", "due", n, "uid", uidOf(r))
	if s.o.Kick != nil {
		s.o.Kick()
	}
	writeJSON(w, http.StatusOK, countBody{Count: n})
}

func (s *Server) compact(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if err := s.o.Spool.Compact(); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("queue compact", "took", time.Since(start).Round(time.Millisecond), "uid", uidOf(r))
	writeJSON(w, http.StatusOK, okBody{OK: true})
}

// detail reads a message's record and header section (bounded).
func detail(sp *spool.Spool, id spool.ID) (*Detail, error) {
	m, err := sp.Get(id)
	if err != nil {
		return nil, err
	}
	rc, err := sp.OpenBody(id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h, trunc, err := readHeaders(rc)
	if err != nil {
		return nil, fmt.Errorf("read body of %s: %w", id, err)
	}
	return &Detail{Message: m, Headers: h, Truncated: trunc}, nil
}

// readHeaders reads the header section (up to and without the empty line)
// of at most MaxHeaders bytes.
func readHeaders(r io.Reader) (string, bool, error) {
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 4096)
	for {
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return string(buf[:i+2]), false, nil
		}
		if bytes.HasPrefix(buf, []byte("\r\n")) {
			return "", false, nil
		}
		if len(buf) >= MaxHeaders {
			return string(buf[:MaxHeaders]), true, nil
		}
		n, err := r.Read(chunk[:min(len(chunk), MaxHeaders+4-len(buf))])
		buf = append(buf, chunk[:n]...)
		if errors.Is(err, io.EOF) {
			if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
				return string(buf[:i+2]), false, nil
			}
			if len(buf) > MaxHeaders {
				return string(buf[:MaxHeaders]), true, nil
			}
			return string(buf), false, nil // no body: all headers
		}
		if err != nil {
			return "", false, err
		}
	}
}
