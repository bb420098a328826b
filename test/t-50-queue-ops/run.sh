#!/usr/bin/env bash
# t-50-queue-ops: relayq queue list|show|hold|release|delete|flush|stats|
# compact with no daemon (each command opens the spool itself, bounded lock
# wait) and against a spool the daemon holds (through its control socket),
# and the exit codes: 64 usage, 69 unknown ID, 75 spool locked with no
# daemon answering, 77 a local user changing the queue through the daemon,
# 78 bad configuration.
#
# The relay is a closed loopback port: nothing is delivered, everything
# stays queued, which is what queue operations need.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd flock setpriv

relayq_env "[127.0.0.1]:9" # discard port, nothing listens: every attempt defers
export RELAYQ_LOCK_TIMEOUT=2s
chmod 0755 "$T/run" # like /run/relayq: local users reach the sockets
save_config
RQ=$BIN/relayq
OUT=$T/last.out
ERR=$T/last.err

# send SUBJECT — queue one message; -odq: no detached delivery racing the
# checks below.
send() {
	printf 'From: alice@relayq.test\nTo: bob@example.net, carol@example.net\nSubject: %s\n\nbody of %s\n' "$1" "$1" |
		"$RQ" sendmail -odq -t -i || fail "sendmail -odq -t -i exited $?"
}

# ids — queue IDs in arrival order.
ids() { "$RQ" queue list -json | sed -n 's/.*"ID":"\([0-9A-Z]*\)".*/\1/p'; }

# wait_deferred ID... — until the daemon has tried each message and
# deferred it, so that no attempt is in flight during the checks.
wait_deferred() {
	local id i
	for id in "$@"; do
		for ((i = 0; i < 100; i++)); do
			"$RQ" queue show "$id" 2>/dev/null | grep -q '^Next attempt:  .*(in ' && continue 2
			sleep 0.1
		done
		"$RQ" queue show "$id" >&2 || true
		fail "message $id was not tried and deferred by the daemon"
	done
}

# queue_ops MODE — the operations both modes must get right.
queue_ops() {
	local mode=$1 all id1 id2 id3
	send "$mode one"
	send "$mode two"
	send "$mode three"
	all=$(ids)
	assert_eq "$(printf '%s\n' "$all" | grep -c .)" 3 "$mode: queued messages"
	id1=$(printf '%s\n' "$all" | sed -n 1p)
	id2=$(printf '%s\n' "$all" | sed -n 2p)
	id3=$(printf '%s\n' "$all" | sed -n 3p)
	if [ "$mode" = daemon ]; then wait_deferred "$id1" "$id2" "$id3"; fi

	check "$mode: list in mailq format"
	expect_exit 0 "$RQ" queue list
	assert_match "$OUT" '^-- [0-9]+ Kbytes in 3 Requests\.$' "$mode: list summary (the mailq writer: Kbytes rounded down, as Postfix)"
	assert_contains "$OUT" "carol@example.net" "$mode: list recipients"
	assert_contains "$OUT" "$id3" "$mode: list IDs"

	check "$mode: show gives envelope and headers"
	expect_exit 0 "$RQ" queue show "$id2"
	assert_contains "$OUT" "Subject: $mode two" "$mode: show headers"
	assert_contains "$OUT" "<carol@example.net> pending" "$mode: show recipients"
	assert_contains "$OUT" "Sender:        <root@relayq.test>" "$mode: show envelope sender (the caller, no -f)"

	check "$mode: hold, stats, flush skips the held message, release"
	expect_exit 0 "$RQ" queue hold "$id1"
	expect_exit 0 "$RQ" queue list
	assert_contains "$OUT" "$id1!" "$mode: held mark"
	expect_exit 0 "$RQ" queue stats
	assert_contains "$OUT" "held:     1" "$mode: stats held"
	assert_contains "$OUT" "messages: 3" "$mode: stats count"
	expect_exit 0 "$RQ" queue flush
	assert_contains "$OUT" "2 message(s) due now" "$mode: flush"
	expect_exit 0 "$RQ" queue release "$id1"
	assert_contains "$OUT" "$id1: released" "$mode: release"

	check "$mode: hold ALL, release ALL (as postsuper -h ALL / -H ALL)"
	expect_exit 0 "$RQ" queue hold ALL
	assert_contains "$OUT" "$id3: held" "$mode: hold ALL"
	expect_exit 0 "$RQ" queue stats
	assert_contains "$OUT" "held:     3" "$mode: all held"
	expect_exit 0 "$RQ" queue release ALL
	expect_exit 0 "$RQ" queue stats
	assert_contains "$OUT" "held:     0" "$mode: none held"

	check "$mode: delete, unknown IDs exit 69 but the rest is done"
	expect_exit 0 "$RQ" queue delete "$id3"
	expect_exit 69 "$RQ" queue show "$id3"
	assert_contains "$ERR" "no such message" "$mode: show deleted"
	expect_exit 69 "$RQ" queue delete "$id3" "$id2"
	assert_contains "$OUT" "$id2: deleted" "$mode: delete goes on after an unknown ID"
	expect_exit 0 "$RQ" queue compact
	expect_exit 0 "$RQ" queue stats
	assert_contains "$OUT" "messages: 1" "$mode: stats after delete"
	expect_exit 0 "$RQ" queue delete ALL
	assert_contains "$OUT" "$id1: deleted" "$mode: delete ALL"
	expect_exit 0 "$RQ" queue list
	assert_contains "$OUT" "Mail queue is empty" "$mode: empty"
}

