package sendmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relayq/relayq/aliases"
	"github.com/relayq/relayq/internal/spill"
	"github.com/relayq/relayq/submit"
	"github.com/relayq/relayq/wire"
)

// droppedHeaders are removed before the message is queued (Postfix
// message_drop_headers): Bcc must not reach the other recipients;
// Return-Path is the final MTA's to add; Content-Length is a local mbox
// artefact that misleads.
var droppedHeaders = map[string]bool{"bcc": true, "resent-bcc": true, "return-path": true, "content-length": true}

// rcptSpec is one envelope recipient as requested.
type rcptSpec struct {
	addr   string
	notify string
	orcpt  string
}

// request is one message to queue: what the command line or the SMTP
// session asked for.
type request struct {
	sender     string // envelope sender as given; "" null sender when senderSet
	senderSet  bool   // -f/-r or MAIL FROM: the caller chose the sender
	fullName   string // -F
	recipients []rcptSpec
	extract    bool // -t
	ignoreDots bool
	bodyType   string // "", 7BIT, 8BITMIME
	smtputf8   bool
	ret, envID string
	notify     string // default NOTIFY for recipients (-N)
	mode       DeliveryMode
}

// intake turns a request and the caller's message into what is queued.
type intake struct {
	o        *Options
	trusted  bool
	resolver *aliases.Resolver
	loaded   bool
	warn     []string
}

func newIntake(o *Options) *intake {
	in := &intake{o: o}
	in.trusted = o.Identity.UID == 0
	for _, u := range o.TrustedUsers {
		if u = strings.TrimSpace(u); u != "" && u == o.Identity.User {
			in.trusted = true
		}
	}
	in.resolver = &aliases.Resolver{
		Domain:       o.Domain,
		LocalDomains: o.LocalDomains,
		Warn:         func(m string) { in.warn = append(in.warn, m) },
	}
	return in
}

// loadAliases reads the aliases file the first time a local name needs it.
// A missing file means no aliases; any other problem is a configuration
// error (exit 78) naming the file and line.
func (in *intake) loadAliases() error {
	if in.loaded || in.o.AliasesPath == "" {
		in.loaded = true
		return nil
	}
	in.loaded = true
	t, err := aliases.ParseFile(in.o.AliasesPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &configError{err}
	}
	in.resolver.Aliases = t
	return nil
}

// userAddress is the calling user's own address.
func (in *intake) userAddress() string {
	u := in.o.Identity.User
	if u == "" {
		u = "nobody"
	}
	return in.resolver.Qualify(u)
}

// ownAddress reports whether addr is one of the caller's own addresses (no
// authentication warning needed).
func (in *intake) ownAddress(addr string) bool {
	u := in.o.Identity.User
	if u == "" {
		return false
	}
	if strings.EqualFold(addr, u) {
		return true
	}
	local, ok := in.resolver.IsLocal(addr)
	if ok && strings.EqualFold(local, u) {
		return true
	}
	return in.o.Domain != "" && strings.EqualFold(addr, u+"@"+in.o.Domain)
}

