package authinfo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeInfo is an fs.FileInfo with a chosen owner and mode.
type fakeInfo struct {
	mode     fs.FileMode
	uid, gid uint32
}

func (f fakeInfo) Name() string       { return "authinfo" }
func (f fakeInfo) Size() int64        { return 10 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid, Gid: f.gid} }

func TestCheckPerm(t *testing.T) {
	t.Parallel()
	const me, mygroup, other = 1000, 1000, 2000
	tests := []struct {
		name     string
		mode     fs.FileMode
		uid, gid uint32
		want     string // "" = accepted
		kind     PermKind
	}{
		{"0600 mine", 0o600, me, other, "", 0},
		{"0400 mine", 0o400, me, other, "", 0},
		{"0600 root's", 0o600, 0, 0, "", 0},
		{"0640 root:my group", 0o640, 0, mygroup, "", 0},
		{"0640 mine, my group", 0o640, me, mygroup, "", 0},
		{"0440 root:my group", 0o440, 0, mygroup, "", 0},
		{"0640 another group", 0o640, 0, other, "readable by group 2000, which is not relayq's own group", PermForeignGroup},
		{"0660 my group: group-writable", 0o660, 0, mygroup, "writable or executable by its group", PermGroupWrite},
		{"0620 my group: group-writable", 0o620, 0, mygroup, "writable or executable by its group", PermGroupWrite},
		{"0644 world-readable", 0o644, me, mygroup, "accessible by others (mode 0644)", PermOthers},
		{"0604 world-readable", 0o604, me, other, "accessible by others", PermOthers},
		{"0602 world-writable", 0o602, me, other, "accessible by others", PermOthers},
		{"0601", 0o601, me, other, "accessible by others", PermOthers},
		{"0600 someone else's", 0o600, other, other, "owned by uid 2000, not by the reading user (uid 1000) or root", PermOwner},
		{"directory", fs.ModeDir | 0o700, me, me, "not a regular file", PermNotRegular},
		{"named pipe", fs.ModeNamedPipe | 0o600, me, me, "not a regular file", PermNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPerm("/etc/relayq/authinfo", fakeInfo{tt.mode, tt.uid, tt.gid}, me, mygroup)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var pe *PermError
			if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "/etc/relayq/authinfo") || !errors.As(err, &pe) || pe.Kind != tt.kind {
				t.Errorf("err = %v (%#v): not ErrPermission, no file name or kind != %d", err, pe, tt.kind)
			}
			if tt.kind == PermForeignGroup && pe.Gid != int(tt.gid) {
				t.Errorf("Gid = %d", pe.Gid)
			}
		})
	}
}

func writeFile(t *testing.T, dir, text string, mode os.FileMode) string {
	t.Helper()
	return writeAt(t, filepath.Join(dir, "authinfo"), text, mode)
}

// writeAt replaces the file p (by a rename, as editors and configuration
// tools do) with text and mode.
func writeAt(t *testing.T, p, text string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(p+".tmp", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p+".tmp", mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseFilePerm checks the rules on real files (the owner and group
// cases need root to chown).
func TestParseFilePerm(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "smtp.example.com u:p\n", 0o600)
	if m, err := ParseFile(p); err != nil || m.Len() != 1 || m.Name() != p {
		t.Fatalf("0600: %v", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(p); !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "chmod 600 "+p) {
		t.Errorf("0644: %v", err)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ParseFile(dir); !errors.Is(err, ErrPermission) {
		t.Errorf("directory: %v", err)
	}
	// A symlink to a safe file is followed (Kubernetes secret volumes).
	ln := filepath.Join(dir, "link")
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p, ln); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(ln); err != nil {
		t.Errorf("symlink: %v", err)
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the owner and group cases are covered by TestCheckPerm only")
		return
	}
	egid := os.Getegid()
	const nobody = 65534
	for _, tc := range []struct {
		name     string
		uid, gid int
		mode     os.FileMode
		ok       bool
	}{
		{"root:own group 0640", 0, egid, 0o640, true},
		{"root:other group 0640", 0, nobody, 0o640, false},
		{"root:other group 0600", 0, nobody, 0o600, true},
		{"owned by nobody", nobody, egid, 0o600, false},
	} {
		if err := os.Chown(p, tc.uid, tc.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := ParseFile(p)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrPermission)) {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// Root reads a credentials file owned by the packaged service user (the
// package installs it relayq:relayq 0600 for the daemon); anyone else's is
// still refused, and a non-root reader still needs its own or root's.
func TestCheckPermServiceUser(t *testing.T) {
	const service, other = 999, 2000
	old := serviceUID
	serviceUID = func() int { return service }
	defer func() { serviceUID = old }()
	if err := CheckPerm("/etc/relayq/authinfo", fakeInfo{0o600, service, service}, 0, 0); err != nil {
		t.Errorf("root refused the service user's file: %v", err)
	}
	if err := CheckPerm("/etc/relayq/authinfo", fakeInfo{0o600, other, other}, 0, 0); err == nil {
		t.Error("root accepted a file of another user")
	}
	if err := CheckPerm("/etc/relayq/authinfo", fakeInfo{0o600, service, service}, 1000, 1000); err == nil {
		t.Error("a non-root user accepted the service user's file")
	}
}
