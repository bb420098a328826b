package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/relayq/relayq/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	arrival = time.Date(2026, 11, 17, 9, 30, 0, 0, time.UTC)
	now     = time.Date(2026, 11, 22, 9, 30, 5, 0, time.UTC)
)

const original = "Received: from app (localhost [127.0.0.1])\r\n\tby host.example (relayq) with ESMTP id 0ABC\r\n" +
	"From: Alice <alice@example.com>\r\nTo: bob@example.net, carol@example.net\r\nSubject: report\r\n" +
	"Message-ID: <1@example.com>\r\n\r\nHello Bob,\r\n--BND\r\nthis line looks like our boundary.\r\n"

func failedReport() *Report {
	return &Report{
		ReportingMTA: "host.example", QueueID: "0ABCDEFGHJKM", Sender: "alice@example.com",
		Arrival: arrival, Date: now, MessageID: "dsn.0ABC@host.example", Boundary: "BND",
		Recipients: []Recipient{{
			Addr: "bob@example.net", ORcpt: "rfc822;Bob@Example.net", Action: Failed,
			Reply:     wire.Reply{Code: 550, Enhanced: "5.1.1", Text: "<bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table"},
			RemoteMTA: "smtp.example.com[192.0.2.1]:587", LastAttempt: now,
		}},
		Original: strings.NewReader(original), OriginalSize: int64(len(original)),
	}
}

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./dsn -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./dsn -update rewrites it):\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// parsed is a notice read back with go-message.
type parsed struct {
	header    message.Header
	parts     []*part
	perMsg    textproto.Header
	perRcpt   []textproto.Header
	mediaType string
	params    map[string]string
}

type part struct {
	mediaType string
	header    message.Header
	body      []byte
}

func parse(t *testing.T, raw []byte) *parsed {
	t.Helper()
	for i, line := range strings.Split(string(raw), "\n") {
		if len(line) > 1000 {
			t.Errorf("line %d is %d octets long", i+1, len(line))
		}
		if !strings.HasSuffix(line, "\r") && i < len(strings.Split(string(raw), "\n"))-1 {
			t.Errorf("line %d does not end in CRLF: %q", i+1, line)
		}
	}
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message cannot read the notice: %v", err)
	}
	p := &parsed{header: e.Header}
	p.mediaType, p.params, err = e.Header.ContentType()
	if err != nil {
		t.Fatal(err)
	}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("notice is not multipart: %s", p.mediaType)
	}
	for {
		pe, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		mt, _, _ := pe.Header.ContentType()
		body, err := io.ReadAll(pe.Body)
		if err != nil {
			t.Fatal(err)
		}
		p.parts = append(p.parts, &part{mediaType: mt, header: pe.Header, body: body})
		if mt == "message/delivery-status" || mt == "message/global-delivery-status" {
			br := bufio.NewReader(bytes.NewReader(body))
			p.perMsg, err = textproto.ReadHeader(br)
			if err != nil {
				t.Fatalf("per-message fields: %v", err)
			}
			for {
				if _, err := br.Peek(1); err != nil {
					break
				}
				h, err := textproto.ReadHeader(br)
				if err != nil {
					t.Fatalf("per-recipient fields: %v", err)
				}
				p.perRcpt = append(p.perRcpt, h)
			}
		}
	}
	return p
}

