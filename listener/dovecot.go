package listener

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// dovecotClient checks passwords against a Dovecot auth-client socket
// (Dovecot's authentication protocol, major version 1, as Postfix's
// xsasl_dovecot does). Each check is one short connection:
//
//	S: VERSION 1 2 / MECH PLAIN plaintext / ... / SPID n / CUID n / COOKIE x / DONE
//	C: VERSION 1 2
//	C: CPID <pid>
//	C: AUTH 1 PLAIN service=smtp nologin lip=... rip=... [secured] resp=<base64>
//	S: OK 1 user=<name> ...   or   FAIL 1 [temp] reason=...
//
// Fields are separated by TAB; values escape \001, TAB and LF as
// \0011, \001t and \001n.
type dovecotClient struct {
	path    string
	timeout time.Duration
}

func (d *dovecotClient) verify(ctx context.Context, username, password string, info authInfo) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "unix", d.path)
	if err != nil {
		return "", fmt.Errorf("dovecot auth socket: %w: %w", errAuthUnavailable, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	if _, err := fmt.Fprintf(c, "VERSION\t1\t2\nCPID\t%d\n", os.Getpid()); err != nil {
		return "", fmt.Errorf("dovecot auth socket %s: %w: %w", d.path, errAuthUnavailable, err)
	}
	br := bufio.NewReaderSize(c, 4096)
	plain := false
	for {
		line, err := readDovecotLine(br)
		if err != nil {
			return "", fmt.Errorf("dovecot auth socket %s: handshake: %w: %w", d.path, errAuthUnavailable, err)
		}
		f := strings.Split(line, "\t")
		switch f[0] {
		case "VERSION":
			if len(f) < 2 || f[1] != "1" {
				return "", fmt.Errorf("dovecot auth socket %s: protocol version %q, want 1: %w", d.path, strings.Join(f[1:], "."), errAuthUnavailable)
			}
		case "MECH":
			if len(f) > 1 && strings.EqualFold(f[1], "PLAIN") {
				plain = true
			}
		}
		if f[0] == "DONE" {
			break
		}
	}
	if !plain {
		return "", fmt.Errorf("dovecot auth socket %s: PLAIN is not offered (auth_mechanisms): %w", d.path, errAuthUnavailable)
	}
	req := "AUTH\t1\tPLAIN\tservice=smtp\tnologin"
	if ip := hostOf(info.local); ip != "" {
		req += "\tlip=" + dovecotEscape(ip)
	}
	if ip := hostOf(info.remote); ip != "" {
		req += "\trip=" + dovecotEscape(ip)
	}
	if info.tls {
		req += "\tsecured"
	}
	req += "\tresp=" + base64.StdEncoding.EncodeToString(plainResponse(username, password)) + "\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return "", fmt.Errorf("dovecot auth socket %s: %w: %w", d.path, errAuthUnavailable, err)
	}
	for {
		line, err := readDovecotLine(br)
		if err != nil {
			return "", fmt.Errorf("dovecot auth socket %s: reply: %w: %w", d.path, errAuthUnavailable, err)
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 || f[1] != "1" {
			continue // not ours (or a notice)
		}
		params := map[string]string{}
		for _, p := range f[2:] {
			k, v, _ := strings.Cut(p, "=")
			params[k] = dovecotUnescape(v)
		}
		switch f[0] {
		case "OK":
			if u := params["user"]; u != "" {
				return u, nil
			}
			return username, nil
		case "FAIL":
			if _, temp := params["temp"]; temp {
				return "", fmt.Errorf("dovecot: temporary failure (%s): %w", params["reason"], errAuthUnavailable)
			}
			return "", errBadPassword
		case "CONT":
			return "", fmt.Errorf("dovecot: unexpected CONT for PLAIN with an initial response: %w", errAuthUnavailable)
		}
	}
}

// readDovecotLine reads one LF-terminated line (at most 64 KiB).
func readDovecotLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > 64*1024 {
			return "", fmt.Errorf("line longer than 64 KiB")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return ""
}

func dovecotEscape(s string) string {
	r := strings.NewReplacer("\x01", "\x011", "\t", "\x01t", "\n", "\x01n", "\r", "\x01r")
	return r.Replace(s)
}

func dovecotUnescape(s string) string {
	if !strings.Contains(s, "\x01") {
		return s
	}
	r := strings.NewReplacer("\x011", "\x01", "\x01t", "\t", "\x01n", "\n", "\x01r", "\r")
	return r.Replace(s)
}
