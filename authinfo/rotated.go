package authinfo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/internal/atomicfile"
)

// RotatedTokens keeps the newest refresh token of each OAuth credential
// whose token endpoint rotates them (Microsoft's and others' answer to a
// refresh with a new refresh token and may invalidate the old one), so
// that a restart of relayq never goes back to a used-up token. The
// credentials file belongs to root and is never written by delivery; the
// tokens are kept in a file the delivering user may write (relayq puts it
// in the spool's directory), mode 0600, replaced atomically under a lock
// (the daemon, a daemonless run and relayq probe may refresh).
//
// A credential is known by TokenID: a hash of what identifies it and of
// the refresh token written in the credentials file, so that a new login
// (a new token in the file) starts from the new token.
type RotatedTokens struct {
	path string
}

// NewRotatedTokens keeps the tokens in the file at path.
func NewRotatedTokens(path string) *RotatedTokens { return &RotatedTokens{path: path} }

type rotatedEntry struct {
	RefreshToken string    `json:"refresh_token"`
	Updated      time.Time `json:"updated"`
}

// TokenID identifies a credential and the refresh token of its entry in
// the credentials file (hex SHA-256; the token cannot be read from it).
func TokenID(key, user, clientID, tokenURL string, fileToken Secret) string {
	h := sha256.New()
	for _, s := range []string{key, user, clientID, tokenURL, fileToken.Reveal()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Newest returns the newest refresh token saved for id.
func (s *RotatedTokens) Newest(id string) (string, bool) {
	m, err := s.read()
	if err != nil {
		return "", false
	}
	e, ok := m[id]
	return e.RefreshToken, ok && e.RefreshToken != ""
}

// Save records token as the newest refresh token of id.
func (s *RotatedTokens) Save(id, token string) error {
	lock, err := os.OpenFile(s.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("OAuth token store: %w", err)
	}
	defer lock.Close()
	uid, gid := s.dirOwner()
	if uid >= 0 {
		_ = lock.Chown(uid, gid)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("OAuth token store: lock: %w", err)
	}
	m, err := s.read()
	if err != nil {
		return err
	}
	m[id] = rotatedEntry{RefreshToken: token, Updated: time.Now().UTC()}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("OAuth token store: %w", err)
	}
	a, ok, err := atomicfile.Existing(s.path)
	if err != nil {
		return fmt.Errorf("OAuth token store: %w", err)
	}
	a.Mode = 0o600
	if !ok || a.UID == 0 && uid > 0 {
		a.UID, a.GID = uid, gid // a root-owned store from before is handed over too
	}
	if err := atomicfile.Write(s.path, append(b, '\n'), a); err != nil {
		return fmt.Errorf("OAuth token store %s: %w", s.path, err)
	}
	return nil
}

// dirOwner is the owner of the store's directory when this process is
// root, else -1, -1. Root (relayq check, relayq probe, a daemonless run
// started by root) gives a new store and its lock to the directory's
// owner, the spool's user: a root-owned 0600 file there locked the
// daemon out (it could not read the newest token and went back to the
// used-up one in the credentials file: invalid_grant).
func (s *RotatedTokens) dirOwner() (uid, gid int) {
	if os.Geteuid() != 0 {
		return -1, -1
	}
	fi, err := os.Stat(filepath.Dir(s.path))
	if err != nil {
		return -1, -1
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, -1
	}
	return int(st.Uid), int(st.Gid)
}

// read loads the file; a missing file is an empty store. A file others
// may read is refused (it holds secrets).
func (s *RotatedTokens) read() (map[string]rotatedEntry, error) {
	m := map[string]rotatedEntry{}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("OAuth token store: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("OAuth token store %s: accessible by others (mode %04o); run: chmod 600 %s", s.path, fi.Mode().Perm(), s.path)
	}
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		return nil, fmt.Errorf("OAuth token store %s: damaged: %w", s.path, err)
	}
	return m, nil
}
