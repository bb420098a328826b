#!/usr/bin/env bash
# t-20: the delivery client (smarthost package) against the real Postfix +
# Dovecot smarthost, driven by a Go test (smarthost/real_test.go
# TestRealSmarthost): PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1 and SCRAM-SHA-256
# over the submission port with STARTTLS; PLAIN and LOGIN over the
# implicit-TLS port; wrong password (535 → deferred, AuthFailed); no
# credentials (refused by the relay, not delivered); untrusted CA under
# verify (4.7.5, no AUTH); three messages over one reused connection; a
# message with 8-bit text and dot lines by BDAT (the relay offers CHUNKING)
# and by DATA, each arriving byte-identical; Probe.
# Every delivered message is found in the smarthost's Maildir, the leading
# dot of a body line restored.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd go

check "TestRealSmarthost passes against $SMARTHOST_HOST (submission $SMARTHOST_SUBMISSION_PORT, smtps $SMARTHOST_SMTPS_PORT)"
rc=0
(cd "$REPO" && RELAYQ_TEST_SMARTHOST_ENV=$SMARTHOST_ENV go test -count=1 -run '^TestRealSmarthost$' -v ./smarthost) \
	>"$T/go-test.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
	show "$T/go-test.log" 80
	fail "go test exited $rc"
fi
check "no sub-test skipped"
assert_not_contains "$T/go-test.log" "--- SKIP" "go test output"
check "all 14 scenarios ran and passed"
n=$(grep -c -- '--- PASS: TestRealSmarthost/' "$T/go-test.log" || true)
assert_eq "$n" 14 "passed sub-tests"
check "the password never appears in the test output"
assert_not_contains "$T/go-test.log" "$SMARTHOST_PASS" "go test output"
pass
