#!/usr/bin/env bash
# t-66: an operator's ordinary mistakes against the real smarthost (Postfix
# + Dovecot SASL). For each — a credentials key that differs from the relay
# host, no credentials file, a wrong password, no relay host, the wrong CA,
# a credentials file of mode 0644, an unknown key in the env file —
# a message waits, deferred, with a reason in mailq that names the problem;
# nothing is bounced or lost; the user fixes it as a user would (edit the
# file + SIGHUP, or edit the configuration + restart) and the message
# arrives exactly once, at once (not after its backoff). Then a bounce the
# relay refuses too: held, listed with its reason, never dropped; released
# it is tried again (and held again: the bed still refuses it); deleted only
# by the operator.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

GOOD_RELAY="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
relayq_env "$GOOD_RELAY"
export RELAYQ_SASL_MECHANISMS=PLAIN
save_config

message() {
	printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nbody of %s\n' "$1" "$1" "$1"
}

# waits TOKEN WORDS — the message waits: one message queued, its reason in
# mailq contains WORDS, nothing delivered, no notice queued.
waits() {
	wait_queue_count 1 30
	local i
	for ((i = 0; i < 150; i++)); do
		"$BIN/mailq" >"$T/mailq.out" 2>&1 || true
		grep -qF -- "$2" "$T/mailq.out" && break
		sleep 0.2
	done
	assert_contains "$T/mailq.out" "$2" "mailq"
	assert_no_mail "$1" 0
	assert_not_contains "$T/serve.log" "dsn queued" "relayq serve log"
}

# arrives TOKEN — exactly one copy arrives (promptly: well within the 5 min
# backoff), and the queue is empty.
arrives() {
	wait_for_mail "$1" 1 60 >/dev/null
	wait_queue_count 0 30
	sleep 1
	local n
	n=$(mail_files "$1" | grep -c . || true)
	assert_eq "$n" 1 "copies of $1 at the smarthost"
}

start_serve

check "credentials key differs from the relay host: no unauthenticated send, waits with the reason; fixed + SIGHUP: delivered once"
write_authinfo "[127.0.0.2]:$SMARTHOST_SUBMISSION_PORT" "$SMARTHOST_USER" "$SMARTHOST_PASS"
kill -HUP "$SERVE_PID"
wait_for_log "$T/serve.log" 'msg=reloaded what="credentials file ' 10
tok=t66key-$$-$RANDOM
message "$tok" | "$BIN/sendmail" -t || fail "sendmail exited $?"
waits "$tok" "no credential for relay $GOOD_RELAY"
assert_contains "$T/mailq.out" "$RELAYQ_AUTHINFO" "mailq (the reason names the file)"
expect_exit 78 "$BIN/relayq" probe
assert_contains "$T/last.out" "result: no credential for this relay" "relayq probe"
write_authinfo "$GOOD_RELAY" "$SMARTHOST_USER" "$SMARTHOST_PASS"
kill -HUP "$SERVE_PID"
arrives "$tok"

check "wrong password: 535, waits (no bounce); fixed + SIGHUP: delivered at once, once"
write_authinfo "$GOOD_RELAY" "$SMARTHOST_USER" "wrong-$RANDOM$RANDOM"
kill -HUP "$SERVE_PID"
tok=t66pw-$$-$RANDOM
message "$tok" | "$BIN/sendmail" -t || fail "sendmail exited $?"
waits "$tok" "535"
write_authinfo "$GOOD_RELAY" "$SMARTHOST_USER" "$SMARTHOST_PASS"
kill -HUP "$SERVE_PID"
arrives "$tok"

check "no credentials file: waits naming the file; the file written + restart: delivered once"
stop_serve
rm -f "$RELAYQ_AUTHINFO"
start_serve
tok=t66nofile-$$-$RANDOM
message "$tok" | "$BIN/sendmail" -t || fail "sendmail exited $?"
waits "$tok" "in $RELAYQ_AUTHINFO"
write_authinfo "$GOOD_RELAY" "$SMARTHOST_USER" "$SMARTHOST_PASS"
stop_serve
start_serve
arrives "$tok"

