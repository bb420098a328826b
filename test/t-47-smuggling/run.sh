#!/usr/bin/env bash
# t-47-smuggling: SMTP smuggling payloads (CVE-2023-51764/5/6) sent to
# `relayq serve`'s listener end to end. Each payload hides a fake end of
# data (bare LF or bare CR around a dot) followed by a second transaction
# to a victim. relayq must answer once, queue one message, and the
# smarthost must receive that one message with the payload as content;
# nothing may reach the victim.
. "$(dirname "$0")/../lib.sh"

need_cmd swaks
relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
PORT=$((20000 + $$ % 20000))
export RELAYQ_LISTEN=127.0.0.1:$PORT
start_serve

i=0
for fake in '\n.\n' '\n.\r\n' '\r\n.\n' '\r.\r\n' '\r\n.\r'; do
	i=$((i + 1))
	tok=t47-$$-$i
	check "payload $i ($fake): one reply, one message, no victim"
	{
		printf 'Subject: first-%s\r\nFrom: app@relayq.test\r\n\r\nhello' "$tok"
		printf '%b' "$fake"
		printf 'MAIL FROM:<admin@relayq.test>\r\nRCPT TO:<victim-%s@example.net>\r\nDATA\r\n' "$tok"
		printf 'Subject: smuggled-%s\r\n\r\nevil\r\n.\r\n' "$tok"
	} >"$T/payload-$i"
	swaks --server "127.0.0.1:$PORT" --helo client.test --from app@relayq.test \
		--to "rcpt-$tok@example.net" --data "$T/payload-$i" --no-data-fixup \
		>"$T/swaks-$i" 2>&1 || { show "$T/swaks-$i"; fail "swaks failed on payload $i"; }
	n=$(grep -c 'queued as' "$T/swaks-$i" || true)
	assert_eq "$n" 1 "acknowledgements for payload $i"
	f=$(wait_for_mail "first-$tok" | head -n 1)
	assert_contains "$f" "RCPT TO:<victim-$tok@example.net>" "delivered message (payload kept as content)"
	assert_contains "$f" "Subject: smuggled-$tok" "delivered message (payload kept as content)"
	assert_eq "$(mail_files "first-$tok" | grep -c .)" 1 "messages delivered for payload $i"
done
check "no message reached a victim"
assert_no_mail "Delivered-To: victim-" 2
stop_serve
pass