func write(t *testing.T, r *Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFailedGolden(t *testing.T) {
	t.Parallel()
	raw := write(t, failedReport())
	golden(t, "failed-full.eml", raw)
	p := parse(t, raw)
	if p.mediaType != "multipart/report" || p.params["report-type"] != "delivery-status" {
		t.Errorf("Content-Type %s %v", p.mediaType, p.params)
	}
	if got := p.header.Get("To"); got != "<alice@example.com>" {
		t.Errorf("To = %q", got)
	}
	if got := p.header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if len(p.parts) != 3 || p.parts[0].mediaType != "text/plain" || p.parts[1].mediaType != "message/delivery-status" || p.parts[2].mediaType != "message/rfc822" {
		var types []string
		for _, pt := range p.parts {
			types = append(types, pt.mediaType)
		}
		t.Fatalf("parts = %v", types)
	}
	if got := p.perMsg.Get("Reporting-MTA"); got != "dns; host.example" {
		t.Errorf("Reporting-MTA = %q", got)
	}
	if got := p.perMsg.Get("Arrival-Date"); got != "Tue, 17 Nov 2026 09:30:00 +0000" {
		t.Errorf("Arrival-Date = %q", got)
	}
	if len(p.perRcpt) != 1 {
		t.Fatalf("%d recipient groups", len(p.perRcpt))
	}
	r := p.perRcpt[0]
	want := map[string]string{
		"Final-Recipient":    "rfc822; bob@example.net",
		"Original-Recipient": "rfc822; Bob@Example.net",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Remote-MTA":         "dns; smtp.example.com",
		// the relay's reply, quoted unchanged (folding is undone by the reader)
		"Diagnostic-Code":   "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
		"Last-Attempt-Date": "Sun, 22 Nov 2026 09:30:05 +0000",
	}
	for k, v := range want {
		if got := unfold(r.Get(k)); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// The original comes back byte for byte, with the look-alike boundary
	// line defused.
	got := string(p.parts[2].body)
	if got != strings.Replace(original, "\r\n--BND\r\n", "\r\n --BND\r\n", 1) {
		t.Errorf("returned original differs:\n%q", got)
	}
}

func unfold(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "")
	return strings.ReplaceAll(s, "\t", " ")
}

func TestHeadersOnlyAndRet(t *testing.T) {
	t.Parallel()
	big := original + strings.Repeat(strings.Repeat("x", 76)+"\r\n", FullLimit/78+1)
	tests := []struct {
		name     string
		ret      string
		orig     string
		wantType string
		wantFull bool
	}{
		{"RET=HDRS", "HDRS", original, "text/rfc822-headers", false},
		{"RET=FULL small", "FULL", original, "message/rfc822", true},
		{"RET=FULL large", "full", big, "message/rfc822", true},
		{"no RET small", "", original, "message/rfc822", true},
		{"no RET large", "", big, "text/rfc822-headers", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := failedReport()
			r.Ret = tt.ret
			r.Original = strings.NewReader(tt.orig)
			r.OriginalSize = int64(len(tt.orig))
			if r.Full() != tt.wantFull {
				t.Errorf("Full() = %v", r.Full())
			}
			raw := write(t, r)
			p := parse(t, raw)
			if len(p.parts) != 3 || p.parts[2].mediaType != tt.wantType {
				t.Fatalf("third part: %v", p.parts[len(p.parts)-1].mediaType)
			}
			body := string(p.parts[2].body)
			if tt.wantFull {
				if !strings.HasSuffix(body, strings.TrimPrefix(tt.orig, original)) {
					t.Errorf("whole message not returned")
				}
			} else {
				hdr, _, _ := strings.Cut(original, "\r\n\r\n")
				if body != hdr+"\r\n" {
					t.Errorf("headers part = %q", body)
				}
			}
			if tt.name == "RET=HDRS" {
				golden(t, "failed-hdrs.eml", raw)
			}
		})
	}
}

