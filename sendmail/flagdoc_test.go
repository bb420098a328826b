package sendmail

import (
	"strings"
	"testing"
)

// TestFlagDocsParse parses every option FlagDocs names (with a valid
// argument where it takes one), so the reference cannot list an option
// ParseArgs refuses.
func TestFlagDocsParse(t *testing.T) {
	args := map[string]string{"ADDR": "a@example.org", "NAME": "A Name", "DSN": "never", "RET": "hdrs", "ENVID": "id.1", "TYPE": "8BITMIME"}
	n := 0
	for _, d := range FlagDocs {
		words := strings.Fields(strings.ReplaceAll(d.Flags, ",", ""))
		arg := ""
		if last := words[len(words)-1]; args[last] != "" {
			arg, words = args[last], words[:len(words)-1]
		}
		for _, w := range words {
			if !strings.HasPrefix(w, "-") || w == "--" {
				continue
			}
			w = strings.NewReplacer("*", "x", "[mwpqe]", "m").Replace(w)
			argv := []string{w}
			if arg != "" {
				argv = append(argv, arg)
			} else if strings.ContainsRune(optArg, rune(w[1])) && len(w) == 2 {
				argv = append(argv, "x")
			}
			if _, err := ParseArgs(append(argv, "rcpt@example.org")); err != nil {
				t.Errorf("FlagDocs names %q but ParseArgs(%q): %v", d.Flags, argv, err)
			}
			n++
		}
	}
	if n < 25 {
		t.Errorf("only %d options checked", n)
	}
}
