package smarthost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// writeLog keeps every Write the client made on its connections, in order.
type writeLog struct {
	mu     sync.Mutex
	writes [][]byte
}

func (l *writeLog) all() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte{}, l.writes...)
}

// recDialer dials TCP and records each Write (plaintext relays only).
type recDialer struct{ log *writeLog }

func (d recDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, log: d.log}, nil
}

type recConn struct {
	net.Conn
	log *writeLog
}

func (c *recConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, append([]byte(nil), p...))
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}

// bdatClient is a client for a plaintext go-smtp relay (which offers
// PIPELINING and CHUNKING) on one connection, recording its writes.
func bdatClient(t *testing.T, srv *testServer) (*Client, *writeLog) {
	log := &writeLog{}
	c := newTestClient(t, relayFor(srv), nil, func(o *Options) {
		o.TLS = None
		o.Dialer = recDialer{log}
		o.MaxConns = 1
	})
	return c, log
}

// dataOnly makes c send DATA even where the relay offers CHUNKING, as
// RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS=chunking does, from its next
// transaction on, also on a connection it already has (the set is shared).
func dataOnly(c *Client, on bool) { c.discard["CHUNKING"] = on }

// TestDiscardEHLOKeywords: a keyword in Options.DiscardEHLO is treated as
// not offered (Postfix smtp_discard_ehlo_keywords), whatever its case:
// DATA instead of BDAT, one command per write without PIPELINING, 7-bit
// MIME without 8BITMIME; the message is delivered each way, and probe
// says what was ignored.
func TestDiscardEHLOKeywords(t *testing.T) {
	body8 := "From: a@example.org\r\nTo: b@example.com\r\nSubject: test\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"
	for _, tc := range []struct {
		discard   []string
		bdat      bool   // a BDAT command was written
		pipelined bool   // RCPT in the same write as MAIL
		mailParam string // in the MAIL command
		bodyHas   string // in what the relay received
		ignored   string // probe's line, "" for none
	}{
		{nil, true, true, "BODY=8BITMIME", "Gr\xc3\xbc\xc3\x9fe", ""},
		{[]string{"chunking"}, false, true, "BODY=8BITMIME", "Gr\xc3\xbc\xc3\x9fe", "CHUNKING"},
		{[]string{"PIPELINING", "Chunking"}, false, false, "BODY=8BITMIME", "Gr\xc3\xbc\xc3\x9fe", "PIPELINING CHUNKING"},
		{[]string{"8bitmime"}, true, true, "", "Content-Transfer-Encoding: quoted-printable", "8BITMIME"},
		{[]string{"x-not-offered"}, true, true, "BODY=8BITMIME", "Gr\xc3\xbc\xc3\x9fe", ""},
	} {
		t.Run(strings.Join(tc.discard, ","), func(t *testing.T) {
			srv := startServer(t, serverConfig{})
			log := &writeLog{}
			c := newTestClient(t, relayFor(srv), nil, func(o *Options) {
				o.TLS = None
				o.Dialer = recDialer{log}
				o.MaxConns = 1
				o.DiscardEHLO = tc.discard
			})
			m := testMessage("b@example.com")
			m.Body8Bit = true
			m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body8)), nil }
			m.Size = int64(len(body8))
			out, err := c.Deliver(context.Background(), m)
			if err != nil || out.Recipients[0].Status != Delivered {
				t.Fatalf("Deliver: %v %+v", err, out)
			}
			flight := flightOf(t, log, "a@example.org")
			var all []byte
			for _, w := range log.all() {
				all = append(all, w...)
			}
			if got := bytes.Contains(all, []byte("BDAT ")); got != tc.bdat {
				t.Errorf("BDAT written: %v, want %v", got, tc.bdat)
			}
			if got := bytes.Contains(flight, []byte("RCPT TO:")); got != tc.pipelined {
				t.Errorf("RCPT in MAIL's write: %v, want %v (%q)", got, tc.pipelined, flight)
			}
			_, mails, _, bodies, _ := srv.got.snapshot()
			if len(mails) != 1 || len(bodies) != 1 {
				t.Fatalf("relay got %d MAIL, %d bodies", len(mails), len(bodies))
			}
			if has := strings.Contains(mails[0], "BODY=8BITMIME"); has != (tc.mailParam != "") {
				t.Errorf("MAIL %q, want BODY=8BITMIME: %v", mails[0], tc.mailParam != "")
			}
			if !bytes.Contains(bodies[0], []byte(tc.bodyHas)) {
				t.Errorf("relay got %q, want it to hold %q", bodies[0], tc.bodyHas)
			}
			var report bytes.Buffer
			if r := c.Probe(context.Background(), &report, "", ""); r != ProbeOK {
				t.Fatalf("probe: %v\n%s", r, report.String())
			}
			line := "ignored (RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS): " + tc.ignored + "\n"
			if got := strings.Contains(report.String(), line); got != (tc.ignored != "") || strings.Contains(report.String(), "ignored (") != (tc.ignored != "") {
				t.Errorf("probe report, want %q: %v\n%s", line, tc.ignored != "", report.String())
			}
		})
	}
}

