#!/usr/bin/env bash
# t-63: addresses keep their meaning on every path. The same recipients go
# through the direct path (no daemon: sendmail -odq, then a queue run), the
# daemon's submission socket (sendmail with relayq serve running) and the
# SMTP listener (Python smtplib); a recording relay (test/tools/smtprecorder)
# shows what reaches RCPT TO on each, and it must be the same, with quoted
# local parts kept quoted ("john doe"@example.net must not become
# john doe@example.net, nor "x@y"@example.net x@y@example.net). An
# unquoted backslash (j\xrg@example.net) and text after <...>
# (bad<x>@example.net) are refused with exit 64 on both sendmail paths, and
# the listener answers 501.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
start_recorder relay -auth=false -smtputf8
relayq_env "[127.0.0.1]:$RECORDER_PORT"
export RELAYQ_TLS=none
: >"$RELAYQ_AUTHINFO" # no credential: plain relay on loopback
export RELAYQ_AUTH=none # ... which needs no AUTH (no credential, no send otherwise)
PORT=$((20000 + ($$ + 13) % 20000))
export RELAYQ_LISTEN=127.0.0.1:$PORT
save_config

ADDRS=('"john doe"@example.net' '"x@y"@example.net' '"a\"b"@example.net' 'plain.user+tag@example.net' 'jörg@example.net' '"quoted"@example.net')
WANT=('"john doe"@example.net' '"x@y"@example.net' '"a\"b"@example.net' 'plain.user+tag@example.net' 'jörg@example.net' 'quoted@example.net')

# rcpt_of TAG — the RCPT TO path the relay got in the transaction whose
# MAIL FROM was TAG@relayq.test (lines of the same connection: deliveries
# run in parallel).
rcpt_of() {
	awk -v m="MAIL FROM:<$1@relayq.test>" '
		index($0, m) && !on { on = 1; conn = $1; next }
		on && $1 == conn && / RCPT TO:</ { s = $0; sub(/^[0-9]+ RCPT TO:</, "", s); sub(/>[^>]*$/, "", s); print s; exit }
	' "$T/relay.rec"
}

# wait_rcpt TAG — wait for the transaction of TAG at the relay.
wait_rcpt() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ -n "$(rcpt_of "$1")" ] && return 0
		sleep 0.2
	done
	show "$T/relay.rec" 40
	fail "no transaction from $1@relayq.test reached the relay"
}

msg() { printf 'Subject: %s\n\nbody\n' "$1"; }

check "direct path (no daemon): sendmail -odq, then relayq queue run"
for i in "${!ADDRS[@]}"; do
	msg "d$i" | expect_exit 0 relayq sendmail -odq -f "d$i@relayq.test" "${ADDRS[$i]}"
done
msg dq | expect_exit 0 relayq sendmail -odq -f '"quoted sender"@relayq.test' "dq@example.net"
relayq queue run >"$T/run.out" 2>"$T/run.log" || { show "$T/run.log"; fail "relayq queue run failed"; }

start_serve
check "daemon's socket: sendmail with relayq serve running"
for i in "${!ADDRS[@]}"; do
	msg "s$i" | expect_exit 0 relayq sendmail -f "s$i@relayq.test" "${ADDRS[$i]}"
done
msg sq | expect_exit 0 relayq sendmail -f '"quoted sender"@relayq.test' "sq@example.net"

check "listener: Python smtplib"
python3 - "$PORT" "${ADDRS[@]}" >"$T/py.out" 2>&1 <<'PY' || { show "$T/py.out"; fail "smtplib failed"; }
import smtplib, sys
port = int(sys.argv[1])
for i, a in enumerate(sys.argv[2:]):
    with smtplib.SMTP("127.0.0.1", port) as s:
        opts = ["SMTPUTF8"] if any(ord(c) > 127 for c in a) else []
        s.sendmail("l%d@relayq.test" % i, [a], ("Subject: l%d\r\n\r\nbody\r\n" % i).encode(), mail_options=opts)
with smtplib.SMTP("127.0.0.1", port) as s:
    s.sendmail('"quoted sender"@relayq.test', ["lq@example.net"], b"Subject: lq\r\n\r\nbody\r\n")
print("sent")
PY

for i in "${!ADDRS[@]}"; do
	check "${ADDRS[$i]}: RCPT TO:<${WANT[$i]}> on all three paths"
	for p in d s l; do
		wait_rcpt "$p$i"
		got=$(rcpt_of "$p$i")
		[ "$got" = "${WANT[$i]}" ] || { show "$T/relay.rec" 60; fail "path $p: ${ADDRS[$i]} reached the relay as <$got>, want <${WANT[$i]}>"; }
	done
done

check "a quoted sender: MAIL FROM:<\"quoted sender\"@relayq.test> on all three paths"
for r in dq sq lq; do
	for ((k = 0; k < 150; k++)); do
		grep -q "RCPT TO:<$r@example.net>" "$T/relay.rec" && break
		sleep 0.2
	done
	# The MAIL line of the transaction that carried RCPT TO:<$r@...>
	# (the last MAIL before it on the same connection).
	mail=$(awk -v r="RCPT TO:<$r@example.net>" '
		/ MAIL FROM:</ { last[$1] = $0 }
		index($0, r) { print last[$1]; exit }' "$T/relay.rec")
	case "$mail" in *' MAIL FROM:<"quoted sender"@relayq.test>'*) ;; *) false ;; esac ||
		{ show "$T/relay.rec" 60; fail "path of $r: the quoted sender lost its quotes"; }
done

check "refused alike on both sendmail paths (exit 64) and by the listener (501)"
for bad in 'j\xrg@example.net' 'bad<x>@example.net'; do
	msg bad | expect_exit 64 relayq sendmail -f "b@relayq.test" "$bad"
	assert_match "$T/last.err" 'must be quoted|after <x>' "sendmail's refusal (daemon running)"
done
stop_serve
for bad in 'j\xrg@example.net' 'bad<x>@example.net'; do
	msg bad | expect_exit 64 relayq sendmail -odq -f "b@relayq.test" "$bad"
done
start_serve
python3 - "$PORT" >"$T/py2.out" 2>&1 <<'PY' || { show "$T/py2.out"; fail "listener did not refuse j\\xrg@example.net with 501"; }
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.ehlo()
    s.mail("b@relayq.test")
    code, msg = s.rcpt("j\\xrg@example.net")
    print(code, msg)
    sys.exit(0 if code == 501 else 1)
PY
pass