check "no relay host: waits saying so; relay host set + restart: delivered once"
stop_serve
export RELAYQ_RELAYHOST=
start_serve
tok=t66norelay-$$-$RANDOM
message "$tok" | "$BIN/sendmail" -t || fail "sendmail exited $?"
waits "$tok" "no relay host"
stop_serve
export RELAYQ_RELAYHOST=$GOOD_RELAY
start_serve
arrives "$tok"

check "wrong CA (system roots only): waits with the TLS reason; CA set + restart: delivered once"
stop_serve
export RELAYQ_TLS_CA_FILE=
start_serve
tok=t66ca-$$-$RANDOM
message "$tok" | "$BIN/sendmail" -t || fail "sendmail exited $?"
waits "$tok" "certificate"
stop_serve
export RELAYQ_TLS_CA_FILE=$SMARTHOST_CA
start_serve
arrives "$tok"

check "credentials file mode 0644: refused as unsafe, the message waits (not sent without AUTH); chmod 0600 + restart: delivered once"
stop_serve
chmod 0644 "$RELAYQ_AUTHINFO"
tok=t66mode-$$-$RANDOM
message "$tok" | "$BIN/sendmail" -t || fail "sendmail exited $? (a configuration error must not refuse mail)"
wait_detached
assert_no_mail "$tok" 1
wait_queue_count 1 10
"$BIN/mailq" >"$T/mailq.out" 2>&1 || true
assert_contains "$T/mailq.out" "$RELAYQ_AUTHINFO" "mailq (the reason names the credentials file)"
assert_not_contains "$T/serve.log" "dsn queued" "relayq serve log"
chmod 0600 "$RELAYQ_AUTHINFO"
start_serve
arrives "$tok"

check "an unknown key in the env file: mail is accepted and delivered once"
stop_serve
echo "RELAYQ_NO_SUCH_KEY=1" >>"$RELAYQ_CONFIG"
tok=t66key2-$$-$RANDOM
message "$tok" | "$BIN/sendmail" -t || fail "sendmail exited $? with an unknown key in the env file"
wait_detached
"$BIN/relayq" serve >>"$T/serve.log" 2>&1 &
SERVE_PID=$!
_PIDS+=("$SERVE_PID")
arrives "$tok"
stop_serve
save_config
start_serve

check "a bounce the relay refuses too: held with its reason, never dropped; release retries it; delete removes it"
tok=t66bounce-$$-$RANDOM
printf 'From: %s\nTo: %s\nSubject: %s\n\nbody\n' "${SMARTHOST_REJECT_PREFIX}sender@example.net" "${SMARTHOST_REJECT_PREFIX}$tok@example.net" "$tok" |
	"$BIN/sendmail" -f "${SMARTHOST_REJECT_PREFIX}sender@example.net" -t || fail "sendmail exited $?"
wait_for_log "$T/serve.log" "dsn queued" 30
wait_for_log "$T/serve.log" "notice held" 30
wait_queue_count 1 10
id=$("$BIN/relayq" queue list -json | sed -n 's/.*"ID":"\([0-9A-Z]*\)".*/\1/p' | head -1)
[ -n "$id" ] || fail "no queue ID in relayq queue list -json"
"$BIN/mailq" >"$T/mailq.out" 2>&1 || true
assert_contains "$T/mailq.out" "$id!" "mailq (held: '!' after the queue ID)"
assert_contains "$T/mailq.out" "550 5.1.1 <${SMARTHOST_REJECT_PREFIX}sender@example.net>" "mailq (the relay's refusal)"
"$BIN/relayq" queue show "$id" >"$T/show.out" 2>&1 || fail "relayq queue show $id failed"
assert_contains "$T/show.out" "never bounced or dropped" "relayq queue show"
n=$(grep -c "notice held" "$T/serve.log")
"$BIN/relayq" queue release "$id" >/dev/null || fail "relayq queue release failed"
for ((i = 0; i < 150; i++)); do
	[ "$(grep -c "notice held" "$T/serve.log")" -gt "$n" ] && break
	sleep 0.2
done
[ "$(grep -c "notice held" "$T/serve.log")" -gt "$n" ] || fail "the released notice was not tried again"
wait_queue_count 1 10
"$BIN/relayq" queue delete "$id" >/dev/null || fail "relayq queue delete failed"
wait_queue_count 0 10

stop_serve
pass
