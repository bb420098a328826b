#!/usr/bin/env bash
# t-12: `relayq check` and `relayq authinfo lookup` as an operator meets
# them: exit 0 for a good configuration with the plan per relay host (secrets
# masked); exit 78 with a specific message for an empty or bad relay host, a
# relay host with no matching credential, a missing credentials file, a
# relay host that does not resolve, a 0644 listener users file, a
# non-loopback listener without TLS, a default sender that is not fully
# qualified, a missing CA file, a credentials file with a bad line (file:line, no secret),
# one that is world-readable, group-readable by a foreign group, or owned by
# another user; a group-readable file of the own group passes; a spool held
# by the running daemon is reported as such, not as an error; lookup exits 1
# when no entry matches and 64 on bad usage.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

RELAY="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
relayq_env "$RELAY"
SECRET="S3cret-$(openssl rand -hex 6)"

# ai TEXT — write the credentials file (0600, root).
ai() {
	(umask 077 && printf '%s\n' "$1" >"$RELAYQ_AUTHINFO")
	chmod 0600 "$RELAYQ_AUTHINFO"
	chown 0:0 "$RELAYQ_AUTHINFO"
}

# check_fails WHAT STRING — relayq check exits 78 and says STRING on stderr.
check_fails() {
	check "relayq check: $1 → exit 78"
	expect_exit 78 relayq check
	assert_contains "$T/last.err" "$2" "relayq check errors"
	assert_not_contains "$T/last.out" "$SECRET" "relayq check output"
	assert_not_contains "$T/last.err" "$SECRET" "relayq check errors"
}

ai "$RELAY $SMARTHOST_USER:$SECRET
@b.test other:$SECRET"
check "relayq check: a good configuration exits 0"
expect_exit 0 relayq check
assert_contains "$T/last.out" "ok      relay host: $RELAY" "relayq check output"
assert_contains "$T/last.out" "Postfix sasl_passwd syntax, 2 entries, sender-dependent (1 sender keys), mode 0600" "relayq check output"
assert_contains "$T/last.out" "next hop \"$RELAY\": matches $RELAYQ_AUTHINFO:1" "relayq check output"
assert_contains "$T/last.out" "result: user \"$SMARTHOST_USER\" password ********" "relayq check output"
assert_contains "$T/last.out" "sender @b.test: user \"other\" password ********" "relayq check output"
assert_contains "$T/last.out" "relayq check: configuration OK (passwords are not tried here: relayq probe logs in to the relay)" "relayq check output"
assert_not_contains "$T/last.out" "$SECRET" "relayq check output"

check "relayq check: a file of the own group, mode 0640, passes"
chmod 0640 "$RELAYQ_AUTHINFO"
chgrp "$(id -g)" "$RELAYQ_AUTHINFO"
expect_exit 0 relayq check

chgrp nogroup "$RELAYQ_AUTHINFO"
check "relayq check as root: group nogroup 0640 is a warning (fine for a daemon in that group)"
expect_exit 0 relayq check
assert_contains "$T/last.out" "is readable by group nogroup" "relayq check output"
check "relayq authinfo lookup refuses the same file (root's own group is not nogroup)"
expect_exit 78 relayq authinfo lookup "$RELAY"
assert_contains "$T/last.err" "readable by group" "relayq authinfo lookup errors"

ai "$RELAY $SMARTHOST_USER:$SECRET"
chmod 0644 "$RELAYQ_AUTHINFO"
check_fails "world-readable credentials" "accessible by others (mode 0644); run: chmod 600 $RELAYQ_AUTHINFO"
ai "$RELAY $SMARTHOST_USER:$SECRET"
chown nobody "$RELAYQ_AUTHINFO"
check_fails "credentials owned by nobody" "owned by uid $(id -u nobody), not by the reading user"
ai "# comment
$RELAY $SMARTHOST_USER:$SECRET
smtp.example.com $SECRET"
check_fails "a line without user:password" "$RELAYQ_AUTHINFO:3: expected the value user:password (no ':' found)"
ai "AuthInfo:$SMARTHOST_HOST \"U:$SMARTHOST_USER\""
check_fails "an AuthInfo line without a password" "$RELAYQ_AUTHINFO:1: no password"