func TestPartialAndExpiredAndDelay(t *testing.T) {
	t.Parallel()
	r := failedReport()
	r.Ret = "HDRS"
	r.EnvID = "env 1+2"
	r.Recipients = []Recipient{
		{Addr: "bob@example.net", Action: Failed, Reply: wire.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}, RemoteMTA: "smtp.example.com[192.0.2.1]:587", LastAttempt: now},
		{Addr: "dave@example.net", Action: Failed, Status: "4.4.7", Expired: true, Reply: wire.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}, RemoteMTA: "smtp.example.com[192.0.2.1]:587", LastAttempt: now},
		{Addr: "erin@example.net", Action: Failed, Status: "4.4.7", Expired: true, Reply: wire.Reply{Text: "connect to smtp.example.com[192.0.2.1]:587: connection refused"}},
	}
	raw := write(t, r)
	golden(t, "failed-partial-expired.eml", raw)
	p := parse(t, raw)
	if got := p.perMsg.Get("Original-Envelope-Id"); got != "env+201+2B2" {
		t.Errorf("Original-Envelope-Id = %q (want xtext)", got)
	}
	if len(p.perRcpt) != 3 {
		t.Fatalf("%d groups", len(p.perRcpt))
	}
	for i, want := range []struct{ status, diag string }{
		{"5.1.1", "smtp; 550 5.1.1 no such user"},
		{"4.4.7", "smtp; 451 4.3.0 try later"},
		{"4.4.7", "X-Relayq; connect to smtp.example.com[192.0.2.1]:587: connection refused"},
	} {
		if got := p.perRcpt[i].Get("Status"); got != want.status {
			t.Errorf("rcpt %d Status = %q, want %q", i, got, want.status)
		}
		if got := unfold(p.perRcpt[i].Get("Diagnostic-Code")); got != want.diag {
			t.Errorf("rcpt %d Diagnostic-Code = %q, want %q", i, got, want.diag)
		}
	}
	if p.perRcpt[2].Has("Remote-MTA") {
		t.Error("Remote-MTA given although no relay answered")
	}

	d := failedReport()
	d.Recipients[0] = Recipient{Addr: "bob@example.net", Action: Delayed, Reply: wire.Reply{Code: 421, Enhanced: "4.7.0", Text: "busy"},
		RemoteMTA: "smtp.example.com[192.0.2.1]:587", LastAttempt: now, RetryUntil: arrival.Add(120 * time.Hour)}
	d.Ret = "FULL" // a delay notice never returns the whole message
	raw = write(t, d)
	golden(t, "delayed.eml", raw)
	p = parse(t, raw)
	if got := p.header.Get("Subject"); got != "Delayed Mail (still being retried)" {
		t.Errorf("Subject = %q", got)
	}
	if p.parts[2].mediaType != "text/rfc822-headers" {
		t.Errorf("delay notice carries %s", p.parts[2].mediaType)
	}
	if got := p.perRcpt[0].Get("Will-Retry-Until"); got != "Sun, 22 Nov 2026 09:30:00 +0000" {
		t.Errorf("Will-Retry-Until = %q", got)
	}
	if got := p.perRcpt[0].Get("Action"); got != "delayed" {
		t.Errorf("Action = %q", got)
	}
}

func TestUTF8(t *testing.T) {
	t.Parallel()
	r := failedReport()
	r.Sender = "jöran@exämple.com"
	r.Recipients[0].Addr = "björn@example.net"
	r.Recipients[0].ORcpt = "utf-8;björn@example.net"
	orig := "From: jöran@exämple.com\r\nSubject: Grüße\r\n\r\nHallo\r\n"
	r.Original, r.OriginalSize, r.OriginalUTF8, r.Original8Bit = strings.NewReader(orig), int64(len(orig)), true, true
	if !r.UTF8() || !r.EightBit() {
		t.Errorf("UTF8=%v EightBit=%v", r.UTF8(), r.EightBit())
	}
	raw := write(t, r)
	p := parse(t, raw)
	if p.parts[1].mediaType != "message/global-delivery-status" || p.parts[2].mediaType != "message/global" {
		t.Errorf("types %s %s", p.parts[1].mediaType, p.parts[2].mediaType)
	}
	if got := p.perRcpt[0].Get("Final-Recipient"); got != "utf-8; björn@example.net" {
		t.Errorf("Final-Recipient = %q", got)
	}
	if got := p.perRcpt[0].Get("Original-Recipient"); got != "utf-8; björn@example.net" {
		t.Errorf("Original-Recipient = %q (utf-8-addr-unitext in a global notice)", got)
	}
	if string(p.parts[2].body) != orig {
		t.Errorf("original = %q", p.parts[2].body)
	}
}

