package listener

import (
	"bytes"
	"errors"
	"testing"
)

type seen struct{ identity, user, pass string }

func recordCheck(got *[]seen, ok bool) checkFunc {
	return func(identity, username, password string) error {
		*got = append(*got, seen{identity, username, password})
		if !ok {
			return errBadPassword
		}
		return nil
	}
}

func TestPlainServer(t *testing.T) {
	tests := []struct {
		name    string
		steps   [][]byte // responses given to Next in turn
		want    []seen
		done    bool
		errLast error
	}{
		{"initial response", [][]byte{[]byte("\x00alice\x00pw")}, []seen{{"", "alice", "pw"}}, true, nil},
		{"challenge first", [][]byte{nil, []byte("alice\x00alice\x00pw")}, []seen{{"alice", "alice", "pw"}}, true, nil},
		{"empty password kept", [][]byte{[]byte("\x00alice\x00")}, []seen{{"", "alice", ""}}, true, nil},
		{"two fields", [][]byte{[]byte("alice\x00pw")}, nil, false, errSASLSyntax},
		{"four fields", [][]byte{[]byte("a\x00b\x00c\x00d")}, nil, false, errSASLSyntax},
		{"empty user", [][]byte{[]byte("\x00\x00pw")}, nil, false, errSASLSyntax},
	}
	for _, tt := range tests {
		var got []seen
		p := &plainServer{check: recordCheck(&got, true)}
		var done bool
		var err error
		for _, s := range tt.steps {
			_, done, err = p.Next(s)
		}
		if done != tt.done || !errors.Is(err, tt.errLast) || len(got) != len(tt.want) || (len(got) == 1 && got[0] != tt.want[0]) {
			t.Errorf("%s: done %v err %v seen %+v", tt.name, done, err, got)
		}
	}
}

func TestLoginServer(t *testing.T) {
	var got []seen
	l := &loginServer{check: recordCheck(&got, true)}
	if c, done, err := l.Next(nil); string(c) != "Username:" || done || err != nil {
		t.Fatalf("step 1: %q %v %v", c, done, err)
	}
	if c, done, err := l.Next([]byte("alice")); string(c) != "Password:" || done || err != nil {
		t.Fatalf("step 2: %q %v %v", c, done, err)
	}
	if _, done, err := l.Next([]byte("pw")); !done || err != nil || got[0] != (seen{"", "alice", "pw"}) {
		t.Fatalf("step 3: %v %v %+v", done, err, got)
	}
	// Initial response carries the user name.
	got = nil
	l = &loginServer{check: recordCheck(&got, false)}
	if c, _, _ := l.Next([]byte("bob")); string(c) != "Password:" {
		t.Fatalf("initial response: %q", c)
	}
	if _, done, err := l.Next([]byte("x")); done || !errors.Is(err, errBadPassword) {
		t.Fatalf("wrong password: %v %v", done, err)
	}
	if _, _, err := l.Next([]byte("again")); err == nil {
		t.Fatal("exchange went on after its end")
	}
}

func FuzzPlainServer(f *testing.F) {
	f.Add([]byte("\x00alice\x00pw"))
	f.Add([]byte("a\x00b\x00c"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var got []seen
		p := &plainServer{check: recordCheck(&got, true)}
		_, done, err := p.Next(msg)
		if done != (err == nil) {
			t.Fatalf("done %v err %v", done, err)
		}
		if done {
			s := got[0]
			if s.user == "" || !bytes.Equal(msg, []byte(s.identity+"\x00"+s.user+"\x00"+s.pass)) {
				t.Fatalf("%q parsed as %+v", msg, s)
			}
		}
	})
}

func FuzzHasWarningFor(f *testing.F) {
	f.Add([]byte("X-Authentication-Warning: h: alice set sender to b using -f\r\n\r\n"), "X-Authentication-Warning: h: alice set sender to b using -f")
	f.Add([]byte("A:\r\n b\r\n\r\n"), "x")
	f.Fuzz(func(t *testing.T, hdr []byte, warning string) {
		hasWarningFor(hdr, warning) // must not panic
		if w := warningUser(warning); w != "" && !bytes.Contains([]byte(warning), []byte(w)) {
			t.Fatalf("user %q not in %q", w, warning)
		}
	})
}
