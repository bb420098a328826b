package listener

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relayq/relayq/submit"
	"github.com/relayq/relayq/wire"
)

// RFC 5321 §4.5.3.1.3: a path is at most 256 octets.
const maxPathLen = 256

// SMTP replies of the listener (RFC 3463 enhanced codes).
var (
	errAuthRequired  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errRelayDenied   = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relay access denied"}
	errEncryptFirst  = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required for requested authentication mechanism"}
	errNoAuthHere    = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "AUTH not available on this connection"}
	errAuthTemp      = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	errAuthTooMany   = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, closing connection"}
	errBadSender     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	errBadRecipient  = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	errHeaderTooBig  = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message header size exceeds limit"}
	errLineTooLong   = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 4, 0}, Message: "Line too long"}
	errQueueWrite    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: queue file write error"}
	errQueueFull     = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage"}
	errQueueInvalid  = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message refused by the queue"}
	errShuttingDown  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
	errDataIncomplet = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: message not received completely"}
)

// backend makes a session per client (and again after STARTTLS).
type backend struct {
	s    *Server
	unix bool
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ss := &session{s: b.s, c: c, unix: b.unix}
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		ss.tls = true
		nc = tc.NetConn()
	}
	mc, ok := nc.(*conn)
	if !ok {
		return nil, fmt.Errorf("listener: unexpected connection type %T", nc)
	}
	ss.conn = mc
	if b.unix {
		ss.origin = "uid=" + strconv.Itoa(mc.uid)
		ss.trusted = b.s.trustedUID(mc.uid)
		if u, err := user.LookupId(strconv.Itoa(mc.uid)); err == nil {
			ss.userName = u.Username
		}
		return ss, nil
	}
	ss.origin = mc.RemoteAddr().String()
	if ap, err := netip.ParseAddrPort(ss.origin); err == nil {
		ss.ip = ap.Addr().Unmap()
	}
	ss.loopback = ss.ip.IsLoopback()
	ss.mynet = b.s.inMyNetworks(ss.ip)
	return ss, nil
}

func (s *Server) trustedUID(uid int) bool {
	if s.o.TrustedUID != nil {
		return s.o.TrustedUID(uid)
	}
	return uid == 0 || uid == s.uid
}

func (s *Server) inMyNetworks(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	if s.o.MyNetworks == nil {
		return ip.IsLoopback()
	}
	for _, p := range s.o.MyNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// session is one SMTP session (go-smtp Session and AuthSession).
type session struct {
	s    *Server
	c    *smtp.Conn
	conn *conn
	unix bool

	// TCP peer
	ip       netip.Addr
	loopback bool
	mynet    bool
	tls      bool
	authUser string
	authFail int
	rejects  int // refused MAIL/RCPT commands

	// unix peer
	userName string
	trusted  bool

	origin string // for logs and Envelope.Origin

	// The transaction. Data may run on another goroutine than the
	// commands (go-smtp's BDAT), so it is guarded and Data works on a
	// copy taken when it starts.
	mu      sync.Mutex
	env     submit.Envelope
	seen    map[string]bool
	warning string // X-Authentication-Warning line, unix socket only
	helo    string // HELO/EHLO name at MAIL time, for Received
}

func (ss *session) Reset() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.env = submit.Envelope{}
	ss.seen = nil
	ss.warning = ""
	ss.helo = ""
}

func (ss *session) Logout() error { return nil }

// mayRelay: allow-listed network, authenticated, or a local user.
func (ss *session) mayRelay() bool { return ss.unix || ss.mynet || ss.authUser != "" }

// authOffered: AUTH is configured and allowed on this connection now
// (TLS or loopback, RFC 4954 §4 / Postfix smtpd_tls_auth_only).
func (ss *session) authOffered() bool {
	return !ss.unix && ss.s.auth.configured() && (ss.tls || ss.loopback)
}

// maxRejects is how many refused MAIL and RCPT commands a session may
// collect before it is ended (as Postfix smtpd_hard_error_limit).
const maxRejects = 20

var errTooManyRejects = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many errors, closing connection"}

// counted ends the session once too many commands have been refused.
func (ss *session) counted(err error) error {
	if err == nil {
		return nil
	}
	ss.rejects++
	if ss.rejects >= maxRejects {
		ss.conn.hangUp.Store(true)
		return errTooManyRejects
	}
	return err
}

// Mail starts a transaction (MAIL FROM).
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	return ss.counted(ss.mail(from, opts))
}

// Rcpt adds a recipient (RCPT TO).
func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	return ss.counted(ss.rcpt(to, opts))
}

