package main

// relayq passwd: a users file line for the listener's client AUTH, so that
// a minimal container needs neither htpasswd nor doveadm.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/relayq/relayq/listener"
)

const passwdUsage = `usage: relayq passwd NAME

Reads a password and prints "NAME:bcrypt-hash", one line for the users file
of RELAYQ_SMTPD_USERS (bcrypt cost %d). On a terminal it asks twice without
echo; otherwise it reads the first line of standard input:

  printf '%%s\n' "$PASSWORD" | relayq passwd app1 >>/etc/relayq/smtpd-users

Exit: 0 ok, 64 usage, 65 empty or mismatched password, 74 read error.
`

// runPasswd is `relayq passwd NAME`.
func runPasswd(s stdio, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintf(s.out, passwdUsage, listener.HashCost)
		return exOK
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
	fmt.Fprintf(s.out, "%s:%s\n", name, hash)
	return exOK
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
