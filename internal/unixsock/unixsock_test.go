package unixsock

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenReplacesOnlyStaleSockets(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "submit.sock")
	ln, err := Listen("test socket", path, 0o660, -1)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	// A live socket is not taken over.
	if _, err := Listen("test socket", path, 0o666, -1); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Fatalf("second listener: %v", err)
	}
	// A stale one (its listener gone, the file left) is replaced.
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file not left behind for the test: %v", err)
	}
	ln2, err := Listen("test socket", path, 0o666, -1)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	// Anything else is never removed.
	if err := os.WriteFile(path, []byte("not a socket"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("test socket", path, 0o666, -1); err == nil || !strings.Contains(err.Error(), "test socket "+path+": exists and is not a socket") {
		t.Fatalf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Fatal("regular file touched")
	}
}

// A socket file that cannot be checked (connecting fails with something
// other than "refused": here it belongs to a datagram socket) is left
// alone. The control socket's copy removed it.
func TestListenKeepsUncheckableSocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dgram.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := Listen("test socket", path, 0o666, -1); err == nil || !strings.Contains(err.Error(), "checking the old socket") {
		t.Fatalf("datagram socket: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("socket removed: %v", err)
	}
}

func TestPeerCred(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p.sock")
	ln, err := Listen("test socket", path, 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cred, err := PeerCred(s)
	if err != nil || int(cred.Uid) != os.Getuid() || int(cred.Pid) != os.Getpid() {
		t.Fatalf("cred %+v, %v; want uid %d pid %d", cred, err, os.Getuid(), os.Getpid())
	}
	if _, err := PeerCred(&net.TCPConn{}); err == nil {
		t.Fatal("PeerCred of a TCP connection")
	}
}
