#!/usr/bin/env bash
# t-11: relayq's own deliveries authenticate with the credential the
# authinfo rules pick, as the smarthost's log shows (sasl_username=…):
#
#   1. Postfix sasl_passwd syntax with sender keys (daemonless): the sender
#      user+ext@domain key, user@domain for another extension, @domain, the
#      server-name key for any other sender and for the null sender — the
#      cases t-10 checked against Postfix itself; one password holds ':'.
#   2. sendmail authinfo syntax (daemonless): AuthInfo:localhost with a
#      base64 "P=" password, else AuthInfo:127.0.0.1 (the server address),
#      else the default AuthInfo: entry.
#   3. relayq serve: SIGHUP with a broken file keeps the old credentials in
#      force (the error is logged, the secret is not); SIGHUP with a good
#      file switches; a change without SIGHUP is picked up at the next
#      lookup (mtime/size/inode check).
#   4. relayq check and relayq authinfo lookup print no secret.
#
# Needs more SASL users than the test bed's two, so it runs a private
# smarthost (start.sh into its scratch directory) and adds users to that
# instance's Dovecot passwd-file (Dovecot re-reads it when it changes).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd openssl base64

SH=$T/sh
# shellcheck disable=SC2317 # called from the EXIT trap
_t11_cleanup() {
	if [ -f "$SH/env" ] || [ -d "$SH/queue" ]; then
		"$TEST_ROOT/smarthost/stop.sh" "$SH" >/dev/null 2>&1 || true
	fi
}
# shellcheck disable=SC2154 # _t11_rc is assigned inside the trap string
trap '_t11_rc=$?; _t11_cleanup; (exit $_t11_rc); _cleanup' EXIT
"$TEST_ROOT/smarthost/start.sh" "$SH" >&2 || fail "test/smarthost/start.sh $SH failed"
# shellcheck disable=SC1091
. "$SH/env"
SUB=$SMARTHOST_SUBMISSION_PORT

r=$(openssl rand -hex 6)
declare -A PW=(
	[u-host]="pw:host:with:colons-$r"
	[u-alice-ext]="pw-alice-ext-$r"
	[u-alice]="pw-alice-$r"
	[u-domb]="pw-domb-$r"
	[u-sm-host]="pw-sm-host-$r"
	[u-sm-addr]="pw-sm-addr-$r"
	[u-sm-default]="pw-sm-default-$r"
	[u-v1]="pw-v1-$r"
	[u-v2]="pw-v2-$r"
	[u-v3]="pw-v3-$r"
)
for u in "${!PW[@]}"; do
	printf '%s:{PLAIN.b64}%s\n' "$u" "$(printf '%s' "${PW[$u]}" | base64 -w0)" >>"$SH/dovecot/users"
done

relayq_env "[localhost]:$SUB"
export RELAYQ_SASL_MECHANISMS=PLAIN
save_config

# deliver SENDER TOKEN — relayq sendmail -f SENDER (daemonless, or through
# the daemon when one runs).
deliver() {
	printf 'From: t11@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\nX-Test-Token: %s\n\nbody\n' "$2" "$2" "$2" |
		relayq sendmail -f "$1" "rcpt-$2@example.net" >"$T/sendmail.out" 2>&1 || {
		show "$T/sendmail.out"
		fail "relayq sendmail -f $1 failed"
	}
}

# sasl_user TOKEN — the SASL user of the smarthost session that received
# the message with X-Test-Token TOKEN.
# (By the queue ID's client= line: smtpd processes serve several sessions,
# so the smtpd PID alone does not identify one.)
sasl_user() {
	local f qid
	f=$(wait_for_mail "X-Test-Token: $1" 1 | head -n 1)
	qid=$(postfix_queue_id "$f")
	[ -n "$qid" ] || fail "no smarthost queue ID in $f"
	grep -F " $qid: client=" "$SMARTHOST_LOG" | sed -n 's/.*sasl_username=\([^ ,]*\).*/\1/p' | head -n 1
}

# expect SENDER USER — deliver as SENDER and require AUTH as USER.
n=0
expect() {
	n=$((n + 1))
	local tok=t11-$$-$n got
	check "sender ${1:-<>}: relayq authenticates as $2"
	deliver "$1" "$tok"
	got=$(sasl_user "$tok")
	assert_eq "$got" "$2" "SASL user for sender ${1:-<>}"
}

