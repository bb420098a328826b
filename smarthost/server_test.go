package smarthost

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/xdg-go/scram"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relayq test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for names, valid from nb to na.
func (ca *testCA) leaf(t testing.TB, names []string, nb, na time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func (ca *testCA) good(t testing.TB) tls.Certificate {
	return ca.leaf(t, []string{"relay.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// received is what the test server saw.
type received struct {
	mu     sync.Mutex
	auths  []string // "MECH user"
	mails  []string // MAIL FROM address + " " + params
	rcpts  []string
	bodies [][]byte
	conns  int
	raw    bytes.Buffer // the server's debug transcript
}

func (r *received) snapshot() (auths, mails, rcpts []string, bodies [][]byte, conns int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{}, r.auths...), append([]string{}, r.mails...), append([]string{}, r.rcpts...),
		append([][]byte{}, r.bodies...), r.conns
}

func (r *received) transcript() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.raw.String()
}

type lockedWriter struct{ r *received }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.raw.Write(p)
}

// serverConfig scripts the test relay.
type serverConfig struct {
	cert     *tls.Certificate // nil: no STARTTLS
	implicit bool             // TLS from the first byte
	users    map[string]string
	mechs    []string                     // AUTH mechanisms offered (default PLAIN, LOGIN)
	insecure bool                         // offer AUTH without TLS
	maxSize  int64                        // SIZE
	dsn      bool                         // DSN extension
	rcpt     func(to string) error        // per-recipient reply
	mail     func(from string) error      // MAIL reply
	data     func(body []byte) error      // reply after "."
	authErr  error                        // reply to a good AUTH (e.g. 454)
	maxRcpts int                          // recipients per transaction (go-smtp answers 452)
	listen   func() (net.Listener, error) // default: loopback, any port
	tlsMod   func(*tls.Config)            // adjust the server's TLS config
	oauth    *oauthState                  // OAuth tokens the server accepts
	prompts  []string                     // AUTH LOGIN challenges (default "Username:", "Password:")
}

// oauthState is the OAuth side of the test relay.
type oauthState struct {
	mu        sync.Mutex
	valid     map[string]bool // tokens accepted
	seen      []string        // "MECH user token"
	responses [][]byte        // every client response in OAuth exchanges
}

func (o *oauthState) check(mech, user, tok string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, mech+" "+user+" "+tok)
	if !o.valid[tok] {
		return smtp.ErrAuthFailed
	}
	return nil
}

// testServer runs a go-smtp relay on loopback.
type testServer struct {
	addr string
	port int
	got  *received
	srv  *smtp.Server
}

func startServer(t testing.TB, cfg serverConfig) *testServer {
	t.Helper()
	got := &received{}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		got.mu.Lock()
		got.conns++
		got.mu.Unlock()
		return &testSession{cfg: &cfg, got: got}, nil
	})
	s := smtp.NewServer(be)
	s.Domain = "relay.test"
	s.AllowInsecureAuth = cfg.insecure
	s.MaxMessageBytes = cfg.maxSize
	s.EnableDSN = cfg.dsn
	s.MaxRecipients = cfg.maxRcpts
	s.EnableSMTPUTF8 = true
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.Debug = lockedWriter{got}
	s.ErrorLog = log.New(io.Discard, "", 0)
	if cfg.cert != nil {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cfg.cert}}
		if cfg.tlsMod != nil {
			cfg.tlsMod(s.TLSConfig)
		}
	}
	listen := cfg.listen
	if listen == nil {
		listen = func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	}
	l, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.implicit {
		l = tls.NewListener(l, s.TLSConfig)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return &testServer{addr: l.Addr().String(), port: l.Addr().(*net.TCPAddr).Port, got: got, srv: s}
}

type testSession struct {
	cfg    *serverConfig
	got    *received
	authed bool
}