// flightOf is the one write that holds the message's MAIL command.
func flightOf(t *testing.T, log *writeLog, from string) []byte {
	t.Helper()
	var found []byte
	for _, w := range log.all() {
		if bytes.Contains(w, []byte("MAIL FROM:<"+from+">")) {
			found = w
		}
	}
	if found == nil {
		t.Fatalf("no write holds MAIL FROM:<%s>; writes: %q", from, log.all())
	}
	return found
}

func smtpErr(code int, enh smtp.EnhancedCode, text string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: text}
}

// TestBDATOneFlight: with PIPELINING and CHUNKING the client writes MAIL,
// every RCPT and "BDAT n LAST" with the whole body (not dot-stuffed) in
// one write, on a new and on a reused connection (then behind RSET); the
// replies give each recipient its result.
func TestBDATOneFlight(t *testing.T) {
	body := "From: a@example.org\r\nTo: b@example.com\r\nSubject: test\r\n\r\nHello.\r\n.leading dot\r\n.\r\n..two\r\nend\r\n"
	msg := func(from string, rcpts ...string) *Message {
		m := testMessage(rcpts...)
		m.From = from
		m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		m.Size = int64(len(body))
		return m
	}
	type want struct {
		status Status
		code   int
	}
	for _, tc := range []struct {
		name  string
		cfg   serverConfig
		rcpts []string
		want  []want
		err   bool
	}{
		{"all accepted", serverConfig{}, []string{"b@example.com", "c@example.com"},
			[]want{{Delivered, 250}, {Delivered, 250}}, false},
		{"one RCPT refused, the others delivered",
			serverConfig{rcpt: func(to string) error {
				if to == "bad@example.com" {
					return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
				}
				return nil
			}},
			[]string{"b@example.com", "bad@example.com", "c@example.com"},
			[]want{{Delivered, 250}, {Bounced, 550}, {Delivered, 250}}, false},
		{"every RCPT refused",
			serverConfig{rcpt: func(string) error { return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user") }},
			[]string{"b@example.com", "c@example.com"},
			[]want{{Bounced, 550}, {Bounced, 550}}, false},
		{"BDAT refused 554",
			serverConfig{data: func([]byte) error { return smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "spam") }},
			[]string{"b@example.com", "c@example.com"},
			[]want{{Bounced, 554}, {Bounced, 554}}, false},
		{"BDAT 451",
			serverConfig{data: func([]byte) error { return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try later") }},
			[]string{"b@example.com"},
			[]want{{Deferred, 451}}, true},
		{"MAIL refused",
			serverConfig{mail: func(from string) error {
				if from == "first@example.org" {
					return smtpErr(553, smtp.EnhancedCode{5, 1, 8}, "bad sender")
				}
				return nil
			}},
			[]string{"b@example.com"},
			[]want{{Bounced, 553}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.cfg)
			c, log := bdatClient(t, srv)
			out, err := c.Deliver(context.Background(), msg("first@example.org", tc.rcpts...))
			if (err != nil) != tc.err {
				t.Fatalf("Deliver: err %v, want error %v; %+v", err, tc.err, out)
			}
			for i, w := range tc.want {
				if r := out.Recipients[i]; r.Status != w.status || r.Code != w.code {
					t.Errorf("recipient %d: %v, want %v %d", i, r, w.status, w.code)
				}
			}
			f := flightOf(t, log, "first@example.org")
			wantTail := fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body)
			if !bytes.HasSuffix(f, []byte(wantTail)) {
				t.Errorf("the flight does not end in BDAT LAST and the body:\n%q", f)
			}
			for _, r := range tc.rcpts {
				if !bytes.Contains(f, []byte("RCPT TO:<"+r+">")) {
					t.Errorf("RCPT TO:<%s> not in the flight %q", r, f)
				}
			}
			if bytes.Contains(f, []byte("DATA")) {
				t.Errorf("DATA sent: %q", f)
			}
			delivered := tc.want[0].status == Delivered
			_, _, _, bodies, _ := srv.got.snapshot()
			if delivered && (len(bodies) != 1 || string(bodies[0]) != body) {
				t.Errorf("relay got %q, want the body as stored %q", bodies, body)
			}

			// The session stays usable: the next message goes on the same
			// connection, RSET first, again in one flight, and is answered.
			out, err = c.Deliver(context.Background(), msg("second@example.org", "b@example.com"))
			if out.Recipients[0].Code == 0 {
				t.Fatalf("second Deliver not answered: %v %+v", err, out)
			}
			if tc.cfg.data == nil && tc.cfg.rcpt == nil && out.Recipients[0].Status != Delivered {
				t.Errorf("second Deliver: %v %+v", err, out)
			}
			f2 := flightOf(t, log, "second@example.org")
			if !bytes.HasPrefix(f2, []byte("RSET\r\nMAIL FROM:<second@example.org>")) || !bytes.HasSuffix(f2, []byte(wantTail)) {
				t.Errorf("second flight %q", f2)
			}
			if _, _, _, _, conns := srv.got.snapshot(); conns != 1 {
				t.Errorf("%d connections, want 1 (reused)", conns)
			}
		})
	}
}

// bigBody is a body of about n octets that needs rewriting: dot lines,
// bare LF, a stray CR, no final line end (lines over 998 octets are
// re-encoded by mime7 before either path: TestChunker covers folding).
func bigBody(n int) string {
	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for i := 0; b.Len() < n; i++ {
		switch i % 7 {
		case 0:
			b.WriteString(".dot line\r\n")
		case 1:
			b.WriteString(".\r\n")
		case 2:
			b.WriteString("bare lf\n")
		case 3:
			b.WriteString("stray\rcr\r\n")
		default:
			fmt.Fprintf(&b, "line %d of the body\r\n", i)
		}
	}
	b.WriteString("no final line end")
	return b.String()
}

// TestBDATChunksAsData: a body of several chunks arrives at the relay
// exactly as the DATA path delivers it (line ends, folding), with no dot
// added or lost.
func TestBDATChunksAsData(t *testing.T) {
	body := bigBody(3*bdatChunk + 12345)
	m := func() *Message {
		m := testMessage("b@example.com")
		m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		m.Size = int64(len(body))
		return m
	}
	got := map[bool]string{}
	for _, chunking := range []bool{false, true} {
		srv := startServer(t, serverConfig{})
		c, log := bdatClient(t, srv)
		dataOnly(c, !chunking)
		out, err := c.Deliver(context.Background(), m())
		if err != nil || out.Recipients[0].Status != Delivered {
			t.Fatalf("chunking %v: %v %+v", chunking, err, out)
		}
		_, _, _, bodies, _ := srv.got.snapshot()
		if len(bodies) != 1 {
			t.Fatalf("chunking %v: %d bodies", chunking, len(bodies))
		}
		got[chunking] = string(bodies[0])
		var bdats int
		for _, w := range log.all() {
			bdats += bytes.Count(w, []byte("BDAT "))
		}
		if chunking && bdats < 4 {
			t.Errorf("%d BDAT commands for %d octets", bdats, len(body))
		}
		if !chunking && bdats != 0 {
			t.Errorf("BDAT sent with chunking off")
		}
	}
	if got[true] != got[false] {
		t.Errorf("BDAT and DATA deliver different bodies (%d, %d octets)", len(got[true]), len(got[false]))
	}
	if !strings.Contains(got[true], "\r\n.dot line\r\n.\r\nbare lf\r\nstray cr\r\n") || !strings.HasSuffix(got[true], "no final line end\r\n") {
		t.Errorf("body not normalized as for DATA: %q…", got[true][:200])
	}
}

// failingReader returns n octets of r, then an error.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk gone")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// TestBDATMidStream: a chunk refused in the middle of a large body (the
// relay's size limit) bounces with the relay's reply; a body that cannot
// be read to its end defers and no last chunk is sent (the relay keeps
// nothing). Either way the connection serves the next message.
func TestBDATMidStream(t *testing.T) {
	body := bigBody(4 * bdatChunk)
	srv := startServer(t, serverConfig{maxSize: 2 * bdatChunk})
	c, log := bdatClient(t, srv)
	m := testMessage("b@example.com")
	m.Size = 0 // no SIZE= and no precheck: the relay finds out by itself
	m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	out, err := c.Deliver(context.Background(), m)
	if r := out.Recipients[0]; err != nil || r.Status != Bounced || r.Code != 552 {
		t.Fatalf("over the relay's limit: %v %+v", err, out)
	}

	before := len(log.all())
	m = testMessage("b@example.com")
	calls := 0
	m.Body = func() (io.ReadCloser, error) {
		// The first read is the long-line scan; the one sent fails
		// after the first chunk.
		calls++
		if calls == 1 {
			return io.NopCloser(strings.NewReader(body)), nil
		}
		return io.NopCloser(&failingReader{r: strings.NewReader(body), n: bdatChunk + 100}), nil
	}
	out, err = c.Deliver(context.Background(), m)
	if r := out.Recipients[0]; err == nil || r.Status != Deferred || r.Enhanced != "4.3.0" {
		t.Fatalf("unreadable body: %v %+v", err, out)
	}
	for _, w := range log.all()[before:] {
		if bytes.Contains(w, []byte(" LAST\r\n")) {
			t.Fatalf("a last chunk was sent: %q…", w[:min(len(w), 200)])
		}
	}
	if calls != 2 {
		t.Errorf("body opened %d times, want 2", calls)
	}

	// The next message goes by DATA: go-smtp's BDAT has a race after an
	// aborted transfer (the aborted transfer's goroutine may post its
	// error to the next transfer's result channel) that is the test
	// relay's, not the client's.
	dataOnly(c, true)
	out, err = c.Deliver(context.Background(), testMessage("b@example.com"))
	if err != nil || out.Recipients[0].Status != Delivered {
		t.Fatalf("next message: %v %+v", err, out)
	}
	_, _, _, bodies, conns := srv.got.snapshot()
	if len(bodies) != 1 || conns != 1 {
		t.Errorf("relay got %d bodies on %d connections, want 1 on 1", len(bodies), conns)
	}
}

// TestChunker: the chunks, joined, are the body DATA would send without
// its dot-stuffing and terminator (line ends, a stray CR, folding), cut
// at bdatChunk octets, whatever the reads of the body.
func TestChunker(t *testing.T) {
	cross := strings.Repeat("y", bdatChunk-1) + "\r" + "\n.z\r" + strings.Repeat("w", 2*bdatChunk)
	cases := []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{".\r\n..x\r\n", ".\r\n..x\r\n"},
		{"no end", "no end\r\n"},
		{"bare\nlf\n", "bare\r\nlf\r\n"},
		{"stray\rcr\r\nend cr\r", "stray cr\r\nend cr \r\n"},
		{strings.Repeat("b", 2000), strings.Repeat("b", 998) + "\r\n " + strings.Repeat("b", 997) + "\r\n bbbbb\r\n"},
		// A dot is not stuffed, so it takes no room on the line.
		{"." + strings.Repeat("c", 997) + "\r\n", "." + strings.Repeat("c", 997) + "\r\n"},
		{cross, ""},
	}
	for i, tc := range cases {
		if tc.want == "" && tc.in != "" {
			var buf bytes.Buffer
			d := &dotWriter{w: &buf}
			d.Write([]byte(tc.in))
			d.end()
			tc.want = buf.String()
			if !strings.Contains(tc.want, "y\r\n.z w") {
				t.Fatalf("case %d: a CR at a read boundary: %q", i, tc.want[bdatChunk-5:bdatChunk+10])
			}
		}
		k := newChunker(io.NopCloser(&oneByteAt{s: tc.in, every: 7}))
		var got strings.Builder
		for n := 0; ; n++ {
			c, last, err := k.next()
			if err != nil {
				t.Fatal(err)
			}
			if !last && len(c) < bdatChunk {
				t.Errorf("case %d: chunk %d of %d octets is not the last", i, n, len(c))
			}
			got.Write(c)
			if last {
				break
			}
		}
		if got.String() != tc.want {
			t.Errorf("case %d: chunks %q, want %q", i, got.String()[:min(got.Len(), 80)], tc.want[:min(len(tc.want), 80)])
		}
	}
}

