package smarthost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestParseRelays(t *testing.T) {
	cases := []struct {
		in   string
		want []Relay
		err  string
	}{
		{"[smtp.example.com]:587", []Relay{{Spec: "[smtp.example.com]:587", Host: "smtp.example.com", Port: 587}}, ""},
		{"[smtp.example.com]", []Relay{{Spec: "[smtp.example.com]", Host: "smtp.example.com", Port: 25}}, ""},
		{"example.com", []Relay{{Spec: "example.com", Host: "example.com", Port: 25, MX: true}}, ""},
		{"Example.COM.:submission", []Relay{{Spec: "Example.COM.:submission", Host: "example.com", Port: 587, MX: true}}, ""},
		{"[::1]:587", []Relay{{Spec: "[::1]:587", Host: "::1", Port: 587}}, ""},
		{"[ipv6:2001:db8::1]:465", []Relay{{Spec: "[ipv6:2001:db8::1]:465", Host: "2001:db8::1", Port: 465}}, ""},
		{"192.0.2.1:2525", []Relay{{Spec: "192.0.2.1:2525", Host: "192.0.2.1", Port: 2525}}, ""},
		{"[a.example]:587, b.example:smtps\t[c.example]", []Relay{
			{Spec: "[a.example]:587", Host: "a.example", Port: 587},
			{Spec: "b.example:smtps", Host: "b.example", Port: 465, MX: true},
			{Spec: "[c.example]", Host: "c.example", Port: 25},
		}, ""},
		{"", nil, "no relay host"},
		{" , ", nil, "no relay host"},
		{"[a.example", nil, "missing ']'"},
		{"[a.example]x", nil, "unexpected"},
		{"[a.example]:", nil, "empty port"},
		{"a.example:0", nil, "bad port"},
		{"a.example:99999", nil, "bad port"},
		{"a.example:pop3", nil, "bad port"},
		{"2001:db8::1", nil, "brackets"},
		{"a..example", nil, "bad host name"},
		{"a/b", nil, "bad host name"},
		{"[]:25", nil, "empty host"},
	}
	for _, tc := range cases {
		got, err := ParseRelays(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRelays(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRelays(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseRelays(f *testing.F) {
	for _, s := range []string{"[smtp.example.com]:587", "a.example", "[::1]:25", "[ipv6:::1]", "a:b:c", "[x]:smtp, y:25"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseRelays(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Host == "" || r.Port < 1 || r.Port > 65535 {
				t.Fatalf("%q: bad relay %+v", s, r)
			}
			if strings.ContainsAny(r.Host, " ,[]/\r\n") {
				t.Fatalf("%q: host %q", s, r.Host)
			}
			// Every parsed entry parses again to itself.
			again, err := ParseRelays(r.Spec)
			if err != nil || len(again) != 1 || again[0] != r {
				t.Fatalf("%q: re-parse of %q = %+v, %v", s, r.Spec, again, err)
			}
		}
	})
}

func TestResolve(t *testing.T) {
	res := &fakeResolver{
		mx: map[string][]*net.MX{
			"mx.example":   {{Host: "a.mx.example.", Pref: 10}, {Host: "b.mx.example.", Pref: 20}},
			"null.example": {{Host: ".", Pref: 0}},
		},
		hosts: map[string][]string{
			"a.mx.example":  {"192.0.2.1", "2001:db8::1"},
			"b.mx.example":  {"192.0.2.2"},
			"plain.example": {"192.0.2.9"},
			"mx.example":    {"192.0.2.99"},
			"relay.example": {"192.0.2.7"},
		},
	}
	cases := []struct {
		relay string
		want  []string
		err   string
	}{
		{"mx.example:587", []string{"a.mx.example[192.0.2.1]:587", "a.mx.example[2001:db8::1]:587", "b.mx.example[192.0.2.2]:587"}, ""},
		{"[mx.example]:587", []string{"mx.example[192.0.2.99]:587"}, ""},
		{"plain.example", []string{"plain.example[192.0.2.9]:25"}, ""},
		{"[192.0.2.5]:465", []string{"192.0.2.5[192.0.2.5]:465"}, ""},
		{"null.example", nil, "null MX"},
		{"[missing.example]", nil, "address lookup"},
	}
	for _, tc := range cases {
		rs, err := ParseRelays(tc.relay)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := resolve(context.Background(), res, rs[0])
		if tc.err != "" {
			var de *dnsError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &de) {
				t.Errorf("%s: err %v, want %q", tc.relay, err, tc.err)
			}
			continue
		}
		var got []string
		for _, x := range tg {
			got = append(got, x.String())
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.relay, got, err, tc.want)
		}
	}
	// A temporary MX lookup failure is an error, not a fallback to A.
	tmp := &fakeResolver{mxErr: &net.DNSError{Err: "timeout", Name: "mx.example", IsTimeout: true}, hosts: res.hosts}
	rs, _ := ParseRelays("mx.example")
	if _, err := resolve(context.Background(), tmp, rs[0]); err == nil {
		t.Error("temporary MX failure fell back to address records")
	}
}

// unstuff reverses dot-stuffing of a DATA stream and checks it ends with
// the terminator; it returns the body.
func unstuff(t *testing.T, wire string) string {
	t.Helper()
	if !strings.HasSuffix(wire, "\r\n.\r\n") && wire != ".\r\n" {
		t.Fatalf("no terminator: %q", wire)
	}
	body := strings.TrimSuffix(wire, ".\r\n")
	lines := strings.SplitAfter(body, "\r\n")
	var b strings.Builder
	for _, l := range lines {
		if l == ".\r\n" {
			t.Fatalf("early terminator inside %q", wire)
		}
		b.WriteString(strings.TrimPrefix(l, "."))
	}
	return b.String()
}

func TestDotWriter(t *testing.T) {
	cases := []struct{ in, wire string }{
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
		{"..x\r\n", "...x\r\n.\r\n"},
		{"no end", "no end\r\n.\r\n"},
		{"bare\nlf\n", "bare\r\nlf\r\n.\r\n"},
		{"a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
		{"stray\rcr\r\n", "stray cr\r\n.\r\n"},
		{"end cr\r", "end cr \r\n.\r\n"},
		{"", ".\r\n"},
		{strings.Repeat("a", 998) + "\r\n", strings.Repeat("a", 998) + "\r\n.\r\n"},
		{strings.Repeat("a", 999) + "\r\n", strings.Repeat("a", 998) + "\r\n a\r\n.\r\n"},
		{strings.Repeat("b", 2000), strings.Repeat("b", 998) + "\r\n " + strings.Repeat("b", 997) + "\r\n bbbbb\r\n.\r\n"},
		{"." + strings.Repeat("c", 997) + "d\r\n", ".." + strings.Repeat("c", 996) + "\r\n cd\r\n.\r\n"},
	}
	for _, tc := range cases {
		for _, chunk := range []int{1, 2, 3, 1000} {
			var buf bytes.Buffer
			bw := bufio.NewWriter(&buf)
			d := newDotWriter(bw, nil)
			in := []byte(tc.in)
			for len(in) > 0 {
				n := min(chunk, len(in))
				d.Write(in[:n])
				in = in[n:]
			}
			if err := d.finish(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.wire {
				t.Errorf("%q (chunks of %d): wire %q, want %q", tc.in, chunk, buf.String(), tc.wire)
			}
		}
	}
}

func FuzzDotWriter(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\nb", ".", "\r\n.\r\n", "x\n.\n", "\r.\r", strings.Repeat("x", 3000), "." + strings.Repeat(".", 1200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		d := newDotWriter(bw, nil)
		d.Write([]byte(s))
		d.finish()
		wire := buf.String()
		// Only CRLF line ends on the wire; no bare CR or LF.
		if strings.Count(wire, "\n") != strings.Count(wire, "\r\n") || strings.Count(wire, "\r") != strings.Count(wire, "\r\n") {
			t.Fatalf("%q: bare CR or LF on the wire: %q", s, wire)
		}
		for _, l := range strings.SplitAfter(wire, "\r\n") {
			if len(l) > 1000 {
				t.Fatalf("%q: wire line of %d octets", s, len(l))
			}
		}
		body := unstuff(t, wire)
		// The body is the input with line ends normalised and long lines
		// folded (998 octets on the wire, counting a stuffed dot).
		norm := strings.ReplaceAll(s, "\r\n", "\n")
		norm = strings.ReplaceAll(norm, "\r", " ")
		var want strings.Builder
		lines := strings.Split(norm, "\n")
		if strings.HasSuffix(norm, "\n") || norm == "" {
			lines = lines[:len(lines)-1]
		}
		for _, l := range lines {
			n := 0
			for i := 0; i < len(l); i++ {
				if n >= 998 {
					want.WriteString("\r\n ")
					n = 1
				}
				if n == 0 && l[i] == '.' {
					n++ // the stuffed dot counts on the wire
				}
				want.WriteByte(l[i])
				n++
			}
			want.WriteString("\r\n")
		}
		if body != want.String() {
			t.Fatalf("%q: body %q, want %q", s, body, want.String())
		}
	})
}

func TestXtextAndDSNParams(t *testing.T) {
	cases := []struct {
		r    Recipient
		want string
	}{
		{Recipient{Notify: "success,failure", ORcpt: "rfc822;a+b@x"}, " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@x"},
		{Recipient{Notify: "NEVER"}, " NOTIFY=NEVER"},
		{Recipient{Notify: "NEVER,SUCCESS"}, ""},
		{Recipient{Notify: "DELAY,DELAY"}, ""},
		{Recipient{ORcpt: "noaddrtype"}, ""},
		{Recipient{}, ""},
	}
	for _, tc := range cases {
		if got := dsnRcptParams(tc.r); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestParseEHLO(t *testing.T) {
	got := parseEHLO([]string{"relay.test greets you", "size 1000", "AUTH PLAIN  LOGIN", "", "8BITMIME", "auth=login plain"})
	want := map[string]string{"SIZE": "1000", "AUTH": "PLAIN  LOGIN", "8BITMIME": "", "AUTH=LOGIN": "plain"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseEHLO = %q, want %q", got, want)
	}
	c := &conn{ext: got}
	if c.maxSize() != 1000 || !reflect.DeepEqual(c.authMechs(), []string{"PLAIN", "LOGIN"}) {
		t.Errorf("maxSize %d mechs %q", c.maxSize(), c.authMechs())
	}
	for _, v := range []string{"", "x", "-5", "99999999999999999999"} {
		if n := (&conn{ext: map[string]string{"SIZE": v}}).maxSize(); n != 0 {
			t.Errorf("SIZE %q → %d, want 0 (no limit)", v, n)
		}
	}
}

func FuzzParseEHLO(f *testing.F) {
	f.Add("relay\nSIZE 10\nAUTH PLAIN\nSTARTTLS")
	f.Add("x\n\n \nsize -1")
	f.Fuzz(func(t *testing.T, s string) {
		ext := parseEHLO(strings.Split(s, "\n"))
		for k, v := range ext {
			if k == "" || k != strings.ToUpper(k) || strings.ContainsAny(k, " ") || v != strings.TrimSpace(v) {
				t.Fatalf("%q: bad entry %q=%q", s, k, v)
			}
		}
		c := &conn{ext: ext}
		if c.maxSize() < 0 {
			t.Fatalf("negative size")
		}
		for _, m := range c.authMechs() {
			if m == "" || m != strings.ToUpper(m) {
				t.Fatalf("mech %q", m)
			}
		}
	})
}

func TestImplicit(t *testing.T) {
	for _, tc := range []struct {
		in          string
		want        Implicit
		on25, on465 bool
	}{
		{"", ImplicitAuto, false, true},
		{"auto", ImplicitAuto, false, true},
		{"YES", ImplicitAlways, true, true},
		{"no", ImplicitNever, false, false},
	} {
		got, err := ParseImplicit(tc.in)
		if err != nil || got != tc.want || got.OnPort(25) != tc.on25 || got.OnPort(465) != tc.on465 {
			t.Errorf("%q: %v %v, on 25 %v, on 465 %v", tc.in, got, err, got.OnPort(25), got.OnPort(465))
		}
	}
	if _, err := ParseImplicit("sometimes"); err == nil {
		t.Error("ParseImplicit accepted sometimes")
	}
}

// countingResolver counts the lookups that reach it.
type countingResolver struct {
	fakeResolver
	n int
}

func (c *countingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	c.n++
	return c.fakeResolver.LookupMX(ctx, name)
}

func (c *countingResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	c.n++
	return c.fakeResolver.LookupHost(ctx, host)
}

// TestSpecialUseResolver: names under .invalid (RFC 6761 §6.4) never
// reach the resolver and are not found; other names are asked.
func TestSpecialUseResolver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		asked bool
	}{
		{"nosuch.invalid", false},
		{"SMTP.Example.INVALID.", false},
		{"invalid", false},
		{"relay.test", true},
		{"invalid.example.com", true},
		{"notinvalid", true},
	} {
		rec := &countingResolver{fakeResolver: fakeResolver{hosts: map[string][]string{"relay.test": {"127.0.0.1"}}}}
		r := SpecialUseResolver(rec)
		_, herr := r.LookupHost(context.Background(), tc.name)
		_, merr := r.LookupMX(context.Background(), tc.name)
		if asked := rec.n == 2; asked != tc.asked {
			t.Errorf("%s: asked the resolver %d times, want asked=%v", tc.name, rec.n, tc.asked)
		}
		if !tc.asked {
			for _, err := range []error{herr, merr} {
				var de *net.DNSError
				if !errors.As(err, &de) || !de.IsNotFound {
					t.Errorf("%s: %v, want a not-found DNSError", tc.name, err)
				}
			}
		}
	}
}
