#!/usr/bin/env bash
# t-55-config-mistakes: configuration errors never refuse mail, and the
# reason is visible in mailq beside each waiting message.
#
# For each mistake (an unknown key in the env file, a credentials file of
# mode 0644, no relay host), with the daemon
# running: `relayq serve` starts, `sendmail` (unix socket) and the TCP
# listener accept the mail, mailq lists it with the reason. Without the
# daemon: sendmail accepts, the detached delivery run records the reason
# on the message, mailq shows it. Then the mistake is fixed the way a user
# would (edit, restart) and every message is delivered once.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd swaks

use_smarthost
RELAY="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
relayq_env "$RELAY"
PORT=$((20000 + ($$ + 7) % 20000))
export RELAYQ_LISTEN=127.0.0.1:$PORT
RUN=t55-$$
OUT=$T/last.out
ERR=$T/last.err
n=0
TOKENS=()

# send DOOR NAME — one message through the door (sendmail or tcp).
send() {
	local tok=$RUN-$2
	TOKENS+=("$tok")
	case $1 in
	sendmail)
		printf 'Subject: %s\n\nbody %s\n' "$tok" "$tok" >"$T/$tok.eml"
		expect_exit 0 "$BIN/sendmail" -i "bob-$tok@example.net" <"$T/$tok.eml"
		;;
	tcp)
		swaks --server 127.0.0.1 --port "$PORT" --from "alice@relayq.test" --to "bob-$tok@example.net" \
			--header "Subject: $tok" --body "body $tok" >"$T/$tok.swaks" 2>&1 ||
			{ show "$T/$tok.swaks"; fail "the TCP listener refused $tok"; }
		grep -q '^<-  250 .*queued as' "$T/$tok.swaks" || { show "$T/$tok.swaks"; fail "no 250 queued for $tok"; }
		;;
	esac
}


waiting_reason() { # TOKEN REASON
	local i
	for ((i = 0; i < MAIL_TIMEOUT * 5; i++)); do
		"$BIN/mailq" >"$OUT" 2>"$ERR" || fail "mailq failed: $(cat "$ERR")"
		if grep -B3 -F "bob-$1@" "$OUT" | grep -qF -- "$2"; then
			return 0
		fi
		sleep 0.2
	done
	show "$OUT"
	fail "mailq does not show '$2' beside $1"
}

check "an unknown key in the env file: a warning, mail accepted on both doors"
# start_serve writes every exported RELAYQ_ key to the env file; sendmail
# then runs without it in its environment, so only the file has it.
export RELAYQ_RELAYHOST_TYPO=1
start_serve
grep -q "unknown key RELAYQ_RELAYHOST_TYPO" "$T/serve.log" || { show "$T/serve.log"; fail "serve did not warn about the unknown key"; }
unset RELAYQ_RELAYHOST_TYPO
grep -q "^RELAYQ_RELAYHOST_TYPO=" "$RELAYQ_CONFIG" || fail "the env file lacks the unknown key"
send sendmail unknown-sm
assert_contains "$ERR" "unknown key RELAYQ_RELAYHOST_TYPO" "sendmail warns"
send tcp unknown-tcp
stop_serve

check "credentials file of mode 0644: serve starts, both doors accept, mailq shows why"
chmod 0644 "$RELAYQ_AUTHINFO"
start_serve
send sendmail mode-sm
send tcp mode-tcp
waiting_reason "$RUN-mode-sm" "RELAYQ_AUTHINFO"
waiting_reason "$RUN-mode-tcp" "RELAYQ_AUTHINFO"
assert_contains "$OUT" "mode 0644" "the reason says what is wrong"
stop_serve

check "credentials file of mode 0644, no daemon: sendmail accepts, the run records the reason"
send sendmail mode-direct
wait_detached
waiting_reason "$RUN-mode-direct" "RELAYQ_AUTHINFO"
check "the detached run logged the problem where a user without syslog finds it"
if [ -S /dev/log ]; then
	log "syslog listens on /dev/log here: the run logged there"
else
	# No RELAYQ_LOG_FILE, no syslog: relayq.log beside the spool.
	grep -q "configuration error.*RELAYQ_AUTHINFO" "$T/spool/relayq.log" ||
		{ show "$T/spool/relayq.log"; fail "the detached run's log $T/spool/relayq.log lacks the problem"; }
fi

check "no relay host: serve says so at start; mail accepted and shown waiting"
chmod 0600 "$RELAYQ_AUTHINFO"
export RELAYQ_RELAYHOST=
start_serve
grep -qi "relay host" "$T/serve.log" || { show "$T/serve.log"; fail "serve did not say that no relay host is set"; }
send sendmail norelay-sm
send tcp norelay-tcp
waiting_reason "$RUN-norelay-sm" "no relay host"
stop_serve

check "fixed (relay host set, credentials 0600), restart: every message delivered once"
export RELAYQ_RELAYHOST=$RELAY
start_serve
expect_exit 0 "$BIN/relayq" queue run
for tok in "${TOKENS[@]}"; do
	wait_for_mail "Subject: $tok" 1 >/dev/null
done
wait_queue_count 0
for tok in "${TOKENS[@]}"; do
	assert_eq "$(mail_files "Subject: $tok" | grep -c .)" 1 "copies of $tok"
done
pass
