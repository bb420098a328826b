#!/usr/bin/env bash
# t-60: an Exim 4 smarthost (Debian's exim4-daemon-light, unpacked in a
# private root: it conflicts with Postfix; test/exim/start.sh) whose AUTH
# LOGIN uses the prompts `server_prompts = User Name : Password`, which
# go-sasl's LOGIN client refused ("unexpected server challenge"). relayq,
# limited to LOGIN, logs in (probe says so, Exim logs A=login:USER) and a
# message sent with sendmail arrives in Exim's mailbox with its body
# intact. A wrong password is still refused (535 kept as the reason).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd apt-get dpkg-deb unshare
EXIM_USER=exim-user
EXIM_PASS=pw-$(openssl rand -hex 10)
check "Exim from Debian's packages starts with LOGIN prompts 'User Name' / 'Password'"
"$TEST_ROOT/exim/start.sh" "$T/exim" "$SMARTHOST_CA" "$SMARTHOST_CA_KEY" "$EXIM_USER" "$EXIM_PASS" >"$T/exim-start.out" 2>&1 ||
	{ show "$T/exim-start.out"; fail "test/exim/start.sh failed"; }
# shellcheck disable=SC1091
. "$T/exim/env"
on_exit stop_pid "$EXIM_PID"
grep -q 'server_prompts = User Name : Password' "$T/exim/exim.conf" || fail "Exim configuration lacks the odd prompts"

relayq_env "[localhost]:$EXIM_PORT"
export RELAYQ_SASL_MECHANISMS=LOGIN
write_authinfo "$RELAYQ_RELAYHOST" "$EXIM_USER" "$EXIM_PASS"
save_config

check "relayq probe: AUTH LOGIN accepted by Exim"
expect_exit 0 relayq probe
assert_match "$T/last.out" '^AUTH LOGIN: 235' "relayq probe"
assert_not_contains "$T/last.out" "$EXIM_PASS" "relayq probe"

tok=t60-$$-$RANDOM
printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nbody line of %s\n' "$tok" "$tok" "$tok" >"$T/msg.eml"
check "sendmail -t through Exim (daemonless run)"
expect_exit 0 relayq sendmail -t <"$T/msg.eml"
wait_detached
wait_queue_count 0 20
check "Exim logged the message as received with AUTH LOGIN as $EXIM_USER"
wait_for_log "$EXIM_LOG" "A=login:$EXIM_USER" 20
check "the message is in Exim's mailbox with its body"
wait_for_log "$EXIM_MBOX" "body line of $tok" 30
assert_contains "$EXIM_MBOX" "Envelope-to: rcpt-$tok@example.net" "Exim mailbox"

check "a wrong password: deferred with Exim's 535, nothing delivered"
write_authinfo "$RELAYQ_RELAYHOST" "$EXIM_USER" "wrong-$EXIM_PASS"
tok2=t60b-$$-$RANDOM
printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nbody of %s\n' "$tok2" "$tok2" "$tok2" >"$T/msg2.eml"
expect_exit 0 relayq sendmail -odq -t <"$T/msg2.eml"
relayq queue run >"$T/run.out" 2>"$T/run.log" || true
relayq queue list >"$T/list.out" 2>&1 || true
assert_match "$T/list.out" '\(535 ' "relayq queue list"
assert_not_contains "$EXIM_MBOX" "body of $tok2" "Exim mailbox"
pass
