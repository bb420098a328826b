package config

import "time"

// Control holds the keys of the daemon's control socket and of the bounded
// spool lock wait used by every short-lived opener (CLI, detached queue run).
type Control struct {
	// ControlSocket is the daemon's control socket (queue commands).
	ControlSocket string `envconfig:"CONTROL_SOCKET" default:"/run/relayq/control.sock" desc:"unix socket of the daemon for queue commands (HTTP+JSON); without a daemon the CLI opens the spool itself"`
	// LockTimeout bounds the wait for the spool lock when no daemon answers.
	LockTimeout time.Duration `envconfig:"LOCK_TIMEOUT" default:"5s" desc:"how long a command without a daemon waits for the spool lock before giving up (sendmail then exits 75)"`
	// MailqPublic lets every local user list the queue through the daemon.
	MailqPublic bool `envconfig:"MAILQ_PUBLIC" default:"true" desc:"let every local user list the queue (mailq, queue list/stats) through the control socket, as Postfix authorized_mailq_users=anyone; false: root and the daemon user only. Changes and message details always need root or the daemon user"`
}
