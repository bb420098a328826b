#!/usr/bin/env bash
# t-21: `relayq probe` against the real Postfix + Dovecot smarthost, set up
# only through RELAYQ_* variables and a Postfix sasl_passwd style
# credentials file, as a user would. Checks the output (banner; EHLO before
# TLS with STARTTLS and without AUTH; the 220 to STARTTLS; the certificate
# chain and its verification; EHLO after TLS with AUTH and without
# STARTTLS; the mechanisms; the AUTH answer; never the password) and the
# exit codes: 0 ok, 77 wrong password, 78 untrusted certificate, 69
# nothing listening; implicit TLS on the smtps port; mechanisms pinned by
# RELAYQ_SASL_MECHANISMS; the relay argument winning over RELAYQ_RELAYHOST;
# the smtps port without RELAYQ_TLS_IMPLICIT detected as implicit TLS;
# -send delivering one test message whose queue ID the smarthost logged;
# RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS=chunking making -send use DATA.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

SUB="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
SMTPS="[$SMARTHOST_HOST]:$SMARTHOST_SMTPS_PORT"
relayq_env "$SUB"
umask 077
printf '%s %s:%s\n%s %s:%s\n' "$SUB" "$SMARTHOST_USER" "$SMARTHOST_PASS" "$SMTPS" "$SMARTHOST_USER" "$SMARTHOST_PASS" >"$T/authinfo"
printf '%s %s:%s\n' "$SUB" "$SMARTHOST_USER" "wrong-$SMARTHOST_PASS" >"$T/authinfo.bad"
umask 022
OUT=$T/last.out

# section FROM TO: lines of $OUT after the one starting with FROM, up to the
# one starting with TO.
section() { awk -v a="$1" -v b="$2" 'index($0, a) == 1 {on = 1; next} on && index($0, b) == 1 {exit} on' "$OUT"; }

check "probe of the submission port: exit 0"
expect_exit 0 relayq probe
check "banner, EHLO before TLS offers STARTTLS and no AUTH"
assert_contains "$OUT" "banner: 220 smarthost.relayq.test ESMTP"
section "EHLO capabilities (before TLS):" "STARTTLS:" >"$T/before"
assert_match "$T/before" '^    STARTTLS$' "EHLO before TLS"
assert_not_contains "$T/before" "AUTH" "EHLO before TLS"
check "the 220 to STARTTLS, the chain and its verification"
assert_contains "$OUT" "STARTTLS: 220 2.0.0 Ready to start TLS"
assert_contains "$OUT" "certificate chain:"
assert_contains "$OUT" "0 subject: CN=localhost"
assert_match "$OUT" '^    pin:     sha256//[A-Za-z0-9+/]{43}=$'
assert_contains "$OUT" "verification: OK (chain and host name verified)"
check "EHLO after TLS offers AUTH and no STARTTLS"
section "EHLO capabilities (after TLS):" "AUTH mechanisms offered:" >"$T/after"
assert_match "$T/after" '^    AUTH PLAIN LOGIN' "EHLO after TLS"
assert_not_match "$T/after" '^    STARTTLS$' "EHLO after TLS"
check "the strongest mechanism is used and the server's answer shown"
assert_contains "$OUT" "AUTH mechanisms offered: PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
assert_contains "$OUT" "AUTH SCRAM-SHA-256: 235 2.7.0 Authentication successful"
assert_contains "$OUT" "result: ok"
check "the password is not printed"
assert_not_contains "$OUT" "$SMARTHOST_PASS"

for m in PLAIN LOGIN; do
	check "RELAYQ_SASL_MECHANISMS=$m pins $m"
	RELAYQ_SASL_MECHANISMS=$m expect_exit 0 relayq probe
	assert_contains "$OUT" "AUTH $m: 235 2.7.0 Authentication successful"
done

check "wrong password: exit 77 with the server's 535"
RELAYQ_AUTHINFO=$T/authinfo.bad expect_exit 77 relayq probe
assert_contains "$OUT" "refused: 535 5.7.8"
assert_contains "$OUT" "result: authentication refused"
assert_not_contains "$OUT" "wrong-$SMARTHOST_PASS"

check "system roots only: the test CA is untrusted, exit 78, no AUTH"
# shellcheck disable=SC1007 # an empty value for this one command
RELAYQ_TLS_CA_FILE= expect_exit 78 relayq probe
assert_contains "$OUT" "verification: FAILED: x509: certificate signed by unknown authority"
assert_not_match "$OUT" '^AUTH ' "probe output"

check "implicit TLS on the smtps port (RELAYQ_TLS_IMPLICIT=yes: it is not 465 here)"
RELAYQ_RELAYHOST=$SMTPS RELAYQ_TLS_IMPLICIT=yes expect_exit 0 relayq probe
assert_contains "$OUT" "(implicit TLS)"
assert_contains "$OUT" "AUTH SCRAM-SHA-256: 235 2.7.0"
assert_not_contains "$OUT" "EHLO capabilities (before TLS)"

check "the smtps port without RELAYQ_TLS_IMPLICIT: detected as implicit TLS, exit 78 (no 300 s greeting wait)"
RELAYQ_RELAYHOST=$SMTPS expect_exit 78 relayq probe
assert_contains "$OUT" "speaks TLS from the first byte"
assert_contains "$OUT" "set RELAYQ_TLS_IMPLICIT=yes"

check "-send ADDRESS: one real test message; the relay's reply names its queue ID"
tok=t21send-$$-$RANDOM
expect_exit 0 relayq probe -sender "$SMARTHOST_USER@relayq.test" -send "$tok@example.net"
# Postfix answers BDAT with "Ok: N bytes queued as ID", DATA with "Ok:
# queued as ID": relayq uses BDAT, which Postfix offers (CHUNKING).
assert_match "$OUT" '^test message: delivered by .*: 250 2\.0\.0 Ok: [0-9]+ bytes queued as [0-9A-F]+' "probe -send by BDAT"
f=$(wait_for_mail "$tok@example.net" 1 | head -1)
assert_contains "$f" "Subject: relayq probe test message" "the test message"
qid=$(sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p' "$OUT" | head -1)
grep -q "$qid" "$SMARTHOST_LOG" || fail "the queue ID $qid that probe printed is not in the smarthost's log"

check "RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS=chunking: probe says CHUNKING is ignored; -send goes by DATA and arrives"
assert_match "$T/after" '^    CHUNKING$' "EHLO after TLS (Postfix offers CHUNKING)"
tok=t21data-$$-$RANDOM
RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS=chunking expect_exit 0 relayq probe -sender "$SMARTHOST_USER@relayq.test" -send "$tok@example.net"
assert_contains "$OUT" "  ignored (RELAYQ_SMTP_DISCARD_EHLO_KEYWORDS): CHUNKING"
# DATA's reply has no byte count (BDAT's has).
assert_match "$OUT" '^test message: delivered by .*: 250 2\.0\.0 Ok: queued as [0-9A-F]+' "probe -send by DATA"
wait_for_mail "$tok@example.net" 1 >/dev/null

check "nothing listening: exit 69"
RELAYQ_RELAYHOST="[127.0.0.1]:1" expect_exit 69 relayq probe

check "the relay argument wins over RELAYQ_RELAYHOST"
RELAYQ_RELAYHOST="[127.0.0.1]:1" expect_exit 0 relayq probe "$SUB"
assert_contains "$OUT" "result: ok"
pass
