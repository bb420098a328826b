package config

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// Key describes one configuration key for `relayq config` and docs.
type Key struct {
	Key     string // e.g. RELAYQ_SPOOL
	Default string // the default tag ("" = none)
	Desc    string // the desc tag
	Value   string // current value, formatted as it would be written; masked if Secret
	Secret  bool
	Set     bool   // a value is set (for a secret: non-empty)
	Source  string // "default", "environment", "unset", "file:line", "KEY_FILE path"
}

// Mask replaces a set secret's value in Describe's output.
const Mask = "********"

// Describe lists every key of c in declaration order with its default,
// description, current value (secrets masked) and where that value came
// from. It works on a zero Config too (values and sources then empty).
func (c *Config) Describe() []Key {
	return describe(c, c.loaded)
}

func describe(spec any, info *loadInfo) []Key {
	var out []Key
	for _, f := range fields(Prefix, spec) {
		k := Key{Key: f.Key, Default: f.Default, Desc: f.Desc(), Secret: f.Secret}
		k.Value = format(f.v)
		k.Set = !f.v.IsZero()
		if f.Secret && k.Value != "" {
			k.Value = Mask
		}
		if info != nil {
			k.Source = info.sources[f.Key]
		}
		out = append(out, k)
	}
	return out
}

// format writes a value back in the syntax Load accepts.
func format(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return string(v.Bytes())
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = format(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		var parts []string
		iter := v.MapRange()
		for iter.Next() {
			parts = append(parts, format(iter.Key())+":"+format(iter.Value()))
		}
		sort.Strings(parts)
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// Usage writes every key as a commented env file: the description, the
// default and the source as comments, then KEY=value (quoted when needed),
// so that the output can be saved as a starting relayq.env. Secret keys are
// written commented out with the value masked.
func (c *Config) Usage(w io.Writer) error {
	var b strings.Builder
	if f := c.File(); f != "" {
		fmt.Fprintf(&b, "# relayq configuration (env file read: %s; the environment wins)\n", f)
	} else {
		fmt.Fprintf(&b, "# relayq configuration (no env file read; default %s)\n", DefaultFile)
	}
	for _, k := range c.Describe() {
		b.WriteString("\n")
		for _, line := range wrap(k.Desc, 76) {
			fmt.Fprintf(&b, "# %s\n", line)
		}
		def := k.Default
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(&b, "# default: %s", def)
		if k.Source != "" {
			fmt.Fprintf(&b, "; from: %s", k.Source)
		}
		b.WriteString("\n")
		if k.Key == Prefix+"_CONFIG" {
			fmt.Fprintf(&b, "#%s=%s (environment only; it names this file)\n", k.Key, Quote(k.Value))
			continue
		}
		if k.Secret {
			fmt.Fprintf(&b, "#%s=%s (secret; may also be given as %s_FILE)\n", k.Key, k.Value, k.Key)
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", k.Key, Quote(k.Value))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Quote returns v in env-file syntax: as is when that reads back the same,
// else in single quotes (or double quotes when v holds a single quote).
func Quote(v string) string {
	plain := v != ""
	for i := 0; i < len(v) && plain; i++ {
		c := v[i]
		if isBlank(c) || isNewline(c) || c == '\\' || c == '\'' || c == '"' || c == '#' || c == ';' {
			plain = false
		}
	}
	if plain {
		return v
	}
	if v == "" {
		return ""
	}
	if !strings.Contains(v, "'") {
		return "'" + v + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`)
	return `"` + r.Replace(v) + `"`
}

// wrap splits s into lines of at most n bytes at spaces.
func wrap(s string, n int) []string {
	var out []string
	for len(s) > n {
		i := strings.LastIndexByte(s[:n+1], ' ')
		if i <= 0 {
			break
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
