package submit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/relayq/relayq/maildrop"
)

// submitDrop writes the message to the drop directory (the daemon, or the
// delivery run DropKick starts, imports it). why is the reason the socket
// was not used, for a daemon that did not answer.
func submitDrop(o Options, env Envelope, body io.Reader, why error) (ID, error) {
	d := maildrop.Envelope{From: env.From, Ret: env.Ret, EnvID: env.EnvID, Body8Bit: env.Body8Bit, SMTPUTF8: env.SMTPUTF8, Origin: env.Origin}
	for _, r := range env.Recipients {
		d.Recipients = append(d.Recipients, maildrop.Recipient{Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt})
	}
	id, err := maildrop.Write(o.DropDir, d, body)
	var tooBig *TooBigError
	switch {
	case errors.As(err, &tooBig):
		return "", fmt.Errorf("submit: %w", tooBig) // the message, not the moment: not temporary
	case errors.Is(err, maildrop.ErrInvalid):
		return "", fmt.Errorf("submit: %w: %w", ErrInvalid, err)
	case errors.Is(err, fs.ErrPermission) && o.Socket != "":
		return "", fmt.Errorf("submit: %w: %w %s", ErrTemporary, err, o.permissionHint())
	case err != nil:
		if why != nil && errors.Is(why, errNoAnswer) {
			return "", fmt.Errorf("submit: %w: %w; %w", ErrTemporary, why, err)
		}
		return "", fmt.Errorf("submit: %w: %w", ErrTemporary, err)
	}
	if o.DropKick != nil {
		o.DropKick()
	}
	return ID(id), nil
}

// permissionHint says what makes a submission work that this user may not
// write: the common case is a user other than root with no daemon running,
// or with RELAYQ_SOCKET and RELAYQ_SPOOL not set to the ones relayq uses
// for them (a forgotten export of what scripts/run printed).
func (o Options) permissionHint() string {
	return fmt.Sprintf("(no daemon answers on RELAYQ_SOCKET=%s, and this user may not write the spool RELAYQ_SPOOL=%s: start `relayq serve`, which takes mail from every user, or set RELAYQ_SOCKET and RELAYQ_SPOOL to the ones relayq uses for you, as scripts/run prints them)", o.Socket, o.SpoolPath)
}