func (ss *session) mail(from string, opts *smtp.MailOptions) error {
	if !ss.mayRelay() {
		var err *smtp.SMTPError = errRelayDenied
		if ss.s.auth.configured() && (ss.authOffered() || ss.s.o.TLSConfig != nil) {
			err = errAuthRequired
		}
		ss.s.log.With("stage", "MAIL").Rejected(ss.origin, from, "", replyText(err))
		return err
	}
	if len(from) > maxPathLen || strings.ContainsAny(from, "\x00\r\n") || !utf8.ValidString(from) {
		return errBadSender
	}
	// go-smtp hands the path over with the quotes of its local part
	// removed: quote it again, or it names another mailbox.
	from = submit.QuoteLocal(from)
	env := submit.Envelope{From: from, Origin: ss.origin}
	if ss.authUser != "" {
		env.Origin += " user=" + ss.authUser
	}
	if opts != nil {
		env.Ret = string(opts.Return)
		env.EnvID = opts.EnvelopeID
		env.Body8Bit = opts.Body == smtp.Body8BitMIME
		env.SMTPUTF8 = opts.UTF8
	}
	w := ""
	if ss.unix {
		own := ss.userName != "" && ss.s.o.Domain != "" && strings.EqualFold(from, ss.userName+"@"+ss.s.o.Domain)
		w = submit.AuthWarning(ss.conn.uid, ss.userName, ss.s.o.Hostname, from, ss.trusted || own)
		if w != "" && ss.s.o.ForeignSender == "refuse" {
			who := ss.userName
			if who == "" {
				who = ss.origin
			}
			err := &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: fmt.Sprintf("Sender address <%s> not owned by user %s", from, who)}
			ss.s.log.With("stage", "MAIL").Rejected(ss.origin, from, "", replyText(err))
			return err
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.warning = w
	ss.env = env
	ss.seen = map[string]bool{}
	ss.helo = ss.c.Hostname()
	return nil
}

func (ss *session) rcpt(to string, opts *smtp.RcptOptions) error {
	if !ss.mayRelay() { // MAIL refused already; belt and braces
		return errRelayDenied
	}
	if to == "" || len(to) > maxPathLen || strings.ContainsAny(to, "\x00\r\n") || !utf8.ValidString(to) {
		return errBadRecipient
	}
	to = submit.QuoteLocal(to) // as for MAIL: keep the quoted form
	key := strings.ToLower(to)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.seen[key] {
		return nil // duplicate: accepted once, as Postfix's cleanup does
	}
	r := submit.Recipient{Addr: to}
	if opts != nil {
		if len(opts.Notify) > 0 {
			n := make([]string, len(opts.Notify))
			for i, v := range opts.Notify {
				n[i] = string(v)
			}
			r.Notify = strings.Join(n, ",")
		}
		if opts.OriginalRecipient != "" {
			r.ORcpt = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
	}
	ss.seen[key] = true
	ss.env.Recipients = append(ss.env.Recipients, r)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if !ss.s.dataStart() {
		return errShuttingDown
	}
	defer ss.s.data.Done()
	ss.conn.inData.Store(true)
	defer ss.conn.inData.Store(false)

	ss.mu.Lock()
	env := ss.env
	env.Recipients = slices.Clone(env.Recipients)
	warning, helo := ss.warning, ss.helo
	ss.mu.Unlock()
	if len(env.Recipients) == 0 {
		// Only when a RSET raced a BDAT transfer; go-smtp checks the
		// order of commands otherwise.
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	body := newNormalizer(completeBody{r: r, ended: ss.conn.ended.Load}, ss.s.o.MaxHeaderSize)
	// The header first: the hop count, the fields a client left out, and
	// (unix socket) whether the sendmail command added the warning already.
	hdr, rest := readHeader(body)
	var prefix string
	added := 0
	if body.err == nil {
		facts := scanHeader(hdr)
		if facts.received >= ss.s.o.HopCountLimit {
			// As the sendmail command and Postfix hopcount_limit: a loop.
			reply := &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 6},
				Message: fmt.Sprintf("Too many hops: the message already has %d Received: headers (mail loop)", facts.received)}
			ss.s.log.With("stage", "DATA", "rcpts", len(env.Recipients)).Rejected(ss.origin, env.From, "", replyText(reply))
			return reply
		}
		n := len(hdr)
		hdr = ss.completeHeader(hdr, facts, env.From)
		added = len(hdr) - n
	}
	if !ss.unix {
		prefix = ss.received(helo)
	} else if warning != "" && !hasWarningFor(hdr, warning) {
		prefix = warning + "\r\n"
	}
	src := io.MultiReader(strings.NewReader(prefix), bytes.NewReader(hdr), rest)
	id, err := ss.s.o.Submit(ss.s.ctx, env, src)
	size := body.n + int64(len(prefix)+added)
	if berr := body.err; berr != nil {
		reply := dataReply(berr)
		if err == nil {
			// Submit must fail when its body reader fails; if it did
			// not, say so loudly: the client is told the message failed.
			ss.s.log.Error("submit accepted a message whose body failed", "queue_id", string(id), "client", ss.origin, "error", berr)
		}
		ss.s.log.With("stage", "DATA", "rcpts", len(env.Recipients), "size", size, "error", berr.Error()).Rejected(ss.origin, env.From, "", replyText(reply))
		return reply
	}
	if err != nil {
		reply := errQueueWrite
		switch {
		case errors.Is(err, submit.ErrFull):
			reply = errQueueFull
		case errors.Is(err, submit.ErrInvalid):
			reply = errQueueInvalid
		}
		ss.s.log.SpoolError("", "submit", err)
		ss.s.log.With("stage", "DATA", "rcpts", len(env.Recipients), "size", size).Rejected(ss.origin, env.From, "", replyText(reply))
		return reply
	}
	if !body.eof {
		// Submit returned without reading the body to its end: what it
		// stored is incomplete. Never acknowledge that.
		ss.s.log.Error("submit returned before the end of the body", "queue_id", string(id), "client", ss.origin)
		return errDataIncomplet
	}
	ss.s.log.Queued(string(id), env.From, len(env.Recipients), size, env.Origin)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + string(id)}
}

