package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpCommand: `relayq help COMMAND` prints that command's usage on
// standard output and exits 0, for every command of the table; it printed
// the general list for all of them.
func TestHelpCommand(t *testing.T) {
	for _, name := range commandNames() {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch([]string{"relayq", "help", name}, stdio{strings.NewReader(""), &out, &errb})
			if code != exOK {
				t.Errorf("exit %d, want 0; stderr: %s", code, errb.String())
			}
			if errb.Len() != 0 {
				t.Errorf("stderr: %s", errb.String())
			}
			first, _, _ := strings.Cut(out.String(), "\n")
			want := "usage: relayq " + name
			switch name {
			case "help":
				want = "usage: relayq <command>"
			case "sendmail", "mailq", "newaliases":
				want = "usage: sendmail "
			}
			if !strings.HasPrefix(first, want) {
				t.Errorf("first line %q, want it to start with %q", first, want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"relayq", "help", "bogus"}, stdio{strings.NewReader(""), &out, &errb}); code != exUsage ||
		!strings.Contains(errb.String(), `unknown command "bogus"`) {
		t.Errorf("help bogus: exit %d, stderr %q; want 64 naming the command", code, errb.String())
	}
}