check "usage errors exit 64, configuration errors 78"
expect_exit 64 "$RQ" queue
expect_exit 64 "$RQ" queue frobnicate
assert_contains "$ERR" 'unknown command "frobnicate"'
expect_exit 64 "$RQ" queue hold
expect_exit 64 "$RQ" queue show not-an-id
assert_contains "$ERR" 'invalid queue ID "not-an-id"'
expect_exit 64 "$RQ" queue list extra
expect_exit 78 env RELAYQ_LOCK_TIMEOUT=forever "$RQ" queue list
assert_contains "$ERR" "RELAYQ_LOCK_TIMEOUT"

log "no daemon: the CLI opens the spool itself"
queue_ops direct

check "spool locked, no daemon answering: exit 75 after the lock wait, reason given"
send "locked"
# A process that holds the spool's flock (the lock bbolt takes) until killed:
# the subshell takes it on fd 9 and becomes sleep, keeping the fd.
(exec 9<>"$RELAYQ_SPOOL" && flock -x 9 && exec sleep 60) &
FLOCK_PID=$!
_PIDS+=("$FLOCK_PID")
sleep 0.3
expect_exit 75 env RELAYQ_LOCK_TIMEOUT=300ms "$RQ" queue list
assert_contains "$ERR" "daemon holds the spool but its control socket does not answer"
expect_exit 75 env RELAYQ_LOCK_TIMEOUT=300ms "$RQ" queue hold 01K0000000AA
stop_pid "$FLOCK_PID" 5 || true
expect_exit 0 "$RQ" queue delete "$(ids)"

log "a daemon holds the spool: the same commands through its control socket"
start_serve
queue_ops daemon

check "another local user may list but not change the queue or read headers"
send "as nobody"
id=$(ids)
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
expect_exit 0 "${NOBODY[@]}" "$RQ" queue list
assert_contains "$OUT" "$id" "nobody lists"
expect_exit 77 "${NOBODY[@]}" "$RQ" queue hold "$id"
assert_contains "$ERR" "only root and the daemon user"
expect_exit 77 "${NOBODY[@]}" "$RQ" queue show "$id"
expect_exit 77 "${NOBODY[@]}" "$RQ" queue flush
check "a local user may show the message they sent themselves"
printf 'To: bob@example.net\nSubject: mine\n\nbody\n' | "${NOBODY[@]}" "$RQ" sendmail -odq -t -i ||
	fail "sendmail as nobody exited $?"
own=$(ids | tail -n 1)
[ "$own" != "$id" ] || fail "nobody's message was not queued"
expect_exit 0 "${NOBODY[@]}" "$RQ" queue show "$own"
assert_contains "$OUT" "Origin:        uid=65534" "nobody's own message"
assert_contains "$OUT" "Subject: mine" "nobody sees its own headers"
expect_exit 0 "$RQ" queue delete "$own"
expect_exit 0 "$RQ" queue show "$id"
assert_not_contains "$OUT" "on hold" "message not held by nobody"

check "the queue survives the daemon's stop and is read directly again"
stop_serve
expect_exit 0 "$RQ" queue list
assert_contains "$OUT" "$id" "queue after the daemon stopped"
expect_exit 0 "$RQ" queue delete "$id"

pass
