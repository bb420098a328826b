package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"time"
)

// Validator is implemented by area structs that check their own keys.
type Validator interface {
	Validate() error
}

// validate checks the keys this package owns (Core, Control), then calls
// Validate on every embedded area struct that has one. All problems are
// reported together.
func (c *Config) validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(oneOf("RELAYQ_TLS", c.TLS, TLSPolicies...))
	add(oneOf("RELAYQ_LOG_FORMAT", c.LogFormat, "text", "json"))
	add(oneOf("RELAYQ_LOG_LEVEL", c.LogLevel, "debug", "info", "warn", "error"))
	add(absPath("RELAYQ_SPOOL", c.Spool, false))
	add(absPath("RELAYQ_SOCKET", c.Socket, false))
	add(absPath("RELAYQ_AUTHINFO", c.AuthInfo, true))
	add(absPath("RELAYQ_SENDER_RELAYHOST_MAP", c.SenderRelayHostMap, true))
	add(absPath("RELAYQ_ALIASES", c.Aliases, true))
	add(absPath("RELAYQ_LOG_FILE", c.LogFile, true))
	add(absPath("RELAYQ_CONTROL_SOCKET", c.ControlSocket, false))
	add(domain("RELAYQ_DOMAIN", c.Domain))
	if c.LockTimeout <= 0 || c.LockTimeout > 10*time.Minute {
		add(fmt.Errorf("RELAYQ_LOCK_TIMEOUT: %s is out of range (more than 0, at most 10m; a lock wait is never unbounded)", c.LockTimeout))
	}
	if c.Socket != "" && c.Socket == c.ControlSocket {
		add(fmt.Errorf("RELAYQ_CONTROL_SOCKET: same path as RELAYQ_SOCKET (%s)", c.Socket))
	}

	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		if !t.Field(i).Anonymous || !v.Field(i).CanAddr() {
			continue
		}
		if val, ok := v.Field(i).Addr().Interface().(Validator); ok {
			add(val.Validate())
		}
	}
	return errors.Join(errs...)
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %s", key, v, strings.Join(allowed, ", "))
}

// absPath requires an absolute path: relayq runs from cron, PHP and
// systemd with unpredictable working directories.
func absPath(key, v string, emptyOK bool) error {
	if v == "" {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("%s: must not be empty", key)
	}
	if !filepath.IsAbs(v) {
		return fmt.Errorf("%s: %q is not an absolute path", key, v)
	}
	if strings.ContainsAny(v, "\x00\r\n") {
		return fmt.Errorf("%s: %q contains a control character", key, v)
	}
	return nil
}

// domain checks a DNS domain name (RFC 1035 §2.3.4 lengths; letters,
// digits, '-' and '_'; U-labels are allowed, the relay decides on SMTPUTF8).
func domain(key, v string) error {
	if v == "" {
		return nil
	}
	bad := func(why string) error { return fmt.Errorf("%s: %q is not a domain name: %s", key, v, why) }
	if len(v) > 253 {
		return bad("longer than 253 octets")
	}
	for _, label := range strings.Split(strings.TrimSuffix(v, "."), ".") {
		if label == "" {
			return bad("empty label")
		}
		if len(label) > 63 {
			return bad("label longer than 63 octets")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("label starts or ends with '-'")
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r > 0x7f) {
				return bad(fmt.Sprintf("character %q", r))
			}
		}
	}
	return nil
}