// oneByteAt reads s in short reads: one octet every 'every' reads.
type oneByteAt struct {
	s     string
	every int
	n     int
}

func (r *oneByteAt) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	r.n++
	if r.n%r.every == 0 {
		p = p[:1]
	}
	n := copy(p, r.s)
	r.s = r.s[n:]
	return n, nil
}

// TestSmallBodyReadOnce: a body up to keepBody is read from the spool once
// per attempt (scan and send), by DATA and by BDAT, and arrives whole.
func TestSmallBodyReadOnce(t *testing.T) {
	for _, chunking := range []bool{true, false} {
		srv := startServer(t, serverConfig{})
		c, _ := bdatClient(t, srv)
		dataOnly(c, !chunking)
		m := testMessage("b@example.com")
		body := "Subject: x\r\n\r\n" + strings.Repeat("y", 1200) + "\r\n.\r\n"
		m.Size = int64(len(body))
		opens := 0
		m.Body = func() (io.ReadCloser, error) {
			opens++
			return io.NopCloser(strings.NewReader(body)), nil
		}
		out, err := c.Deliver(context.Background(), m)
		if err != nil || out.Recipients[0].Status != Delivered {
			t.Fatalf("chunking %v: %v %+v", chunking, err, out)
		}
		if opens != 1 {
			t.Errorf("chunking %v: body opened %d times", chunking, opens)
		}
		_, _, _, bodies, _ := srv.got.snapshot()
		// The 1200-octet line went quoted-printable (mime7), so compare
		// what a second, streaming attempt (Size unknown) delivers.
		m2 := testMessage("b@example.com")
		m2.Size = 0
		m2.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		if out, err := c.Deliver(context.Background(), m2); err != nil || out.Recipients[0].Status != Delivered {
			t.Fatalf("streaming: %v %+v", err, out)
		}
		_, _, _, bodies2, _ := srv.got.snapshot()
		if len(bodies) != 1 || len(bodies2) != 2 || string(bodies2[1]) != string(bodies[0]) {
			t.Errorf("chunking %v: in-memory and streamed bodies differ", chunking)
		}
	}
}

// FuzzLongLines: the in-memory scan of a small body and the streaming
// scan agree on every input.
func FuzzLongLines(f *testing.F) {
	for _, s := range []string{"", "a\r\n", strings.Repeat("x", 998) + "\r\n", strings.Repeat("x", 999), strings.Repeat("x", 998) + "\r\r\n", "a\n" + strings.Repeat("b", 1000) + "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
		mem := &Message{Size: int64(len(s)), Body: open}
		str := &Message{Size: 0, Body: open}
		a, err1 := mem.scanLongLines()
		b, err2 := str.scanLongLines()
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("%q: in memory %v (%v), streaming %v (%v)", s, a, err1, b, err2)
		}
	})
}
