#!/usr/bin/env bash
# t-53-dropdir-exactly-once: daemonless submission goes through the drop
# directory, and no daemon start, stop or hang makes a message go out twice
# or get lost. Against the real Postfix + Dovecot smarthost; every message
# carries a unique X-Test-Token (ended by ';', so that no token matches
# inside another), and each token is counted in the smarthost's maildir at
# the end (duplicates and losses reported).
#
#  1. The daemon starts at a random point of a daemonless delivery run
#     (ROUNDS_START rounds, default 100): sendmail without a daemon (drop
#     file + detached run), a random pause of 0-250 ms after 8 messages (the run is
#     importing, leasing or in SMTP), then `relayq serve`, which waits for
#     the run to finish and record what it delivered.
#  2. A systemctl-restart-like loop (ROUNDS_RESTART, default 30): while
#     the daemon delivers a burst, SIGTERM it and start a new one at once;
#     sendmail keeps sending meanwhile (socket, or drop directory while no
#     daemon listens, whose detached runs race the new daemon's start).
#  3. The daemon stopped with SIGSTOP: sendmail returns within a few
#     seconds (the drop directory), the next one at once (it remembers the
#     silence), mailq says the daemon does not answer and lists the
#     messages; after SIGCONT each is delivered once.
#
# The lease is 3 s, so that a message the daemon would resend because a
# run could not record its delivery (the bug this guards against) goes out
# again within the scenario instead of five minutes later.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

: "${ROUNDS_START:=100}"
: "${ROUNDS_RESTART:=30}"
relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
export RELAYQ_LEASE_TIME=3s
export RELAYQ_DRAIN_TIMEOUT=10s
save_config
RQ=$BIN/relayq
DROPDIR=$(dirname "$RELAYQ_SPOOL")/maildrop
TOKENS=$T/tokens

# send TOKEN — one message through /usr/sbin/sendmail's personality.
send() {
	printf 'From: alice@relayq.test\nTo: %s@%s\nSubject: t53 %s\nX-Test-Token: %s;\n\nbody %s\n' \
		"$SMARTHOST_USER" "$SMARTHOST_HOST" "$1" "$1" "$1" | "$BIN/sendmail" -t -i ||
		fail "sendmail exited $? for $1"
	echo "$1" >>"$TOKENS"
}

# drained — the queue is empty and nothing waits in the drop directory.
drained() {
	[ "$(queue_count)" = 0 ] &&
		[ "$(find "$DROPDIR" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)" = 0 ]
}

wait_drained() {
	local i
	for ((i = 0; i < MAIL_TIMEOUT * 5; i++)); do
		drained && return 0
		sleep 0.2
	done
	"$RQ" queue list >&2 || true
	fail "queue not drained after ${MAIL_TIMEOUT}s"
}

# count_all LABEL — every token of $TOKENS exactly once at the smarthost.
count_all() {
	local tok n dup=0 lost=0 total=0 i
	# Wait (bounded) until every token has arrived once.
	for ((i = 0; i < MAIL_TIMEOUT * 5; i++)); do
		lost=0
		while read -r tok; do
			[ -n "$(mail_files "X-Test-Token: $tok;")" ] || lost=$((lost + 1))
		done <"$TOKENS"
		[ "$lost" = 0 ] && break
		sleep 0.2
	done
	# A resend after a lease runs out would come within a few seconds.
	sleep 5
	lost=0
	while read -r tok; do
		total=$((total + 1))
		n=$(mail_files "X-Test-Token: $tok;" | grep -c . || true)
		if [ "$n" = 0 ]; then
			lost=$((lost + 1))
			log "lost: $tok"
		elif [ "$n" -gt 1 ]; then
			dup=$((dup + n - 1))
			log "delivered $n times: $tok"
		fi
	done <"$TOKENS"
	log "$1: $total messages, $dup duplicate(s), $lost lost"
	assert_eq "$dup" 0 "$1: duplicates"
	assert_eq "$lost" 0 "$1: losses"
}

check "1. the daemon starts at a random point of a daemonless run ($ROUNDS_START rounds)"
: >"$TOKENS"
waited=0
for ((r = 1; r <= ROUNDS_START; r++)); do
	for ((i = 1; i <= 8; i++)); do send "t53a-$$-$r-$i"; done
	sleep "$(printf '0.%03d' $((RANDOM % 250)))"
	start_serve
	wait_drained
	stop_serve
	wait_detached
done
waited=$(grep -c "waiting for the daemonless delivery run to finish" "$T/serve.log" || true)
log "the daemon waited for a run in $waited of $ROUNDS_START rounds"
[ "$waited" -gt 0 ] || fail "the daemon never started during a run: the loop did not test the race"
grep -q "spool is locked by another process" "$T/serve.log" "$T"/spool/*.log 2>/dev/null && fail "a process found the spool locked"
count_all "daemon start during daemonless runs"

check "2. stop/start loop of the daemon during delivery ($ROUNDS_RESTART rounds)"
: >"$TOKENS"
start_serve
for ((r = 1; r <= ROUNDS_RESTART; r++)); do
	for i in 1 2 3 4; do send "t53b-$$-$r-$i"; done
	sleep "$(printf '0.%03d' $((RANDOM % 300)))"
	stop_serve
	send "t53b-$$-$r-down" # no daemon: drop directory and a detached run
	start_serve
done
wait_drained
stop_serve
wait_detached
count_all "stop/start loop"

check "3. the daemon stopped by SIGSTOP: sendmail returns at once, the message is delivered once after SIGCONT"
: >"$TOKENS"
start_serve
kill -STOP "$SERVE_PID"
on_exit kill -CONT "$SERVE_PID"
tok=t53c-$$
START=$(date +%s%N)
timeout 60 "$BIN/sendmail" -t -i < <(printf 'To: %s@%s\nSubject: t53 %s\nX-Test-Token: %s;\n\nbody\n' "$SMARTHOST_USER" "$SMARTHOST_HOST" "$tok" "$tok") ||
	fail "sendmail exited $? with the daemon stopped"
echo "$tok" >>"$TOKENS"
log "sendmail returned after $((($(date +%s%N) - START) / 1000000)) ms with the daemon stopped"
# The next caller does not wait for the same silence (maildrop/.noanswer).
START=$(date +%s%N)
timeout 60 "$BIN/sendmail" -t -i < <(printf 'To: %s@%s\nSubject: t53 %s\nX-Test-Token: %s;\n\nbody\n' "$SMARTHOST_USER" "$SMARTHOST_HOST" "$tok-2" "$tok-2") ||
	fail "the second sendmail exited $? with the daemon stopped"
echo "$tok-2" >>"$TOKENS"
log "the next sendmail returned after $((($(date +%s%N) - START) / 1000000)) ms"
[ "$(find "$DROPDIR" -maxdepth 1 -type f ! -name '.*' | wc -l)" = 2 ] || fail "the messages are not in the drop directory"
rc=0
timeout 60 "$BIN/mailq" >"$T/mailq.out" 2>"$T/mailq.err" || rc=$?
assert_eq "$rc" 75 "mailq's exit status with the daemon stopped"
assert_contains "$T/mailq.err" "does not answer" "mailq's error"
assert_contains "$T/mailq.out" "in the drop directory, not yet queued" "mailq lists the drop directory's message"
assert_no_mail "X-Test-Token: $tok;" 1
kill -CONT "$SERVE_PID"
wait_for_mail "X-Test-Token: $tok-2;" >/dev/null
wait_drained
stop_serve
count_all "SIGSTOP"

pass