// resolveRecipients expands aliases and qualifies bare names; duplicates
// are dropped (first kept).
func (in *intake) resolveRecipients(specs []rcptSpec, defNotify string) ([]submit.Recipient, error) {
	var out []submit.Recipient
	seen := map[string]bool{}
	for _, s := range specs {
		addrs := []string{s.addr}
		if _, local := in.resolver.IsLocal(s.addr); local {
			if err := in.loadAliases(); err != nil {
				return nil, err
			}
			var err error
			addrs, err = in.resolver.Resolve(s.addr)
			if err != nil {
				if errors.Is(err, aliases.ErrLimit) {
					return nil, dataErrorf("recipient %s: %v", s.addr, err)
				}
				return nil, &configError{err}
			}
		}
		notify := s.notify
		if notify == "" {
			notify = defNotify
		}
		for _, a := range addrs {
			k := strings.ToLower(a)
			if seen[k] {
				continue
			}
			seen[k] = true
			r := submit.Recipient{Addr: a, Notify: notify, ORcpt: s.orcpt}
			if r.ORcpt == "" && notify != "" && !strings.EqualFold(a, s.addr) {
				// RFC 3461 §4.2: the original recipient, for DSNs about
				// an expanded alias.
				r.ORcpt = "rfc822;" + in.resolver.Qualify(s.addr)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// localize moves an address at one of the local domains (root@localhost,
// root@<host name>) to RELAYQ_DOMAIN: the relay cannot deliver to, or
// accept mail from, this host's private names.
func (in *intake) localize(addr string) string {
	if in.o.Domain == "" || strings.IndexByte(addr, '@') < 0 {
		return addr
	}
	if lp, ok := in.resolver.IsLocal(addr); ok {
		return lp + "@" + in.o.Domain
	}
	return addr
}

// rewriteSender applies the generic map (to the address as given, then to
// its localized form), then the one-line rewrite, to a qualified address.
// It returns the address to use (at least localized) and whether a
// rewriting rule changed it. The null sender is never rewritten.
func (in *intake) rewriteSender(addr string) (string, bool) {
	if addr == "" {
		return "", false
	}
	isLocal := func(a string) bool {
		if _, ok := in.resolver.IsLocal(a); ok {
			return true
		}
		at := strings.LastIndexByte(a, '@')
		return in.o.Domain != "" && at >= 0 && strings.EqualFold(a[at+1:], in.o.Domain)
	}
	loc := in.localize(addr)
	for _, a := range []string{addr, loc} {
		if r, ok := in.o.Generic.Rewrite(a, isLocal(a)); ok {
			return r, !strings.EqualFold(r, addr)
		}
		if loc == addr {
			break
		}
	}
	if in.o.SenderRewrite != "" {
		return in.o.SenderRewrite, !strings.EqualFold(in.o.SenderRewrite, addr)
	}
	return loc, false
}

// enqueue reads the message from src, completes it and submits it, in
// named steps: the sender (and whether the caller may set it), the
// header, the recipients, the header relayq queues, the envelope, then the
// body.
func (in *intake) enqueue(ctx context.Context, req *request, src io.Reader) (submit.ID, *submit.Envelope, error) {
	// Sender and trust, before reading anything.
	sender, authWarning, err := in.sender(req)
	if err != nil {
		return "", nil, err
	}
	lr := newLineReader(src)
	h, err := readHeader(lr, req.ignoreDots, in.maxHeader())
	if err != nil {
		return "", nil, in.readErr(err)
	}
	facts := factsOf(h)
	if hops := in.hopLimit(); facts.received >= hops {
		return "", nil, dataErrorf("mail loop: the message already has %d Received: headers (limit %d)", facts.received, hops)
	}
	rcpts, err := in.recipients(req, h, facts.resent)
	if err != nil {
		return "", nil, err
	}
	sender, _ = in.rewriteSender(sender)

	var hb bytes.Buffer
	in.writeHeader(&hb, req, h, facts, sender, authWarning)
	env := in.envelope(req, h, sender, rcpts, hb.Bytes())

	var id submit.ID
	switch {
	case h.ended:
		// The input ended inside the header: no body.
		id, err = in.o.Submit(ctx, env, bytes.NewReader(hb.Bytes()), req.mode)
	case req.bodyType == "8BITMIME":
		id, err = in.submitStreaming(ctx, env, &hb, lr, req)
	default:
		id, err = in.submitSpilled(ctx, &env, &hb, lr, req)
	}
	if err != nil {
		return "", &env, err
	}
	return id, &env, nil
}

// maxHeader is the header size cap (Options.MaxHeaderSize, default 100 KiB
// as Postfix header_size_limit).
func (in *intake) maxHeader() int {
	if in.o.MaxHeaderSize > 0 {
		return in.o.MaxHeaderSize
	}
	return 102400
}

// hopLimit is the Received: count that means a mail loop (Options.
// HopCountLimit, default 50 as Postfix hopcount_limit; RELIABILITY R8).
func (in *intake) hopLimit() int {
	if in.o.HopCountLimit > 0 {
		return in.o.HopCountLimit
	}
	return 50
}

// sender is the envelope sender: the caller's own address, or -f's
// (qualified). An untrusted caller naming someone else's address is
// refused (RELAYQ_UNTRUSTED_SENDER=refuse) or gets an
// X-Authentication-Warning header line, returned as authWarning.
func (in *intake) sender(req *request) (sender, authWarning string, err error) {
	sender = in.userAddress()
	if !req.senderSet {
		return sender, "", nil
	}
	sender = req.sender
	if sender != "" {
		sender = in.resolver.Qualify(sender)
	}
	if !in.trusted && !in.ownAddress(req.sender) {
		if in.o.RefuseUntrusted {
			return "", "", &permError{fmt.Sprintf("user %s is not allowed to set the sender to %s (RELAYQ_UNTRUSTED_SENDER=refuse)", in.who(), printable(showSender(req.sender)))}
		}
		authWarning = submit.AuthWarning(in.o.Identity.UID, in.o.Identity.User, in.host(), showSender(req.sender), false)
	}
	return sender, authWarning, nil
}

// headerFacts is what enqueue needs to know about the caller's header.
type headerFacts struct {
	present  map[string]bool // field names (lower case) present
	received int             // Received: fields
	resent   bool            // any Resent- field
}

func factsOf(h *headerResult) headerFacts {
	f := headerFacts{present: map[string]bool{}}
	for i := range h.fields {
		k := h.fields[i].key
		f.present[k] = true
		if k == "received" {
			f.received++
		}
		if strings.HasPrefix(k, "resent-") {
			f.resent = true
		}
	}
	return f
}

// recipients are the command line's recipients plus, with -t, the
// header's (only Resent-To/Cc/Bcc when the header has any Resent- field,
// as Postfix cleanup), resolved through the aliases.
func (in *intake) recipients(req *request, h *headerResult, resent bool) ([]submit.Recipient, error) {
	specs := append([]rcptSpec(nil), req.recipients...)
	if req.extract {
		want := map[string]bool{"to": true, "cc": true, "bcc": true}
		if resent {
			want = map[string]bool{"resent-to": true, "resent-cc": true, "resent-bcc": true}
		}
		for i := range h.fields {
			f := &h.fields[i]
			if !want[f.key] {
				continue
			}
			addrs, err := ParseAddressList(f.value())
			if err != nil {
				return nil, dataErrorf("-t: %s header: %v", f.name, err)
			}
			for _, a := range addrs {
				if strings.HasPrefix(a, "-") {
					return nil, dataErrorf("-t: %s header: address %q starts with '-'", f.name, a)
				}
				specs = append(specs, rcptSpec{addr: a})
			}
		}
	}
	if len(specs) == 0 {
		if req.extract {
			return nil, dataErrorf("no recipient addresses found in the message header (-t)")
		}
		return nil, usagef("no recipients: name them on the command line or use -t")
	}
	return in.resolveRecipients(specs, req.notify)
}

// errSubmitEnded stops the body writer when Submit returned before reading
// all of it (it failed early: the failure is Submit's, not the input's).
var errSubmitEnded = errors.New("submission ended")

// submitStreaming passes the body to Submit as it is read (bounded memory,
// no temporary file): used when the caller declared 8BITMIME, so that the
// envelope is complete before the body is seen.
func (in *intake) submitStreaming(ctx context.Context, env submit.Envelope, hb *bytes.Buffer, lr *lineReader, req *request) (submit.ID, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := pw.Write(hb.Bytes())
		if err == nil {
			err = copyBody(pw, lr, req.ignoreDots)
		}
		pw.CloseWithError(err) // nil: EOF
		done <- err
	}()
	id, err := in.o.Submit(ctx, env, pr, req.mode)
	pr.CloseWithError(errSubmitEnded) // unblock the writer if Submit stopped reading
	werr := <-done
	if werr != nil && err != nil && !errors.Is(werr, errSubmitEnded) {
		// The input failed; Submit saw that failure and queued nothing.
		return "", in.readErr(werr)
	}
	return id, err
}

// submitSpilled reads the whole body first (in memory up to Options.MemBody,
// then in an unlinked temporary file) so that BODY=8BITMIME is declared
// only when the body has 8-bit octets.
func (in *intake) submitSpilled(ctx context.Context, env *submit.Envelope, hb *bytes.Buffer, lr *lineReader, req *request) (submit.ID, error) {
	sp := &spill.Buffer{Limit: in.o.MemBody, Dir: in.o.TempDir}
	defer sp.Release()
	if err := copyBody(sp, lr, req.ignoreDots); err != nil {
		return "", in.readErr(err)
	}
	if lr.eightBit() {
		env.Body8Bit = true
	}
	body, err := sp.Open()
	if err != nil {
		return "", &tempError{err}
	}
	return in.o.Submit(ctx, *env, io.MultiReader(bytes.NewReader(hb.Bytes()), body), req.mode)
}

// readErr classifies an error met while reading the caller's message.
func (in *intake) readErr(err error) error {
	var de *DataError
	var te *tempError
	if errors.As(err, &de) || errors.As(err, &te) {
		return err
	}
	return &ioError{fmt.Errorf("reading the message: %w", err)}
}

// copyBody copies the body lines from lr to w with CRLF, until the end of
// input or a lone dot. A line over MaxLine octets is queued whole: the
// delivery sends its part quoted-printable, so that it decodes to the
// same octets (or, where the part cannot be re-encoded, folds it as
// Postfix does); breaking it here would change the text.
func copyBody(w io.Writer, lr *lineReader, ignoreDots bool) error {
	var buf bytes.Buffer
	start := true
	for {
		piece, complete, err := lr.next(MaxLine)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if start && complete && !ignoreDots && len(piece) == 1 && piece[0] == '.' {
			break
		}
		buf.Write(piece)
		if complete {
			buf.WriteString("\r\n")
		}
		start = complete
		if buf.Len() >= 32<<10 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return &tempError{err}
			}
			buf.Reset()
		}
	}
	if buf.Len() > 0 {
		if _, err := w.Write(buf.Bytes()); err != nil {
			return &tempError{err}
		}
	}
	return nil
}

// dateLayout is the RFC 5322 §3.3 date-time.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

func (in *intake) host() string {
	if in.o.Hostname != "" {
		return in.o.Hostname
	}
	if in.o.Domain != "" {
		return in.o.Domain
	}
	return "localhost"
}

func (in *intake) who() string {
	if in.o.Identity.User != "" {
		return in.o.Identity.User
	}
	return "uid " + strconv.Itoa(in.o.Identity.UID)
}

func showSender(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

// messageID returns a new Message-ID (RFC 5322 §3.6.4).
func (in *intake) messageID(now time.Time) string {
	dom := in.o.Domain
	if dom == "" {
		dom = in.host()
	}
	return submit.MessageID(now, dom)
}

// fromValue is the From header relayq adds: the full name (-F, else the
// passwd gecos name) and the sender address (the user's own address for
// the null sender).
func (in *intake) fromValue(req *request, sender string) string {
	addr := sender
	if addr == "" {
		addr, _ = in.rewriteSender(in.userAddress())
	}
	name := in.o.Identity.FullName
	if req.fullName != "" {
		name = req.fullName
	}
	if enc := encodeDisplayName(name); enc != "" {
		return enc + " <" + addr + ">"
	}
	return addr
}

// encodeDisplayName renders a display name as an atom phrase, a quoted
// string, or an RFC 2047 encoded word when it is not ASCII.
func encodeDisplayName(name string) string {
	name = wire.Sanitize(name) // no control character reaches a header
	name = strings.Join(strings.Fields(name), " ")
	if nonASCII(name) {
		if !utf8.ValidString(name) {
			name = strings.ToValidUTF8(name, "?")
		}
		return mime.QEncoding.Encode("utf-8", name)
	}
	plain := true
	for _, c := range name {
		if !(c == ' ' || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' || c == '+' ||
			c == '-' || c == '/' || c == '=' || c == '?' || c == '^' || c == '_' || c == '`' || c == '{' || c == '|' ||
			c == '}' || c == '~' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}

// addressHeaders are the fields whose bare local names are qualified
// (Postfix rewrites header addresses of local submissions the same way).
var addressHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "reply-to": true, "sender": true,
	"resent-from": true, "resent-to": true, "resent-cc": true, "resent-sender": true,
}

// qualifyHeader appends the local domain to the bare local names of an
// address field's value ("root" → "root@example.com") and moves names at
// the local domains there ("root@localhost" → "root@example.com"), so that
// replies and the relay see real addresses. A value that does not parse
// is kept.
func (in *intake) qualifyHeader(val string) (string, bool) {
	if in.o.Domain == "" {
		return val, false
	}
	addrs, err := ParseAddressList(val)
	if err != nil {
		return val, false
	}
	changed := false
	for _, a := range addrs {
		q := in.localize(in.resolver.Qualify(a))
		if q == a {
			continue
		}
		if nv, ok := replaceAddr(val, a, q); ok {
			val, changed = nv, true
		}
	}
	return val, changed
}

// rewriteFromValue applies sender rewriting to the addresses of a From
// field's value.
func (in *intake) rewriteFromValue(val string) (string, bool) {
	if in.o.Generic == nil && in.o.SenderRewrite == "" {
		return val, false
	}
	addrs, err := ParseAddressList(val)
	if err != nil || len(addrs) == 0 {
		return val, false
	}
	changed := false
	for _, a := range addrs {
		n, ch := in.rewriteSender(in.resolver.Qualify(a))
		if !ch {
			continue
		}
		if nv, ok := replaceAddr(val, a, n); ok {
			val, changed = nv, true
		}
	}
	return val, changed
}

// replaceAddr replaces address old in an address field's value: inside
// angle brackets if it is there, else as a whole word.
func replaceAddr(val, old, repl string) (string, bool) {
	if i := strings.Index(val, "<"+old+">"); i >= 0 {
		return val[:i+1] + repl + val[i+1+len(old):], true
	}
	for start := 0; start < len(val); {
		i := strings.Index(val[start:], old)
		if i < 0 {
			break
		}
		i += start
		j := i + len(old)
		if (i == 0 || strings.IndexByte(" \t,:;", val[i-1]) >= 0) && (j == len(val) || strings.IndexByte(" \t,;(", val[j]) >= 0) {
			return val[:i] + repl + val[j:], true
		}
		start = i + 1
	}
	return val, false
}

func hasHigh(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func nonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// headerUTF8 reports whether a header value has UTF-8 text (RFC 6532).
// Octets that are not valid UTF-8 are 8-bit data, not UTF-8.
//
// Only address fields (From, To, Cc, Reply-To, Sender and their Resent-
// forms) count for SMTPUTF8: an internationalized address there cannot be
// delivered without it, while a raw UTF-8 Subject (what PHP scripts often
// send) travels as 8-bit data (BODY=8BITMIME) and is accepted by relays
// without SMTPUTF8; flagging it would make delivery refuse (RFC 6531 §3.2,
// RELIABILITY I5) mail that relays take every day.
func headerUTF8(h []byte) bool {
	return hasHigh(h) && utf8.Valid(h)
}
