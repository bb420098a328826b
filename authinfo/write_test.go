package authinfo

import (
	"os"
	"path/filepath"
	"strings"
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
