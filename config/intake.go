package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Intake holds the keys of the sendmail command line intake: who may set
// the envelope sender, how senders are rewritten for relays that insist on
// the authenticated address, and the limits applied to what callers hand
// over.
type Intake struct {
	// TrustedUsers may set the envelope sender with -f without a warning.
	TrustedUsers []string `envconfig:"TRUSTED_USERS" default:"root,relayq" desc:"users who may set the envelope sender (sendmail -f/-r, -bs MAIL FROM) without an X-Authentication-Warning header (comma-separated login names)"`
	// UntrustedSender is the policy for -f from other users.
	UntrustedSender string `envconfig:"UNTRUSTED_SENDER" default:"warn" desc:"when a user not in RELAYQ_TRUSTED_USERS sets the sender: warn (add X-Authentication-Warning, as Sendmail) or refuse (exit 77)"`
	// GenericMap is a Postfix generic(5)-style sender rewriting table.
	GenericMap string `envconfig:"GENERIC_MAP" desc:"Postfix generic(5)-style table (\"root@host alerts@example.com\", \"@host alerts@example.com\") applied to the envelope sender and the From header; empty: none"`
	// SenderRewrite replaces every sender the generic map leaves alone.
	SenderRewrite string `envconfig:"SENDER_REWRITE" desc:"one address that replaces the envelope sender and the From address of every message (the original From is kept in Reply-To), for relays that accept only the authenticated address; empty: off"`
	// MaxHeaderSize caps the header section of a message read by sendmail.
	MaxHeaderSize int `envconfig:"MAX_HEADER_SIZE" default:"102400" desc:"largest header section sendmail accepts, in octets (as Postfix header_size_limit); larger: exit 65"`
	// HopCountLimit bounds the Received: headers of a message.
	HopCountLimit int `envconfig:"HOPCOUNT_LIMIT" default:"50" desc:"most Received: headers a message may carry before it is refused as a mail loop (as Postfix hopcount_limit)"`
}

// Validate checks the intake keys.
func (c *Intake) Validate() error {
	var errs []error
	switch c.UntrustedSender {
	case "warn", "refuse":
	default:
		errs = append(errs, fmt.Errorf("RELAYQ_UNTRUSTED_SENDER: %q is not warn or refuse", c.UntrustedSender))
	}
	for _, u := range c.TrustedUsers {
		if u = strings.TrimSpace(u); u == "" || strings.ContainsAny(u, " \t\r\n:@") {
			errs = append(errs, fmt.Errorf("RELAYQ_TRUSTED_USERS: %q is not a login name", u))
		}
	}
	if c.GenericMap != "" && !filepath.IsAbs(c.GenericMap) {
		errs = append(errs, fmt.Errorf("RELAYQ_GENERIC_MAP: %q is not an absolute path", c.GenericMap))
	}
	if s := c.SenderRewrite; s != "" {
		at := strings.LastIndexByte(s, '@')
		if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n\x00<>,;\"") || s[0] == '-' {
			errs = append(errs, fmt.Errorf("RELAYQ_SENDER_REWRITE: %q is not a plain address (user@domain)", s))
		}
	}
	if c.MaxHeaderSize < 1024 || c.MaxHeaderSize > 64<<20 {
		errs = append(errs, fmt.Errorf("RELAYQ_MAX_HEADER_SIZE: %d is out of range (1024 to 67108864)", c.MaxHeaderSize))
	}
	if c.HopCountLimit < 1 || c.HopCountLimit > 1000 {
		errs = append(errs, fmt.Errorf("RELAYQ_HOPCOUNT_LIMIT: %d is out of range (1 to 1000)", c.HopCountLimit))
	}
	return errors.Join(errs...)
}
