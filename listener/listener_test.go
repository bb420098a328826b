package listener

import (
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestQueueLoopback(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"SIZE", "DSN", "SMTPUTF8", "8BITMIME"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("extension %s not offered", ext)
		}
	}
	if _, p := c.Extension("SIZE"); p != "10240000" {
		t.Errorf("SIZE %q, want 10240000", p)
	}
	if err := c.Mail("a@example.com", &smtp.MailOptions{Body: smtp.Body8BitMIME, Return: smtp.DSNReturnHeaders, EnvelopeID: "env+1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure}, OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "b@example.org"}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: hi\r\n\r\nbody\r\n.dot\r\n"))
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusText != "2.0.0 Ok: queued as TESTID000001" {
		t.Errorf("reply %q", resp.StatusText)
	}
	msgs := k.all()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.env.From != "a@example.com" || !m.env.Body8Bit || m.env.Ret != "HDRS" || m.env.EnvID != "env+1" {
		t.Errorf("envelope %+v", m.env)
	}
	if len(m.env.Recipients) != 1 || m.env.Recipients[0].Notify != "SUCCESS,FAILURE" || m.env.Recipients[0].ORcpt != "RFC822;b@example.org" {
		t.Errorf("recipients %+v", m.env.Recipients)
	}
	if !strings.HasPrefix(m.body, "Received: from client.test ([127.0.0.1])\r\n\tby relay.test (relayq) with ESMTP;\r\n\t") {
		t.Errorf("body starts %q", m.body)
	}
	if !strings.HasSuffix(m.body, "\r\nSubject: hi\r\n\r\nbody\r\n.dot\r\n") {
		t.Errorf("body ends %q", m.body)
	}
	if !strings.HasPrefix(m.env.Origin, "127.0.0.1:") {
		t.Errorf("origin %q", m.env.Origin)
	}
}