// dataReply maps a body read error to the reply.
func dataReply(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		return se // ErrDataTooLarge (552 5.3.4), errHeaderTooBig
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout while receiving the message"}
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: message not received completely"}
	}
}

// replyText is a go-smtp reply in its one-line form (package wire).
func replyText(e *smtp.SMTPError) string {
	c := e.EnhancedCode
	return wire.Reply{Code: e.Code, Enhanced: fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2]), Text: e.Message}.String()
}

// received is the Received: header for a TCP message (RFC 5321 §4.4,
// protocol names of RFC 3848).
func (ss *session) received(helo string) string {
	proto := "ESMTP"
	if ss.tls {
		proto += "S"
	}
	if ss.authUser != "" {
		proto += "A"
	}
	helo = headerSafe(helo)
	ip := ss.ip.String()
	if ss.ip.Is6() {
		ip = "IPv6:" + ip
	}
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (relayq) with %s;\r\n\t%s\r\n",
		helo, ip, headerSafe(ss.s.o.Hostname), proto, ss.s.o.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

// headerSafe keeps a client-chosen word from breaking a header: printable
// ASCII without parentheses, at most 255 octets.
func headerSafe(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ';' {
			b[i] = '?'
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

// AuthMechanisms offers PLAIN and LOGIN where AUTH is allowed.
func (ss *session) AuthMechanisms() []string {
	if !ss.authOffered() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a SASL exchange; see the package doc for the policy.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.unix || !ss.s.auth.configured() {
		return nil, errNoAuthHere
	}
	if !ss.authOffered() {
		return nil, errEncryptFirst
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return &plainServer{check: ss.checkPassword}, nil
	case sasl.Login:
		return &loginServer{check: ss.checkPassword}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// checkPassword verifies one AUTH attempt and records the outcome.
func (ss *session) checkPassword(identity, username, password string) error {
	name, err := ss.s.auth.verify(ss.s.ctx, identity, username, password, authInfo{
		local:  ss.conn.LocalAddr().String(),
		remote: ss.origin,
		tls:    ss.tls,
	})
	if err == nil {
		ss.authUser = name
		ss.s.log.Info("auth", "client", ss.origin, "user", name)
		return nil
	}
	if errors.Is(err, errAuthUnavailable) {
		ss.s.log.Error("auth unavailable", "client", ss.origin, "error", err)
		return errAuthTemp
	}
	ss.authFail++
	ss.s.log.Warn("auth failed", "client", ss.origin, "user", headerSafe(username), "failures", ss.authFail)
	ss.s.pauseAfterFailure()
	if ss.authFail >= maxAuthFailures {
		ss.conn.hangUp.Store(true)
		return errAuthTooMany
	}
	return smtp.ErrAuthFailed
}

// readHeader reads the header section (up to and including the empty line
// that ends it, or all of a message without one) from the normalised body;
// the normaliser bounds its size. It returns the header and a reader for
// the rest. A read error is left for the caller to find in body.err
// (reading the rest returns it again).
func readHeader(body *normalizer) ([]byte, io.Reader) {
	br := bufio.NewReaderSize(body, 4096)
	var hdr []byte
	start := 0 // where the current line starts in hdr
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if err == bufio.ErrBufferFull {
			continue // a line longer than the buffer
		}
		if err != nil || len(hdr)-start == 2 { // "\r\n": end of header
			return hdr, br
		}
		start = len(hdr)
	}
}

// hasWarningFor reports whether hdr holds an X-Authentication-Warning
// field naming the same user as warning ("X-Authentication-Warning: host:
// user set sender to ..."), whatever host and address it names.
func hasWarningFor(hdr []byte, warning string) bool {
	who := warningUser(warning)
	if who == "" {
		return false
	}
	for _, field := range unfoldFields(hdr) {
		name, value, ok := strings.Cut(field, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "X-Authentication-Warning") {
			continue
		}
		if warningUser("X-Authentication-Warning:"+value) == who {
			return true
		}
	}
	return false
}

// warningUser extracts "user" from "X-Authentication-Warning: host: user
// set sender to addr using -f".
func warningUser(line string) string {
	_, rest, ok := strings.Cut(line, ":")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	who, _, ok := strings.Cut(strings.TrimSpace(rest), " set sender to ")
	if !ok {
		return ""
	}
	return who
}

// unfoldFields splits a CRLF header section into unfolded fields.
func unfoldFields(hdr []byte) []string {
	var out []string
	for _, line := range strings.Split(string(hdr), "\r\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1] += " " + strings.TrimLeft(line, " \t")
			continue
		}
		out = append(out, line)
	}
	return out
}
