package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Listener holds the keys of the SMTP intake: the TCP listener
// (RELAYQ_LISTEN, in Core) and the unix submission socket (RELAYQ_SOCKET,
// in Core). Names follow Postfix's smtpd_* parameters where one exists.
// Who may set a foreign sender on the socket follows the sendmail
// command's keys (RELAYQ_TRUSTED_USERS, RELAYQ_UNTRUSTED_SENDER in
// Intake), so both ways in apply one policy.
type Listener struct {
	// MyNetworks lists the client networks that may relay through the TCP
	// listener without AUTH.
	MyNetworks string `envconfig:"MYNETWORKS" desc:"client networks (CIDR or address, comma or space separated) that may relay through RELAYQ_LISTEN without AUTH; empty: loopback only (127.0.0.0/8, ::1). A non-loopback RELAYQ_LISTEN needs this and/or client AUTH"`
	// SMTPDUsers is the users file for client AUTH (bcrypt hashes).
	SMTPDUsers string `envconfig:"SMTPD_USERS" desc:"users file for client AUTH on RELAYQ_LISTEN: one 'name:bcrypt-hash' per line, mode 0600/0400 (see listener package doc); empty: no users file"`
	// SMTPDDovecotSocket is a Dovecot auth-client socket for client AUTH.
	SMTPDDovecotSocket string `envconfig:"SMTPD_DOVECOT_SOCKET" desc:"Dovecot auth socket for client AUTH on RELAYQ_LISTEN (as Postfix smtpd_sasl_type = dovecot), e.g. /run/dovecot/auth-client; empty: off"`
	// SMTPDTLSCert is the listener's certificate chain (PEM) for STARTTLS.
	SMTPDTLSCert string `envconfig:"SMTPD_TLS_CERT" desc:"PEM certificate chain for STARTTLS on RELAYQ_LISTEN; empty: no STARTTLS (AUTH then only from loopback clients)"`
	// SMTPDTLSKey is the private key (PEM) of SMTPDTLSCert.
	SMTPDTLSKey string `envconfig:"SMTPD_TLS_KEY" desc:"PEM private key of RELAYQ_SMTPD_TLS_CERT"`
	// SMTPDMessageSizeLimit is the largest message accepted (SIZE).
	SMTPDMessageSizeLimit int64 `envconfig:"SMTPD_MESSAGE_SIZE_LIMIT" default:"10240000" desc:"largest message in octets accepted on every door: the listener and the socket (announced as SIZE; larger: 552 5.3.4) and sendmail without a daemon (larger: exit 65, nothing queued) (Postfix message_size_limit)"`
	// SMTPDRecipientLimit is the most recipients per message.
	SMTPDRecipientLimit int `envconfig:"SMTPD_RECIPIENT_LIMIT" default:"1000" desc:"most recipients per message from RELAYQ_LISTEN clients (Postfix smtpd_recipient_limit); more: 452 4.5.3. The unix submission socket (sendmail) has no limit"`
	// SMTPDHeaderSizeLimit caps the message header.
	SMTPDHeaderSizeLimit int `envconfig:"SMTPD_HEADER_SIZE_LIMIT" default:"102400" desc:"largest message header in octets (Postfix header_size_limit); larger: 552 5.3.4"`
	// SMTPDLineLengthLimit caps command and message lines.
	SMTPDLineLengthLimit int `envconfig:"SMTPD_LINE_LENGTH_LIMIT" default:"4096" desc:"longest command or message line in octets, CRLF included (RFC 5321 allows 1000); longer: 500 5.4.0 and the connection is closed"`
	// SMTPDTimeout bounds each read and write while commands are exchanged.
	SMTPDTimeout time.Duration `envconfig:"SMTPD_TIMEOUT" default:"300s" desc:"how long the listener waits for a client command or for a reply to be written (Postfix smtpd_timeout); then 421 4.4.2"`
	// SMTPDDataTimeout bounds each read of message data.
	SMTPDDataTimeout time.Duration `envconfig:"SMTPD_DATA_TIMEOUT" default:"300s" desc:"how long the listener waits for the next piece of message data after DATA"`
	// SMTPDConnectionLimit caps simultaneous client connections.
	SMTPDConnectionLimit int `envconfig:"SMTPD_CONNECTION_LIMIT" default:"100" desc:"most simultaneous connections per listener (TCP and the socket each); more: 421 4.3.2"`
	// SMTPDAuthFailDelay slows down password guessing.
	SMTPDAuthFailDelay time.Duration `envconfig:"SMTPD_AUTH_FAIL_DELAY" default:"2s" desc:"pause before answering a failed AUTH (as Dovecot auth_failure_delay); the connection is closed after 3 failures"`
	// SocketMode is the permission of the unix submission socket.
	SocketMode string `envconfig:"SOCKET_MODE" default:"0666" desc:"permission bits of RELAYQ_SOCKET (octal); 0666 lets every local user submit, as Postfix's maildrop; use 0660 with RELAYQ_SOCKET_GROUP to restrict"`
	// SocketGroup is the group that owns the submission socket.
	SocketGroup string `envconfig:"SOCKET_GROUP" desc:"group name or gid that owns RELAYQ_SOCKET; empty: the daemon's group"`
}

