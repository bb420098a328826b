#!/usr/bin/env bash
# t-72: OAuth 2.0 against a real smarthost that checks bearer tokens. A
# private Postfix + Dovecot (test/smarthost/start.sh) gets Dovecot's oauth2
# passdb for XOAUTH2 and OAUTHBEARER (introspection_mode = post) in front of
# a local authorization server (test/tools/oauthserver, loopback: device
# grant, refresh with rotation — each refresh token works once —, RFC 7662
# introspection, revocation).
#
#   * relayq oauth login (device flow: the code is shown, approval after
#     the first poll) stores the refresh token in the credentials file
#     (0600), never printing it;
#   * a message goes out through the real Postfix with XOAUTH2, another
#     with OAUTHBEARER (Postfix logs sasl_method=…), each once; each comes
#     from a new process (a daemonless run, then relayq serve twice), so each
#     starts from the rotated refresh token kept in oauth-tokens.json — the
#     one in the credentials file was used up by the first refresh;
#   * relayq probe shows the token's state; after the server revokes every
#     token, the next message waits (mailq shows invalid_grant), relayq
#     check exits 78, and no secret appears in mailq, check, probe or the
#     log.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd postconf postfix doveadm python3

SH=$(mktemp -d /tmp/relayq-sh72.XXXXXX)
"$TEST_ROOT/smarthost/start.sh" "$SH" >"$T/sh-start.out" 2>&1 || { show "$T/sh-start.out"; fail "test/smarthost/start.sh failed"; }
on_exit "$TEST_ROOT/smarthost/stop.sh" "$SH"
# shellcheck disable=SC1091
. "$SH/env"

(cd "$REPO" && go build -o "$T/oauthserver" ./test/tools/oauthserver) || fail "go build ./test/tools/oauthserver failed"
"$T/oauthserver" -user "$SMARTHOST_USER" >"$T/oauth.out" 2>"$T/oauth.err" &
_PIDS+=("$!")
for _ in $(seq 1 50); do grep -q '^CLIENT_SECRET=' "$T/oauth.out" && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$T/oauth.out" || fail "oauthserver did not start"
[ -n "${URL:-}" ] || fail "oauthserver printed no URL"

check "Dovecot checks XOAUTH2/OAUTHBEARER tokens with the oauth2 passdb (introspection at the local server)"
conf=$SH/dovecot/dovecot.conf
cat >"$SH/dovecot/oauth2.conf.ext" <<EXT
introspection_mode = post
introspection_url = $URL/introspect
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
EXT
chmod 0644 "$SH/dovecot/oauth2.conf.ext"
sed -i 's/^auth_mechanisms = .*/& xoauth2 oauthbearer/' "$conf"
sed -i 's|^passdb {|passdb {\n  mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256|' "$conf"
cat >>"$conf" <<EOF2
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $SH/dovecot/oauth2.conf.ext
}
EOF2
doveadm -c "$conf" reload >"$T/reload.out" 2>&1 || { show "$T/reload.out"; fail "doveadm reload"; }
sleep 1
postfix -c "$SH/etc" reload >/dev/null 2>&1 || fail "postfix reload failed"
relay="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
relayq_env "$relay"
tokens=$T/spool/oauth-tokens.json

check "relayq oauth login: the device flow shows the code, stores the refresh token (0600), prints no token"
expect_exit 0 relayq oauth login -client-id "$CLIENT_ID" -client-secret "$CLIENT_SECRET" -token-url "$URL/token" \
	-device-url "$URL/device" -user "$SMARTHOST_USER" -timeout 30s "$relay"
