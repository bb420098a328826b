package authinfo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	osuser "os/user"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrPermission is wrapped by the error ParseFile (or ParseRelayMapFile)
// returns for a file whose owner or mode makes it unsafe to use
// (errors.Is(err, ErrPermission)).
var ErrPermission = errors.New("unsafe credentials file")

// PermError is a credentials file (or sender relay map) refused for its
// owner or mode.
type PermError struct {
	Path string
	Kind PermKind
	Gid  int    // the file's group (for PermForeignGroup)
	Msg  string // what is wrong and how to fix it
	What string // the kind of file, e.g. "sender relay map"; "" is "credentials file"
}

// PermKind says why a file was refused.
type PermKind int

// Reasons for refusing a credentials file.
const (
	PermNotRegular   PermKind = iota + 1 // not a regular file
	PermOwner                            // owned by someone else
	PermOthers                           // any access for others (a relay map: writable by others)
	PermGroupWrite                       // group-writable or -executable (a relay map: group-writable)
	PermForeignGroup                     // group-readable, and the group is not the process's
)

func (e *PermError) Error() string {
	what := e.What
	if what == "" {
		what = credentialsWhat
	}
	return fmt.Sprintf("%s %s: %s", what, e.Path, e.Msg)
}

// credentialsWhat names a credentials file in errors and log lines.
const credentialsWhat = "credentials file"

// Unwrap makes errors.Is(err, ErrPermission) true.
func (e *PermError) Unwrap() error { return ErrPermission }

// fileSig identifies a version of a file for change detection.
type fileSig struct {
	dev, ino   uint64
	size       int64
	mtime      time.Time
	ctime      int64
	mode       fs.FileMode
	uid, gid   uint32
	statFailed bool
}

func sigOf(fi fs.FileInfo) fileSig {
	s := fileSig{size: fi.Size(), mtime: fi.ModTime(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino
		s.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		s.uid, s.gid = st.Uid, st.Gid
	}
	return s
}

// ParseFile opens, checks and parses a credentials file. The file must be
// a regular file owned by the reading user or root, and neither group- nor
// world-accessible — except group-readable (not writable) when its group is
// the process's own group (like ssh with private keys, msmtp and Postfix's
// SASL_README advice). A refused file gives a *PermError wrapping
// ErrPermission; a bad line a *SyntaxError.
func ParseFile(path string) (*Map, error) {
	m, _, err := parseFile(path)
	return m, err
}

func parseFile(path string) (*Map, fileSig, error) {
	return loadFile(path, credentialsWhat, func(fi fs.FileInfo) error {
		return checkPerm(path, fi, os.Geteuid(), os.Getegid())
	}, Parse)
}

// loadFile opens path, applies check to the opened file (not to the
// name, which may change under it) and parses it. what names the kind of
// file in errors.
func loadFile[T any](path, what string, check func(fs.FileInfo) error, parse func(io.Reader, string) (*T, error)) (*T, fileSig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileSig{statFailed: true}, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileSig{statFailed: true}, fmt.Errorf("%s: %w", what, err)
	}
	sig := sigOf(fi)
	if err := check(fi); err != nil {
		return nil, sig, err
	}
	m, err := parse(f, path)
	return m, sig, err
}

// CheckPerm applies ParseFile's owner and mode rules to fi for a process
// with the given effective uid and gid.
func CheckPerm(path string, fi fs.FileInfo, euid, egid int) error {
	return checkPerm(path, fi, euid, egid)
}

func checkPerm(path string, fi fs.FileInfo, euid, egid int) error {
	st, err := checkOwner(path, "", fi, euid)
	if err != nil {
		return err
	}
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 {
		return &PermError{Path: path, Kind: PermOthers, Msg: fmt.Sprintf("accessible by others (mode %04o); run: chmod 600 %s", perm, path)}
	}
	if perm&0o070 == 0 {
		return nil
	}
	if perm&0o070 == 0o040 && int(st.Gid) == egid {
		return nil // group-readable by the process's own group only
	}
	if perm&0o030 != 0 {
		return &PermError{Path: path, Kind: PermGroupWrite, Msg: fmt.Sprintf("writable or executable by its group (mode %04o); run: chmod 600 %s", perm, path)}
	}
	return &PermError{Path: path, Kind: PermForeignGroup, Gid: int(st.Gid), Msg: fmt.Sprintf("readable by group %d, which is not relayq's own group (gid %d), mode %04o; run: chmod 600 %s (or chgrp %d %s with mode 640)", st.Gid, egid, perm, path, egid, path)}
}

// checkOwner requires a regular file owned by euid or root and returns its
// owner and group. what is PermError.What.
func checkOwner(path, what string, fi fs.FileInfo, euid int) (*syscall.Stat_t, error) {
	if !fi.Mode().IsRegular() {
		return nil, &PermError{Path: path, What: what, Kind: PermNotRegular, Msg: fmt.Sprintf("not a regular file (%s)", fi.Mode().Type())}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, &PermError{Path: path, What: what, Kind: PermOwner, Msg: "cannot read the file's owner"}
	}
	if int(st.Uid) != euid && st.Uid != 0 && (euid != 0 || int(st.Uid) != serviceUID()) {
		return nil, &PermError{Path: path, What: what, Kind: PermOwner, Msg: fmt.Sprintf("owned by uid %d, not by the reading user (uid %d) or root; run: chown %d %s", st.Uid, euid, euid, path)}
	}
	return st, nil
}

// ServiceUser is the user the packaged daemon runs as. Root also accepts
// a file it owns: the package installs the credentials file as
// relayq:relayq 0600, which the daemon reads, and root's relayq check and
// daemonless sendmail must read too (suggesting "chown 0" there would lock
// the daemon out).
const ServiceUser = "relayq"

// serviceUID is ServiceUser's uid, or -1 when there is no such user.
var serviceUID = sync.OnceValue(func() int {
	u, err := osuser.Lookup(ServiceUser)
	if err != nil {
		return -1
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return -1
	}
	return uid
})