func TestEightBitOriginal(t *testing.T) {
	t.Parallel()
	r := failedReport()
	orig := "Subject: x\r\nContent-Type: text/plain; charset=latin1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n"
	r.Original, r.OriginalSize, r.Original8Bit = strings.NewReader(orig), int64(len(orig)), true
	if r.UTF8() || !r.EightBit() {
		t.Errorf("UTF8=%v EightBit=%v", r.UTF8(), r.EightBit())
	}
	r.Ret = "HDRS"
	r.Original = strings.NewReader(orig)
	if r.EightBit() {
		t.Error("headers only of an 8-bit body need no 8BITMIME")
	}
}

func TestWants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		notify string
		action Action
		want   bool
	}{
		{"", Failed, true}, {"", Delayed, true}, {"", Relayed, false},
		{"NEVER", Failed, false}, {"NEVER", Delayed, false}, {"never", Relayed, false},
		{"SUCCESS", Failed, false}, {"SUCCESS", Relayed, true},
		{"FAILURE", Failed, true}, {"FAILURE", Delayed, false},
		{"DELAY", Delayed, true}, {"DELAY", Failed, false},
		{"SUCCESS,FAILURE,DELAY", Failed, true}, {"success, delay", Delayed, true},
		{"FAILURE", Action("weird"), false},
	}
	for _, tt := range tests {
		if got := Wants(tt.notify, tt.action); got != tt.want {
			t.Errorf("Wants(%q, %s) = %v, want %v", tt.notify, tt.action, got, tt.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(r *Report)
		want   string
	}{
		{"null sender", func(r *Report) { r.Sender = "" }, "null sender"},
		{"no mta", func(r *Report) { r.ReportingMTA = "" }, "Reporting-MTA"},
		{"no rcpts", func(r *Report) { r.Recipients = nil }, "no recipients"},
		{"crlf", func(r *Report) { r.Recipients[0].Text = "a\r\nBcc: x" }, "CR, LF"},
		{"action", func(r *Report) { r.Recipients[0].Action = "lost" }, "unknown action"},
		{"status", func(r *Report) { r.Recipients[0].Status = "6.1.1" }, "RFC 3463"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := failedReport()
			tt.change(r)
			var buf bytes.Buffer
			err := Write(&buf, r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Error("something was written for an invalid report")
			}
		})
	}
}

func TestStatusDerivation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rc   Recipient
		want string
	}{
		{Recipient{Action: Failed, Reply: wire.Reply{Code: 550}}, "5.0.0"},
		{Recipient{Action: Failed, Reply: wire.Reply{Code: 550, Enhanced: "5.7.1"}}, "5.7.1"},
		{Recipient{Action: Failed, Reply: wire.Reply{Code: 550, Enhanced: "garbage"}}, "5.0.0"},
		{Recipient{Action: Failed, Reply: wire.Reply{Code: 451}}, "4.0.0"},
		{Recipient{Action: Failed, Status: "4.4.7", Reply: wire.Reply{Enhanced: "4.3.0"}}, "4.4.7"},
		{Recipient{Action: Delayed}, "4.0.0"},
		{Recipient{Action: Relayed}, "2.0.0"},
	}
	for _, tt := range tests {
		if got := tt.rc.status(); got != tt.want {
			t.Errorf("%+v: status %q, want %q", tt.rc, got, tt.want)
		}
	}
}

func TestFoldLongReply(t *testing.T) {
	t.Parallel()
	r := failedReport()
	r.Recipients[0].Text = strings.Repeat("x", 1500) + " tail"
	raw := write(t, r)
	p := parse(t, raw) // checks every line ≤ 1000 octets
	if got := strings.ReplaceAll(unfold(p.perRcpt[0].Get("Diagnostic-Code")), " ", ""); !strings.Contains(got, strings.Repeat("x", 1500)+"tail") {
		t.Error("long reply lost in folding")
	}
}

