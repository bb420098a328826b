#!/usr/bin/env bash
# t-52-submit-routes: how sendmail hands a message to the spool.
#
#  * No daemon: into the drop directory, then a detached `relayq queue run`
#    that never keeps the caller waiting: new session, stdin/stdout/stderr
#    on /dev/null, working directory / (a caller reading sendmail's output to EOF returns while
#    the delivery still hangs on a silent relay), and it holds no spool lock
#    across network I/O (a second sendmail is not blocked).
#  * The daemon runs: over its unix socket (SMTP; the daemon records the
#    caller's uid), and no detached process is started.
#  * The daemon died (stale socket files): connection refused, so straight
#    into the spool again.
#  * The spool is locked and nothing answers on the socket: sendmail still
#    accepts at once (it writes the drop directory and never opens the
#    spool), the queue listing shows the message, nothing is lost.
#  * Finally the real relay: the detached run delivers what was queued.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd perl flock

# A relay that accepts TCP connections and never says a word (the greeting
# never comes): delivery attempts hang there.
SILENT_PORT_FILE=$T/silent.port
perl -MIO::Socket::INET -e '
	my $s = IO::Socket::INET->new(Listen => 16, LocalAddr => "127.0.0.1", LocalPort => 0, ReuseAddr => 1) or die "listen: $!";
	open(my $f, ">", $ARGV[0]) or die; print $f $s->sockport, "\n"; close $f;
	my @keep; while (my $c = $s->accept) { push @keep, $c }' "$SILENT_PORT_FILE" &
_PIDS+=("$!")
for ((i = 0; i < 50; i++)); do [ -s "$SILENT_PORT_FILE" ] && break; sleep 0.1; done
SILENT_PORT=$(cat "$SILENT_PORT_FILE")
[ -n "$SILENT_PORT" ] || fail "silent relay did not start"

relayq_env "[127.0.0.1]:$SILENT_PORT"
export RELAYQ_TLS=none # the silent relay never gets as far as TLS anyway
export RELAYQ_LOCK_TIMEOUT=2s
export RELAYQ_DRAIN_TIMEOUT=2s # SIGTERM ends a run hanging on the silent relay soon
save_config
RQ=$BIN/relayq
OUT=$T/last.out
ERR=$T/last.err
msg() { printf 'From: alice@relayq.test\nTo: %s\nSubject: t52 %s\n\nbody %s\n' "${2:-bob@example.net}" "$1" "$1"; }

check "no daemon: sendmail returns while the detached delivery hangs on the relay"
START=$(date +%s)
# The pipe to cat ends only when every holder of sendmail's stdout/stderr
# has closed it: a detached child that kept them would hold the caller.
msg direct1 | timeout 20 "$RQ" sendmail -t -i 2>&1 | cat >"$T/caller.out" || fail "sendmail | cat failed or timed out"
ELAPSED=$(($(date +%s) - START))
[ "$ELAPSED" -lt 15 ] || fail "the caller waited ${ELAPSED}s"
CHILD=""
for ((i = 0; i < 50; i++)); do
	CHILD=$(relayq_pids | head -n 1)
	[ -n "$CHILD" ] && break
	sleep 0.1
done
[ -n "$CHILD" ] || fail "no detached relayq queue run found"
assert_eq "$(tr '\0' ' ' <"/proc/$CHILD/cmdline")" "relayq queue run " "detached command line"
for fd in 0 1 2; do
	assert_eq "$(readlink "/proc/$CHILD/fd/$fd")" /dev/null "detached fd $fd"
done
assert_eq "$(readlink "/proc/$CHILD/cwd")" / "detached run works in /"
SID=$(awk '{print $6}' "/proc/$CHILD/stat")
assert_eq "$SID" "$CHILD" "detached run leads its own session (setsid)"

check "while that delivery hangs in network I/O, another sendmail is not blocked by the spool lock"
expect_exit 0 timeout 20 "$RQ" sendmail -odq -t -i < <(msg direct2)
assert_eq "$(queue_count)" 2 "both queued"
check "SIGTERM ends the hanging detached run within its drain time; the message stays queued"
kill -TERM "$CHILD" 2>/dev/null || true
for ((i = 0; i < 100; i++)); do [ -d "/proc/$CHILD" ] || break; sleep 0.1; done
[ -d "/proc/$CHILD" ] && fail "detached run $CHILD still running 10s after SIGTERM (drain 2s)"
assert_eq "$(queue_count)" 2 "still queued"

check "the daemon runs: sendmail goes over the socket, no detached process"
start_serve
expect_exit 0 "$RQ" sendmail -t -i < <(msg viasocket)
sleep 0.5
for p in $(relayq_pids); do
	[ "$p" = "$SERVE_PID" ] && continue
	grep -q 'queue.run' "/proc/$p/cmdline" 2>/dev/null && fail "a detached queue run (pid $p) started although the daemon runs"
done
ID=$("$RQ" queue list -json | grep -F '"Size"' | tail -n 1 | sed -n 's/.*"ID":"\([0-9A-Z]*\)".*/\1/p')
expect_exit 0 "$RQ" queue show "$ID"
assert_contains "$OUT" "Subject: t52 viasocket" "the socket-submitted message"
assert_contains "$OUT" "Origin:        uid=0" "the daemon took the uid from SO_PEERCRED"
assert_contains "$T/serve.log" "queue_id=$ID" "the daemon logged the queue ID"

check "the daemon died, its sockets stayed: sendmail falls back to the spool"
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=""
[ -S "$RELAYQ_SOCKET" ] || fail "expected the stale socket $RELAYQ_SOCKET to stay after kill -9"
expect_exit 0 "$RQ" sendmail -odq -t -i < <(msg stale)
assert_eq "$(queue_count)" 4 "queued through the fallback"

check "spool locked, nothing answers: sendmail still accepts at once (drop directory), the queue lists it, nothing is lost"
rm -f "$RELAYQ_SOCKET"
(exec 9<>"$RELAYQ_SPOOL" && flock -x 9 && exec sleep 60) &
LOCKER=$!
_PIDS+=("$LOCKER")
sleep 0.3
expect_exit 0 env RELAYQ_LOCK_TIMEOUT=500ms "$RQ" sendmail -t -i < <(msg locked)
wait_detached # the detached run cannot open the spool and leaves the file
DROPDIR=$(dirname "$RELAYQ_SPOOL")/maildrop
[ "$(find "$DROPDIR" -maxdepth 1 -type f ! -name '.*' | wc -l)" = 1 ] || fail "want one drop file in $DROPDIR"
expect_exit 75 env RELAYQ_LOCK_TIMEOUT=300ms "$RQ" queue list
assert_contains "$OUT" "not yet queued" "the locked-out listing still shows the drop directory's message"
assert_contains "$OUT" "the last import failed" "the listing says why the run left it there"
assert_contains "$ERR" "locked"
stop_pid "$LOCKER" 5 || true
assert_eq "$(queue_count)" 5 "four queued and one in the drop directory"
# The reason says why the detached run left it there (it could not open the
# locked spool), until the next import.
"$RQ" queue list -json | grep -q '"Reason":"in the drop directory, not yet queued; the last import failed ([^"]*): [^"]*lock' ||
	fail "the drop directory's message is not listed with the failed import's reason"

check "with the real relay the detached run delivers the queue"
relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
export RELAYQ_LOCK_TIMEOUT=2s
save_config
expect_exit 0 "$RQ" sendmail -t -i < <(msg final "$SMARTHOST_USER@${SMARTHOST_HOST}")
wait_for_mail "Subject: t52 final" 1 >/dev/null
wait_detached

pass
