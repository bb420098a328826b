package smarthost

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/relayq/relayq/wire"
)

// dsnRcptParams renders NOTIFY and ORCPT (RFC 3461 §4.1, §4.2) for a
// relay that announced DSN. Values that are not valid are left out rather
// than sent malformed.
func dsnRcptParams(r Recipient) string {
	var s string
	if n := strings.ToUpper(strings.ReplaceAll(r.Notify, " ", "")); n != "" && validNotify(n) {
		s += " NOTIFY=" + n
	}
	if r.ORcpt != "" {
		typ, addr, ok := strings.Cut(r.ORcpt, ";")
		if ok && typ != "" && addr != "" && isASCII(typ) {
			s += " ORCPT=" + typ + ";" + wire.Xtext(addr)
		}
	}
	return s
}

func validNotify(n string) bool {
	if n == "NEVER" {
		return true
	}
	seen := map[string]bool{}
	for _, v := range strings.Split(n, ",") {
		switch v {
		case "SUCCESS", "FAILURE", "DELAY":
			if seen[v] {
				return false
			}
			seen[v] = true
		default:
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// needsUTF8 reports whether MAIL needs SMTPUTF8 (RFC 6531 §3.4): the
// message says so or an envelope address is not ASCII.
func needsUTF8(m *Message) bool {
	if m.SMTPUTF8 || !isASCII(m.From) {
		return true
	}
	for _, r := range m.Recipients {
		if !isASCII(r.Addr) {
			return true
		}
	}
	return false
}

// maxHeaderScan bounds the header scan of headersASCII.
const maxHeaderScan = 1 << 20

// headersASCII reports whether the message header section is all ASCII
// (RELIABILITY I5: such a message may go to a relay without SMTPUTF8).
func headersASCII(m *Message) (bool, error) {
	rc, err := m.Body()
	if err != nil {
		return false, fmt.Errorf("open body: %w", err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		n += len(line)
		if !isASCII(string(line)) {
			return false, nil
		}
		if strings.TrimRight(string(line), "\r\n") == "" && err == nil {
			return true, nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return true, nil
		}
		if n > maxHeaderScan {
			return false, nil
		}
	}
}

// safeAddr reports whether an envelope address can go into a MAIL or RCPT
// command as is: no control characters, no angle brackets, at most 256
// octets (RFC 5321 §4.5.3.1.3 path limit).
func safeAddr(a string) bool {
	if len(a) > 256 {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c < 0x20 || c == 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}
