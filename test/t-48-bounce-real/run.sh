#!/usr/bin/env bash
# t-48: bounces through the real smarthost (Postfix + Dovecot SASL). The test
# bed refuses recipients named reject-* at RCPT with "550 5.1.1"; relayq
# serve must then send one RFC 3464 report to the envelope sender, through
# the same authenticated relay, from the null sender, naming only the failed
# recipient (the other is delivered: a partial failure bounces only what
# failed). The report is parsed back with a MIME library (test/tools/
# dsncheck, go-message). A failed message from the null sender is never
# bounced; with RELAYQ_POSTMASTER set, the postmaster gets one header-only
# copy, and a failure of that copy is not reported again.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
[ "${SMARTHOST_REJECT_PREFIX:-}" = reject- ] || fail "the test bed does not refuse reject-* recipients (SMARTHOST_REJECT_PREFIX)"
tok=t48-$$-$RANDOM
export RELAYQ_POSTMASTER="pm-$tok@example.org"
start_serve

check "one good and one refused recipient: the good one is delivered"
printf 'From: sender-%s@example.org\nTo: ok-%s@example.net, reject-a-%s@example.net\nSubject: subject %s\n\nbody %s\n' \
	"$tok" "$tok" "$tok" "$tok" "$tok" |
	sendmail -i -f "sender-$tok@example.org" "ok-$tok@example.net" "reject-a-$tok@example.net" ||
	fail "sendmail exited $?"
wait_for_mail "Delivered-To: ok-$tok@example.net" >/dev/null

check "one report reaches the sender through the relay, from the null sender"
wait_for_mail "Delivered-To: sender-$tok@example.org" >"$T/dsn.list"
assert_eq "$(grep -c . "$T/dsn.list")" 1 "reports to the sender"
dsn=$(head -n 1 "$T/dsn.list")
"$BIN/dsncheck" "$dsn" >"$T/dsn.txt" || { show "$dsn" 60; fail "the report is not a well-formed multipart/report"; }
show "$T/dsn.txt" 20
assert_contains "$T/dsn.txt" "return-path <>" "report"
assert_contains "$T/dsn.txt" "content-type multipart/report report-type=delivery-status" "report"
assert_contains "$T/dsn.txt" "part 1 text/plain" "report"
assert_contains "$T/dsn.txt" "part 2 message/delivery-status" "report"
assert_match "$T/dsn.txt" "^rcpt rfc822;reject-a-$tok@example.net action=failed status=5\.1\.1 diagnostic=smtp; 550 5\.1\.1 .*no such user" "report"
assert_contains "$T/dsn.txt" "returned-subject subject $tok" "report"

check "only the failed recipient is reported"
assert_eq "$(grep -c '^rcpt ' "$T/dsn.txt")" 1 "recipient groups"
assert_not_contains "$T/dsn.txt" "ok-$tok" "report"

check "the queue is empty: the message and the report have left it"
wait_queue_count 0 20
assert_contains "$T/serve.log" "dsn queued" "relayq serve log"

check "a refused message from the null sender is not bounced (held, never dropped); the postmaster gets one header-only copy"
printf 'From: MAILER-DAEMON@example.org\nTo: reject-b-%s@example.net\nSubject: nullsender %s\n\nbody\n' "$tok" "$tok" |
	sendmail -i -f '<>' "reject-b-$tok@example.net" || fail "sendmail exited $?"
wait_for_log "$T/serve.log" "reason=\"null sender: never bounced\"" 30
wait_for_mail "Delivered-To: pm-$tok@example.org" >"$T/pm.list"
"$BIN/dsncheck" "$(head -n 1 "$T/pm.list")" >"$T/pm.txt" || fail "the postmaster copy is not a well-formed report"
assert_match "$T/pm.txt" "^rcpt rfc822;reject-b-$tok@example.net action=failed status=5\.1\.1" "postmaster copy"
assert_match "$T/pm.txt" "^part 3 text/rfc822-headers" "postmaster copy (headers only)"
# The refused null-sender message stays, held, for the operator: deleted here.
wait_for_log "$T/serve.log" "notice held" 20
wait_queue_count 1 20
relayq queue list -json | grep -q '"Held":true' || fail "the refused null-sender message is not held"
for id in $(relayq queue list -json | sed -n 's/.*"ID":"\([0-9A-Z]*\)".*/\1/p'); do
	relayq queue delete "$id" >/dev/null || fail "relayq queue delete $id failed"
done
wait_queue_count 0 20

check "a postmaster copy that fails is not reported again (no bounce of a bounce)"
stop_serve
export RELAYQ_POSTMASTER="reject-pm-$tok@example.org"
start_serve
printf 'From: MAILER-DAEMON@example.org\nTo: reject-c-%s@example.net\nSubject: nullsender2 %s\n\nbody\n' "$tok" "$tok" |
	sendmail -i -f '<>' "reject-c-$tok@example.net" || fail "sendmail exited $?"
# The message and its failed postmaster copy: both held, neither reported.
wait_queue_count 2 30
sleep 2
assert_eq "$(relayq queue list -json | grep -c '"Held":true' || true)" 2 "held messages"

assert_eq "$(mail_files "reject-c-$tok" | grep -c . || true)" 0 "messages naming reject-c-$tok delivered anywhere"
assert_eq "$(wait_for_mail "Delivered-To: sender-$tok@example.org" | grep -c .)" 1 "reports to the first sender (still one)"
stop_serve
pass
