package authinfo

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Mask is what every printed form of a non-empty Secret shows.
const Mask = "********"

// Secret is a password, client secret or token. Every way of printing it —
// String, GoString, fmt verbs (%v %+v %#v %s %q %x …), JSON, text
// marshalling and log/slog — shows Mask instead of the value; an empty
// secret prints as "". Reveal returns the value; call it only where the
// secret is put on the wire.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Mask
}

// GoString masks the secret (fmt's %#v).
func (s Secret) GoString() string { return "authinfo.Secret(" + strconv.Quote(s.String()) + ")" }

// Format masks the secret for every fmt verb, so that no verb (%x, %d, …)
// can print the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, s.GoString())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(s.String()))
	default:
		_, _ = io.WriteString(f, s.String())
	}
}

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText masks the secret (encoding/xml, YAML and other text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue masks the secret in log/slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
