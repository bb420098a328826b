// Command dsncheck parses a delivery status notification (RFC 3464 inside
// an RFC 6522 multipart/report) from a file, with the go-message MIME
// reader, and prints what the integration tests assert on, one fact per
// line:
//
//	return-path <>
//	content-type multipart/report report-type=delivery-status
//	part 1 text/plain
//	part 2 message/delivery-status
//	part 3 text/rfc822-headers
//	reporting-mta dns; host.example
//	rcpt rfc822;a@example.net action=failed status=5.1.1 diagnostic=smtp; 550 5.1.1 no such user
//	returned-subject hello
//
// It exits 1, naming what is wrong, when the file is not a well-formed
// report: not multipart/report with report-type=delivery-status, fewer than
// two parts, no delivery-status part, a recipient group without
// Final-Recipient, Action or Status. Usage: dsncheck FILE.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dsncheck FILE")
		os.Exit(64)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "dsncheck:", err)
		os.Exit(66)
	}
	defer f.Close()
	if err := check(f, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "dsncheck: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// check parses the report in r and writes the facts to w.
func check(r io.Reader, w io.Writer) error {
	e, err := message.Read(r)
	if err != nil && !message.IsUnknownCharset(err) {
		return fmt.Errorf("read message: %w", err)
	}
	if rp := e.Header.Get("Return-Path"); rp != "" {
		fmt.Fprintf(w, "return-path %s\n", rp)
	}
	ct, params, err := e.Header.ContentType()
	if err != nil {
		return fmt.Errorf("Content-Type: %w", err)
	}
	fmt.Fprintf(w, "content-type %s report-type=%s\n", ct, params["report-type"])
	if ct != "multipart/report" || params["report-type"] != "delivery-status" {
		return fmt.Errorf("not a delivery report: %s; report-type=%q", ct, params["report-type"])
	}
	mr := e.MultipartReader()
	if mr == nil {
		return errors.New("multipart/report without parts")
	}
	n, sawStatus := 0, false
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) {
			return fmt.Errorf("part %d: %w", n+1, err)
		}
		n++
		pct, _, err := p.Header.ContentType()
		if err != nil {
			return fmt.Errorf("part %d Content-Type: %w", n, err)
		}
		fmt.Fprintf(w, "part %d %s\n", n, pct)
		switch pct {
		case "message/delivery-status", "message/global-delivery-status":
			sawStatus = true
			if err := status(p.Body, w); err != nil {
				return fmt.Errorf("part %d: %w", n, err)
			}
		case "text/rfc822-headers", "message/rfc822", "message/global", "message/global-headers":
			h, err := textproto.ReadHeader(bufio.NewReader(p.Body))
			if err != nil {
				return fmt.Errorf("part %d (returned message): %w", n, err)
			}
			fmt.Fprintf(w, "returned-subject %s\n", h.Get("Subject"))
		}
		_, _ = io.Copy(io.Discard, p.Body)
	}
	if n < 2 || !sawStatus {
		return fmt.Errorf("%d parts, delivery-status part present: %v", n, sawStatus)
	}
	return nil
}

// status prints the per-message and per-recipient fields of a
// delivery-status body: header blocks separated by blank lines.
func status(body io.Reader, w io.Writer) error {
	br := bufio.NewReader(body)
	msg, err := textproto.ReadHeader(br)
	if err != nil {
		return fmt.Errorf("per-message fields: %w", err)
	}
	if v := msg.Get("Reporting-MTA"); v != "" {
		fmt.Fprintf(w, "reporting-mta %s\n", v)
	} else {
		return errors.New("no Reporting-MTA")
	}
	rcpts := 0
	for {
		// Skip blank lines between groups.
		for {
			b, err := br.Peek(1)
			if err != nil || (b[0] != '\r' && b[0] != '\n') {
				break
			}
			_, _ = br.ReadByte()
		}
		if _, err := br.Peek(1); err != nil {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			return fmt.Errorf("recipient group %d: %w", rcpts+1, err)
		}
		rcpts++
		fr, action, st := h.Get("Final-Recipient"), h.Get("Action"), h.Get("Status")
		if fr == "" || action == "" || st == "" {
			return fmt.Errorf("recipient group %d lacks Final-Recipient, Action or Status", rcpts)
		}
		fmt.Fprintf(w, "rcpt %s action=%s status=%s diagnostic=%s\n",
			strings.ReplaceAll(fr, " ", ""), action, st, strings.Join(strings.Fields(h.Get("Diagnostic-Code")), " "))
	}
	if rcpts == 0 {
		return errors.New("no recipient groups")
	}
	return nil
}
