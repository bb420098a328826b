package authinfo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestSetEntry(t *testing.T) {
	for _, tc := range []struct {
		name, old, key, value, want string
		replaced                    bool
	}{
		{"new file", "", "[a.example]:587", "u:p", "[a.example]:587 u:p\n", false},
		{"added", "# c\n[b.example] x:y\n", "[a.example]:587", "u:p", "# c\n[b.example] x:y\n[a.example]:587 u:p\n", false},
		{"replaced with its continuation", "[A.example]:587 old:pw\n  more\n[b.example] x:y", "[a.example]:587", "u:p",
			"[a.example]:587 u:p\n[b.example] x:y\n", true},
		{"oauth", "", "[smtp.gmail.com]:587", "oauth2:user=me@gmail.com,client_id=c,refresh_token=r,token_url=https://oauth2.googleapis.com/token",
			"[smtp.gmail.com]:587 oauth2:user=me@gmail.com,client_id=c,refresh_token=r,token_url=https://oauth2.googleapis.com/token\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "authinfo")
			if tc.old != "" {
				os.WriteFile(p, []byte(tc.old), 0o640)
			}
			replaced, err := SetEntry(p, tc.key, tc.value)
			if err != nil || replaced != tc.replaced {
				t.Fatalf("SetEntry: %v, replaced %v", err, replaced)
			}
			b, _ := os.ReadFile(p)
			if string(b) != tc.want {
				t.Errorf("file:\n%s\nwant:\n%s", b, tc.want)
			}
			fi, _ := os.Stat(p)
			want := os.FileMode(0o600)
			if tc.old != "" {
				want = 0o640 // an existing file keeps its mode
			}
			if fi.Mode().Perm() != want {
				t.Errorf("mode %04o, want %04o", fi.Mode().Perm(), want)
			}
		})
	}
}

// What would not parse is not written, and the error quotes no secret.
func TestSetEntryRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "authinfo")
	os.WriteFile(p, []byte("[a.example] u:p\n"), 0o600)
	for _, tc := range []struct{ key, value string }{
		{"[b.example]", "no-colon-secret"},
		{"two words", "u:p"},
		{"[b.example]", "u:p\nAuthInfo:x \"P:y\""},
	} {
		if _, err := SetEntry(p, tc.key, tc.value); err == nil || strings.Contains(err.Error(), "no-colon-secret") {
			t.Errorf("SetEntry(%q): %v", tc.key, err)
		}
	}
	if b, _ := os.ReadFile(p); string(b) != "[a.example] u:p\n" {
		t.Errorf("file changed:\n%s", b)
	}
}

func TestRotatedTokens(t *testing.T) {
	p := filepath.Join(t.TempDir(), "oauth-tokens.json")
	s := NewRotatedTokens(p)
	id := TokenID("[a]:587", "u", "c", "https://t", "rt-0")
	if id == TokenID("[a]:587", "u", "c", "https://t", "rt-1") {
		t.Fatal("a new token in the credentials file must start afresh")
	}
	if _, ok := s.Newest(id); ok {
		t.Fatal("an empty store knows a token")
	}
	if err := s.Save(id, "rt-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(id, "rt-2"); err != nil {
		t.Fatal(err)
	}
	if rt, ok := s.Newest(id); !ok || rt != "rt-2" {
		t.Errorf("Newest = %q %v", rt, ok)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(p); strings.Contains(string(b), "rt-0") {
		t.Error("the store holds the token of the credentials file")
	}
	os.Chmod(p, 0o644)
	if _, ok := s.Newest(id); ok {
		t.Error("a store others may read is used")
	}
	if err := s.Save(id, "rt-3"); err == nil {
		t.Error("a store others may read is written to")
	}
}

// TestRotatedTokensOwner: root (relayq check, probe) gives a new store and
// its lock to the owner of the directory (the spool's user), and hands a
// root-owned store from before over to it: a root-owned 0600 store locked
// the daemon out of the newest refresh token.
func TestRotatedTokensOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: no other owner to give the store to")
		return
	}
	const nobody, nogroup = 65534, 65534
	for _, tc := range []struct {
		name      string
		existing  bool // a root-owned store is there before
		wantOwner int
	}{
		{"new store", false, nobody},
		{"root-owned store handed over", true, nobody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chown(dir, nobody, nogroup); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "oauth-tokens.json")
			if tc.existing {
				os.WriteFile(p, []byte("{}\n"), 0o600) // root's
			}
			id := TokenID("[a]:587", "u", "c", "https://t", "rt-0")
			if err := NewRotatedTokens(p).Save(id, "rt-1"); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{p, p + ".lock"} {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				st := fi.Sys().(*syscall.Stat_t)
				if int(st.Uid) != tc.wantOwner || int(st.Gid) != nogroup || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: owner %d:%d mode %04o, want %d:%d 0600", f, st.Uid, st.Gid, fi.Mode().Perm(), tc.wantOwner, nogroup)
				}
			}
		})
	}
	// Root's own directory: the store stays root's.
	p := filepath.Join(t.TempDir(), "oauth-tokens.json")
	if err := NewRotatedTokens(p).Save("x", "rt"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("a store in root's directory is not root's")
	}
}

func TestMergeEntries(t *testing.T) {
	for _, tc := range []struct {
		old, add, want string
		replaced       []string
	}{
		{"", "[a]:587 u:p\n", "[a]:587 u:p\n", nil},
		{"# c\n[b]:587 x:y\n", "[a]:587 u:p\n", "# c\n[b]:587 x:y\n\n[a]:587 u:p\n", nil},
		// The old entry goes with its continuation line; a blank line
		// and the comments stay.
		{"[A]:587 u:old\n  client_id=c\n\n# keep\n[b]:587 x:y\n", "# from msmtprc:3\n[a]:587 u:new\n",
			"\n# keep\n[b]:587 x:y\n\n# from msmtprc:3\n[a]:587 u:new\n", []string{"[A]:587"}},
		{"[a]:587 u:1\n[a]:587 u:2\n[c]:25 z:z", "\n[a]:587 u:3\n", "[c]:25 z:z\n\n[a]:587 u:3\n", []string{"[a]:587", "[a]:587"}},
	} {
		got, replaced := MergeEntries(tc.old, tc.add)
		if got != tc.want || !slices.Equal(replaced, tc.replaced) {
			t.Errorf("MergeEntries(%q, %q) = %q %q, want %q %q", tc.old, tc.add, got, replaced, tc.want, tc.replaced)
		}
	}
}
