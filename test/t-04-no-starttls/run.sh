#!/usr/bin/env bash
# t-04: a relay that offers AUTH but no STARTTLS (test/tools/smtprecorder,
# which records every line a client sends). relayq requires TLS before it
# sends credentials (RFC 3207 §6, RFC 4954, RELIABILITY S1, S5 in docs/architecture.md): the relay
# sees EHLO but never AUTH, MAIL, RCPT or DATA, and the message stays queued
# with a reason. With RELAYQ_TLS=verify (the default) through a daemonless
# queue run, and with RELAYQ_TLS=encrypt through `relayq serve`.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

start_recorder relay
REC=$T/relay.rec
relayq_env "[127.0.0.1]:$RECORDER_PORT"
save_config
# What AUTH PLAIN would carry: \0user\0password, base64.
PLAIN_B64=$(printf '\0%s\0%s' "$SMARTHOST_USER" "$SMARTHOST_PASS" | base64 -w0)

message() {
	printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nbody of %s\n' "$1" "$1" "$1"
}

# check_nothing_sent COUNT — the relay got EHLO from COUNT connection(s) or
# more and nothing past it; the queue holds COUNT messages with a reason.
check_nothing_sent() {
	local count=$1 conns
	check "relayq talked to the relay (EHLO recorded)"
	wait_for_log "$REC" " EHLO " 30
	conns=$(grep -cE '^[0-9]+ EHLO ' "$REC" || true)
	[ "$conns" -ge "$count" ] || { show "$REC"; fail "$conns EHLO(s) recorded, want at least $count"; }
	check "the relay never received AUTH, MAIL, RCPT, DATA or BDAT"
	assert_not_match -i "$REC" '^[0-9]+ (AUTH|MAIL|RCPT|DATA|BDAT)\b' "what the relay received"
	check "the credentials were never sent"
	assert_not_contains "$REC" "$SMARTHOST_PASS" "what the relay received"
	assert_not_contains "$REC" "$PLAIN_B64" "what the relay received"
	check "the message stays queued with a reason"
	wait_queue_count "$count" 5
	relayq queue list >"$T/list.out" 2>"$T/list.err" || { show "$T/list.err"; fail "relayq queue list failed"; }
	assert_match "$T/list.out" '^ *\(.+\)$' "relayq queue list (a reason line; a long one starts in column 0, as Postfix's)"
	assert_match -i "$T/list.out" 'tls' "relayq queue list (the reason names TLS)"
}

# 1. RELAYQ_TLS=verify (default), daemonless.
tok=t04a-$$-$RANDOM
check "relayq sendmail -odq -t exits 0"
message "$tok" >"$T/$tok.eml"
expect_exit 0 relayq sendmail -odq -t <"$T/$tok.eml"
wait_queue_count 1 5
rc=0
relayq queue run >"$T/run.out" 2>"$T/run.log" || rc=$?
log "relayq queue run exited $rc"
check_nothing_sent 1
check "the run's log says STARTTLS was not offered"
assert_match -i "$T/run.log" 'starttls' "relayq queue run log"

# 2. RELAYQ_TLS=encrypt, with the daemon.
export RELAYQ_TLS=encrypt
before=$(grep -cE '^[0-9]+ EHLO ' "$REC" || true)
# The start retries the first message at once (a TLS deferral: the
# configuration may have changed); the relay is then held (dead-relay
# hold), so the second message waits, not tried, with that reason.
start_serve
tok=t04b-$$-$RANDOM
check "sendmail -t exits 0 with relayq serve running (RELAYQ_TLS=encrypt)"
message "$tok" >"$T/$tok.eml"
expect_exit 0 sendmail -t <"$T/$tok.eml"
check "the daemon connects to the relay again"
for _ in $(seq 1 150); do
	[ "$(grep -cE '^[0-9]+ EHLO ' "$REC" || true)" -gt "$before" ] && break
	sleep 0.2
done
[ "$(grep -cE '^[0-9]+ EHLO ' "$REC" || true)" -gt "$before" ] || { show "$T/serve.log"; fail "the daemon never connected to the relay"; }
sleep 1
check_nothing_sent 2
stop_serve
check "the daemon's log says STARTTLS was not offered"
assert_match -i "$T/serve.log" 'starttls' "relayq serve log"

pass
