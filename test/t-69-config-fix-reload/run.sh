#!/usr/bin/env bash
# t-69: configuration mistakes are fixed without losing or resending mail,
# with only the step each needs, against the real smarthost (Postfix +
# Dovecot SASL). Every command runs as cron would: only RELAYQ_CONFIG in
# the environment, everything else from the env file.
#  1. A bad value in the env file (RELAYQ_TLS=bogus): both sendmail
#     binaries accept and queue (exit 0, a warning naming file:line:key),
#     with and without the daemon; mailq shows the reason with file, line
#     and key; relayq check exits 78 naming them; SIGHUP does not fix it
#     (the log says a restart is needed); fixed + restart: each message
#     arrives exactly once.
#  2. No credentials file at start: the message waits naming the file; the
#     file written + SIGHUP (no restart): delivered exactly once.
#  3. Credentials file of mode 0644 at start (configuration error state):
#     SIGHUP while still 0644 keeps it; chmod 0600 + SIGHUP clears it
#     (no restart): delivered exactly once.
#  4. A notice from the null sender that ran out of time while the
#     credentials were missing is held, listed with "!"; after the fix
#     (file + SIGHUP) it stays held until released; released, it is
#     delivered once and is gone from the queue and mailq.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

RELAY="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
relayq_env "$RELAY"
export RELAYQ_SASL_MECHANISMS=PLAIN
save_config
CONF=$RELAYQ_CONFIG
AUTH=$RELAYQ_AUTHINFO
CTL=$RELAYQ_CONTROL_SOCKET
# Only the env file from here on, as for cron's sendmail.
for v in $(env | sed -n 's/^\(RELAYQ_[A-Z0-9_]*\)=.*/\1/p'); do
	[ "$v" = RELAYQ_CONFIG ] || unset "$v"
done
OUT=$T/last.out
ERR=$T/last.err

# set_key KEY VALUE — set KEY in the env file (replaced in place, or added).
set_key() {
	if grep -q "^$1=" "$CONF"; then
		sed -i "s|^$1=.*|$1=$2|" "$CONF"
	else
		printf '%s=%s\n' "$1" "$2" >>"$CONF"
	fi
}

# shellcheck disable=SC2317 # called through send
relayq_sendmail() { "$BIN/relayq" sendmail "$@"; }

line_of() { grep -n "^$1=" "$CONF" | cut -d: -f1; }

serve_up() {
	[ -z "$SERVE_PID" ] || fail "serve_up: a daemon already runs"
	rm -f "$CTL"
	"$BIN/relayq" serve >>"$T/serve.log" 2>&1 &
	SERVE_PID=$!
	_PIDS+=("$SERVE_PID")
	local i
	for ((i = 0; i < SERVE_START_TIMEOUT * 10; i++)); do
		kill -0 "$SERVE_PID" 2>/dev/null || { show "$T/serve.log"; fail "relayq serve exited during start-up"; }
		[ -S "$CTL" ] && return 0
		sleep 0.1
	done
	fail "relayq serve did not start"
}

# send BINARY TOKEN [SENDER] — one message; sendmail must exit 0.
send() {
	local from=${3:-sender@relayq.test}
	printf 'From: %s\nTo: rcpt-%s@example.net\nSubject: %s\n\nbody of %s\n' "$from" "$2" "$2" "$2" |
		"$1" -f "$from" -t >"$OUT" 2>"$ERR" || { show "$ERR"; fail "$1 exited $? for $2"; }
}

# waits TOKEN WORDS... — the message waits: mailq shows each of WORDS, and
# nothing arrived.
waits() {
	local tok=$1 i w ok
	shift
	for ((i = 0; i < 150; i++)); do
		"$BIN/mailq" >"$T/mailq.out" 2>&1 || true
		ok=1
		for w in "$@"; do grep -qF -- "$w" "$T/mailq.out" || ok=""; done
		[ -n "$ok" ] && break
		sleep 0.2
	done
	for w in "$@"; do assert_contains "$T/mailq.out" "$w" "mailq"; done
	assert_no_mail "$tok" 0
}

# once TOKEN... — each arrives exactly once, and the queue empties.
once() {
	local tok n
	for tok in "$@"; do wait_for_mail "$tok" 1 60 >/dev/null; done
	wait_queue_count 0 30
	sleep 1
	for tok in "$@"; do
		n=$(mail_files "$tok" | grep -c . || true)
		assert_eq "$n" 1 "copies of $tok at the smarthost"
	done
}

hup() { # WHAT-TO-WAIT-FOR — SIGHUP the daemon, wait for the log line
	local n
	n=$(grep -cF -- "$1" "$T/serve.log" || true)
	kill -HUP "$SERVE_PID"
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -cF -- "$1" "$T/serve.log" || true)" -gt "$n" ] && return 0
		sleep 0.1
	done
	show "$T/serve.log"
	fail "after SIGHUP the log does not say '$1'"
}

