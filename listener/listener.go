// Package listener is relayq's SMTP intake: a go-smtp server on the TCP
// listener (RELAYQ_LISTEN, loopback by default; the sidecar entry point
// for applications) and on the daemon's unix submission socket
// (RELAYQ_SOCKET; the sendmail CLI's way in while the daemon runs). Every
// accepted message ends in Options.Submit, which the daemon wires to its
// open spool; the reply to the final dot is "250 2.0.0 Ok: queued as <ID>"
// only after Submit has returned (the spool commit, RFC 5321 §6.1), and a
// Submit error is "451 4.3.0", nothing acknowledged.
//
// # Who may relay
//
// On TCP a client may relay when its address is in Options.MyNetworks
// (default: loopback only, as Postfix mynetworks_style=host) or after it
// has authenticated with AUTH PLAIN or LOGIN (RFC 4954, RFC 4616) against
// the users file and/or a Dovecot auth socket. Anyone else gets
// "530 5.7.0 Authentication required" (AUTH is offered) or "554 5.7.1 Relay
// access denied" at MAIL: relayq is never an open relay. AUTH is offered
// only over TLS (STARTTLS, RFC 3207, when a certificate is configured) or
// to loopback clients, as Postfix smtpd_tls_auth_only; elsewhere it is
// refused with "538 5.7.11 Encryption required". A failed AUTH is answered
// after Options.AuthFailDelay; the third failure, or the twentieth refused
// MAIL or RCPT, ends the session with 421. A listener bound to a
// non-loopback address is refused (an error wrapping ErrConfig) unless
// MyNetworks was given or AUTH is configured.
//
// On the unix socket every local user may submit without AUTH, as with
// Postfix's maildrop/pickup; whoever may open the socket (its mode and
// group) may send. The peer's uid comes from SO_PEERCRED and is recorded in
// the envelope's Origin ("uid=1000"). When a user who is not trusted
// (Options.TrustedUID) gives an envelope sender other than their own
// address (name, name@Hostname or name@Domain), the message gets an
// X-Authentication-Warning header (submit.AuthWarning), or is refused with
// 553 5.7.1 when Options.ForeignSender is "refuse" (RELAYQ_UNTRUSTED_SENDER,
// the same policy as the sendmail command's). The sendmail command adds
// the same warning on its own path; when the message's header already
// holds an X-Authentication-Warning naming the same user, the listener
// does not add a second one (the line names the real user either way).
//
// # Users file
//
// Options.Users names a file of lines
//
//	# comment
//	name:hash
//
// where name is the AUTH user name (any octets but ':' and white space,
// e.g. "app@example.com") and hash a bcrypt hash ($2a$, $2b$ or $2y$, cost
// 10 or more is recommended). A hash written by `doveadm pw -s BLF-CRYPT`
// may keep its "{BLF-CRYPT}" prefix; `htpasswd -nB name` output is used as
// it is. HashPassword makes a hash (a future `relayq` subcommand can wrap
// it). The file must be a regular file owned by root or by the daemon's
// user and neither group- nor world-accessible (mode 0600 or 0400), as
// relayq demands of every credentials file; anything else is refused with
// an error naming the file. Duplicate names, lines without ':' and hashes
// that are not bcrypt are errors naming file:line. Reload re-reads it and
// keeps the old users when the new file is broken.
//
// # Dovecot
//
// Options.DovecotSocket names a Dovecot auth-client socket; passwords are
// checked with Dovecot's authentication protocol (VERSION 1.x: VERSION,
// CPID, then AUTH id PLAIN service=smtp resp=base64 → OK/FAIL), the way
// Postfix's smtpd_sasl_type = dovecot does. The users file is tried first
// when both are set.
//
// # Message hygiene
//
// DATA ends only at <CRLF>.<CRLF> (go-smtp's data reader): a bare
// <LF>.<LF> or <CR>.<CR> is message content, so SMTP smuggling
// (CVE-2023-51764/5/6) cannot start a second message. Before Submit the
// content is normalised by submit.Normalizer, the rules every door shares
// (Postfix smtpd_forbid_bare_newline=normalize, cleanup_replace_stray_cr_lf
// and message_strip_characters=\0): a bare LF becomes CRLF, a CR not
// followed by LF becomes a space, a NUL octet is removed. A message larger than
// MaxMessageSize is refused with "552 5.3.4" (also early, from MAIL
// SIZE=), a header larger than MaxHeaderSize likewise, recipients beyond
// MaxRecipients get "452 4.5.3", a line longer than MaxLineLength ends the
// connection with "500 5.4.0". Nothing of a refused message is stored.
//
// TCP messages get a Received: header (RFC 5321 §4.4) naming the client
// and the protocol (ESMTP, ESMTPS, ESMTPA, ESMTPSA, RFC 3848); socket
// messages do not (the sendmail CLI writes its own). A message without
// Date, Message-ID or From gets them at the end of its header (Postfix
// local_header_rewrite_clients); one with HopCountLimit Received: fields
// is refused with "554 5.4.6" (mail loop), as the sendmail command
// refuses it.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/submit"
)

