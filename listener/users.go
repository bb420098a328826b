package listener

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// errAuthUnavailable: the password could not be checked (Dovecot down);
// the client gets 454 4.7.0 and may retry.
var errAuthUnavailable = errors.New("authentication service unavailable")

// errBadPassword: unknown user, wrong password or a refused identity.
var errBadPassword = errors.New("authentication failed")

// HashCost is the bcrypt cost of HashPassword.
const HashCost = 12

// HashPassword returns a bcrypt hash of password for a users file line
// ("name:" + hash), cost HashCost.
func HashPassword(password string) (string, error) {
	return hashPassword(password, HashCost)
}

func hashPassword(password string, cost int) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Users is a parsed users file: AUTH name → bcrypt hash.
type Users struct {
	hashes  map[string][]byte
	maxCost int
	dummy   func() []byte // hash checked for unknown names, same cost as the dearest real one
}

// blfPrefix is how doveadm pw -s BLF-CRYPT marks its output.
const blfPrefix = "{BLF-CRYPT}"

// ParseUsers reads a users file in the format of the package doc. name is
// used in errors ("file:line: ..."). Errors never quote a hash.
func ParseUsers(r io.Reader, name string) (*Users, error) {
	u := &Users{hashes: map[string][]byte{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), " \t\r")
		trim := strings.TrimLeft(text, " \t")
		if trim == "" || trim[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(trim, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want name:bcrypt-hash, no ':' found", name, line)
		}
		if user == "" || strings.ContainsAny(user, " \t\x00") {
			return nil, fmt.Errorf("%s:%d: user name is empty or contains white space or NUL", name, line)
		}
		hash = strings.TrimPrefix(hash, blfPrefix)
		if _, err := bcrypt.Cost([]byte(hash)); err != nil || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("%s:%d: password of %q is not a bcrypt hash ($2a$, $2b$ or $2y$; make one with `htpasswd -nB %s` or `doveadm pw -s BLF-CRYPT`)", name, line, user, user)
		}
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q listed twice", name, line, user)
		}
		u.hashes[user] = []byte(hash)
		if c, _ := bcrypt.Cost([]byte(hash)); c > u.maxCost {
			u.maxCost = c
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	cost := max(u.maxCost, bcrypt.MinCost)
	u.dummy = sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("relayq-no-such-user"), cost)
		return h
	})
	return u, nil
}

// LoadUsers opens path after checking it as a credentials file: a regular
// file owned by root or the effective user, with no group or other
// permission bits (mode 0600 or 0400).
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("users file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("users file %s: mode %04o gives access to group or others; run chmod 600 %s", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != 0 && int(st.Uid) != euid {
			return nil, fmt.Errorf("users file %s: owned by uid %d, want root or uid %d (the daemon's user)", path, st.Uid, euid)
		}
	}
	return ParseUsers(f, path)
}

// Verify checks a password; found reports whether the name is listed.
func (u *Users) Verify(name, password string) (found bool, err error) {
	h, ok := u.hashes[name]
	if !ok {
		// Same work as for a listed name, so that timing does not
		// tell which names exist.
		bcrypt.CompareHashAndPassword(u.dummy(), []byte(password))
		return false, errBadPassword
	}
	if err := bcrypt.CompareHashAndPassword(h, []byte(password)); err != nil {
		return true, errBadPassword
	}
	return true, nil
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.hashes) }

// authInfo is what the password checkers may want to know of the client.
type authInfo struct {
	local, remote string
	tls           bool
}

// authenticator holds the users file (reloadable) and the Dovecot client.
type authenticator struct {
	path    string
	dovecot *dovecotClient

	mu    sync.RWMutex
	users *Users
}

func newAuthenticator(usersPath, dovecotSocket string) (*authenticator, error) {
	a := &authenticator{path: usersPath}
	if usersPath != "" {
		u, err := LoadUsers(usersPath)
		if err != nil {
			return nil, fmt.Errorf("listener: %w: %w", err, ErrConfig)
		}
		a.users = u
	}
	if dovecotSocket != "" {
		a.dovecot = &dovecotClient{path: dovecotSocket, timeout: 30 * time.Second}
	}
	return a, nil
}

func (a *authenticator) configured() bool { return a.path != "" || a.dovecot != nil }

func (a *authenticator) reload() error {
	if a.path == "" {
		return nil
	}
	u, err := LoadUsers(a.path)
	if err != nil {
		return fmt.Errorf("listener: reload kept the old users: %w", err)
	}
	a.mu.Lock()
	a.users = u
	a.mu.Unlock()
	return nil
}

func (a *authenticator) close() {}

// verify checks one AUTH attempt: the users file first, then Dovecot for
// names the file does not list. It returns the authenticated name. An
// authorization identity other than the user's own is refused (no proxy
// authorization).
func (a *authenticator) verify(ctx context.Context, identity, username, password string, info authInfo) (string, error) {
	if identity != "" && subtle.ConstantTimeCompare([]byte(identity), []byte(username)) != 1 {
		return "", errBadPassword
	}
	a.mu.RLock()
	users := a.users
	a.mu.RUnlock()
	if users != nil {
		found, err := users.Verify(username, password)
		if err == nil {
			return username, nil
		}
		if found || a.dovecot == nil {
			return "", err
		}
	}
	if a.dovecot != nil {
		return a.dovecot.verify(ctx, username, password, info)
	}
	return "", errBadPassword
}

// pauseAfterFailure waits AuthFailDelay (or until Close).
func (s *Server) pauseAfterFailure() {
	if s.o.AuthFailDelay <= 0 {
		return
	}
	t := time.NewTimer(s.o.AuthFailDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// plainResponse is the RFC 4616 PLAIN message for Dovecot.
func plainResponse(username, password string) []byte {
	var b bytes.Buffer
	b.WriteByte(0)
	b.WriteString(username)
	b.WriteByte(0)
	b.WriteString(password)
	return b.Bytes()
}
