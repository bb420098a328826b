#!/usr/bin/env bash
# stop.sh DIR — stop the test smarthost that start.sh DIR started.
#
# Stops exactly that instance: the Postfix master whose PID is in
# DIR/queue/pid/master.pid (SIGTERM, as `postfix -c DIR/etc stop` does) and
# the Dovecot master whose PID is in its own base_dir
# (DIR/dovecot/run/master.pid). Waits until both masters are gone. Safe to run twice, or on a half-started instance.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: stop.sh DIR" >&2; exit 64; }
[ -d "$1" ] || { echo "stop.sh: no such directory: $1" >&2; exit 1; }
DIR=$(cd "$1" && pwd -P)
rc=0

# pid_alive PID COMM: true while PID runs the expected program (guards
# against a recycled PID).
pid_alive() {
	[ -n "$1" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

wait_gone() { # pid comm what
	local _
	for _ in $(seq 1 100); do
		pid_alive "$1" "$2" || return 0
		sleep 0.1
	done
	echo "stop.sh: $3 (pid $1) still running after 10 s; sending SIGKILL" >&2
	kill -KILL "$1" 2>/dev/null || true
	return 1
}

pf_pid=
if [ -r "$DIR/queue/pid/master.pid" ]; then
	pf_pid=$(tr -d ' \n' <"$DIR/queue/pid/master.pid")
fi
dc_pid=
if [ -r "$DIR/dovecot/run/master.pid" ]; then
	dc_pid=$(tr -d ' \n' <"$DIR/dovecot/run/master.pid")
fi

# SIGTERM to the Postfix master is what `postfix stop` sends (it then polls
# for up to 5 s); sending it ourselves and waiting on the PID is quicker.
# The master takes its children (smtpd, postlogd, ...) down with it.
if pid_alive "$pf_pid" master; then
	kill -TERM "$pf_pid" 2>/dev/null || true
fi
if pid_alive "$dc_pid" dovecot; then
	kill -TERM "$dc_pid" 2>/dev/null || true
fi
if pid_alive "$pf_pid" master; then
	wait_gone "$pf_pid" master "postfix master" || rc=1
fi
if pid_alive "$dc_pid" dovecot; then
	wait_gone "$dc_pid" dovecot "dovecot master" || rc=1
fi
exit $rc