// ErrConfig is wrapped by errors that come from the configuration (an
// open-relay bind, an unreadable users file, bad options): the daemon
// should exit 78 (EX_CONFIG).
var ErrConfig = sysexits.Kind("listener configuration", sysexits.Config)

// Defaults used for zero Options fields (Postfix's values where it has one).
const (
	DefaultMaxMessageSize = 10240000        // Postfix message_size_limit
	DefaultMaxRecipients  = 1000            // Postfix smtpd_recipient_limit
	DefaultMaxHeaderSize  = 102400          // Postfix header_size_limit
	DefaultMaxLineLength  = 4096            // RFC 5321 allows 1000 incl. CRLF
	DefaultTimeout        = 5 * time.Minute // Postfix smtpd_timeout
	DefaultMaxConnections = 100             // Postfix default_process_limit
	DefaultAuthFailDelay  = 2 * time.Second // Dovecot auth_failure_delay
	maxAuthFailures       = 3               // then the connection is closed
	shutdownPoll          = 50 * time.Millisecond
)

// Options configures a Server. Submit is required; zero values of the
// limits mean the defaults above.
type Options struct {
	// Submit queues an accepted message and returns its queue ID only
	// after the spool commit. The daemon passes a closure over its open
	// spool (spool.Submit has this signature). ctx is cancelled when the
	// server is closed.
	Submit submit.Func

	// Hostname is this host's name in the greeting, in Received headers
	// and in X-Authentication-Warning; "" means os.Hostname().
	Hostname string
	// Domain is the local mail domain (RELAYQ_DOMAIN): on the unix socket
	// name@Domain counts as user name's own address.
	Domain string

	// MyNetworks are the client networks that may relay over TCP without
	// AUTH; nil means loopback only (127.0.0.0/8, ::1). Giving it (even
	// only loopback) allows a non-loopback bind.
	MyNetworks []netip.Prefix

	// Users is the users file for client AUTH ("" none); see the package
	// doc for its format.
	Users string
	// DovecotSocket is a Dovecot auth-client socket for client AUTH ("" none).
	DovecotSocket string
	// AuthFailDelay is the pause before a failed AUTH is answered; 0 means
	// DefaultAuthFailDelay, a negative value no pause (tests).
	AuthFailDelay time.Duration

	// TLSConfig enables STARTTLS on TCP when non-nil (it must hold a
	// certificate).
	TLSConfig *tls.Config

	MaxMessageSize int64         // SIZE; larger messages get 552 5.3.4 (go-smtp also refuses one of exactly this size)
	MaxRecipients  int           // more recipients get 452 4.5.3 (TCP only; the unix socket has no limit)
	MaxHeaderSize  int           // larger headers get 552 5.3.4
	HopCountLimit  int           // a message with this many Received: headers gets 554 5.4.6 (mail loop); 0 means DefaultHopCountLimit
	MaxLineLength  int           // longer lines end the connection (500 5.4.0)
	Timeout        time.Duration // each command read and each reply write
	DataTimeout    time.Duration // each read of message data; 0 means Timeout
	MaxConnections int           // per listener; more get 421 4.3.2

	// TrustedUID reports whether a local user may set any envelope sender
	// on the unix socket without a warning; nil means root and the
	// daemon's own uid only.
	TrustedUID func(uid int) bool
	// ForeignSender is "warn" (default: X-Authentication-Warning) or
	// "refuse" (553 5.7.1) for an untrusted local user whose envelope
	// sender is not their own address (RELAYQ_UNTRUSTED_SENDER).
	ForeignSender string

	// Log receives one line per accepted message (maillog Queued) or
	// refused one (maillog Rejected, with the reply sent), client AUTH
	// outcomes (the user name, never the AUTH payload) and connection
	// problems; nil discards.
	Log *maillog.Logger
	// Now is the clock for Received headers; nil means time.Now.
	Now func() time.Time
}

