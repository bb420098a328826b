package migrate

import (
	"fmt"
	"strings"
)

// Paths are where the written files go, as the settings name them.
type Paths struct {
	Credentials string // RELAYQ_AUTHINFO
	RelayMap    string // RELAYQ_SENDER_RELAYHOST_MAP
	Generic     string // RELAYQ_GENERIC_MAP
}

// Finish adds the settings that name the written files (the credentials
// file only when it is not relayq's default path, the maps when there are
// lines for them).
func (r *Result) Finish(p Paths, defaultCredentials string) {
	x := &reader{r: r}
	if len(r.Credentials) > 0 && p.Credentials != defaultCredentials {
		x.set("RELAYQ_AUTHINFO", p.Credentials, Source{}, "the credentials file written")
	}
	if len(r.RelayMap) > 0 {
		x.set("RELAYQ_SENDER_RELAYHOST_MAP", p.RelayMap, Source{}, "the sender relay map written")
	}
	if len(r.Generic) > 0 {
		x.set("RELAYQ_GENERIC_MAP", p.Generic, Source{}, "the generic map written")
	}
}

// Env is the settings as env-file lines (KEY=value), each after a comment
// that says where it came from.
func (r *Result) Env() string {
	var b strings.Builder
	for _, s := range r.Settings {
		fmt.Fprintf(&b, "# %s\n%s=%s\n", s.origin(), s.Key, s.Value)
	}
	return b.String()
}

func (s Setting) origin() string {
	switch {
	case s.From.File == "":
		return s.Why
	case s.Why == "":
		return s.From.String()
	}
	return s.From.String() + ": " + s.Why
}

// CredentialsFile is the credentials file's content (secrets in it).
func (r *Result) CredentialsFile() string {
	var b strings.Builder
	for _, c := range r.Credentials {
		fmt.Fprintf(&b, "# %s\n%s\n", c.From, c.line())
	}
	return b.String()
}

// MapFile is a map's content.
func MapFile(ls []MapLine) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "# %s\n%s %s\n", l.From, l.Key, l.Value)
	}
	return b.String()
}

// Report is what relayq import prints: every setting with its origin,
// the credential lines masked, the map lines, then the notes. It holds no
// secret.
func (r *Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read: %s\n", strings.Join(r.Formats, ", "))
	b.WriteString("\nsettings (relayq.env):\n")
	if len(r.Settings) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, s := range r.Settings {
		fmt.Fprintf(&b, "  %s=%s\n      from %s\n", s.Key, s.Value, s.origin())
	}
	b.WriteString("\ncredentials:\n")
	if len(r.Credentials) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, c := range r.Credentials {
		fmt.Fprintf(&b, "  %s\n      from %s\n", c.Masked(), c.From)
	}
	for _, m := range []struct {
		name string
		ls   []MapLine
	}{{"sender relay map", r.RelayMap}, {"generic map", r.Generic}} {
		if len(m.ls) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", m.name)
		for _, l := range m.ls {
			fmt.Fprintf(&b, "  %s %s\n      from %s\n", l.Key, l.Value, l.From)
		}
	}
	if ns := r.sortedNotes(); len(ns) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range ns {
			fmt.Fprintf(&b, "  %s: %s: %s\n", n.From, n.Kind, n.Text)
		}
	}
	return b.String()
}
