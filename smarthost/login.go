package smarthost

import "github.com/emersion/go-sasl"

// loginClient is the client side of AUTH LOGIN (draft-murchison-sasl-login)
// as other clients speak it: no initial response, the user name at the
// first challenge and the password at the second, whatever their text.
// Servers word the prompts as they like (Exim's server_prompts, "User
// Name" and "Password" here, "Username:" and "Password:" elsewhere), so
// go-sasl's client, which compares the prompt byte for byte, cannot log
// in to some of them.
type loginClient struct {
	user, password string
	step           int
}

func (l *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (l *loginClient) Next(challenge []byte) ([]byte, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte(l.user), nil
	case 2:
		return []byte(l.password), nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}
