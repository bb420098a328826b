package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ListenUnix creates the submission socket at path for ServeUnix, with
// permission bits perm (0666: every local user may submit; 0660 with a
// group: only its members) and group gid (-1: leave the daemon's group).
// The directory is created (0755) when missing. A stale socket left by a
// dead daemon is replaced; a socket another process still answers on is
// not (an error: another daemon runs), nor is anything that is not a
// socket.
func ListenUnix(path string, perm os.FileMode, gid int) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("submission socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("submission socket %s: exists and is not a socket; not replacing it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("submission socket %s: another process is listening on it (is a daemon already running?)", path)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("submission socket %s: checking the old socket: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("submission socket %s: removing the stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("submission socket: %w", err)
	}
	// Closing the listener removes the socket file.
	ln.SetUnlinkOnClose(true)
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("submission socket %s: chown to gid %d: %w", path, gid, err)
		}
	}
	if err := os.Chmod(path, perm.Perm()); err != nil {
		ln.Close()
		return nil, fmt.Errorf("submission socket %s: chmod %04o: %w", path, perm.Perm(), err)
	}
	return ln, nil
}
