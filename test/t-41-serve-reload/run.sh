#!/usr/bin/env bash
# t-41: relayq serve against the real smarthost (Postfix + Dovecot SASL):
# mail from sendmail is relayed at once; SIGHUP reloads the credentials
# file and closes the idle relay sessions (so the new password applies to
# the next message); a broken file leaves the old credentials in force
# (logged) and the sessions open; a wrong
# password defers (535, no bounce) until a corrected file is reloaded and
# the queue flushed; SIGTERM stops the daemon with exit status 0.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
export RELAYQ_SASL_MECHANISMS=PLAIN
# A long idle timeout: the reloaded password must apply at once because
# SIGHUP closes the idle relay sessions, not because they timed out; so
# does a change of the credentials file noticed without SIGHUP.
export RELAYQ_RELAY_IDLE_TIMEOUT=60s
save_config

message() {
	printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nbody of %s\n' "$1" "$1" "$1"
}

start_serve

tok=t41a-$$-$RANDOM
check "a message from sendmail is relayed by the daemon at once"
message "$tok" | sendmail -t || fail "sendmail exited $?"
wait_for_mail "$tok" >/dev/null
wait_queue_count 0 10

check "SIGHUP with a broken credentials file: reload refused, logged, old credentials stay"
printf 'this line is not an authinfo entry\n' >"$RELAYQ_AUTHINFO"
chmod 0600 "$RELAYQ_AUTHINFO"
kill -HUP "$SERVE_PID"
wait_for_log "$T/serve.log" "reload failed; the previous configuration stays in force" 10
tok=t41b-$$-$RANDOM
message "$tok" | sendmail -t || fail "sendmail exited $?"
wait_for_mail "$tok" >/dev/null
kill -0 "$SERVE_PID" || fail "relayq serve died after SIGHUP"

check "SIGHUP with a wrong password: the next message is deferred with 535, not bounced"
WRONG=wrong-$(openssl rand -hex 8)
write_authinfo "$RELAYQ_RELAYHOST" "$SMARTHOST_USER" "$WRONG"
kill -HUP "$SERVE_PID"
wait_for_log "$T/serve.log" 'msg=reloaded what="credentials file ' 10
# ... and then the idle relay session (logged in with the old password) is closed.
wait_for_log "$T/serve.log" 'msg=reloaded what="idle relay sessions' 10
tok=t41c-$$-$RANDOM
message "$tok" | sendmail -t || fail "sendmail exited $?"
wait_for_log "$T/serve.log" "535 5.7.8" 30
wait_for_log "$T/serve.log" "level=ERROR msg=\"authentication failed\"" 5
wait_queue_count 1 5
assert_no_mail "$tok" 1
check "the wrong password is not in the daemon's log"
assert_not_contains "$T/serve.log" "$WRONG" "relayq serve log"

check "SIGHUP with the right password and a flush: the deferred message goes out"
write_authinfo "$RELAYQ_RELAYHOST" "$SMARTHOST_USER" "$SMARTHOST_PASS"
kill -HUP "$SERVE_PID"
sleep 0.5
relayq queue flush >/dev/null || fail "relayq queue flush failed"
wait_for_mail "$tok" >/dev/null
wait_queue_count 0 10
check "no bounce was ever sent"
assert_not_contains "$T/serve.log" "dsn queued" "relayq serve log"

check "without SIGHUP: a changed credentials file is reloaded at lookup time and the idle session goes too"
# The session that delivered the flushed message is idle in the pool,
# logged in with the right password; after the file changes to a wrong
# one, the next delivery must log in again (535), not reuse it.
WRONG2=wrong2-$(openssl rand -hex 8)
write_authinfo "$RELAYQ_RELAYHOST" "$SMARTHOST_USER" "$WRONG2"
tok=t41d-$$-$RANDOM
message "$tok" | sendmail -t || fail "sendmail exited $?"
wait_for_log "$T/serve.log" "credentials file reloaded" 10
wait_queue_count 1 30
assert_no_mail "$tok" 1
write_authinfo "$RELAYQ_RELAYHOST" "$SMARTHOST_USER" "$SMARTHOST_PASS"
sleep 1.2
relayq queue flush >/dev/null || fail "relayq queue flush failed"
wait_for_mail "$tok" >/dev/null
wait_queue_count 0 10
assert_not_contains "$T/serve.log" "$WRONG2" "relayq serve log"

check "SIGTERM: relayq serve exits 0"
stop_serve
pass
