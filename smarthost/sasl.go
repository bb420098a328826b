package smarthost

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/xdg-go/scram"

	"github.com/relayq/relayq/config"
)

// Mechanism preference, strongest first (config.SASLMechanisms, RELIABILITY
// S6), for password and for OAuth credentials.
var (
	allMechs      = config.SASLMechanisms
	oauthMechs    = config.OAuthMechanisms
	passwordMechs = slices.DeleteFunc(slices.Clone(allMechs), func(m string) bool { return slices.Contains(oauthMechs, m) })
)

func knownMech(m string) bool { return slices.Contains(allMechs, strings.ToUpper(m)) }

// errNoMech: relay and credential share no mechanism.
type errNoMech struct{ offered, allowed []string }

func (e *errNoMech) Error() string {
	return fmt.Sprintf("no common SASL mechanism: relay offers [%s], credential allows [%s]",
		strings.Join(e.offered, " "), strings.Join(e.allowed, " "))
}

// chooseMech picks the strongest mechanism the relay offers that the
// credential (authinfo M:) and the configuration allow. A mechanism the
// credential lists is never traded for one it does not (downgrade pin).
func chooseMech(offered []string, cred Credential, configured []string) (string, error) {
	cands := passwordMechs
	if cred.OAuth != nil {
		cands = oauthMechs
	}
	allowed := func(list []string, m string) bool {
		if len(list) == 0 {
			return true
		}
		for _, l := range list {
			if strings.EqualFold(l, m) {
				return true
			}
		}
		return false
	}
	var ok []string
	for _, m := range cands {
		if allowed(cred.Mechs, m) && allowed(configured, m) {
			ok = append(ok, m)
		}
	}
	for _, m := range ok {
		if slices.Contains(offered, m) {
			return m, nil
		}
	}
	return "", &errNoMech{offered: offered, allowed: ok}
}

// authID is the authentication identity (authinfo I:), else the user.
func authID(cr Credential) string {
	if cr.AuthID != "" {
		return cr.AuthID
	}
	return cr.User
}

// authzID is the authorization identity sent only when it differs.
func authzID(cr Credential) string {
	if cr.AuthID != "" && cr.AuthID != cr.User {
		return cr.User
	}
	return ""
}

// saslClient builds the client for a password mechanism.
func saslClient(mech string, cr Credential) (sasl.Client, error) {
	pw := cr.Password.Reveal()
	switch mech {
	case "PLAIN":
		return sasl.NewPlainClient(authzID(cr), authID(cr), pw), nil
	case "LOGIN":
		return &loginClient{user: authID(cr), password: pw}, nil
	case "CRAM-MD5":
		return &cramMD5{user: authID(cr), secret: pw}, nil
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		return newSCRAM(mech, authID(cr), pw, authzID(cr))
	}
	return nil, fmt.Errorf("mechanism %s needs an OAuth credential", mech)
}

// cramMD5 is the RFC 2195 CRAM-MD5 client.
type cramMD5 struct {
	user, secret string
	done         bool
}

func (c *cramMD5) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramMD5) Next(challenge []byte) ([]byte, error) {
	if c.done {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	c.done = true
	m := hmac.New(md5.New, []byte(c.secret))
	m.Write(challenge)
	return []byte(c.user + " " + hex.EncodeToString(m.Sum(nil))), nil
}

// scramClient adapts xdg-go/scram (RFC 5802, RFC 7677) to sasl.Client.
type scramClient struct {
	mech string
	conv *scram.ClientConversation
}

func newSCRAM(mech, user, pw, authz string) (*scramClient, error) {
	h := scram.SHA256
	if mech == "SCRAM-SHA-1" {
		h = scram.SHA1
	}
	c, err := h.NewClient(user, pw, authz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mech, err)
	}
	return &scramClient{mech: mech, conv: c.NewConversation()}, nil
}

func (s *scramClient) Start() (string, []byte, error) {
	first, err := s.conv.Step("")
	if err != nil {
		return s.mech, nil, err
	}
	return s.mech, []byte(first), nil
}

func (s *scramClient) Next(challenge []byte) ([]byte, error) {
	if s.conv.Done() {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	resp, err := s.conv.Step(string(challenge))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.mech, err)
	}
	return []byte(resp), nil
}

// oauthError is the JSON error a server sends as a challenge on a failed
// OAUTHBEARER/XOAUTH2 exchange (RFC 7628 §3.2.2).
type oauthError struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
}

// oauthClient speaks OAUTHBEARER (RFC 7628) or XOAUTH2 (Google). On an
// error challenge it answers %x01 (OAUTHBEARER, RFC 7628 §3.2.3) or an
// empty response (XOAUTH2) and remembers the error so that the caller
// renews the token once.
type oauthClient struct {
	mech, user, host string
	port             int
	token            string
	sawError         *oauthError
}

func (o *oauthClient) Start() (string, []byte, error) {
	if strings.ContainsAny(o.user, "\x01,=") && o.mech == "XOAUTH2" {
		return o.mech, nil, errors.New("user name contains a control character")
	}
	switch o.mech {
	case "XOAUTH2":
		return o.mech, []byte("user=" + o.user + "\x01auth=Bearer " + o.token + "\x01\x01"), nil
	default:
		// RFC 7628 §3.1: gs2-header with the authzid, then key/value pairs.
		u := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(o.user)
		s := "n,a=" + u + ",\x01"
		if o.host != "" {
			s += "host=" + o.host + "\x01port=" + strconv.Itoa(o.port) + "\x01"
		}
		s += "auth=Bearer " + o.token + "\x01\x01"
		return o.mech, []byte(s), nil
	}
}

func (o *oauthClient) Next(challenge []byte) ([]byte, error) {
	if o.sawError != nil {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	e := &oauthError{}
	if err := json.Unmarshal(challenge, e); err != nil {
		e.Status = "unparsable error challenge"
	}
	o.sawError = e
	if o.mech == "XOAUTH2" {
		return []byte{}, nil
	}
	return []byte{0x01}, nil
}
