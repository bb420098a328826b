package listener

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// fullHeader holds the three fields the listener adds when they are
// missing; test messages that carry it are stored as sent.
const fullHeader = "From: a@example.com\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <test.1@example.com>\r\n"

// TestHeaderCompletion: mail from an SMTP client (TCP or the unix socket)
// without Date, Message-ID or From gets them at the end of its header, as
// Postfix does for local clients; fields present are never added twice;
// a message without a header gets one before its first line.
func TestHeaderCompletion(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	date := regexp.QuoteMeta("Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n")
	mid := `Message-ID: <[0-9a-z]+\.[0-9a-f]{18}@example\.net>\r\n`
	tests := []struct {
		name, from, data string
		want             string // regexp of the stored body after the Received field
	}{
		{"all missing", "a@example.com", "Subject: bare\r\n\r\nbody\r\n",
			`^Subject: bare\r\nFrom: a@example\.com\r\n` + date + mid + `\r\nbody\r\n$`},
		{"null sender", "", "Subject: n\r\n\r\nb\r\n",
			`^Subject: n\r\nFrom: MAILER-DAEMON@example\.net\r\n` + date + mid + `\r\nb\r\n$`},
		{"complete", "a@example.com", fullHeader + "Subject: c\r\n\r\nb\r\n",
			`^` + regexp.QuoteMeta(fullHeader+"Subject: c\r\n\r\nb\r\n") + `$`},
		{"only Message-ID missing", "a@example.com", "from: x@y.test\r\nDATE: Mon, 1 Dec 2026 00:00:00 +0000\r\n\r\nb\r\n",
			`^from: x@y\.test\r\nDATE: Mon, 1 Dec 2026 00:00:00 \+0000\r\n` + mid + `\r\nb\r\n$`},
		{"no header at all", "a@example.com", "just text\r\nmore: text\r\n",
			`^From: a@example\.com\r\n` + date + mid + `\r\njust text\r\nmore: text\r\n$`},
		{"folded field kept", "a@example.com", "Subject: a\r\n b\r\n\r\nx\r\n",
			`^Subject: a\r\n b\r\nFrom: a@example\.com\r\n` + date + mid + `\r\nx\r\n$`},
		{"no empty line", "a@example.com", "Subject: only\r\n",
			`^Subject: only\r\nFrom: a@example\.com\r\n` + date + mid + `\r\n$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &sink{}
			_, addr := startTCP(t, Options{Submit: k.Submit, Domain: "example.net", Now: func() time.Time { return now }})
			r := dialRaw(t, "tcp", addr)
			r.cmd("EHLO c.test", "250")
			r.cmd("MAIL FROM:<"+tt.from+">", "250")
			r.cmd("RCPT TO:<b@example.org>", "250")
			r.cmd("DATA", "354")
			r.send(tt.data + ".\r\n")
			r.expect("250")
			msgs := k.all()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			body := msgs[0].body
			if !strings.HasPrefix(body, "Received: ") {
				t.Fatalf("no Received first: %q", body)
			}
			_, after, _ := strings.Cut(body, "+0000\r\n")
			if !regexp.MustCompile(tt.want).MatchString(after) {
				t.Errorf("stored %q\nwant %s", after, tt.want)
			}
		})
	}
}

// TestHopCount: a message that already has HopCountLimit Received: fields
// is refused at the end of DATA (554 5.4.6) on the listener as by the
// sendmail command; one fewer is taken.
func TestHopCount(t *testing.T) {
	for _, n := range []int{49, 50, 51} {
		k := &sink{}
		_, addr := startTCP(t, Options{Submit: k.Submit})
		r := dialRaw(t, "tcp", addr)
		r.startData()
		r.send(strings.Repeat("Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n", n) + fullHeader + "\r\nb\r\n.\r\n")
		want := "250"
		if n >= DefaultHopCountLimit {
			want = "554 5.4.6"
		}
		r.expect(want)
		if stored := len(k.all()); (stored == 1) != (want == "250") {
			t.Errorf("%d Received: %d stored", n, stored)
		}
		r.cmd("NOOP", "250")
	}
}
