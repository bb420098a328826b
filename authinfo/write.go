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
	skipping := false
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if l == "" {
			continue
		}
		if skipping && (l[0] == ' ' || l[0] == '\t') && strings.TrimSpace(l) != "" {
			continue // a continuation of the replaced entry
		}
		skipping = false
		f := strings.Fields(l)
		if len(f) > 0 && strings.EqualFold(f[0], key) {
			if !replaced {
				b.WriteString(key + " " + value + "\n")
			}
			replaced, skipping = true, true
			continue
		}
		b.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteString("\n")
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