ai "$RELAY $SMARTHOST_USER:$SECRET"
RELAYQ_RELAYHOST='' check_fails "empty relay host" "RELAYQ_RELAYHOST is empty"
RELAYQ_RELAYHOST="[$SMARTHOST_HOST" check_fails "bad relay host" "RELAYQ_RELAYHOST:"
RELAYQ_TLS_CA_FILE=$T/no-such-ca.pem check_fails "missing CA file" "RELAYQ_TLS_CA_FILE: open $T/no-such-ca.pem"

ai "[other.example]:587 $SMARTHOST_USER:$SECRET"
check_fails "a relay without a matching entry" "no entry of $RELAYQ_AUTHINFO matches relay $RELAY, so it gets no mail (RELAYQ_AUTH=required: no credential, no send)"
assert_contains "$T/last.err" "add a line \"$RELAY user:password\"" "says what to change"
mv "$RELAYQ_AUTHINFO" "$T/authinfo.away"
check_fails "a missing credentials file" "credentials: $RELAYQ_AUTHINFO does not exist"
assert_contains "$T/last.err" "install -m 0600 /dev/null $RELAYQ_AUTHINFO" "says what to change"
mv "$T/authinfo.away" "$RELAYQ_AUTHINFO"
ai "[nosuch.invalid]:587 $SMARTHOST_USER:$SECRET"
RELAYQ_RELAYHOST='[nosuch.invalid]:587' check_fails "a relay host that does not resolve" "relay host [nosuch.invalid]:587 does not resolve"
ai "$RELAY $SMARTHOST_USER:$SECRET"
printf 'app1:%s\n' '$2a$12$abcdefghijklmnopqrstuu5TnQyQZV3m1QpJ2vK3m8H1zQ4yQ3qGe' >"$T/smtpd-users"
chmod 0644 "$T/smtpd-users"
RELAYQ_LISTEN=127.0.0.1:2525 RELAYQ_SMTPD_USERS=$T/smtpd-users check_fails "a 0644 listener users file" "RELAYQ_SMTPD_USERS: users file $T/smtpd-users: mode 0644"
assert_contains "$T/last.err" "relayq passwd -f $T/smtpd-users NAME" "says what to change"
RELAYQ_LISTEN=192.0.2.1:2525 RELAYQ_MYNETWORKS=192.0.2.0/24 check_fails "a non-loopback listener without TLS" "listener: 192.0.2.1:2525 is not a loopback address and has no TLS"
RELAYQ_DOMAIN=localhost check_fails "a default sender that is not fully qualified" "default sender: user@localhost (root@, cron@, …), from RELAYQ_DOMAIN, is not a fully-qualified address"
assert_contains "$T/last.err" "set RELAYQ_DOMAIN=" "says what to change"

check "relayq check: an entry allowing only mechanisms relayq lacks is a warning"
ai "AuthInfo:$SMARTHOST_HOST \"U:$SMARTHOST_USER\" \"P:$SECRET\" \"M:DIGEST-MD5 GSSAPI\""
expect_exit 0 relayq check
assert_contains "$T/last.out" "$RELAYQ_AUTHINFO:1 allows only mechanisms relayq does not speak (DIGEST-MD5 GSSAPI)" "relayq check output"
assert_contains "$T/last.out" "server name \"authinfo:$SMARTHOST_HOST\": matches $RELAYQ_AUTHINFO:1" "relayq check output"

check "relayq check: the spool held by the running daemon is fine"
ai "$RELAY $SMARTHOST_USER:$SECRET"
start_serve
expect_exit 0 relayq check
assert_contains "$T/last.out" "is held by the running daemon (answers on $RELAYQ_SOCKET)" "relayq check output"
stop_serve
check "relayq check: without the daemon the spool opens"
expect_exit 0 relayq check
assert_contains "$T/last.out" "ok      spool: $RELAYQ_SPOOL opens" "relayq check output"

check "relayq authinfo lookup: match → 0, no match → 1, bad usage → 64"
expect_exit 0 relayq authinfo lookup "$RELAY" someone@example.com
assert_contains "$T/last.out" "result: user \"$SMARTHOST_USER\" password ********" "relayq authinfo lookup"
expect_exit 1 relayq authinfo lookup "[elsewhere.example]:587"
assert_contains "$T/last.out" "result: no entry matches; relayq will not attempt AUTH" "relayq authinfo lookup"
expect_exit 64 relayq authinfo lookup
expect_exit 64 relayq authinfo frobnicate
assert_not_contains "$T/last.out" "$SECRET" "relayq authinfo lookup"
pass
