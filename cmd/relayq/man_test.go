package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// manDir holds the generated pages that the package installs.
const manDir = "../../docs/man"

// TestManPagesCurrent regenerates every page and compares it with
// docs/man/: a subcommand or configuration key changed without
// regenerating (RELAYQ_UPDATE_MAN=1 go test -run TestManPagesCurrent
// ./cmd/relayq) fails here, so the pages cannot drift from `relayq help`
// and `relayq config`.
func TestManPagesCurrent(t *testing.T) {
	for _, name := range manPageNames() {
		var got bytes.Buffer
		manPages[name](&got)
		path := filepath.Join(manDir, name)
		if os.Getenv("RELAYQ_UPDATE_MAN") == "1" {
			if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (generate with RELAYQ_UPDATE_MAN=1)", err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s differs from what relayq man %s writes; regenerate with RELAYQ_UPDATE_MAN=1 go test -run TestManPagesCurrent ./cmd/relayq", path, name)
		}
	}
}

// TestManPagesCover checks that every subcommand and every configuration
// key appears in its page.
func TestManPagesCover(t *testing.T) {
	var r, e bytes.Buffer
	manRelayq(&r)
	manEnv(&e)
	for _, n := range commandNames() {
		if !strings.Contains(r.String(), ".B "+n+"\n") {
			t.Errorf("relayq.8 lacks command %s", n)
		}
	}
	var out, errb strings.Builder
	if code := dispatch([]string{"relayq", "config"}, stdio{strings.NewReader(""), &out, &errb}); code != exOK {
		t.Fatalf("relayq config: exit %d: %s", code, errb.String())
	}
	seen := 0
	for _, line := range strings.Split(out.String(), "\n") {
		key, _, ok := strings.Cut(strings.TrimPrefix(line, "#"), "=")
		if !ok || !strings.HasPrefix(key, "RELAYQ_") || strings.ContainsAny(key, " \t") {
			continue
		}
		seen++
		if !strings.Contains(e.String(), ".B "+key+"\n") {
			t.Errorf("relayq.env.5 lacks key %s (printed by relayq config)", key)
		}
	}
	if want := strings.Count(e.String(), ".B RELAYQ_"); seen != want {
		t.Errorf("relayq config printed %d keys, relayq.env.5 documents %d", seen, want)
	}
}

// TestManPagesRender renders each page with groff (warnings are errors)
// and with man -l, as a user would read it.
func TestManPagesRender(t *testing.T) {
	for _, tool := range []string{"groff", "man"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (test/smarthost/install.sh installs groff-base and man-db)", tool)
		}
	}
	for _, name := range manPageNames() {
		path := filepath.Join(t.TempDir(), name)
		var b bytes.Buffer
		manPages[name](&b)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("groff", "-man", "-ww", "-z", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff %s: %v\n%s", name, err, out)
		}
		cmd := exec.Command("man", "-l", path)
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80")
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("man -l %s: %v", name, err)
		}
		if !strings.Contains(string(out), "NAME") || !strings.Contains(string(out), "relayq") {
			t.Errorf("man -l %s rendered:\n%s", name, out)
		}
	}
}
