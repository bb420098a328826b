package submit

import (
	"fmt"
	"strings"

	"github.com/relayq/relayq/wire"
)

// AuthWarning returns the X-Authentication-Warning header line (without
// CRLF) that Sendmail adds when a user who is not trusted sets the envelope
// sender with -f:
//
//	X-Authentication-Warning: host: user set sender to addr using -f
//
// It returns "" when no warning is due: the user is trusted, or the sender
// is the user's own name (from == user, or user@host). uid names the user
// when user is "" ("uid 1000"). The null sender is shown as "<>". CR, LF
// and other controls in the inputs are replaced by '?' so that the line can
// never start a new header. Shared by the CLI's direct path and the
// listener's unix socket so both write the same line.
func AuthWarning(uid int, user, host, from string, trusted bool) string {
	if trusted {
		return ""
	}
	if user != "" && (strings.EqualFold(from, user) || strings.EqualFold(from, user+"@"+host)) {
		return ""
	}
	who := user
	if who == "" {
		who = fmt.Sprintf("uid %d", uid)
	}
	addr := from
	if addr == "" {
		addr = "<>"
	}
	if host == "" {
		host = "localhost"
	}
	return "X-Authentication-Warning: " + wire.Sanitize(host) + ": " + wire.Sanitize(who) + " set sender to " + wire.Sanitize(addr) + " using -f"
}