assert_contains "$T/last.out" "enter the code WDJB-MJHT" "oauth login"
assert_contains "$T/last.out" "refresh token stored, not shown" "oauth login"
assert_not_match "$T/last.out" 'refresh-token-|access-token-' "oauth login"
assert_eq "$(stat -c %a "$RELAYQ_AUTHINFO")" 600 "the credentials file's mode"
assert_match "$RELAYQ_AUTHINFO" "^\\[$SMARTHOST_HOST\\]:$SMARTHOST_SUBMISSION_PORT oauth2:user=" "the credentials file"
assert_not_contains "$RELAYQ_AUTHINFO" "$SMARTHOST_PASS" "the credentials file (the password entry was replaced)"

# send MECH TOKEN — one message with AUTH MECH (daemonless or through the
# daemon, as RELAYQ_* say); wait for it and check the smarthost's session.
send() {
	local f
	printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\noauth %s\n' "$2" "$2" "$2" |
		RELAYQ_SASL_MECHANISMS=$1 relayq sendmail -t -i || fail "sendmail exited $?"
	f=$(wait_for_mail "oauth $2" 1 | head -n 1)
	smarthost_session_log "$f" >"$T/session-$2.log"
	assert_contains "$T/session-$2.log" "sasl_method=$1" "the smarthost's session ($2)"
	assert_contains "$T/session-$2.log" "sasl_username=$SMARTHOST_USER" "the smarthost's session ($2)"
}

check "XOAUTH2 through the real smarthost (daemonless run: a new process refreshes with the file's token, rotated)"
tok=t72a-$$-$RANDOM
send XOAUTH2 "$tok"
wait_detached
[ -f "$tokens" ] || fail "no $tokens: the rotated refresh token was not kept"
assert_eq "$(stat -c %a "$tokens")" 600 "the token store's mode"

check "OAUTHBEARER through relayq serve, restarted once: each start goes on with the kept token"
export RELAYQ_SASL_MECHANISMS=OAUTHBEARER
save_config
start_serve
tok=t72b-$$-$RANDOM
send OAUTHBEARER "$tok"
stop_serve
start_serve
tok=t72c-$$-$RANDOM
send OAUTHBEARER "$tok"
stop_serve
unset RELAYQ_SASL_MECHANISMS
save_config
for t in t72a t72b t72c; do
	n=$(mail_files "oauth $t-" | grep -c . || true)
	assert_eq "$n" 1 "messages $t delivered"
done

check "relayq probe shows the token's state"
expect_exit 0 relayq probe
assert_contains "$T/last.out" "OAuth token: access token obtained (refresh_token flow), valid until" "relayq probe"
assert_contains "$T/last.out" "refresh token from the token store" "relayq probe"

check "the smarthost really checks the token: a bearer token the server never issued is refused (probe exit 77)"
(umask 077 && printf '%s oauth2:user=%s,access_token=not-a-real-token,mech=XOAUTH2\n' "$relay" "$SMARTHOST_USER" >"$T/authinfo.bogus")
RELAYQ_AUTHINFO=$T/authinfo.bogus expect_exit 77 relayq probe
assert_contains "$T/last.out" "result: authentication refused" "relayq probe with a bogus token"

check "every token revoked: the message waits with the reason, check exits 78, no secret anywhere"
python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b""))' "$URL/admin/revoke" ||
	fail "revoking the tokens at $URL failed"
tok=t72d-$$-$RANDOM
printf 'Subject: %s\n\nrevoked %s\n' "$tok" "$tok" | relayq sendmail "rcpt-$tok@example.net" || fail "sendmail exited $?"
wait_detached
relayq mailq >"$T/mailq" 2>&1 || true
assert_contains "$T/mailq" "invalid_grant" "mailq"
expect_exit 78 relayq check
assert_contains "$T/last.err" "invalid_grant" "relayq check"
cp "$T/last.out" "$T/check.out"
cat "$T/last.err" >>"$T/check.out"
relayq probe >"$T/probe.out" 2>&1 || true
for f in "$T/mailq" "$T/check.out" "$T/probe.out" "$T"/*.log; do
	assert_not_match "$f" "refresh-token-|access-token-|$CLIENT_SECRET" "$(basename "$f")"
done
assert_no_mail "revoked $tok" 1
pass