// FuzzWrite writes notices with arbitrary reply texts, addresses and
// originals and checks that each one parses back with go-message with the
// right number of recipient groups and no line over 1000 octets.
func FuzzWrite(f *testing.F) {
	f.Add("bob@example.net", "User unknown", "Subject: x\r\n\r\nbody\r\n", 550, "HDRS")
	f.Add("björn@example.net", "Mailbox full", "From: a\r\n\r\n--x\r\n", 452, "FULL")
	f.Add("a@b", strings.Repeat("long ", 300), "no header at all", 0, "")
	f.Fuzz(func(t *testing.T, addr, text, orig string, code int, ret string) {
		r := failedReport()
		r.Recipients[0].Addr = addr
		r.Recipients[0].Text = text
		r.Recipients[0].Code = code % 1000
		r.Ret = ret
		r.Original = strings.NewReader(orig)
		r.OriginalSize = int64(len(orig))
		r.Boundary = "" // random
		var buf bytes.Buffer
		if err := Write(&buf, r); err != nil {
			if strings.ContainsAny(addr+text+ret, "\r\n\x00") || r.Recipients[0].Code < 0 {
				return
			}
			t.Fatalf("Write: %v", err)
		}
		for _, line := range strings.Split(buf.String(), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("line of %d octets", len(line))
			}
		}
		e, err := message.Read(&buf)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		mr := e.MultipartReader()
		if mr == nil {
			t.Fatal("not multipart")
		}
		n := 0
		for {
			pe, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("part: %v", err)
			}
			if mt, _, _ := pe.Header.ContentType(); strings.HasSuffix(mt, "delivery-status") {
				body, _ := io.ReadAll(pe.Body)
				if !bytes.Contains(body, []byte("Final-Recipient:")) {
					t.Fatalf("no Final-Recipient in %q", body)
				}
			}
			n++
		}
		if n != 3 {
			t.Fatalf("%d parts", n)
		}
	})
}

