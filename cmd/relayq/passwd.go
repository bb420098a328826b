package main

// relayq passwd: a users file line for the listener's client AUTH, so that
// a minimal container needs neither htpasswd nor doveadm.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/internal/atomicfile"
	"github.com/relayq/relayq/listener"
)

const passwdUsage = `usage: relayq passwd [-f FILE] NAME

Reads a password and makes "NAME:bcrypt-hash", one line for the users file
of RELAYQ_SMTPD_USERS (bcrypt cost %d). On a terminal it asks twice without
echo; otherwise it reads the first line of standard input.

With -f FILE it writes the line into FILE itself: NAME's line is replaced
(or added), atomically (a temporary file renamed over FILE), and a new FILE
gets mode 0600 (an existing FILE keeps its owner and loses any group or
other permission: serve accepts only 0600 or 0400). Without -f it prints
the line.

  printf '%%s\n' "$PASSWORD" | relayq passwd -f /etc/relayq/smtpd-users app1

Exit: 0 ok, 64 usage, 65 empty or mismatched password, 73 cannot write
FILE, 74 read error.
`

// runPasswd is `relayq passwd NAME`.
func runPasswd(s stdio, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintf(s.out, passwdUsage, listener.HashCost)
		return exOK
	}
	file := ""
	if len(args) == 3 && args[0] == "-f" && args[1] != "" {
		file, args = args[1], args[2:]
	} else if len(args) == 2 && strings.HasPrefix(args[0], "-f=") && len(args[0]) > 3 {
		file, args = args[0][3:], args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintf(s.err, passwdUsage, listener.HashCost)
		return exUsage
	}
	name := args[0]
	if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(name, ": \t\r\n\x00") || strings.HasPrefix(name, "#") {
		fmt.Fprintf(s.err, "relayq passwd: user name %q: must be non-empty, must not start with '-' or '#', and must not contain ':', white space or NUL\n", name)
		return exUsage
	}
	pw, err := readPassword(s)
	if err != nil {
		fmt.Fprintf(s.err, "relayq passwd: %v\n", err)
		if errors.Is(err, errPasswordInput) {
			return exDataErr
		}
		return exIOErr
	}
	hash, err := listener.HashPassword(pw)
	if err != nil {
		fmt.Fprintf(s.err, "relayq passwd: %v\n", err)
		return exDataErr
	}
	line := fmt.Sprintf("%s:%s\n", name, hash)
	if file == "" {
		fmt.Fprint(s.out, line)
		return exOK
	}
	replaced, err := setUsersLine(file, name, line)
	if err != nil {
		fmt.Fprintf(s.err, "relayq passwd: %v\n", err)
		return exCantCrt
	}
	what := "added"
	if replaced {
		what = "replaced"
	}
	fmt.Fprintf(s.err, "relayq passwd: %s %s in %s (send SIGHUP to relayq serve to reload it)\n", what, name, file)
	return exOK
}

// setUsersLine writes path with name's line replaced by line (or line
// added at the end), atomically: a temporary file in the same directory,
// fsynced, with the old file's owner and mode less group and other bits
// (0600 and the caller's for a new file), renamed over path. It reports whether a line was replaced.
func setUsersLine(path, name, line string) (bool, error) {
	old, err := os.ReadFile(path)
	mode, uid, gid := os.FileMode(0o600), -1, -1
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return false, err
		}
		mode = fi.Mode().Perm() &^ 0o077 // serve refuses group or other access
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return false, fmt.Errorf("users file: %w", err)
	}
	var b strings.Builder
	replaced := false
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, name+":") {
			if !replaced {
				b.WriteString(line)
			}
			replaced = true
			continue
		}
		b.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteString("\n")
		}
	}
	if !replaced {
		b.WriteString(line)
	}
	if err := atomicfile.Write(path, []byte(b.String()), atomicfile.Attr{Mode: mode, UID: uid, GID: gid}); err != nil {
		return false, fmt.Errorf("users file %s: %w", path, err)
	}
	return replaced, nil
}

// errPasswordInput marks a password the user typed wrong (empty, or the
// two entries differ).
var errPasswordInput = errors.New("password")

// readPassword reads the password: from a terminal twice with echo off,
// else the first line of standard input (without its line end).
func readPassword(s stdio) (string, error) {
	if f, ok := s.in.(*os.File); ok {
		if old, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			return readTerminal(f, s.err, old)
		}
	}
	line, err := bufio.NewReader(s.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%w: empty (give it on the first line of standard input)", errPasswordInput)
	}
	return pw, nil
}

func readTerminal(f *os.File, prompt io.Writer, old *unix.Termios) (string, error) {
	fd := int(f.Fd())
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
	r := bufio.NewReader(f)
	ask := func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		line, err := r.ReadString('\n')
		fmt.Fprintln(prompt)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", fmt.Errorf("%w: empty", errPasswordInput)
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", fmt.Errorf("%w: the two entries differ", errPasswordInput)
	}
	return pw, nil
}
