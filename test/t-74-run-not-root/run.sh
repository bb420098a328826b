#!/usr/bin/env bash
# t-74: scripts/run as a user who is not root, as README's quick start "As
# another user" has it. (1) No RELAYQ_CONFIG, the settings in the
# environment: serve starts (a missing /etc/relayq/relayq.env is no error),
# with the spool and sockets in ~/.local/state/relayq, and prints the export
# line that sendmail and mailq then use: a message sent with it arrives once.
# (2) An own RELAYQ_CONFIG whose file names RELAYQ_SPOOL: the file's spool
# is used (not overridden, not /var/spool/relayq) and the sockets go to the
# state directory; the export line carries RELAYQ_CONFIG. scripts/run sees a
# uid that is not 0 through an `id` earlier in PATH (the build runs with the
# scenario's own, warm Go cache); everything else is the real script,
# binaries and smarthost.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

RELAY="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
mkdir -p "$T/fakebin" "$T/home"
cat >"$T/fakebin/id" <<'ID'
#!/bin/sh
[ "$1" = -u ] && { echo 65534; exit 0; }
exec /usr/bin/id "$@"
ID
chmod 0755 "$T/fakebin/id"
(umask 077 && printf '%s %s:%s\n' "$RELAY" "$SMARTHOST_USER" "$SMARTHOST_PASS" >"$T/authinfo")
STATE=$T/home/.local/state/relayq

# run_as_user LOG VAR=VALUE... — scripts/run in the background with only
# PATH, HOME, the Go settings and the given variables; sets RUN_PID and
# waits for "relayq serve started" in LOG.
run_as_user() {
	local log=$1 i
	shift
	env -i PATH="$T/fakebin:$PATH" HOME="$T/home" GOCACHE="$(go env GOCACHE)" GOMODCACHE="$(go env GOMODCACHE)" \
		GOFLAGS="${GOFLAGS:-}" GOPROXY="$(go env GOPROXY)" "$@" "$REPO/scripts/run" >"$log" 2>&1 &
	RUN_PID=$!
	_PIDS+=("$RUN_PID")
	for ((i = 0; i < 600; i++)); do
		grep -qF 'relayq serve started' "$log" && return 0
		kill -0 "$RUN_PID" 2>/dev/null || { show "$log"; fail "scripts/run exited during start-up"; }
		sleep 0.1
	done
	show "$log"
	fail "scripts/run: relayq serve did not start within 60s"
}

check "(1) no RELAYQ_CONFIG: serve starts with the spool and sockets in ~/.local/state/relayq"
run_as_user "$T/run1.log" RELAYQ_RELAYHOST="$RELAY" RELAYQ_AUTHINFO="$T/authinfo" RELAYQ_TLS_CA_FILE="$SMARTHOST_CA" RELAYQ_DOMAIN=relayq.test
assert_not_contains "$T/run1.log" "RELAYQ_CONFIG" "scripts/run output (no env file named, none required)"
assert_contains "$T/run1.log" "export RELAYQ_SPOOL=$STATE/queue.db RELAYQ_SOCKET=$STATE/submit.sock RELAYQ_CONTROL_SOCKET=$STATE/control.sock" "the printed export line"
assert_contains "$T/run1.log" "spool=$STATE/queue.db" "serve's start line"
check "(1) sendmail with the printed export line: the message arrives once"
tok=t74a-$$-$RANDOM
exports=$(sed -n 's/^  export //p' "$T/run1.log")
# shellcheck disable=SC2086 # the export line is VAR=VALUE words
env -i PATH="$PATH" HOME="$T/home" RELAYQ_RELAYHOST="$RELAY" RELAYQ_AUTHINFO="$T/authinfo" RELAYQ_DOMAIN=relayq.test $exports \
	sh -c "printf 'To: rcpt-$tok@example.net\nSubject: $tok\n\nbody\n' | '$REPO/bin/sendmail' -t" || fail "bin/sendmail failed"
wait_for_mail "$tok" 1 >/dev/null
assert_eq "$(mail_files "$tok" | grep -c .)" 1 "copies of $tok at the smarthost"
stop_pid "$RUN_PID" 35 || fail "scripts/run (relayq serve) did not stop cleanly"

check "(2) an own RELAYQ_CONFIG naming RELAYQ_SPOOL: that spool, sockets in the state directory"
mkdir -p "$T/own"
chmod 0700 "$T/own"
printf 'RELAYQ_RELAYHOST=%s\nRELAYQ_AUTHINFO=%s\nRELAYQ_TLS_CA_FILE=%s\nRELAYQ_SPOOL=%s\nRELAYQ_DOMAIN=relayq.test\n' \
	"$RELAY" "$T/authinfo" "$SMARTHOST_CA" "$T/own/queue.db" >"$T/own.env"
run_as_user "$T/run2.log" RELAYQ_CONFIG="$T/own.env"
assert_contains "$T/run2.log" "export RELAYQ_CONFIG=$T/own.env RELAYQ_SOCKET=$STATE/submit.sock RELAYQ_CONTROL_SOCKET=$STATE/control.sock" "the printed export line"
assert_not_contains "$T/run2.log" "export RELAYQ_CONFIG=$T/own.env RELAYQ_SPOOL" "the printed export line (the file names the spool)"
assert_contains "$T/run2.log" "spool=$T/own/queue.db" "serve's start line"
assert_not_contains "$T/run2.log" "/var/spool/relayq" "scripts/run output"
stop_pid "$RUN_PID" 35 || fail "scripts/run (relayq serve) did not stop cleanly"
pass
