// Package unixsock is relayq's one implementation of the two things its
// unix sockets (the submission socket and the control socket) need: a
// listener that replaces a stale socket file safely, and the peer's
// credentials (SO_PEERCRED).
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listen creates the unix socket at path with permission bits perm and
// group gid (-1: the process's group); what names the socket in errors
// ("submission socket"). The directory is created (0755) when missing.
// A socket file left by a dead process (connecting is refused) is
// replaced; a socket another process still answers on is not (an error:
// another daemon runs), nor is anything that is not a socket, nor a socket
// that cannot be checked. Closing the listener removes the file.
func Listen(what, path string, perm os.FileMode, gid int) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("%s directory: %w", what, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s %s: exists and is not a socket; not replacing it", what, path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s %s: another process is listening on it (is a daemon already running?)", what, path)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s %s: checking the old socket: %w", what, path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%s %s: removing the stale socket: %w", what, path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ln.SetUnlinkOnClose(true)
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s %s: chown to gid %d: %w", what, path, gid, err)
		}
	}
	if err := os.Chmod(path, perm.Perm()); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s %s: chmod %04o: %w", what, path, perm.Perm(), err)
	}
	return ln, nil
}

// PeerCred reads the credentials of the process at the other end of a unix
// socket connection (SO_PEERCRED: its pid, uid and gid when it connected).
func PeerCred(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("%T is not a unix socket connection", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("peer credentials (SO_PEERCRED): %w", cerr)
	}
	return cred, nil
}
