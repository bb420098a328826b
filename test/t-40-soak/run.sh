#!/usr/bin/env bash
# t-40: soak. 10,000 messages submitted through relayq serve's SMTP listener
# (20 parallel sessions) while the relay (a counting go-smtp sink on
# loopback, in the Go test's process) is stopped and started four times and
# the daemon is killed with SIGKILL twice and restarted. Every acknowledged
# message must reach the sink; the duplicate count is printed (SOAK line).
# The Go test is soak_test.go in this directory; this wrapper runs it with
# the relayq binary that run-all built.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd go
check "10,000 messages through the listener with relay restarts and two kill -9: none lost"
out="$T/soak.out"
if ! (cd "$REPO" && RELAYQ_BIN="$BIN/relayq" RELAYQ_SOAK_N=10000 \
	go test -count=1 -v -run '^TestSoak$' ./test/t-40-soak/) >"$out" 2>&1; then
	show "$out" 60
	fail "soak test failed"
fi
grep '^SOAK ' "$out" >&2 || { show "$out"; fail "no SOAK summary line"; }
pass
