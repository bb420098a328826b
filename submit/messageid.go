package submit

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"
)

// MessageID returns a new Message-ID field value (RFC 5322 §3.6.4) under
// domain: <time in base 36 . 72 random bits @domain>. Shared by the
// sendmail command and the listener, which add one to a message without.
func MessageID(now time.Time, domain string) string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return "<" + strconv.FormatInt(now.UnixNano()/1e6, 36) + "." + hex.EncodeToString(b[:]) + "@" + domain + ">"
}
