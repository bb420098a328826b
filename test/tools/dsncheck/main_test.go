package main

import (
	"bytes"
	"strings"
	"testing"
)

const report = "Return-Path: <>\n" +
	"From: MAILER-DAEMON@relayq.test\n" +
	"Subject: Undelivered Mail Returned to Sender\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"B\"\n" +
	"\n" +
	"--B\nContent-Type: text/plain; charset=us-ascii\n\nCould not deliver.\n" +
	"--B\nContent-Type: message/delivery-status\n\n" +
	"Reporting-MTA: dns; relayq.test\nArrival-Date: Wed, 2 Dec 2026 04:00:00 +0000\n\n" +
	"Final-Recipient: rfc822; reject-a@example.net\nAction: failed\nStatus: 5.1.1\n" +
	"Diagnostic-Code: smtp; 550 5.1.1 test bed:\n no such user\n\n" +
	"--B\nContent-Type: text/rfc822-headers\n\nSubject: hello\nFrom: a@example.org\n\n" +
	"--B--\n"

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	if err := check(strings.NewReader(report), &out); err != nil {
		t.Fatal(err)
	}
	want := "return-path <>\n" +
		"content-type multipart/report report-type=delivery-status\n" +
		"part 1 text/plain\n" +
		"part 2 message/delivery-status\n" +
		"reporting-mta dns; relayq.test\n" +
		"rcpt rfc822;reject-a@example.net action=failed status=5.1.1 diagnostic=smtp; 550 5.1.1 test bed: no such user\n" +
		"part 3 text/rfc822-headers\n" +
		"returned-subject hello\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestCheckMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"not a report":     "Content-Type: text/plain\n\nhello\n",
		"wrong type":       strings.Replace(report, "report-type=delivery-status", "report-type=disposition-notification", 1),
		"no status part":   strings.Replace(report, "message/delivery-status", "text/plain", 1),
		"no action":        strings.Replace(report, "Action: failed\n", "", 1),
		"no reporting mta": strings.Replace(report, "Reporting-MTA: dns; relayq.test\n", "", 1),
	} {
		if err := check(strings.NewReader(in), &bytes.Buffer{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
