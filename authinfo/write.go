package authinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/relayq/relayq/internal/atomicfile"
)

// SetEntry writes the Postfix sasl_passwd entry "key value" into the
// credentials file at path: the entry with that key (case-insensitive,
// with its continuation lines) is replaced, else the entry is added at the
// end; every other line is kept as it was. The result must parse (Parse)
// before anything is written. The file is replaced atomically (a
// temporary file beside it, fsynced, renamed over it, the directory
// fsynced); a new file gets mode 0600, an existing one keeps its mode and
// owner. It reports whether an entry was replaced. value is a secret: no
// error quotes it.
func SetEntry(path, key, value string) (replaced bool, err error) {
	if strings.ContainsAny(key, " \t\r\n#") || key == "" {
		return false, fmt.Errorf("credentials %s: key %q: must be one word", path, key)
	}
	if strings.ContainsAny(value, "\r\n") {
		return false, fmt.Errorf("credentials %s: the value for %s spans lines", path, key)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("credentials: %w", err)
	}
	var b strings.Builder
	for _, e := range splitEntries(string(old)) {
		switch {
		case !strings.EqualFold(e.key, key):
			b.WriteString(e.text)
		case !replaced:
			b.WriteString(key + " " + value + "\n")
			replaced = true
		}
	}
	if !replaced {
		b.WriteString(key + " " + value + "\n")
	}
	content := b.String()
	if _, err := Parse(strings.NewReader(content), path); err != nil {
		return false, err
	}
	return replaced, writeAtomic(path, content)
}

// MergeEntries is old (a credentials file's text) with the entries of add
// in place of old's entries with the same keys (case-insensitive, with
// their continuation lines): those are removed where they were and add is
// appended; every other line of old is kept. It returns the result and
// the keys of the entries it replaced, in old's order. Nothing is parsed
// or written: the caller checks the result (Parse) and writes it.
func MergeEntries(old, add string) (merged string, replaced []string) {
	keys := map[string]bool{}
	for _, e := range splitEntries(add) {
		if e.key != "" {
			keys[strings.ToLower(e.key)] = true
		}
	}
	var b strings.Builder
	for _, e := range splitEntries(old) {
		if e.key != "" && keys[strings.ToLower(e.key)] {
			replaced = append(replaced, e.key)
			continue
		}
		b.WriteString(e.text)
	}
	if b.Len() > 0 && add != "" && !strings.HasPrefix(add, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(add)
	return b.String(), replaced
}

// credEntry is one entry of a credentials file: its key (the first word) and
// its text with its continuation lines; key is "" for a comment or a
// blank line.
type credEntry struct{ key, text string }

// splitEntries splits a credentials file's text into entries; every line
// ends with a newline in their text.
func splitEntries(s string) []credEntry {
	var out []credEntry
	for _, l := range strings.SplitAfter(s, "\n") {
		if l == "" {
			continue
		}
		if !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		t := strings.TrimSpace(l)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
			out = append(out, credEntry{text: l})
		case (l[0] == ' ' || l[0] == '\t') && len(out) > 0 && out[len(out)-1].key != "":
			out[len(out)-1].text += l // a continuation line
		default:
			out = append(out, credEntry{key: strings.Fields(l)[0], text: l})
		}
	}
	return out
}

// writeAtomic replaces path with content: a new file gets mode 0600, an
// existing one keeps its mode and owner.
func writeAtomic(path, content string) error {
	a, ok, err := atomicfile.Existing(path)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if !ok {
		a.Mode = 0o600
	}
	if err := atomicfile.Write(path, []byte(content), a); err != nil {
		return fmt.Errorf("credentials %s: %w", path, err)
	}
	return nil
}
