package listener

import (
	"bytes"
	"errors"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// errSASLSyntax is a malformed client response (501 5.5.2).
var errSASLSyntax = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed authentication response"}

// checkFunc verifies identity (authorization id, may be ""), username and
// password; it returns the SMTP error to send on failure.
type checkFunc func(identity, username, password string) error

// plainServer is the server side of SASL PLAIN (RFC 4616):
// message = [authzid] NUL authcid NUL passwd.
type plainServer struct {
	check checkFunc
	done  bool
}

var _ sasl.Server = (*plainServer)(nil)

func (p *plainServer) Next(response []byte) ([]byte, bool, error) {
	if p.done {
		return nil, false, errors.New("unexpected response")
	}
	if response == nil {
		// No initial response: an empty challenge ("334 ") asks for it.
		return []byte{}, false, nil
	}
	p.done = true
	parts := bytes.Split(response, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return nil, false, errSASLSyntax
	}
	if err := p.check(string(parts[0]), string(parts[1]), string(parts[2])); err != nil {
		return nil, false, err
	}
	return nil, true, nil
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): "Username:" and "Password:" challenges.
type loginServer struct {
	check    checkFunc
	step     int
	username string
}

var _ sasl.Server = (*loginServer)(nil)

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough // initial response carries the user name
	case 1:
		if len(response) == 0 {
			return nil, false, errSASLSyntax
		}
		l.username = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		if err := l.check("", l.username, string(response)); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	return nil, false, errors.New("unexpected response")
}