func TestUTF8AddrXtext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"jörg@example.net", `j\x{F6}rg@example.net`},
		{"a+b=c\\d@x", `a\x{2B}b\x{3D}c\x{5C}d@x`},
		{"smile😀@x", `smile\x{1F600}@x`},
		{"sp ace@x", `sp\x{20}ace@x`},
		{"\xff@x", `\x{FFFD}@x`},
	} {
		if got := utf8AddrXtext(tc.in); got != tc.want {
			t.Errorf("utf8AddrXtext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// sevenBitReport is a content failure of an SMTPUTF8 message with 8-bit
// header octets to a UTF-8 recipient, from an ASCII sender.
func sevenBitReport() (*Report, string) {
	r := failedReport()
	r.Recipients[0].Addr = "jörg@example.net"
	r.Recipients[0].ORcpt = "utf-8;jörg@example.net"
	r.Recipients[0].Reply = wire.Reply{Code: 554, Enhanced: "5.6.7", Text: "the relay does not offer SMTPUTF8"}
	orig := "From: Alice <alice@example.com>\r\nTo: jörg@example.net\r\nSubject: Grüße\r\n\r\nHallo Jörg\r\n"
	r.Original, r.OriginalSize, r.OriginalUTF8, r.Original8Bit = strings.NewReader(orig), int64(len(orig)), true, true
	r.Ret, r.SevenBit = "HDRS", true
	return r, orig
}

func TestSevenBit(t *testing.T) {
	t.Parallel()
	r, orig := sevenBitReport()
	if r.UTF8() || r.EightBit() {
		t.Errorf("UTF8=%v EightBit=%v, want a notice that needs neither", r.UTF8(), r.EightBit())
	}
	raw := write(t, r)
	for i, c := range raw {
		if c >= 0x80 {
			t.Fatalf("octet %#x at %d: the notice is not 7-bit:\n%s", c, i, raw)
		}
	}
	p := parse(t, raw)
	if len(p.parts) != 3 {
		t.Fatalf("%d parts", len(p.parts))
	}
	types := []string{p.parts[0].mediaType, p.parts[1].mediaType, p.parts[2].mediaType}
	if types[0] != "text/plain" || types[1] != "message/delivery-status" || types[2] != "text/rfc822-headers" {
		t.Errorf("types %v", types)
	}
	if !strings.Contains(string(p.parts[0].body), "jörg@example.net") {
		t.Errorf("text part does not decode to the address:\n%s", p.parts[0].body)
	}
	if got := p.perRcpt[0].Get("Final-Recipient"); got != `utf-8; j\x{F6}rg@example.net` {
		t.Errorf("Final-Recipient = %q", got)
	}
	if got := p.perRcpt[0].Get("Original-Recipient"); got != `utf-8; j\x{F6}rg@example.net` {
		t.Errorf("Original-Recipient = %q", got)
	}
	hdr := orig[:strings.Index(orig, "\r\n\r\n")+2]
	if string(p.parts[2].body) != hdr {
		t.Errorf("returned header decodes to %q, want %q", p.parts[2].body, hdr)
	}
}

func TestSevenBitIgnored(t *testing.T) {
	t.Parallel()
	r, _ := sevenBitReport()
	r.Sender = "jöran@exämple.com" // the notice's own recipient needs SMTPUTF8
	if !r.UTF8() {
		t.Error("a UTF-8 sender: the notice must be a global one")
	}
	r, _ = sevenBitReport()
	r.Ret = "FULL" // the whole 8-bit original cannot be 7-bit
	if !r.UTF8() || !r.EightBit() {
		t.Errorf("RET=FULL: UTF8=%v EightBit=%v", r.UTF8(), r.EightBit())
	}
}

// A header-only notice of an 8-bit original is 7-bit (it is submitted
// without BODY=8BITMIME): the header goes quoted-printable.
func TestEightBitHeaderQuoted(t *testing.T) {
	t.Parallel()
	r := failedReport()
	orig := "Subject: caf\xe9\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n"
	r.Original, r.OriginalSize, r.Original8Bit, r.Ret = strings.NewReader(orig), int64(len(orig)), true, "HDRS"
	raw := write(t, r)
	if r.EightBit() || bytes.ContainsFunc(raw, func(c rune) bool { return c >= 0x80 || c == utf8.RuneError }) {
		t.Fatalf("EightBit=%v; notice:\n%q", r.EightBit(), raw)
	}
	p := parse(t, raw)
	if want := "Subject: caf\xe9\r\nContent-Transfer-Encoding: 8bit\r\n"; string(p.parts[2].body) != want {
		t.Errorf("header decodes to %q, want %q", p.parts[2].body, want)
	}
}

func FuzzSevenBit(f *testing.F) {
	f.Add("jörg@example.net", "Subject: Grüße\r\n\r\nx\r\n")
	f.Add("a+b=c@x", "Subject: caf\xe9\r\n\r\n")
	f.Add("😀@x", strings.Repeat("X-Long: "+strings.Repeat("ü", 600)+"\r\n", 3)+"\r\n")
	f.Fuzz(func(t *testing.T, addr, orig string) {
		if strings.ContainsAny(addr, "\r\n\x00") {
			return
		}
		r := failedReport()
		r.Recipients[0].Addr = addr
		r.Original, r.OriginalSize = strings.NewReader(orig), int64(len(orig))
		r.Original8Bit, r.OriginalUTF8, r.Ret, r.SevenBit = true, true, "HDRS", true
		var buf bytes.Buffer
		if err := Write(&buf, r); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if r.UTF8() || r.EightBit() {
			t.Fatalf("UTF8=%v EightBit=%v", r.UTF8(), r.EightBit())
		}
		for i, c := range buf.Bytes() {
			if c >= 0x80 {
				t.Fatalf("octet %#x at %d", c, i)
			}
		}
		for _, line := range strings.Split(buf.String(), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("line of %d octets", len(line))
			}
		}
		if _, err := message.Read(&buf); err != nil {
			t.Fatalf("read back: %v", err)
		}
	})
}
