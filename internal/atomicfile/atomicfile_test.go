package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if a, ok, err := Existing(p); ok || err != nil || a.UID != -1 {
		t.Fatalf("Existing on a missing file: %+v %v %v", a, ok, err)
	}
	if err := Write(p, []byte("one\n"), Attr{Mode: 0o600, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	a, ok, err := Existing(p)
	if !ok || err != nil || a.Mode != 0o600 || a.UID != os.Geteuid() {
		t.Fatalf("after Write: %+v %v %v", a, ok, err)
	}
	if err := Write(p, []byte("two\n"), Attr{Mode: 0o644, UID: a.UID, GID: a.GID}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two\n" || fi.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v", b, fi.Mode())
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("%d files in the directory: a temporary file was left", len(es))
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, Attr{Mode: 0o600, UID: -1, GID: -1}); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}
