// Package sysexits is relayq's one table of exit codes (sysexits.h, as
// sendmail and Postfix use them) and its one mapping from an error to a
// code.
//
// An error chooses its own code by having a method ExitCode() int
// somewhere in its chain (the spool's, submit's, control's and the
// listener's sentinel errors do; so do sendmail's usage and data errors).
// Code also knows the standard library's kinds and SMTP replies; what it
// does not recognise gets the caller's default, which says what a failure
// means where it happened (75 for a submission: try again, nothing lost).
package sysexits

import (
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/relayq/relayq/wire"
)

// Exit codes (sysexits.h).
const (
	OK          = 0
	Usage       = 64 // EX_USAGE: bad command line
	DataErr     = 65 // EX_DATAERR: bad message, header or envelope
	NoInput     = 66 // EX_NOINPUT: an input file is missing
	NoUser      = 67 // EX_NOUSER
	Unavailable = 69 // EX_UNAVAILABLE: refused for good (5xx), no such message
	Software    = 70 // EX_SOFTWARE: internal error
	OSErr       = 71 // EX_OSERR
	CantCreate  = 73 // EX_CANTCREAT: an output file cannot be created
	IOErr       = 74 // EX_IOERR: reading or writing failed; a damaged spool
	TempFail    = 75 // EX_TEMPFAIL: not done now, try again later
	NoPerm      = 77 // EX_NOPERM: not allowed
	Config      = 78 // EX_CONFIG: bad configuration
)

// Coder is an error that chooses its exit code.
type Coder interface {
	ExitCode() int
}

// Kind is a sentinel error with an exit code: var ErrX = sysexits.Kind(...)
// gives errors.Is identity and Code its code.
type kind struct {
	msg  string
	code int
}

func (k *kind) Error() string { return k.msg }
func (k *kind) ExitCode() int { return k.code }

// Kind returns a new sentinel error with text msg and exit code code.
func Kind(msg string, code int) error { return &kind{msg: msg, code: code} }

// Code maps err to an exit code: OK for nil; the code of the first error
// in its chain with an ExitCode method; for an SMTP reply, TempFail for
// 4xx, NoPerm for 5.7.x, DataErr for 552, 5.3.4 and 5.6.x, Unavailable for
// other 5xx; TempFail for a deadline or a cancelled context; else def.
// A submission uses it with def TempFail: a spool it may not write yet is
// a reason to try again, not to give up.
func Code(err error, def int) int {
	var c Coder
	var re *wire.ReplyError
	switch {
	case err == nil:
		return OK
	case errors.As(err, &c):
		return c.ExitCode()
	case errors.As(err, &re):
		return replyCode(re)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return TempFail
	}
	return def
}

// FileCode is Code for an operation on files the operator named (a queue
// command, a map file, the daemon's start): where Code would return def,
// a missing file is NoInput and a permission error NoPerm.
func FileCode(err error, def int) int {
	if code := Code(err, -1); code != -1 {
		return code
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return NoInput
	case errors.Is(err, fs.ErrPermission):
		return NoPerm
	}
	return def
}

func replyCode(re *wire.ReplyError) int {
	switch {
	case re.Code < 500:
		return TempFail
	case strings.HasPrefix(re.Enhanced, "5.7."):
		return NoPerm
	case re.Code == 552 || strings.HasPrefix(re.Enhanced, "5.3.4") || strings.HasPrefix(re.Enhanced, "5.6."):
		return DataErr
	}
	return Unavailable
}
