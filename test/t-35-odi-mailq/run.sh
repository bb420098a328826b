#!/usr/bin/env bash
# t-35: delivery modes and the queue listing, without a daemon.
#   * sendmail -odi waits for the delivery and reports it (exit 0);
#   * with the relay down, -odi reports "deferred, still queued" and still
#     exits 0 (the message is on disk: a failure status would make callers
#     send it twice); mailq and sendmail -bp then list it in Postfix's
#     format, with the reason in parentheses;
#   * -odq queues without starting a delivery;
#   * with the relay back, sendmail -q runs the queue and both arrive.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

good="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
relayq_env "$good"
save_config

msg() { printf 'To: to-%s@example.net\nSubject: %s\nX-Test-Token: %s\n\nbody\n' "$1" "$1" "$1"; }

check "sendmail -odi waits for the delivery and says so"
tok=t35a-$$-$RANDOM
msg "$tok" | "$BIN/sendmail" -odi -t -i 2>"$T/odi.err" || { show "$T/odi.err"; fail "sendmail -odi exited $?"; }
assert_match "$T/odi.err" "<to-$tok@example\\.net>: delivered via [^ ]+ \\(250 " "sendmail -odi report"
check "the message was delivered before sendmail returned"
[ -n "$(mail_files "X-Test-Token: $tok")" ] || fail "no delivered copy of $tok right after sendmail -odi returned"
assert_eq "$(queue_count)" 0 "queued messages"

check "relay down: -odi reports the deferral and exits 0"
export RELAYQ_RELAYHOST="[127.0.0.1]:9"
write_authinfo "$RELAYQ_RELAYHOST" "$SMARTHOST_USER" "$SMARTHOST_PASS"
save_config
tokb=t35b-$$-$RANDOM
msg "$tokb" | "$BIN/sendmail" -odi -t -i 2>"$T/odi2.err" || { show "$T/odi2.err"; fail "sendmail -odi exited $? with the relay down"; }
assert_contains "$T/odi2.err" "<to-$tokb@example.net>: deferred, still queued" "sendmail -odi report"

check "-odq queues only: no delivery attempt"
tokc=t35c-$$-$RANDOM
msg "$tokc" | "$BIN/sendmail" -odq -t -i || fail "sendmail -odq exited $?"
wait_detached
"$BIN/relayq" queue list -json >"$T/q.json"
assert_match "$T/q.json" "to-$tokc@example.net" "queue"
assert_eq "$(queue_count)" 2 "queued messages"

check "mailq lists both in Postfix's format"
mailq >"$T/mailq.out" || fail "mailq exited $?"
show "$T/mailq.out" 20 2>&1 | sed 's/^/    /' >&2
assert_match "$T/mailq.out" '^-Queue ID- +--Size-- ----Arrival Time---- -Sender/Recipient-------$' "mailq header"
assert_match "$T/mailq.out" '^[0-9A-Z]{12}[ *!] +[0-9]+ [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}  root@relayq\.test$' "mailq entry line"
assert_match "$T/mailq.out" "^ +to-$tokb@example\\.net$" "mailq recipient line"
assert_match "$T/mailq.out" '^ *\(.+\)$' "mailq reason line"
assert_match "$T/mailq.out" '^-- [0-9]+ Kbytes in 2 Requests\.$' "mailq summary"
check "sendmail -bp prints the same listing"
"$BIN/sendmail" -bp >"$T/bp.out" || fail "sendmail -bp exited $?"
cmp -s "$T/mailq.out" "$T/bp.out" || { diff "$T/mailq.out" "$T/bp.out" >&2; fail "sendmail -bp differs from mailq"; }

check "relay back: sendmail -q runs the queue, both arrive"
export RELAYQ_RELAYHOST=$good
write_authinfo "$RELAYQ_RELAYHOST" "$SMARTHOST_USER" "$SMARTHOST_PASS"
save_config
"$BIN/sendmail" -q || fail "sendmail -q exited $?"
wait_for_mail "X-Test-Token: $tokb" >/dev/null
wait_for_mail "X-Test-Token: $tokc" >/dev/null
wait_detached
wait_queue_count 0
check "an empty queue says so"
mailq >"$T/mailq.out"
assert_eq "$(cat "$T/mailq.out")" "Mail queue is empty" "mailq on an empty queue"
pass
