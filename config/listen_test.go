package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListenerDefaults(t *testing.T) {
	c, err := loadEnviron(nil, filepath.Join(t.TempDir(), "missing.env"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listener
	if l.SMTPDMessageSizeLimit != 10240000 || l.SMTPDRecipientLimit != 1000 || l.SMTPDHeaderSizeLimit != 102400 ||
		l.SMTPDTimeout != 300*time.Second || l.SMTPDConnectionLimit != 100 || l.MyNetworks != "" {
		t.Errorf("defaults %+v", l)
	}
	if p, err := l.SocketPerm(); err != nil || p != 0o666 {
		t.Errorf("socket perm %o, %v", p, err)
	}
}

func TestListenerValidate(t *testing.T) {
	tests := []struct {
		env  []string
		want string // "" means valid
	}{
		{[]string{"RELAYQ_MYNETWORKS=10.0.0.0/8, 192.0.2.7 2001:db8::/32"}, ""},
		{[]string{"RELAYQ_MYNETWORKS=0.0.0.0/0"}, "RELAYQ_MYNETWORKS: \"0.0.0.0/0\" matches every client"},
		{[]string{"RELAYQ_MYNETWORKS=::/0"}, "matches every client"},
		{[]string{"RELAYQ_MYNETWORKS=10.1.2.3/8"}, "has host bits set (did you mean 10.0.0.0/8?)"},
		{[]string{"RELAYQ_MYNETWORKS=example.com"}, "\"example.com\" is not a network"},
		{[]string{"RELAYQ_SMTPD_USERS=users"}, "RELAYQ_SMTPD_USERS: \"users\" is not an absolute path"},
		{[]string{"RELAYQ_SMTPD_TLS_CERT=/etc/cert.pem"}, "must be set together"},
		{[]string{"RELAYQ_SMTPD_TLS_CERT=/c.pem", "RELAYQ_SMTPD_TLS_KEY=/k.pem"}, ""},
		{[]string{"RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT=0"}, "RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT: 0 is out of range"},
		{[]string{"RELAYQ_SMTPD_LINE_LENGTH_LIMIT=512"}, "RELAYQ_SMTPD_LINE_LENGTH_LIMIT: 512 is out of range"},
		{[]string{"RELAYQ_SMTPD_TIMEOUT=10ms"}, "RELAYQ_SMTPD_TIMEOUT: 10ms is out of range"},
		{[]string{"RELAYQ_SOCKET_MODE=0660"}, ""},
		{[]string{"RELAYQ_SOCKET_MODE=rw"}, "RELAYQ_SOCKET_MODE: \"rw\" is not an octal permission"},
		{[]string{"RELAYQ_SOCKET_MODE=0066"}, "must give the owner read and write"},
	}
	for _, tt := range tests {
		err := loadProblem(loadEnviron(tt.env, filepath.Join(t.TempDir(), "missing.env")))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.env, err, tt.want)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	got, err := ParseNetworks(" 127.0.0.1,::1 10.0.0.0/8\t[2001:db8::1] ::ffff:192.0.2.0/120")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if want := "127.0.0.1/32 ::1/128 10.0.0.0/8 2001:db8::1/128 192.0.2.0/24"; strings.Join(s, " ") != want {
		t.Errorf("got %v, want %s", s, want)
	}
	if got, err := ParseNetworks(""); got != nil || err != nil {
		t.Errorf("empty: %v, %v", got, err)
	}
	if _, err := ParseNetworks("::ffff:0.0.0.0/96"); err == nil {
		t.Error("IPv4-mapped everything accepted")
	}
}

func FuzzParseNetworks(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "0.0.0.0/0", "1.2.3.4/33", "a,b c", "[::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseNetworks(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p.Bits() == 0 || p != p.Masked() {
				t.Fatalf("%q gave %v", s, p)
			}
		}
	})
}
