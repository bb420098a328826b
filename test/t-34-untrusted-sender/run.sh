#!/usr/bin/env bash
# t-34: identity and trust. With `relayq serve` running, sendmail run as the
# unprivileged user nobody hands the message over the unix socket (the
# daemon learns the uid from SO_PEERCRED):
#   * without -f, the sender is nobody@RELAYQ_DOMAIN and From carries the
#     passwd name; no warning;
#   * with -f boss@..., the message arrives with exactly one
#     X-Authentication-Warning naming nobody (the CLI adds it, the listener
#     sees it and adds no second one);
#   * root (trusted) sets -f without a warning;
#   * with RELAYQ_UNTRUSTED_SENDER=refuse, nobody's -f is refused with exit
#     77 and nothing is queued.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd setpriv

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
save_config
chmod 0644 "$RELAYQ_CONFIG"
# The socket's directory is searchable by all, as /run/relayq is (the socket
# itself is 0666, RELAYQ_SOCKET_MODE).
chmod 0755 "$T/run"
start_serve

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

msg() { printf 'To: to-%s@example.net\nSubject: %s\nX-Test-Token: %s\n\nbody\n' "$1" "$1" "$1"; }

check "nobody without -f: sender nobody@relayq.test, no warning"
tok=t34a-$$-$RANDOM
msg "$tok" | as_nobody "$BIN/sendmail" -t -i || fail "sendmail as nobody exited $?"
f=$(wait_for_mail "X-Test-Token: $tok" | head -n 1)
headers_of "$f" >"$T/h"
assert_contains "$T/h" "Return-Path: <nobody@relayq.test>" "headers"
assert_match "$T/h" '^From: .*<?nobody@relayq\.test>?$' "headers"
assert_not_match -i "$T/h" '^X-Authentication-Warning:' "headers"

check "nobody with -f: exactly one X-Authentication-Warning naming nobody"
tok=t34b-$$-$RANDOM
msg "$tok" | as_nobody "$BIN/sendmail" -f "boss-$tok@relayq.test" -t -i || fail "sendmail -f as nobody exited $?"
f=$(wait_for_mail "X-Test-Token: $tok" | head -n 1)
headers_of "$f" >"$T/h"
assert_contains "$T/h" "Return-Path: <boss-$tok@relayq.test>" "headers"
assert_match "$T/h" "^X-Authentication-Warning: [^ ]+: nobody set sender to boss-$tok@relayq\\.test using -f$" "headers"
assert_eq "$(grep -ci '^X-Authentication-Warning:' "$T/h")" 1 "X-Authentication-Warning headers"

check "root (trusted) with -f: no warning"
tok=t34c-$$-$RANDOM
msg "$tok" | "$BIN/sendmail" -f "ops-$tok@relayq.test" -t -i || fail "sendmail -f as root exited $?"
f=$(wait_for_mail "X-Test-Token: $tok" | head -n 1)
headers_of "$f" >"$T/h"
assert_contains "$T/h" "Return-Path: <ops-$tok@relayq.test>" "headers"
assert_not_match -i "$T/h" '^X-Authentication-Warning:' "headers"
wait_queue_count 0

check "RELAYQ_UNTRUSTED_SENDER=refuse: nobody's -f exits 77, nothing queued"
export RELAYQ_UNTRUSTED_SENDER=refuse
save_config
tok=t34d-$$-$RANDOM
rc=0
msg "$tok" | as_nobody "$BIN/sendmail" -f "boss-$tok@relayq.test" -t -i 2>"$T/refuse.err" || rc=$?
assert_eq "$rc" 77 "exit status of a refused -f"
assert_contains "$T/refuse.err" "not allowed to set the sender" "sendmail's error"
assert_eq "$(queue_count)" 0 "queued messages"
assert_no_mail "X-Test-Token: $tok"
stop_serve
pass
