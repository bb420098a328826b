package daemon

import (
	"fmt"
	"net"
)

// sdNotify sends state to systemd's notification socket (sd_notify(3)
// protocol: one datagram of newline-separated VAR=value lines on the
// AF_UNIX socket named by $NOTIFY_SOCKET; a leading '@' means the abstract
// namespace). An empty socket does nothing (not started by systemd with
// Type=notify).
func sdNotify(socket, state string) error {
	if socket == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: socket, Net: "unixgram"}
	if socket[0] == '@' {
		addr.Name = "\x00" + socket[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("notify socket %s: %w", socket, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify socket %s: %w", socket, err)
	}
	return nil
}
