// Package wire is the SMTP wire vocabulary that relayq's client and server
// sides share: the reply type and its one-line form, a bounded reply
// reader, RFC 3463 enhanced status codes, RFC 3461 xtext, and the one
// sanitiser that makes text from the network safe to store and print. It
// imports no relayq package.
//
// # Replies
//
// A reply as read (RawReply) is its code and its text lines. Its one-line
// form (Reply, and Reply.String) is "code enhanced text": the RFC 3463
// code of the first line is split off, and the lines are joined with "; ".
// An enhanced code on a continuation line is kept as text, as Postfix's
// SMTP client keeps it, so that a notice quotes the relay's words as it
// sent them.
//
// # Bounds (RELIABILITY I2)
//
// RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets; servers in the
// wild send longer ones, so ReadReply accepts lines up to MaxLineLen octets
// and replies up to MaxLines lines, and refuses anything beyond with
// ErrTooLong: a hostile peer cannot make relayq buffer without bound.
//
// # Sanitising
//
// Sanitize is the one policy for text that came from the network or a
// caller and is stored, logged into a notice, or printed (mailq, reasons,
// header fields relayq writes): Postfix's printable(): every character
// that is not printable becomes '?', so that a hostile reply or address
// cannot forge a line of a listing or a header. White space that would
// break the line (TAB, CR, LF) becomes a space instead, so that a
// multi-line reason stays readable on one line.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Reply bounds (RELIABILITY I2).
const (
	MaxLineLen = 2048 // octets of one reply line, CRLF included
	MaxLines   = 128  // lines of one reply
)

// ErrTooLong is returned by ReadReply for a reply beyond MaxLineLen or
// MaxLines.
var ErrTooLong = errors.New("reply exceeds size limits (RFC 5321 §4.5.3.1)")

// Reply is one SMTP reply in one line: its code, its RFC 3463 enhanced
// code ("" when none) and its text. A zero Code stands for a local reason
// that no server sent; its Text is the reason.
type Reply struct {
	Code     int
	Enhanced string
	Text     string
}

// String formats the reply as the server said it: "550 5.1.1 text", with
// each empty part left out.
func (r Reply) String() string {
	var b strings.Builder
	if r.Code != 0 {
		b.WriteString(strconv.Itoa(r.Code))
	}
	for _, s := range []string{r.Enhanced, r.Text} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// Temporary reports whether r is a 4xx reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// RawReply is a reply as read: its code and its text lines (what follows
// the code and its separator, CRLF removed).
type RawReply struct {
	Code  int
	Lines []string
}

// Enhanced returns the RFC 3463 enhanced code at the start of the first
// line, or "".
func (r RawReply) Enhanced() string {
	if len(r.Lines) == 0 {
		return ""
	}
	e, _ := SplitEnhanced(r.Lines[0])
	return e
}

// Text is the reply text: the lines joined by "; ", the enhanced code of
// the first line removed.
func (r RawReply) Text() string {
	ls := make([]string, len(r.Lines))
	copy(ls, r.Lines)
	if len(ls) > 0 {
		_, ls[0] = SplitEnhanced(ls[0])
	}
	return strings.Join(ls, "; ")
}

// Reply returns the one-line form of r.
func (r RawReply) Reply() Reply {
	return Reply{Code: r.Code, Enhanced: r.Enhanced(), Text: r.Text()}
}

// String formats r as one line, e.g. "550 5.1.1 no such user".
func (r RawReply) String() string { return r.Reply().String() }

// Err returns r as the error of the command verb that got it.
func (r RawReply) Err(command string) *ReplyError {
	return &ReplyError{Command: command, Code: r.Code, Enhanced: r.Enhanced(), Text: r.Text()}
}

// ReplyError is a reply that was not the one expected: the peer's answer
// to a command, kept whole for the outcome, the DSN and the exit code.
type ReplyError struct {
	Command  string // what got the reply: a verb ("RCPT"), "greeting", "end of data"
	Code     int
	Enhanced string // RFC 3463 code from the reply, "" when none
	Text     string
}

// Error formats the reply as the peer sent it: "RCPT: 550 5.1.1 text".
func (e *ReplyError) Error() string { return e.Command + ": " + e.Reply().String() }

// Reply returns the reply of e.
func (e *ReplyError) Reply() Reply { return Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Text} }

// Temporary reports whether the reply is a 4xx reply.
func (e *ReplyError) Temporary() bool { return e.Reply().Temporary() }

// SplitEnhanced splits "5.1.1 text" into ("5.1.1", "text"); a line that
// does not start with an RFC 3463 code is returned as ("", s).
func SplitEnhanced(s string) (code, rest string) {
	f, rest, _ := strings.Cut(s, " ")
	if !IsEnhanced(f) {
		return "", s
	}
	return f, rest
}

// IsEnhanced reports whether s is an RFC 3463 status code: class 2, 4 or
// 5, then subject and detail of one to three digits each.
func IsEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// ReadReply reads one reply (RFC 5321 §4.2.1) within the bounds: lines of
// "NNN-text" ending with "NNN text" (or a bare "NNN"), the same code from
// 200 to 599 on every line, CRLF or LF terminated. A connection that ends
// inside a reply is io.ErrUnexpectedEOF.
func ReadReply(br *bufio.Reader) (RawReply, error) {
	var r RawReply
	for n := 0; ; n++ {
		if n >= MaxLines {
			return r, ErrTooLong
		}
		line, err := readLine(br)
		if err != nil {
			return r, err
		}
		if len(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' {
			return r, fmt.Errorf("malformed reply line %q", line)
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if n > 0 && code != r.Code {
			return r, fmt.Errorf("reply code changed within a multi-line reply: %d then %d", r.Code, code)
		}
		r.Code = code
		cont := false
		text := ""
		if len(line) > 3 {
			switch line[3] {
			case '-':
				cont = true
			case ' ':
			default:
				return r, fmt.Errorf("malformed reply line %q", line)
			}
			text = line[4:]
		}
		r.Lines = append(r.Lines, text)
		if !cont {
			return r, nil
		}
	}
}

// readLine reads one CRLF (or LF) terminated line of at most MaxLineLen
// octets and returns it without its line end.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > MaxLineLen {
			return "", ErrTooLong
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