# put FILE_CONTENT — replace the credentials file (0600, new inode).
put() {
	(umask 077 && printf '%s' "$1" >"$RELAYQ_AUTHINFO.new")
	mv "$RELAYQ_AUTHINFO.new" "$RELAYQ_AUTHINFO"
}

# 1. Postfix syntax with sender keys.
put "[localhost]:$SUB	u-v1:${PW[u-v1]}
localhost	u-host:${PW[u-host]}
alice+tag@a.test	u-alice-ext:${PW[u-alice-ext]}
alice@a.test	u-alice:${PW[u-alice]}
@b.test	u-domb:${PW[u-domb]}
"
expect alice+tag@a.test u-alice-ext
expect alice+other@a.test u-alice
expect bob@b.test u-domb
expect carol@c.test u-host
expect "<>" u-host
wait_detached

# 2. sendmail authinfo syntax: name, then address, then default.
b64() { printf '%s' "$1" | base64 -w0; }
put "AuthInfo:localhost \"U:u-sm-host\" \"P=$(b64 "${PW[u-sm-host]}")\" \"M:PLAIN\"
AuthInfo:127.0.0.1 \"U:u-sm-addr\" \"P:${PW[u-sm-addr]}\"
AuthInfo: \"I:u-sm-default\" \"P:${PW[u-sm-default]}\"
"
expect alice@a.test u-sm-host
put "AuthInfo:127.0.0.1 \"U:u-sm-addr\" \"P:${PW[u-sm-addr]}\"
AuthInfo: \"I:u-sm-default\" \"P:${PW[u-sm-default]}\"
"
expect alice@a.test u-sm-addr
put "AuthInfo:192.0.2.1 \"U:u-sm-addr\" \"P:${PW[u-sm-addr]}\"
AuthInfo: \"I:u-sm-default\" \"P:${PW[u-sm-default]}\"
"
expect alice@a.test u-sm-default
wait_detached

# 3. The daemon: SIGHUP reloads; a broken file keeps the old map.
put "[localhost]:$SUB	u-v1:${PW[u-v1]}
"
start_serve
expect alice@a.test u-v1
BROKEN="BrokenLine-$r"
put "[localhost]:$SUB	u-v2:${PW[u-v2]}
localhost $BROKEN
"
kill -HUP "$SERVE_PID"
check "SIGHUP with a broken file: the error is logged with file:line"
wait_for_log "$T/serve.log" "$RELAYQ_AUTHINFO:2: expected the value user:password"
expect alice@a.test u-v1
put "[localhost]:$SUB	u-v2:${PW[u-v2]}
"
kill -HUP "$SERVE_PID"
wait_for_log "$T/serve.log" "reloaded"
expect alice@a.test u-v2
check "a change without SIGHUP is picked up by the next delivery"
put "[localhost]:$SUB	u-v3:${PW[u-v3]}
"
expect alice@a.test u-v3
stop_serve

# 4. Operator tools print no secret.
check "relayq check passes and masks the password"
expect_exit 0 relayq check
assert_contains "$T/last.out" 'user "u-v3" password ********' "relayq check output"
cp "$T/last.out" "$T/check.out"
check "relayq authinfo lookup shows the matching entry, masked"
expect_exit 0 relayq authinfo lookup "[localhost]:$SUB" alice@a.test
assert_contains "$T/last.out" "next hop \"[localhost]:$SUB\": matches $RELAYQ_AUTHINFO:1" "relayq authinfo lookup"
cp "$T/last.out" "$T/lookup.out"
check "relayq check fails with 78 for a world-readable file"
chmod 0644 "$RELAYQ_AUTHINFO"
expect_exit 78 relayq check
assert_contains "$T/last.err" "accessible by others (mode 0644); run: chmod 600 $RELAYQ_AUTHINFO" "relayq check errors"
chmod 0600 "$RELAYQ_AUTHINFO"
check "no password or broken line in any relayq output or log"
for f in "$T/serve.log" "$T/check.out" "$T/lookup.out" "$T/last.err" "$T/sendmail.out"; do
	for u in "${!PW[@]}"; do
		assert_not_contains "$f" "${PW[$u]}" "$(basename "$f")"
	done
	assert_not_contains "$f" "$BROKEN" "$(basename "$f")"
done
pass
