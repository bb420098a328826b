package listener

import (
	"net"
	"os"

	"github.com/relayq/relayq/internal/unixsock"
)

// ListenUnix creates the submission socket at path for ServeUnix, with
// permission bits perm (0666: every local user may submit; 0660 with a
// group: only its members) and group gid (-1: leave the daemon's group).
// The directory is created (0755) when missing. A stale socket left by a
// dead daemon is replaced; a socket another process still answers on is
// not (an error: another daemon runs), nor is anything that is not a
// socket (unixsock.Listen).
func ListenUnix(path string, perm os.FileMode, gid int) (*net.UnixListener, error) {
	return unixsock.Listen("submission socket", path, perm, gid)
}
