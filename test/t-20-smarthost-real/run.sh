#!/usr/bin/env bash
# t-20: the delivery client (smarthost package) against the real Postfix +
# Dovecot smarthost: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256 over
# the submission port with STARTTLS; PLAIN and LOGIN over the implicit-TLS
# port; wrong password (535 → deferred, AuthFailed); no credentials (relay
# refused); untrusted CA under verify (no AUTH); connection reuse; Probe.
# Each delivered message is found in the smarthost's Maildir.
#
# Uses the smarthost of test/lib.sh when SMARTHOST_ENV names its env file,
# else starts a private one with test/smarthost/start.sh and stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

own=
envf=${SMARTHOST_ENV:-}
if [ -z "$envf" ]; then
	own=$(mktemp -d /tmp/relayq-t20.XXXXXX)
	chmod 0755 "$own" # Postfix (user postfix) must traverse it
	trap 'bash test/smarthost/stop.sh "$own/sh" >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf "$own"' EXIT
	bash test/smarthost/start.sh "$own/sh" >"$own/start.log" 2>&1 || { cat "$own/start.log"; echo "FAIL t-20: smarthost did not start"; exit 1; }
	envf=$own/sh/env
fi

out=$(RELAYQ_TEST_SMARTHOST_ENV=$envf go test -count=1 -run '^TestRealSmarthost$' -v ./smarthost 2>&1) || {
	echo "$out"
	echo "FAIL t-20-smarthost-real"
	exit 1
}
if grep -q -- '--- SKIP' <<<"$out"; then
	echo "$out"
	echo "FAIL t-20-smarthost-real: skipped"
	exit 1
fi
n=$(grep -c -- '--- PASS: TestRealSmarthost/' <<<"$out" || true)
if [ "$n" -lt 12 ]; then
	echo "$out"
	echo "FAIL t-20-smarthost-real: only $n sub-tests passed"
	exit 1
fi
echo "PASS t-20-smarthost-real ($n scenarios)"