// Validate checks the listener keys.
func (l *Listener) Validate() error {
	var errs []error
	if _, err := ParseNetworks(l.MyNetworks); err != nil {
		errs = append(errs, fmt.Errorf("RELAYQ_MYNETWORKS: %w", err))
	}
	if l.SMTPDUsers != "" {
		errs = append(errs, absPath("RELAYQ_SMTPD_USERS", l.SMTPDUsers, true))
	}
	if l.SMTPDDovecotSocket != "" {
		errs = append(errs, absPath("RELAYQ_SMTPD_DOVECOT_SOCKET", l.SMTPDDovecotSocket, true))
	}
	if (l.SMTPDTLSCert == "") != (l.SMTPDTLSKey == "") {
		errs = append(errs, errors.New("RELAYQ_SMTPD_TLS_CERT and RELAYQ_SMTPD_TLS_KEY must be set together"))
	} else if l.SMTPDTLSCert != "" {
		errs = append(errs, absPath("RELAYQ_SMTPD_TLS_CERT", l.SMTPDTLSCert, true))
		errs = append(errs, absPath("RELAYQ_SMTPD_TLS_KEY", l.SMTPDTLSKey, true))
	}
	positive := func(key string, v int64, max int64) {
		if v <= 0 || v > max {
			errs = append(errs, fmt.Errorf("%s: %d is out of range (1 to %d)", key, v, max))
		}
	}
	positive("RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT", l.SMTPDMessageSizeLimit, 1<<32-1) // RFC 1870 SIZE fits go-smtp's uint32 parse
	positive("RELAYQ_SMTPD_RECIPIENT_LIMIT", int64(l.SMTPDRecipientLimit), 100000)
	positive("RELAYQ_SMTPD_HEADER_SIZE_LIMIT", int64(l.SMTPDHeaderSizeLimit), 1<<30)
	if l.SMTPDLineLengthLimit < 1000 || l.SMTPDLineLengthLimit > 1<<20 {
		errs = append(errs, fmt.Errorf("RELAYQ_SMTPD_LINE_LENGTH_LIMIT: %d is out of range (1000, the RFC 5321 minimum, to 1048576)", l.SMTPDLineLengthLimit))
	}
	positive("RELAYQ_SMTPD_CONNECTION_LIMIT", int64(l.SMTPDConnectionLimit), 100000)
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"RELAYQ_SMTPD_TIMEOUT", l.SMTPDTimeout}, {"RELAYQ_SMTPD_DATA_TIMEOUT", l.SMTPDDataTimeout}} {
		if d.v < time.Second || d.v > time.Hour {
			errs = append(errs, fmt.Errorf("%s: %s is out of range (1s to 1h)", d.key, d.v))
		}
	}
	if l.SMTPDAuthFailDelay < 0 || l.SMTPDAuthFailDelay > time.Minute {
		errs = append(errs, fmt.Errorf("RELAYQ_SMTPD_AUTH_FAIL_DELAY: %s is out of range (0 to 1m)", l.SMTPDAuthFailDelay))
	}
	if _, err := l.SocketPerm(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SocketPerm returns RELAYQ_SOCKET_MODE as permission bits.
func (l *Listener) SocketPerm() (uint32, error) {
	m, err := strconv.ParseUint(l.SocketMode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("RELAYQ_SOCKET_MODE: %q is not an octal permission like 0666 or 0660", l.SocketMode)
	}
	if m&0o600 != 0o600 {
		return 0, fmt.Errorf("RELAYQ_SOCKET_MODE: %s must give the owner read and write (0600)", l.SocketMode)
	}
	return uint32(m), nil
}

// ParseNetworks parses a RELAYQ_MYNETWORKS value: CIDR prefixes or single
// addresses, separated by commas and/or white space. "" gives nil. A
// prefix of length 0 (0.0.0.0/0, ::/0) is refused: that would be an open
// relay.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			p, err = netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network (want CIDR like 10.0.0.0/8 or an address)", f)
			}
			if p != p.Masked() {
				return nil, fmt.Errorf("%q has host bits set (did you mean %s?)", f, p.Masked())
			}
		} else {
			a, err := netip.ParseAddr(strings.Trim(f, "[]"))
			if err != nil {
				return nil, fmt.Errorf("%q is not a network (want CIDR like 10.0.0.0/8 or an address)", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() > 96 {
			// Clients are compared as plain IPv4 addresses.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 || (p.Addr().Is4In6() && p.Bits() <= 96) {
			return nil, fmt.Errorf("%q matches every client: relayq is never an open relay (use client AUTH instead)", f)
		}
		out = append(out, p)
	}
	return out, nil
}
