package listener

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// lowCost makes test hashes cheap; the format is the same.
func lowCost(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseUsers(t *testing.T) {
	h := lowCost(t, "secret")
	y := strings.Replace(h, "$2a$", "$2y$", 1) // htpasswd -B writes $2y$
	tests := []struct {
		name, in string
		users    []string
		err      string
	}{
		{"basic", "# users\n\nalice:" + h + "\n  bob@example.com:" + y + "\r\n", []string{"alice", "bob@example.com"}, ""},
		{"doveadm prefix", "carol:{BLF-CRYPT}" + h + "\n", []string{"carol"}, ""},
		{"no colon", "alice " + h + "\n", nil, "f:1: want name:bcrypt-hash"},
		{"empty name", ":" + h + "\n", nil, "f:1: user name is empty"},
		{"space in name", "al ice:" + h + "\n", nil, "f:1: user name is empty or contains white space"},
		{"plain password", "# c\nalice:secret\n", nil, "f:2: password of \"alice\" is not a bcrypt hash"},
		{"md5 crypt", "alice:$1$abc$def\n", nil, "f:1: password of \"alice\" is not a bcrypt hash"},
		{"duplicate", "alice:" + h + "\nalice:" + h + "\n", nil, "f:2: user \"alice\" listed twice"},
	}
	for _, tt := range tests {
		u, err := ParseUsers(strings.NewReader(tt.in), "f")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: error quotes the password: %v", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if u.Len() != len(tt.users) {
			t.Errorf("%s: %d users, want %d", tt.name, u.Len(), len(tt.users))
		}
		for _, name := range tt.users {
			if found, err := u.Verify(name, "secret"); !found || err != nil {
				t.Errorf("%s: Verify(%s, right) = %v, %v", tt.name, name, found, err)
			}
			if found, err := u.Verify(name, "wrong"); !found || !errors.Is(err, errBadPassword) {
				t.Errorf("%s: Verify(%s, wrong) = %v, %v", tt.name, name, found, err)
			}
		}
		if found, err := u.Verify("nobody", "secret"); found || !errors.Is(err, errBadPassword) {
			t.Errorf("%s: unknown user: %v, %v", tt.name, found, err)
		}
	}
}

func TestLoadUsersPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	if err := os.WriteFile(path, []byte("alice:"+lowCost(t, "pw")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsers(path); err != nil {
		t.Fatalf("0600: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		os.Chmod(path, mode)
		_, err := LoadUsers(path)
		if err == nil || !strings.Contains(err.Error(), "gives access to group or others") || !strings.Contains(err.Error(), path) {
			t.Errorf("mode %04o: err %v", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, err := LoadUsers(path); err != nil {
		t.Errorf("0400: %v", err)
	}
	if os.Geteuid() == 0 {
		os.Chown(path, 65534, 65534)
		_, err := LoadUsers(path)
		if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("foreign owner: err %v", err)
		}
	}
	if _, err := LoadUsers(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err %v", err)
	}
	if _, err := LoadUsers(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: err %v", err)
	}
}

func TestHashPassword(t *testing.T) {
	h, err := hashPassword("correct horse", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ParseUsers(strings.NewReader("app:"+h+"\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Verify("app", "correct horse"); err != nil {
		t.Errorf("hash does not verify: %v", err)
	}
	if HashCost < bcrypt.DefaultCost {
		t.Errorf("HashCost %d below bcrypt's default", HashCost)
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password hashed")
	}
}

func FuzzParseUsers(f *testing.F) {
	f.Add("alice:$2a$04$abcdefghijklmnopqrstuu5Xx3F1nE9m0xk2Jc6Pz8i7G8yJpYQ.W\n")
	f.Add("# c\n\n:x\n")
	f.Add("a:{BLF-CRYPT}$2y$\nb\n")
	f.Fuzz(func(t *testing.T, in string) {
		u, err := ParseUsers(strings.NewReader(in), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		for name, h := range u.hashes {
			if name == "" || strings.ContainsAny(name, " \t\x00:") {
				t.Fatalf("bad name %q accepted", name)
			}
			if _, err := bcrypt.Cost(h); err != nil {
				t.Fatalf("non-bcrypt hash accepted for %q", name)
			}
		}
	})
}
