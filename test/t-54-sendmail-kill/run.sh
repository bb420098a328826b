#!/usr/bin/env bash
# t-54-sendmail-kill: a message the client never finished is never stored.
#
# With `relayq serve` running, `sendmail` is started ROUNDS times (at least
# 100) and killed with SIGKILL after a random delay of 0-400 ms: while it
# reads its input (the feeder pauses half way), while it hands the body to
# the daemon over the unix socket (bodies up to 1.5 MB, some streamed with
# -B 8BITMIME), or after it has finished. Then every message that reached
# the real smarthost is compared with what was sent: the body byte for
# byte, every header line present once. A message is delivered complete or
# not at all: never truncated, never empty, never twice; every sendmail
# that exited 0 is delivered. Each round is bounded (the kill comes at
# 400 ms at the latest, the feeder is killed with it), so the loop is too.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd base64 head timeout

ROUNDS=${T54_ROUNDS:-120}
[ "$ROUNDS" -ge 100 ] || fail "T54_ROUNDS=$ROUNDS: at least 100 rounds"
use_smarthost
relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
start_serve
RUN=t54-$$-$RANDOM

mkdir -p "$T/sent"
# message I — one message with a unique token; sizes cycle through small,
# medium and large so the kill lands in every phase.
message() {
	local i=$1 size
	case $((i % 4)) in
	0) size=300 ;;
	1) size=40000 ;;
	2) size=400000 ;;
	3) size=1500000 ;;
	esac
	printf 'From: alice@relayq.test\nTo: bob@example.net\nSubject: %s round %d\nMessage-ID: <%s.%d@relayq.test>\nDate: %s\nX-Token: <%s-%d>\n\n' \
		"$RUN" "$i" "$RUN" "$i" "$(date -R)" "$RUN" "$i"
	head -c "$size" /dev/urandom | base64 -w 76
	printf 'end of %s-%d\n' "$RUN" "$i"
}

check "$ROUNDS rounds of sendmail killed with SIGKILL at a random point, daemon running"
killed=0
exited0=0
failed=0
declare -A OK=()
for ((i = 0; i < ROUNDS; i++)); do
	f=$T/sent/$i.eml
	message "$i" >"$f"
	half=$(($(stat -c %s "$f") / 2))
	flags=(-i)
	[ $((i % 3)) = 0 ] && flags+=(-B 8BITMIME) # streamed to the daemon as read
	# The feeder pauses half way through on some rounds: the kill then
	# comes while sendmail still reads its input.
	pause=0
	[ $((i % 2)) = 0 ] && pause=0.$((RANDOM % 3))
	delay=$((RANDOM % 400))
	if [ $((i % 12)) = 6 ]; then
		# A streamed 400 KB body whose feeder stops half way for 400 ms:
		# the first BDAT chunk is with the daemon by then, so a kill in
		# the pause cuts the transfer between two chunks.
		pause=0.4 delay=$((150 + RANDOM % 200))
	fi
	{ head -c "$half" "$f"; sleep "$pause"; tail -c +$((half + 1)) "$f"; } |
		"$BIN/sendmail" "${flags[@]}" bob@example.net 2>>"$T/sendmail.err" &
	pid=$!
	sleep "0.$(printf '%03d' "$delay")"
	kill -KILL "$pid" 2>/dev/null || true
	rc=0
	wait "$pid" || rc=$?
	case $rc in
	0) exited0=$((exited0 + 1)) OK[$i]=1 ;;
	137) killed=$((killed + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
done
log "rounds $ROUNDS: sendmail killed $killed, exited 0 $exited0, other status $failed"
[ "$failed" = 0 ] || { show "$T/sendmail.err" 20; fail "$failed sendmail run(s) failed without being killed"; }
[ "$killed" -gt 0 ] || fail "no sendmail was killed before it finished: the test cut nothing"

check "the queue drains (nothing half-stored stays behind)"
wait_queue_count 0 120

check "every delivered message is complete and byte-identical; every accepted one delivered once"
delivered=0
for ((i = 0; i < ROUNDS; i++)); do
	dfile=$(mail_files "X-Token: <$RUN-$i>")
	n=$(printf '%s' "$dfile" | grep -c . || true)
	if [ "$n" = 0 ]; then
		[ -z "${OK[$i]:-}" ] || fail "round $i: sendmail exited 0 but the message was not delivered"
		continue
	fi
	[ "$n" = 1 ] || fail "round $i: delivered $n times: $dfile"
	delivered=$((delivered + 1))
	sent=$T/sent/$i.eml
	if ! cmp -s <(body_of "$dfile") <(body_of "$sent"); then
		fail "round $i: delivered body ($(body_of "$dfile" | wc -c) bytes) differs from the sent one ($(body_of "$sent" | wc -c) bytes): $dfile"
	fi
	got=$(headers_of "$dfile")
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		c=$(printf '%s\n' "$got" | grep -cxF -- "$line" || true)
		[ "$c" = 1 ] || fail "round $i: header line '$line' appears $c times in $dfile"
	done < <(headers_of "$sent")
done
log "delivered $delivered of $ROUNDS (killed before the end of DATA: $((ROUNDS - delivered)), truncated or empty: 0)"
[ "$delivered" -ge "$exited0" ] || fail "delivered $delivered < accepted $exited0"
# Nothing else of this run arrived (a message without its token line
# would be a truncated one).
all=$(mail_files "$RUN" | grep -c . || true)
assert_eq "$all" "$delivered" "messages of this run at the smarthost"
# The daemon logs each transfer cut short, answered 451 and not stored:
# "unexpected EOF" inside a DATA body or a BDAT chunk, "message transmission
# aborted" when the connection ends between two BDAT chunks (the socket
# client sends BDAT when the daemon offers CHUNKING). The loop must have
# cut some, or it proved nothing.
cut=$(grep -cE 'stage=DATA .*error="(unexpected EOF|smtp: message transmission aborted)"' "$T/serve.log" || true)
log "transfers cut in the middle of DATA (daemon's log): $cut"
[ "$cut" -gt 0 ] || fail "no kill landed in the middle of DATA: raise T54_ROUNDS"
pass
