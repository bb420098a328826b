#!/usr/bin/env bash
# t-21: `relayq probe` against the real Postfix + Dovecot smarthost. The
# binary is configured only through RELAYQ_* variables and a Postfix
# sasl_passwd style credentials file, as a user would. Checks the output
# (banner, EHLO before TLS without AUTH, STARTTLS, certificate chain and
# verification, EHLO after TLS with AUTH, the AUTH answer, never the
# password) and the exit codes: 0 ok, 77 wrong password, 78 untrusted
# certificate, 69 nothing listening; implicit TLS on the smtps port.
#
# Uses the smarthost of test/lib.sh when SMARTHOST_ENV names its env file,
# else starts a private one with test/smarthost/start.sh and stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

work=$(mktemp -d /tmp/relayq-t21.XXXXXX)
chmod 0755 "$work" # Postfix (user postfix) must traverse it
envf=${SMARTHOST_ENV:-}
cleanup() {
	if [ -z "${SMARTHOST_ENV:-}" ]; then bash test/smarthost/stop.sh "$work/sh" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$envf" ]; then
	bash test/smarthost/start.sh "$work/sh" >"$work/start.log" 2>&1 || { cat "$work/start.log"; echo "FAIL t-21-probe: smarthost did not start"; exit 1; }
	envf=$work/sh/env
fi
# shellcheck disable=SC1090
. "$envf"
RELAYQ=${RELAYQ_BIN:-}
if [ -z "$RELAYQ" ]; then
	go build -o "$work/relayq" ./cmd/relayq
	RELAYQ=$work/relayq
fi

fails=0
fail() { echo "FAIL t-21-probe: $*"; fails=$((fails + 1)); }
SUB="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
SMTPS="[$SMARTHOST_HOST]:$SMARTHOST_SMTPS_PORT"
umask 077
printf '%s %s:%s\n%s %s:%s\n' "$SUB" "$SMARTHOST_USER" "$SMARTHOST_PASS" "$SMTPS" "$SMARTHOST_USER" "$SMARTHOST_PASS" >"$work/authinfo"
printf '%s %s:%s\n' "$SUB" "$SMARTHOST_USER" "wrong-$SMARTHOST_PASS" >"$work/authinfo.bad"
: >"$work/relayq.env"

# probe ENV... : runs relayq probe with a clean environment; sets $out, $rc.
probe() {
	rc=0
	out=$(env -i PATH="$PATH" RELAYQ_CONFIG="$work/relayq.env" RELAYQ_AUTHINFO="$work/authinfo" \
		RELAYQ_TLS_CA_FILE="$SMARTHOST_CA" "$@" "$RELAYQ" probe 2>&1) || rc=$?
}
# section FROM TO: the lines of $out from the line matching FROM up to the
# line before TO.
section() { awk -v a="$1" -v b="$2" 'index($0, a) == 1 {on = 1; next} on && index($0, b) == 1 {exit} on' <<<"$out"; }
expect() { # expect WHAT STRING-IN-OUT
	grep -qF -- "$2" <<<"$out" || fail "$1: output lacks '$2'"$'\n'"$out"
}

# 1. submission + STARTTLS + verify + AUTH.
probe RELAYQ_RELAYHOST="$SUB"
[ "$rc" -eq 0 ] || fail "good probe exited $rc"
expect banner "banner: 220 smarthost.relayq.test ESMTP"
before=$(section "EHLO capabilities (before TLS):" "STARTTLS:")
grep -qx '    STARTTLS' <<<"$before" || fail "no STARTTLS before TLS: $before"
grep -q 'AUTH' <<<"$before" && fail "AUTH offered before TLS (smtpd_tls_auth_only): $before"
expect starttls "STARTTLS: 220 2.0.0 Ready to start TLS"
expect chain "certificate chain:"
expect leaf "0 subject: CN=localhost"
expect verify "verification: OK (chain and host name verified)"
after=$(section "EHLO capabilities (after TLS):" "AUTH mechanisms offered:")
grep -q '^    AUTH PLAIN LOGIN' <<<"$after" || fail "no AUTH after TLS: $after"
grep -qx '    STARTTLS' <<<"$after" && fail "STARTTLS still offered after TLS: $after"
expect mechs "AUTH mechanisms offered: PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
expect auth "AUTH SCRAM-SHA-256: 235 2.7.0 Authentication successful"
expect result "result: ok"
grep -qF -- "$SMARTHOST_PASS" <<<"$out" && fail "password printed"

# 2. A mechanism pinned by configuration: PLAIN, then LOGIN.
for m in PLAIN LOGIN; do
	probe RELAYQ_RELAYHOST="$SUB" RELAYQ_SASL_MECHANISMS="$m"
	[ "$rc" -eq 0 ] || fail "$m probe exited $rc"
	expect "$m" "AUTH $m: 235 2.7.0 Authentication successful"
done

# 3. Wrong password: 77, the server's answer shown.
probe RELAYQ_RELAYHOST="$SUB" RELAYQ_AUTHINFO="$work/authinfo.bad"
[ "$rc" -eq 77 ] || fail "wrong password exited $rc, want 77"
expect wrongpw "refused: 535 5.7.8"
expect wrongpw-result "result: authentication refused"
grep -qF -- "wrong-$SMARTHOST_PASS" <<<"$out" && fail "wrong password printed"

# 4. Untrusted certificate (system roots): 78, chain shown, no AUTH.
probe RELAYQ_RELAYHOST="$SUB" RELAYQ_TLS_CA_FILE=
[ "$rc" -eq 78 ] || fail "untrusted certificate exited $rc, want 78"
expect untrusted "verification: FAILED: x509: certificate signed by unknown authority"
grep -q '^AUTH ' <<<"$out" && fail "AUTH tried over an unverified certificate"

# 5. Implicit TLS (the smtps port is not 465 here: RELAYQ_TLS_IMPLICIT=yes).
probe RELAYQ_RELAYHOST="$SMTPS" RELAYQ_TLS_IMPLICIT=yes
[ "$rc" -eq 0 ] || fail "implicit TLS probe exited $rc"
expect implicit "(implicit TLS)"
expect implicit-auth "AUTH SCRAM-SHA-256: 235 2.7.0"
grep -qF "EHLO capabilities (before TLS)" <<<"$out" && fail "plaintext EHLO on the implicit TLS port"

# 6. Nothing listening: 69.
probe RELAYQ_RELAYHOST="[127.0.0.1]:1"
[ "$rc" -eq 69 ] || fail "closed port exited $rc, want 69"

# 7. The relay given as argument wins over RELAYQ_RELAYHOST.
rc=0
out=$(env -i PATH="$PATH" RELAYQ_CONFIG="$work/relayq.env" RELAYQ_AUTHINFO="$work/authinfo" RELAYQ_TLS_CA_FILE="$SMARTHOST_CA" \
	RELAYQ_RELAYHOST="[127.0.0.1]:1" "$RELAYQ" probe "$SUB" 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "probe with argument exited $rc"

if [ "$fails" -ne 0 ]; then
	echo "FAIL t-21-probe ($fails checks failed)"
	exit 1
fi
echo "PASS t-21-probe"
