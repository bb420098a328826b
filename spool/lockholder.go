package spool

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/wire"
)

// lockHolder describes who holds the flock on path, from /proc/locks, for
// the ErrLocked message; it never fails, it says "holder unknown" instead.
func lockHolder(path string) string {
	const unknown = "holder unknown; is `relayq serve` running?"
	fi, err := os.Stat(path)
	if err != nil {
		return unknown
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return unknown
	}
	pid := flockHolder("/proc/locks", uint64(st.Dev), st.Ino)
	if pid <= 0 {
		return unknown
	}
	desc := fmt.Sprintf("held by pid %d", pid)
	if cmd := procCmdline(pid); cmd != "" {
		desc += " (" + cmd + ")"
	}
	return desc
}

// flockHolder returns the pid holding a granted FLOCK on inode ino, per the
// locks file (format of /proc/locks), or 0.
func flockHolder(locksFile string, dev, ino uint64) int {
	wantDev := fmt.Sprintf("%02x:%02x", unix.Major(dev), unix.Minor(dev))
	f, err := os.Open(locksFile)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters have "->".
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		d := strings.Split(fields[5], ":")
		if len(d) != 3 {
			continue
		}
		if d[0]+":"+d[1] != wantDev {
			continue
		}
		if n, err := strconv.ParseUint(d[2], 10, 64); err != nil || n != ino {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// procCmdline returns the command line of pid, space-separated and cut to a
// readable length, or "".
func procCmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return ""
	}
	// Any process can put anything in its argv: a terminal escape must
	// not reach the user's terminal through the ErrLocked message.
	s := strings.TrimSpace(wire.Sanitize(strings.ReplaceAll(string(b), "\x00", " ")))
	if r := []rune(s); len(r) > 80 {
		s = string(r[:77]) + "..."
	}
	return s
}
