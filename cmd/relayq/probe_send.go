package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/smarthost"
	"github.com/relayq/relayq/submit"
)

// probeSendSender is the envelope sender of `relayq probe -send`: -sender,
// else RELAYQ_SENDER_REWRITE (the address a relay that checks senders
// wants), else root@RELAYQ_DOMAIN.
func probeSendSender(cfg *config.Config, sender string) string {
	if sender != "" {
		return sender
	}
	if cfg.SenderRewrite != "" {
		return cfg.SenderRewrite
	}
	dom := cfg.Domain
	if dom == "" {
		dom, _ = os.Hostname()
	}
	return "root@" + dom
}

// probeSend sends one test message to rcpt through the relay, as delivery
// does (TLS, AUTH, MAIL, RCPT, DATA), and prints the relay's reply, which
// names its queue ID. The message is not queued: its outcome is printed,
// never retried or bounced. Exit: 0 delivered, 69 refused, 75 deferred.
func probeSend(c *smarthost.Client, w io.Writer, cfg *config.Config, sender, rcpt string) int {
	from := probeSendSender(cfg, sender)
	host, _ := os.Hostname()
	now := time.Now()
	dom := from[strings.LastIndexByte(from, '@')+1:]
	body := "From: " + from + "\r\nTo: " + rcpt + "\r\nSubject: relayq probe test message\r\n" +
		"Date: " + now.Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\nMessage-ID: " + submit.MessageID(now, dom) + "\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"This message was sent by `relayq probe -send` on " + host + " to test the whole\r\n" +
		"path to the relay: TLS, authentication and delivery. No reply is needed.\r\n"
	m := &smarthost.Message{
		ID: "probe", From: from, Recipients: []smarthost.Recipient{{Addr: rcpt}}, Size: int64(len(body)),
		Body: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil },
	}
	fmt.Fprintf(w, "sending a test message from <%s> to <%s>\n", from, rcpt)
	out, err := c.Deliver(context.Background(), m)
	r := out.Recipients[0]
	relay := out.Relay
	if relay == "" {
		relay = "no relay reached"
	}
	fmt.Fprintf(w, "test message: %s by %s: %s\n", r.Status, relay, r.Reply.String())
	if err != nil && r.Code == 0 {
		fmt.Fprintf(w, "  %v\n", err)
	}
	switch r.Status {
	case smarthost.Delivered:
		fmt.Fprintf(w, "the relay accepted it; its reply above names its queue ID\n")
		return exOK
	case smarthost.Bounced:
		return exUnavail
	}
	return exTempFail
}
