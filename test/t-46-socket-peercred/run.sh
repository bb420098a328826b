#!/usr/bin/env bash
# t-46-socket-peercred: the sendmail command, run as another user (nobody)
# while `relayq serve` runs, hands the message over the unix submission
# socket; the daemon takes the uid from SO_PEERCRED (origin uid=65534 in
# its log), and a foreign sender set with -f carries exactly one
# X-Authentication-Warning naming that user (the command's own, not a
# second one from the listener). Without -f there is no warning. With
# -odi it prints the daemon's report of the attempt (the control socket lets
# the submitter follow their own message). A local
# user speaking SMTP to the socket directly with a foreign MAIL FROM gets
# the listener's warning; with RELAYQ_UNTRUSTED_SENDER=refuse, 553.
# Before the daemon starts, nobody cannot write the spool: exit 75 with a
# message that says to run relayq serve.
. "$(dirname "$0")/../lib.sh"

need_cmd setpriv swaks
relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
chmod 0755 "$T/run" # the socket directory: nobody must reach the socket
export RELAYQ_TRUSTED_USERS=root
nobody_name=$(getent passwd 65534 | cut -d: -f1)
[ -n "$nobody_name" ] || fail "no user with uid 65534"

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

tok=t46-$$-$RANDOM
check "without a daemon, $nobody_name cannot write the spool: exit 75 and a message that says to run relayq serve"
save_config
chmod 0755 "$T" # the env file (RELAYQ_CONFIG) must be readable; the spool directory stays 0700
rc=0
printf 'Subject: nodaemon-%s\n\nbody\n' "$tok" |
	as_nobody "$BIN/sendmail" "rcpt-$tok@example.net" 2>"$T/nodaemon.err" || rc=$?
assert_eq "$rc" 75 "sendmail exit status without a daemon"
assert_contains "$T/nodaemon.err" "permission denied" "sendmail's error"
assert_contains "$T/nodaemon.err" 'start `relayq serve`, which takes mail from every user' "sendmail's error"
assert_contains "$T/nodaemon.err" "RELAYQ_SOCKET=$RELAYQ_SOCKET" "sendmail's error"

start_serve
check "sendmail -f as $nobody_name through the daemon's socket"
printf 'Subject: foreign-%s\n\nbody\n' "$tok" |
	as_nobody "$BIN/sendmail" -f "boss@relayq.test" "rcpt-$tok@example.net" ||
	fail "sendmail as $nobody_name exited $?"
f=$(wait_for_mail "foreign-$tok" | head -n 1)
check "one X-Authentication-Warning naming $nobody_name"
headers_of "$f" >"$T/foreign.headers"
n=$(grep -ci '^X-Authentication-Warning:' "$T/foreign.headers" || true)
assert_eq "$n" 1 "X-Authentication-Warning headers"
assert_match "$T/foreign.headers" "^X-Authentication-Warning: [^ ]+: $nobody_name set sender to boss(@relayq.test)? using -f"
check "the daemon logged the submission with origin uid=65534"
wait_for_log "$T/serve.log" 'origin="uid=65534"'

check "sendmail without -f as $nobody_name: no warning"
printf 'Subject: own-%s\n\nbody\n' "$tok" | as_nobody "$BIN/sendmail" "rcpt-$tok@example.net" ||
	fail "sendmail as $nobody_name exited $?"
f=$(wait_for_mail "own-$tok" | head -n 1)
headers_of "$f" >"$T/own.headers"
assert_not_match -i "$T/own.headers" '^X-Authentication-Warning:'

check "sendmail -odi as $nobody_name: the daemon reports its attempt, delivered before sendmail returns"
printf 'Subject: odi-%s\n\nbody\n' "$tok" | as_nobody "$BIN/sendmail" -odi "rcpt-odi-$tok@example.net" 2>"$T/odi.err" ||
	{ show "$T/odi.err"; fail "sendmail -odi as $nobody_name exited $?"; }
assert_match "$T/odi.err" "<rcpt-odi-$tok@example\\.net>: delivered via [^ ]+ \\(250 " "sendmail -odi report"
[ -n "$(mail_files "odi-$tok")" ] || fail "no delivered copy right after sendmail -odi returned"

check "SMTP on the socket as $nobody_name with a foreign MAIL FROM: the listener adds the warning"
as_nobody swaks --socket "$RELAYQ_SOCKET" --from "ceo@relayq.test" --to "rcpt-$tok@example.net" \
	--header "Subject: direct-$tok" --helo localhost >"$T/direct.swaks" 2>&1 ||
	{ show "$T/direct.swaks"; fail "swaks on the socket failed"; }
assert_contains "$T/direct.swaks" "250 2.0.0 Ok: queued as"
f=$(wait_for_mail "direct-$tok" | head -n 1)
headers_of "$f" >"$T/direct.headers"
assert_match "$T/direct.headers" "^X-Authentication-Warning: [^ ]+: $nobody_name set sender to ceo@relayq.test using -f"
stop_serve

check "RELAYQ_UNTRUSTED_SENDER=refuse: 553 5.7.1 on the socket"
export RELAYQ_UNTRUSTED_SENDER=refuse
start_serve
as_nobody swaks --socket "$RELAYQ_SOCKET" --from "ceo@relayq.test" --to "rcpt-$tok@example.net" \
	--header "Subject: refused-$tok" --helo localhost >"$T/refused.swaks" 2>&1 || true
assert_contains "$T/refused.swaks" "<** 553 5.7.1"
assert_no_mail "refused-$tok" 2
stop_serve
pass