// Server is the SMTP intake: one configuration, any number of TCP
// listeners and unix sockets. It is safe for concurrent use.
type Server struct {
	o    Options
	log  *maillog.Logger
	auth *authenticator
	ctx  context.Context // cancelled by Close
	stop context.CancelFunc
	uid  int
	mu   sync.Mutex
	lns  []*connListener
	wg   sync.WaitGroup
	// closing is set by Shutdown and Close: no new listeners, idle
	// connections are sent away.
	closing atomic.Bool
	// data counts Data calls in progress. go-smtp runs Data for BDAT in
	// a goroutine of its own that may outlive the connection; Close
	// waits for them so that nothing is written to the spool after it.
	dataMu     sync.Mutex
	data       sync.WaitGroup
	dataClosed bool
}

// dataStart registers a Data call; false once Close has begun.
func (s *Server) dataStart() bool {
	s.dataMu.Lock()
	defer s.dataMu.Unlock()
	if s.dataClosed {
		return false
	}
	s.data.Add(1)
	return true
}

// New checks the options, loads the users file and returns a Server that
// serves nothing yet: call ServeTCP or ServeUnix (each blocks, so run them
// in goroutines) and, at the end, Shutdown. Errors from bad options or an
// unusable users file wrap ErrConfig.
//
// Typical wiring in the daemon:
//
//	srv, err := listener.New(listener.Options{Submit: sp.Submit, Log: mlog, ...})
//	ln, err := listener.ListenTCP("127.0.0.1:2525")       // or each RELAYQ_LISTEN address
//	go srv.ServeTCP(ln)
//	uln, err := listener.ListenUnix("/run/relayq/submit.sock", 0o666, -1)
//	go srv.ServeUnix(uln)
//	...
//	srv.Shutdown(ctx) // on SIGTERM: stop accepting, finish messages in DATA
func New(o Options) (*Server, error) {
	if o.Submit == nil {
		return nil, fmt.Errorf("listener: Options.Submit is nil: %w", ErrConfig)
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		o.Hostname = h
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = DefaultMaxRecipients
	}
	if o.MaxHeaderSize <= 0 {
		o.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DataTimeout <= 0 {
		o.DataTimeout = o.Timeout
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.AuthFailDelay == 0 {
		o.AuthFailDelay = DefaultAuthFailDelay
	}
	switch o.ForeignSender {
	case "":
		o.ForeignSender = "warn"
	case "warn", "refuse":
	default:
		return nil, fmt.Errorf("listener: ForeignSender %q is not warn or refuse: %w", o.ForeignSender, ErrConfig)
	}
	if o.TLSConfig != nil && len(o.TLSConfig.Certificates) == 0 && o.TLSConfig.GetCertificate == nil {
		return nil, fmt.Errorf("listener: TLSConfig has no certificate: %w", ErrConfig)
	}
	for _, p := range o.MyNetworks {
		if p.Bits() == 0 {
			return nil, fmt.Errorf("listener: MyNetworks %s matches every client (open relay): %w", p, ErrConfig)
		}
	}
	if o.Log == nil {
		o.Log = maillog.New(nil)
	}
	if o.HopCountLimit <= 0 {
		o.HopCountLimit = DefaultHopCountLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	auth, err := newAuthenticator(o.Users, o.DovecotSocket)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{o: o, log: o.Log, auth: auth, ctx: ctx, stop: cancel, uid: os.Geteuid()}
	return s, nil
}

// AuthConfigured reports whether client AUTH is available (a users file
// or a Dovecot socket).
func (s *Server) AuthConfigured() bool { return s.auth.configured() }

// Reload re-reads the users file (on SIGHUP). On error the old users stay
// in force and the error (naming file:line) is returned.
func (s *Server) Reload() error { return s.auth.reload() }

// String names what Reload reloads, for the daemon's log.
func (s *Server) String() string { return "the listener's users file" }

// ListenTCP binds a TCP address for ServeTCP ("127.0.0.1:25",
// "[::1]:2525", "localhost:2525").
func ListenTCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// CheckBind returns an error wrapping ErrConfig when a listener on addr
// would accept clients from other hosts while neither MyNetworks nor AUTH
// is configured. ServeTCP applies it; the daemon may call it before
// binding to fail early.
func (s *Server) CheckBind(addr net.Addr) error {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("listener: %s is not a TCP address: %w", addr, ErrConfig)
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	if ip.Unmap().IsLoopback() {
		return nil
	}
	if s.o.MyNetworks != nil || s.auth.configured() {
		return nil
	}
	return fmt.Errorf("listener: %s is not a loopback address and neither RELAYQ_MYNETWORKS nor client AUTH (RELAYQ_SMTPD_USERS, RELAYQ_SMTPD_DOVECOT_SOCKET) is configured; relayq is never an open relay: %w", addr, ErrConfig)
}

// ServeTCP serves SMTP on ln (clients from the network: allow-list, AUTH,
// STARTTLS) until Close or Shutdown; then it returns nil. It refuses, with
// an error wrapping ErrConfig, a non-loopback ln without MyNetworks or
// AUTH (see CheckBind). ServeTCP closes ln when it returns.
func (s *Server) ServeTCP(ln net.Listener) error {
	if err := s.CheckBind(ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	return s.serve(ln, false)
}

// ServeUnix serves SMTP on a unix socket (ListenUnix): local users, peer
// uid from SO_PEERCRED, no AUTH, until Close or Shutdown; then it returns
// nil. ServeUnix closes ln when it returns.
func (s *Server) ServeUnix(ln *net.UnixListener) error {
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, unix bool) error {
	cl := newConnListener(s, ln, unix)
	srv := smtp.NewServer(&backend{s: s, unix: unix})
	srv.Domain = s.o.Hostname
	srv.MaxMessageBytes = s.o.MaxMessageSize
	srv.MaxRecipients = s.o.MaxRecipients
	if unix {
		// The socket carries sendmail(1) submissions from local users,
		// which have no recipient limit (Postfix's postdrop has none
		// either): a cron job mailing 5,000 addresses must not be
		// refused with 452 and exit 75.
		srv.MaxRecipients = 0
	}
	srv.MaxLineLength = s.o.MaxLineLength
	srv.WriteTimeout = s.o.Timeout
	// Read deadlines are set by conn.Read (per read, command or data
	// timeout), not by go-smtp's absolute per-command ReadTimeout.
	srv.ReadTimeout = 0
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	// AUTH policy (TLS or loopback only) is enforced by the session, which
	// knows the peer; go-smtp's switch is all-or-nothing per server.
	srv.AllowInsecureAuth = true
	srv.ErrorLog = slogPrintf{s.log.Logger}
	if !unix {
		srv.TLSConfig = s.o.TLSConfig
	}

	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns = append(s.lns, cl)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	err := srv.Serve(cl)
	if s.closing.Load() || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, closes idle ones (they get
// "421 4.4.2") and waits until the messages being received are done and
// answered, or ctx ends; then it closes what is left (nothing of those
// messages is acknowledged) and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	lns := append([]*connListener(nil), s.lns...)
	s.mu.Unlock()
	for _, l := range lns {
		l.stopAccepting()
	}
	t := time.NewTicker(shutdownPoll)
	defer t.Stop()
	for {
		busy := 0
		for _, l := range lns {
			busy += l.wakeIdle()
		}
		if busy == 0 {
			break
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
	return s.Close()
}

// Close closes every listener and connection at once; a message still
// being received is not acknowledged (the client will retry). It waits
// for the Serve calls to return.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.stop()
	s.mu.Lock()
	lns := append([]*connListener(nil), s.lns...)
	s.mu.Unlock()
	for _, l := range lns {
		l.closeAll()
	}
	s.wg.Wait()
	s.dataMu.Lock()
	s.dataClosed = true
	s.dataMu.Unlock()
	s.data.Wait()
	s.auth.close()
	return nil
}

// slogPrintf adapts go-smtp's internal error log to slog.
type slogPrintf struct{ l *slog.Logger }

func (p slogPrintf) Printf(format string, v ...any) {
	p.l.Warn("smtp server", "error", fmt.Sprintf(format, v...))
}

func (p slogPrintf) Println(v ...any) { p.l.Warn("smtp server", "error", fmt.Sprint(v...)) }
