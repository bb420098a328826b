package maildrop

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testEnv() Envelope {
	return Envelope{From: "alice@example.com", Recipients: []Recipient{{Addr: "bob@example.net", Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;bob@example.net"}},
		Ret: "HDRS", EnvID: "env-1", Body8Bit: true, Origin: "uid=1000"}
}

func TestWriteOpenRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	for _, body := range []string{"", "Subject: x\r\n\r\nhi\r\n", strings.Repeat("line of text\r\n", 100000)} {
		id, err := Write(dir, testEnv(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) {
			t.Fatalf("id %q is not a drop ID", id)
		}
		f, err := Open(filepath.Join(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(f.Body())
		f.Close()
		if string(got) != body || f.Size != int64(len(body)) {
			t.Fatalf("body: got %d bytes, want %d", len(got), len(body))
		}
		want := testEnv()
		if f.Envelope.From != want.From || f.Envelope.Recipients[0] != want.Recipients[0] || f.Envelope.Ret != want.Ret || f.Envelope.EnvID != want.EnvID || !f.Envelope.Body8Bit || f.Envelope.Origin != want.Origin {
			t.Fatalf("envelope: got %+v", f.Envelope)
		}
	}
	es, err := List(dir)
	if err != nil || len(es) != 3 {
		t.Fatalf("List: %v %v", es, err)
	}
	for i := 1; i < len(es); i++ {
		if es[i-1].ID >= es[i].ID {
			t.Fatalf("not in arrival order: %v", es)
		}
	}
	if !Pending(dir) {
		t.Fatal("Pending is false with three files")
	}
	// No temporary file is left behind.
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			t.Fatalf("temporary file left: %s", de.Name())
		}
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	for _, env := range []Envelope{{From: "a@b"}, {From: "a\xff@b", Recipients: []Recipient{{Addr: "c@d"}}}} {
		if _, err := Write(dir, env, strings.NewReader("x")); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Write(%+v) = %v, want ErrInvalid", env, err)
		}
	}
	if Pending(dir) {
		t.Fatal("a refused message left a file")
	}
}

// A failing body read leaves nothing behind (the caller was not told
// "accepted").
func TestWriteBodyError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	_, err := Write(dir, testEnv(), io.MultiReader(strings.NewReader("part"), errReader{}))
	if err == nil {
		t.Fatal("no error")
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 0 {
		t.Fatalf("files left: %v", des)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("stdin broke") }

// Every proper prefix of a drop file, and a file with one byte changed,
// is torn; the complete file opens.
func TestTornFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	id, err := Write(dir, testEnv(), strings.NewReader("Subject: torn\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(filepath.Join(dir, id))
	p := filepath.Join(t.TempDir(), "0000000000000000000")
	for n := 0; n < len(full); n++ {
		os.WriteFile(p, full[:n], 0o600)
		if f, err := Open(p); !errors.Is(err, ErrTorn) {
			if f != nil {
				f.Close()
			}
			t.Fatalf("prefix of %d/%d bytes: err %v, want ErrTorn", n, len(full), err)
		}
	}
	for i := range full {
		b := bytes.Clone(full)
		b[i] ^= 0x20
		os.WriteFile(p, b, 0o600)
		f, err := Open(p)
		if err == nil {
			// A change in the JSON's letter case can still parse
			// (e.g. a key); it must not change the body.
			got, _ := io.ReadAll(f.Body())
			f.Close()
			if string(got) != "Subject: torn\r\n\r\nbody\r\n" {
				t.Fatalf("byte %d flipped: body %q accepted", i, got)
			}
			continue
		}
		if !errors.Is(err, ErrTorn) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	os.WriteFile(p, full, 0o600)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestListSkipsTemporaryAndMarksDamaged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	id, _ := Write(dir, testEnv(), strings.NewReader("x"))
	os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a message"), 0o600)
	if err := SetAside(filepath.Join(dir, id)); err != nil {
		t.Fatal(err)
	}
	es, err := List(dir)
	if err != nil || len(es) != 1 || !es[0].Damaged || es[0].ID != id {
		t.Fatalf("List = %+v, %v", es, err)
	}
	if Pending(dir) {
		t.Fatal("a damaged file counts as pending")
	}
	if n := SweepTemp(dir, 0); n != 1 {
		t.Fatalf("SweepTemp removed %d", n)
	}
}

func TestRunLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	if RunActive(dir) || DaemonWaiting(dir) {
		t.Fatal("active before anything")
	}
	l, ok, err := TryRunLock(dir, "run")
	if err != nil || !ok {
		t.Fatalf("TryRunLock: %v %v", ok, err)
	}
	if !RunActive(dir) {
		t.Fatal("RunActive false while held")
	}
	if _, ok, _ := TryRunLock(dir, "run"); ok {
		t.Fatal("second TryRunLock succeeded")
	}
	if pid, role := Holder(dir); pid != os.Getpid() || role != "run" {
		t.Fatalf("Holder = %d %q", pid, role)
	}
	l.Unlock()
	if RunActive(dir) {
		t.Fatal("RunActive true after Unlock")
	}
}

func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	id, err := Write(dir, testEnv(), strings.NewReader("Subject: f\r\n\r\nx\r\n"))
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(filepath.Join(dir, id))
	f.Add(seed)
	f.Add([]byte(magic + "{}\n" + trailerMagic + "0000000000000000 00000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, data, 0o600)
		df, err := Open(p)
		if err != nil {
			return
		}
		defer df.Close()
		body, _ := io.ReadAll(df.Body())
		if int64(len(body)) != df.Size || len(df.Envelope.Recipients) == 0 {
			t.Fatalf("accepted an inconsistent file: size %d, body %d, %+v", df.Size, len(body), df.Envelope)
		}
	})
}

// A missing spool directory is created (private), as spool.Open does.
func TestWriteCreatesSpoolDir(t *testing.T) {
	spoolDir := filepath.Join(t.TempDir(), "a", "spool")
	if _, err := Write(filepath.Join(spoolDir, "maildrop"), testEnv(), strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(spoolDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool directory: %v %v", fi.Mode(), err)
	}
}

func TestProblem(t *testing.T) {
	dir := t.TempDir()
	if p, at := Problem(dir); p != "" || !at.IsZero() {
		t.Fatalf("no problem yet: got %q %v", p, at)
	}
	SetProblem(dir, "open spool:\n  damaged\tfile")
	if p, at := Problem(dir); p != "open spool: damaged file" || at.IsZero() {
		t.Errorf("Problem = %q %v", p, at)
	}
	SetProblem(dir, strings.Repeat("x", 5000))
	if p, _ := Problem(dir); len(p) != maxProblem {
		t.Errorf("problem of %d bytes, want it bounded to %d", len(p), maxProblem)
	}
	if _, err := Write(dir, Envelope{From: "a@b", Recipients: []Recipient{{Addr: "c@d"}}}, strings.NewReader("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if es, err := List(dir); err != nil || len(es) != 1 {
		t.Errorf("List = %d entries, %v: the problem note is not a message", len(es), err)
	}
	ClearProblem(dir)
	if p, _ := Problem(dir); p != "" {
		t.Errorf("after ClearProblem: %q", p)
	}
}