check "a bad value in the env file: sendmail (both binaries, with and without the daemon) queues, mailq and check name file:line:key"
set_key RELAYQ_TLS bogus
n=$(line_of RELAYQ_TLS)
where="$CONF:$n: RELAYQ_TLS"
serve_up
a=t69env-a-$$-$RANDOM b=t69env-b-$$-$RANDOM c=t69env-c-$$-$RANDOM
send "$BIN/sendmail" "$a"
assert_contains "$ERR" "$where: \"bogus\" is not one of" "sendmail's warning"
send relayq_sendmail "$b" # the full binary
assert_contains "$ERR" "$where: \"bogus\" is not one of" "relayq sendmail's warning"
waits "$a" "$where" "restart relayq serve"
waits "$b" "$where"
expect_exit 78 "$BIN/relayq" check
assert_contains "$ERR" "relayq check: configuration: $where" "relayq check"
hup "SIGHUP does not read the env file again"
assert_no_mail "$a" 1
stop_serve
send "$BIN/sendmail" "$c"
wait_detached
waits "$c" "$where" "the next delivery run"
check "fixed + restart: each arrives exactly once"
set_key RELAYQ_TLS verify
serve_up
once "$a" "$b" "$c"

check "no credentials file at start: waits naming it; written + SIGHUP (no restart): delivered once"
stop_serve
rm -f "$AUTH"
serve_up
pid=$SERVE_PID
tok=t69nofile-$$-$RANDOM
send "$BIN/sendmail" "$tok"
waits "$tok" "no credential for relay $RELAY" "$AUTH"
(umask 077 && printf '%s %s:%s\n' "$RELAY" "$SMARTHOST_USER" "$SMARTHOST_PASS" >"$AUTH")
hup "delivery configuration reloaded"
once "$tok"
kill -0 "$pid" || fail "the daemon restarted"

check "credentials file 0644 at start: configuration error; SIGHUP while 0644 keeps it; chmod 0600 + SIGHUP clears it: delivered once"
stop_serve
chmod 0644 "$AUTH"
serve_up
pid=$SERVE_PID
tok=t69mode-$$-$RANDOM
send "$BIN/sendmail" "$tok"
waits "$tok" "configuration error" "RELAYQ_AUTHINFO" "SIGHUP"
expect_exit 78 "$BIN/relayq" check
hup "reload failed; the previous configuration stays in force"
assert_no_mail "$tok" 1
chmod 0600 "$AUTH"
hup "delivery configuration reloaded"
once "$tok"
kill -0 "$pid" || fail "the daemon restarted"

check "a notice held while the credentials were missing: after the fix it stays held; released, delivered once and gone"
stop_serve
rm -f "$AUTH"
set_key RELAYQ_QUEUE_LIFETIME 2s
set_key RELAYQ_BOUNCE_LIFETIME 2s
set_key RELAYQ_BACKOFF_MIN 1s
set_key RELAYQ_BACKOFF_MAX 1s
serve_up
tok=t69held-$$-$RANDOM
send "$BIN/sendmail" "$tok" "sender-$tok@example.net"
wait_for_log "$T/serve.log" "notice held" 60
wait_queue_count 1 10
id=$("$BIN/relayq" queue list -json | sed -n 's/.*"ID":"\([0-9A-Z]*\)".*/\1/p' | head -1)
[ -n "$id" ] || fail "no queue ID"
"$BIN/mailq" >"$T/mailq.out" 2>&1 || true
assert_contains "$T/mailq.out" "$id!" "mailq (held)"
(umask 077 && printf '%s %s:%s\n' "$RELAY" "$SMARTHOST_USER" "$SMARTHOST_PASS" >"$AUTH")
hup "delivery configuration reloaded"
sleep 2
assert_no_mail "$tok" 0
assert_eq "$(queue_count)" 1 "the notice stays held until released"
expect_exit 0 "$BIN/relayq" queue release "$id"
notice=$(wait_for_mail "$tok" 1 60)
wait_queue_count 0 30
sleep 1
assert_eq "$(mail_files "$tok" | grep -c .)" 1 "copies at the smarthost (the notice only; the message itself expired)"
grep -q "^Delivered-To: sender-$tok@example.net" "$notice" || { show "$notice"; fail "what arrived is not the notice to the sender"; }
"$BIN/mailq" >"$T/mailq.out" 2>&1 || true
assert_contains "$T/mailq.out" "Mail queue is empty" "mailq after the release"
! "$BIN/relayq" queue show "$id" >/dev/null 2>&1 || fail "relayq queue show $id still finds it"
stop_serve
pass