func (s *testSession) AuthMechanisms() []string {
	if len(s.cfg.users) == 0 {
		return nil
	}
	if s.cfg.mechs != nil {
		return s.cfg.mechs
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		s.got.mu.Lock()
		s.got.auths = append(s.got.auths, mech+" "+user)
		s.got.mu.Unlock()
		if p, ok := s.cfg.users[user]; !ok || p != pass {
			return smtp.ErrAuthFailed
		}
		if s.cfg.authErr != nil {
			return s.cfg.authErr
		}
		s.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		l := newLoginServer(check)
		if s.cfg.prompts != nil {
			l.prompts = s.cfg.prompts
		}
		return l, nil
	case "CRAM-MD5":
		return &cramServer{users: s.cfg.users, check: check}, nil
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		return newScramServer(mech, s.cfg.users, check), nil
	case sasl.OAuthBearer:
		inner := sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if err := s.cfg.oauth.check(mech, o.Username, o.Token); err != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			s.authed = true
			return nil
		})
		return &recordingServer{inner: inner, rec: &s.cfg.oauth.responses, mu: &s.got.mu}, nil
	case "XOAUTH2":
		return &recordingServer{inner: &xoauth2Server{check: func(u, tok string) error {
			if err := s.cfg.oauth.check(mech, u, tok); err != nil {
				return err
			}
			s.authed = true
			return nil
		}}, rec: &s.cfg.oauth.responses, mu: &s.got.mu}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *testSession) Mail(from string, opts *smtp.MailOptions) error {
	p := ""
	if opts != nil {
		if opts.Body != "" {
			p += " BODY=" + string(opts.Body)
		}
		if opts.Size != 0 {
			p += " SIZE"
		}
		if opts.UTF8 {
			p += " SMTPUTF8"
		}
		if opts.Return != "" {
			p += " RET=" + string(opts.Return)
		}
		if opts.EnvelopeID != "" {
			p += " ENVID=" + opts.EnvelopeID
		}
	}
	s.got.mu.Lock()
	s.got.mails = append(s.got.mails, from+p)
	s.got.mu.Unlock()
	if len(s.cfg.users) > 0 && !s.authed {
		return smtp.ErrAuthRequired
	}
	if s.cfg.mail != nil {
		return s.cfg.mail(from)
	}
	return nil
}

