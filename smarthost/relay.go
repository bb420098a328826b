package smarthost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Relay is one parsed entry of the relay list.
type Relay struct {
	Spec string // as written, e.g. "[smtp.example.com]:587"
	Host string // host name or IP address, no brackets
	Port int
	MX   bool // look up MX records first (no brackets in Spec)
}

// maxAddrs bounds the addresses tried per relay entry (Postfix
// smtp_mx_address_limit is 5).
const maxAddrs = 5

// portNames are the service names accepted for the port.
var portNames = map[string]int{"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465}

// ParseRelays parses a relay list in Postfix relayhost syntax (see the
// package doc). Errors name the entry and what is wrong with it.
func ParseRelays(s string) ([]Relay, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(fields) == 0 {
		return nil, errors.New("smarthost: no relay host configured (RELAYQ_RELAYHOST is empty)")
	}
	var out []Relay
	for _, f := range fields {
		r, err := parseRelay(f)
		if err != nil {
			return nil, fmt.Errorf("smarthost: relay %q: %w", f, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRelay(f string) (Relay, error) {
	r := Relay{Spec: f, Port: 25}
	hostPart, portPart := f, ""
	if strings.HasPrefix(f, "[") {
		end := strings.IndexByte(f, ']')
		if end < 0 {
			return r, errors.New("missing ']'")
		}
		hostPart = f[1:end]
		rest := f[end+1:]
		switch {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			portPart = rest[1:]
			if portPart == "" {
				return r, errors.New("empty port after ':'")
			}
		default:
			return r, fmt.Errorf("unexpected %q after ']'", rest)
		}
		if len(hostPart) > 5 && strings.EqualFold(hostPart[:5], "ipv6:") {
			hostPart = hostPart[5:]
		}
	} else {
		r.MX = true
		if i := strings.LastIndexByte(f, ':'); i >= 0 {
			if strings.Count(f, ":") > 1 {
				return r, errors.New("an IPv6 address must be written in brackets, e.g. [::1]:587")
			}
			hostPart, portPart = f[:i], f[i+1:]
			if portPart == "" {
				return r, errors.New("empty port after ':'")
			}
		}
	}
	if hostPart == "" {
		return r, errors.New("empty host")
	}
	if portPart != "" {
		p, ok := portNames[strings.ToLower(portPart)]
		if !ok {
			n, err := strconv.Atoi(portPart)
			if err != nil || n < 1 || n > 65535 {
				return r, fmt.Errorf("bad port %q (a number 1-65535 or smtp, submission, submissions)", portPart)
			}
			p = n
		}
		r.Port = p
	}
	if ip := net.ParseIP(hostPart); ip != nil {
		r.Host = ip.String()
		r.MX = false
		return r, nil
	}
	if err := checkHostName(hostPart); err != nil {
		return r, err
	}
	r.Host = strings.TrimSuffix(strings.ToLower(hostPart), ".")
	return r, nil
}

// checkHostName accepts letter-digit-hyphen labels (RFC 1123), with '_'
// tolerated as resolvers do.
func checkHostName(h string) error {
	if len(h) > 253 {
		return errors.New("host name longer than 253 characters")
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("bad host name %q (empty or over-long label)", h)
		}
		for _, c := range l {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return fmt.Errorf("bad host name %q (character %q)", h, c)
			}
		}
	}
	return nil
}

// target is one address to connect to.
type target struct {
	relay Relay
	host  string // name the certificate is checked against (MX host for MX relays)
	addr  string // IP address
	port  int
}

// String is Postfix-style "host[addr]:port".
func (t target) String() string {
	return fmt.Sprintf("%s[%s]:%d", t.host, t.addr, t.port)
}

// dnsError marks a failed lookup (deferred, next relay).
type dnsError struct{ err error }

func (e *dnsError) Error() string { return e.err.Error() }
func (e *dnsError) Unwrap() error { return e.err }

// resolve turns a relay entry into addresses: MX records first for an
// unbracketed name (address records when there is no MX record, RFC 5321
// §5.1), address records only for [host].
func resolve(ctx context.Context, res Resolver, r Relay) ([]target, error) {
	if net.ParseIP(r.Host) != nil {
		return []target{{relay: r, host: r.Host, addr: r.Host, port: r.Port}}, nil
	}
	hosts := []string{r.Host}
	if r.MX {
		mxs, err := res.LookupMX(ctx, r.Host)
		var de *net.DNSError
		switch {
		case err == nil && len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == ""):
			return nil, &dnsError{fmt.Errorf("%s has a null MX record (RFC 7505): it accepts no mail", r.Host)}
		case err == nil && len(mxs) > 0:
			hosts = hosts[:0]
			for _, mx := range mxs {
				hosts = append(hosts, strings.TrimSuffix(strings.ToLower(mx.Host), "."))
			}
		case err == nil, errors.As(err, &de) && de.IsNotFound:
			// No MX records: the host's own addresses.
		default:
			return nil, &dnsError{fmt.Errorf("MX lookup for %s: %w", r.Host, err)}
		}
	}
	var out []target
	var lastErr error
	for _, h := range hosts {
		addrs, err := res.LookupHost(ctx, h)
		if err != nil {
			lastErr = err
			continue
		}
		for _, a := range addrs {
			if ip := net.ParseIP(a); ip != nil {
				out = append(out, target{relay: r, host: h, addr: ip.String(), port: r.Port})
			}
			if len(out) >= maxAddrs {
				return out, nil
			}
		}
	}
	if len(out) == 0 {
		if lastErr == nil {
			lastErr = fmt.Errorf("no addresses for %s", r.Host)
		}
		return nil, &dnsError{fmt.Errorf("address lookup for %s: %w", r.Host, lastErr)}
	}
	return out, nil
}

// SpecialUseResolver answers the names that RFC 6761 reserves as never
// resolving without asking DNS: "invalid" and every name under it get a
// not-found error at once (§6.4: resolvers SHOULD return an immediate
// negative answer); every other name goes to r. A typo'd or placeholder
// relay host such as smtp.example.invalid so never leaves the machine.
func SpecialUseResolver(r Resolver) Resolver { return specialUse{r} }

type specialUse struct{ r Resolver }

func (s specialUse) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if err := invalidName(name); err != nil {
		return nil, err
	}
	return s.r.LookupMX(ctx, name)
}

func (s specialUse) LookupHost(ctx context.Context, host string) ([]string, error) {
	if err := invalidName(host); err != nil {
		return nil, err
	}
	return s.r.LookupHost(ctx, host)
}

// invalidName is the not-found error for a name under "invalid", else nil.
func invalidName(name string) error {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	if n != "invalid" && !strings.HasSuffix(n, ".invalid") {
		return nil
	}
	return &net.DNSError{Err: "no such host (a name under .invalid, RFC 6761)", Name: name, IsNotFound: true}
}
