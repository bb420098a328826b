#!/usr/bin/env bash
# t-01: `relayq sendmail -t` and the `sendmail` symlink relay a message with
# a Bcc: header through the smarthost's submission port (STARTTLS required
# before AUTH) with AUTH PLAIN: every recipient (To, Cc, Bcc) receives it,
# the body is intact, no copy carries the Bcc header, and the message leaves
# the spool. Once daemonless (sendmail starts a detached queue run), once
# with `relayq serve` running.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
export RELAYQ_SASL_MECHANISMS=PLAIN
save_config

# 1. relayq sendmail -t, no daemon: the detached delivery relays it.
tok=t01a-$$-$RANDOM
write_bcc_message "$T/a.eml" "$tok"
check "relayq sendmail -t exits 0 (daemonless)"
expect_exit 0 relayq sendmail -t <"$T/a.eml"
check_bcc_delivery "$T/a.eml" "$tok" submission
wait_detached
check "the spool is empty after delivery"
wait_queue_count 0

# 2. the same through the small sendmail binary, cmd/sendmail (-t -i: a lone
# "." is data), which starts relayq beside it for the delivery run,
# with RELAYQ_LOG_FILE: the detached delivery run logs there.
export RELAYQ_LOG_FILE="$T/relayq.log"
save_config
tok=t01b-$$-$RANDOM
write_bcc_message "$T/b.eml" "$tok" yes
check "sendmail -t -i (the small binary) exits 0 (daemonless)"
[ -f "$BIN/sendmail" ] && [ ! -L "$BIN/sendmail" ] || fail "$BIN/sendmail is not the small binary (cmd/sendmail)"
expect_exit 0 sendmail -t -i <"$T/b.eml"
check_bcc_delivery "$T/b.eml" "$tok" submission
wait_detached
check "the spool is empty after delivery"
wait_queue_count 0
check "the detached run logged its deliveries to RELAYQ_LOG_FILE"
wait_for_log "$RELAYQ_LOG_FILE" "msg=delivered" 10
assert_contains "$RELAYQ_LOG_FILE" "rcpt=bcc-$tok@example.org" "RELAYQ_LOG_FILE"
assert_not_contains "$RELAYQ_LOG_FILE" "$SMARTHOST_PASS" "RELAYQ_LOG_FILE"
unset RELAYQ_LOG_FILE
save_config

# 3. with the daemon: sendmail hands the message over the unix socket.
check_daemon_bcc_delivery t01c-$$-$RANDOM submission

pass