func (s *testSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	p := ""
	if opts != nil {
		for _, n := range opts.Notify {
			p += " " + string(n)
		}
		if opts.OriginalRecipient != "" {
			p += " ORCPT=" + string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
	}
	s.got.mu.Lock()
	s.got.rcpts = append(s.got.rcpts, to+p)
	s.got.mu.Unlock()
	if s.cfg.rcpt != nil {
		return s.cfg.rcpt(to)
	}
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.got.mu.Lock()
	s.got.bodies = append(s.got.bodies, b)
	s.got.mu.Unlock()
	if s.cfg.data != nil {
		return s.cfg.data(b)
	}
	return nil
}

func (s *testSession) Reset()        {}
func (s *testSession) Logout() error { return nil }

// loginServer is the server side of LOGIN (go-sasl has only the client).
type loginServer struct {
	check   func(u, p string) error
	step    int
	user    string
	prompts []string
}

func newLoginServer(check func(u, p string) error) *loginServer {
	return &loginServer{check: check, prompts: []string{"Username:", "Password:"}}
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if resp != nil {
			l.user = string(resp)
			l.step++
			return []byte(l.prompts[1]), false, nil
		}
		return []byte(l.prompts[0]), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte(l.prompts[1]), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// fakeResolver answers from maps; everything else is NXDOMAIN.
type fakeResolver struct {
	mx    map[string][]*net.MX
	hosts map[string][]string
	mxErr error
}

func (r *fakeResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if r.mxErr != nil {
		return nil, r.mxErr
	}
	if m, ok := r.mx[name]; ok {
		return m, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// credMap is a fixed credentials map.
type credMap map[string]Credential // key: host

func (m credMap) Lookup(q Query) (Credential, bool) {
	c, ok := m[q.Host]
	if !ok {
		c, ok = m["*"]
	}
	return c, ok
}

// testMessage is a small message to rcpts.
func testMessage(rcpts ...string) *Message {
	body := "From: a@example.org\r\nTo: b@example.com\r\nSubject: test\r\n\r\nHello.\r\n.leading dot\r\n"
	m := &Message{ID: "Q1", From: "a@example.org", Size: int64(len(body))}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, Recipient{Addr: r})
	}
	m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return m
}

// newTestClient builds a client for relay spec with the CA trusted and
// relay.test resolving to loopback.
func newTestClient(t testing.TB, relays string, ca *testCA, mod func(*Options)) *Client {
	t.Helper()
	o := Options{
		Relays:   relays,
		Resolver: &fakeResolver{hosts: map[string][]string{"relay.test": {"127.0.0.1"}}},
		HeloName: "client.test",
		Timeouts: Timeouts{Greeting: 5 * time.Second, Helo: 5 * time.Second, Mail: 5 * time.Second, Rcpt: 5 * time.Second,
			Data: 5 * time.Second, DataDone: 5 * time.Second, Rset: 5 * time.Second, Quit: 2 * time.Second, Auth: 5 * time.Second,
			StartTLS: 5 * time.Second, TLSHandshake: 5 * time.Second, Connect: 5 * time.Second},
		Deadline: 20 * time.Second,
	}
	if ca != nil {
		o.RootCAs = ca.pool
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// cramServer is the server side of CRAM-MD5 (RFC 2195).
type cramServer struct {
	users map[string]string
	check func(u, p string) error
	chal  []byte
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if c.chal == nil {
		c.chal = []byte("<1896.697170952@postoffice.example.net>")
		return c.chal, false, nil
	}
	user, digest, ok := strings.Cut(string(resp), " ")
	if !ok {
		return nil, true, smtp.ErrAuthFailed
	}
	want := (&cramMD5{user: user, secret: c.users[user]})
	w, _ := want.Next(c.chal)
	if string(w) != user+" "+digest {
		return nil, true, c.check(user, "\x00wrong")
	}
	return nil, true, c.check(user, c.users[user])
}

// scramServer adapts xdg-go/scram's server to go-sasl; the server-final
// message goes out as a 334 challenge (RFC 4954 has no data on 235).
type scramServer struct {
	conv  *scram.ServerConversation
	users map[string]string
	final bool
	check func(u, p string) error
}

func newScramServer(mech string, users map[string]string, check func(u, p string) error) *scramServer {
	h := scram.SHA256
	if mech == "SCRAM-SHA-1" {
		h = scram.SHA1
	}
	srv, _ := h.NewServer(func(user string) (scram.StoredCredentials, error) {
		pw, ok := users[user]
		if !ok {
			return scram.StoredCredentials{}, errors.New("unknown user")
		}
		cl, err := h.NewClient(user, pw, "")
		if err != nil {
			return scram.StoredCredentials{}, err
		}
		return cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: "saltsalt", Iters: 4096})
	})
	return &scramServer{conv: srv.NewConversation(), users: users, check: check}
}

func (s *scramServer) Next(resp []byte) ([]byte, bool, error) {
	if s.final {
		if s.conv.Valid() {
			return nil, true, s.check(s.conv.Username(), s.users[s.conv.Username()])
		}
		return nil, true, smtp.ErrAuthFailed
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	ch, err := s.conv.Step(string(resp))
	if err != nil {
		if u := s.conv.Username(); u != "" {
			return nil, true, s.check(u, "\x00wrong")
		}
		return nil, true, smtp.ErrAuthFailed
	}
	if s.conv.Done() {
		s.final = true
	}
	return []byte(ch), false, nil
}

// xoauth2Server is Google's XOAUTH2: on a bad token a JSON challenge, then
// an empty client response, then 535.
type xoauth2Server struct {
	check  func(user, tok string) error
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		if len(resp) != 0 {
			return nil, true, errors.New("expected an empty response after the error challenge")
		}
		return nil, true, smtp.ErrAuthFailed
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, tok string
	for _, kv := range strings.Split(string(resp), "\x01") {
		switch {
		case strings.HasPrefix(kv, "user="):
			user = kv[5:]
		case strings.HasPrefix(kv, "auth=Bearer "):
			tok = kv[12:]
		}
	}
	if err := x.check(user, tok); err != nil {
		x.failed = true
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return nil, true, nil
}

// recordingServer records the client's responses.
type recordingServer struct {
	inner sasl.Server
	rec   *[][]byte
	mu    *sync.Mutex
}

func (r *recordingServer) Next(resp []byte) ([]byte, bool, error) {
	r.mu.Lock()
	*r.rec = append(*r.rec, append([]byte(nil), resp...))
	r.mu.Unlock()
	return r.inner.Next(resp)
}
