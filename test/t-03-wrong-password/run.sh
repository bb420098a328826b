#!/usr/bin/env bash
# t-03: a wrong password. The smarthost answers AUTH with 535; relayq keeps
# the message queued with that reply as the reason (mailq and
# `relayq queue list` show it), logs the 535 reply, bounces nothing (no
# second message in the queue) and delivers nothing. As Postfix's
# smtp_sasl_auth_soft_bounce = yes (RELIABILITY R3, docs/architecture.md); the
# reason names the credentials entry (file:line) and user. Once with a
# daemonless queue run, once with `relayq serve`. The wrong password never
# appears in relayq's logs.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
export RELAYQ_SASL_MECHANISMS=PLAIN
WRONG=wrong-$(openssl rand -hex 8)
write_authinfo "$RELAYQ_RELAYHOST" "$SMARTHOST_USER" "$WRONG"
save_config

# message TOKEN — a small message for sendmail -t.
message() {
	printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nbody of %s\n' "$1" "$1" "$1"
}

# check_deferred_535 TOKEN COUNT — the message is queued with the 535 reply,
# the queue holds COUNT messages (so no bounce was added), nothing arrived.
check_deferred_535() {
	local tok=$1 count=$2
	check "$tok: still queued (queue holds $count message(s): nothing bounced)"
	wait_queue_count "$count" 5
	relayq queue list >"$T/list.out" 2>"$T/list.err" || { show "$T/list.err"; fail "relayq queue list failed"; }
	assert_contains "$T/list.out" "rcpt-$tok@example.net" "relayq queue list"
	check "$tok: relayq queue list, relayq mailq and mailq show the 535 reply as the reason"
	assert_match "$T/list.out" '^ *\(535 5\.7\.8 ' "relayq queue list"
	# The queue ID of this message: the entry line above its recipient.
	QID=$(awk -v r="rcpt-$tok@example.net" '/^[0-9A-Za-z]+[!* ]/ { id = $1 } $1 == r { print id; exit }' "$T/list.out")
	[ -n "$QID" ] || { show "$T/list.out"; fail "no queue ID for $tok in relayq queue list"; }
	relayq mailq >"$T/rmailq.out" 2>"$T/rmailq.err" || { show "$T/rmailq.err"; fail "relayq mailq failed"; }
	assert_contains "$T/rmailq.out" "rcpt-$tok@example.net" "relayq mailq"
	assert_match "$T/rmailq.out" '^ *\(535 5\.7\.8 ' "relayq mailq"
	mailq >"$T/mailq.out" 2>"$T/mailq.err" || { show "$T/mailq.err"; fail "mailq failed"; }
	assert_contains "$T/mailq.out" "rcpt-$tok@example.net" "mailq (symlink)"
	assert_match "$T/mailq.out" '^ *\(535 5\.7\.8 ' "mailq (symlink)"
	check "$tok: the reason names the credential the relay refused (file:line, user), not its password"
	assert_contains "$T/mailq.out" "(AUTH PLAIN as \"$SMARTHOST_USER\", the credential at $RELAYQ_AUTHINFO:1, refused: check it there)" "mailq"
	assert_not_contains "$T/mailq.out" "$WRONG" "mailq"
	check "$tok: no bounce in the queue (no null-sender message)"
	assert_not_contains "$T/mailq.out" "MAILER-DAEMON" "mailq"
	check "$tok: nothing delivered, and no bounce (it would quote $tok) either"
	assert_no_mail "$tok" 1
}

# 1. daemonless: queue only (-odq), then one queue run with its log captured.
tok=t03a-$$-$RANDOM
check "relayq sendmail -odq -t exits 0"
message "$tok" >"$T/$tok.eml"
expect_exit 0 relayq sendmail -odq -t <"$T/$tok.eml"
wait_queue_count 1 5
check "relayq queue run: the smarthost refuses the password"
mark=$(wc -l <"$SMARTHOST_LOG")
rc=0
relayq queue run >"$T/run.out" 2>"$T/run.log" || rc=$?
log "relayq queue run exited $rc"
check "the smarthost saw a failed AUTH PLAIN for $SMARTHOST_USER"
sleep 0.5
tail -n +"$((mark + 1))" "$SMARTHOST_LOG" >"$T/smarthost.log"
assert_contains "$T/smarthost.log" "SASL PLAIN authentication failed: (reason unavailable), sasl_username=$SMARTHOST_USER" "smarthost log of the run"
check_deferred_535 "$tok" 1
check "the relayq log of the run shows the 535 reply with the queue ID"
assert_match "$T/run.log" "queue_id=$QID .*535 5\.7\.8 " "relayq queue run log"
check "the password is not in the run's log"
assert_not_contains "$T/run.log" "$WRONG" "relayq queue run log"

# 2. with the daemon: it tries at once, gets 535, keeps the message.
start_serve
tok=t03b-$$-$RANDOM
check "sendmail -t exits 0 with relayq serve running"
message "$tok" >"$T/$tok.eml"
expect_exit 0 sendmail -t <"$T/$tok.eml"
check "the daemon's log shows the 535 reply"
wait_for_log "$T/serve.log" "535 5.7.8 " 30
check_deferred_535 "$tok" 2
check "the daemon's log line carries the queue ID"
assert_match "$T/serve.log" "queue_id=$QID .*535 5\.7\.8 " "relayq serve log"
stop_serve
check "the password is not in the daemon's log"
assert_not_contains "$T/serve.log" "$WRONG" "relayq serve log"

pass
