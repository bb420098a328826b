#!/usr/bin/env bash
# t-67: a message that fails for its content still tells its sender. A
# private Postfix smarthost (test/smarthost/start.sh) with
# message_size_limit = 100000 and smtputf8_enable = no (no SIZE room, no
# SMTPUTF8) refuses:
#
#   * a 150 KB message: relayq sees SIZE 100000 and bounces it with 5.3.4
#     before sending; the sender receives a headers-only notice
#     (text/rfc822-headers), not the 150 KB that would fail the same way;
#   * mail to a UTF-8 address (jörg-…@example.net, with a raw UTF-8
#     Subject): bounced with 5.6.7, never mangled; the sender's notice is
#     7-bit (RFC 6533 utf-8-addr-xtext in message/delivery-status, the
#     header quoted-printable), so this same relay without SMTPUTF8 or
#     8BITMIME takes it, and it decodes to the address and subject sent.
#
# Each notice arrives once, from the null sender, and the queue is empty
# after: nothing held, nothing lost. The 8-bit case (multipart/signed to a
# relay without 8BITMIME, 5.6.3) is t-61.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3 postconf postfix
SH=$(mktemp -d /tmp/relayq-sh67.XXXXXX)
"$TEST_ROOT/smarthost/start.sh" "$SH" >"$T/sh-start.out" 2>&1 || { show "$T/sh-start.out"; fail "test/smarthost/start.sh failed"; }
on_exit "$TEST_ROOT/smarthost/stop.sh" "$SH"
postconf -c "$SH/etc" -e 'message_size_limit = 100000' 'smtputf8_enable = no'
postfix -c "$SH/etc" reload >/dev/null 2>&1 || fail "postfix reload failed"
sleep 1
# shellcheck disable=SC1091
. "$SH/env"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
save_config

# bounce_notice SENDER STATUS — two delivery runs (the original bounces with
# STATUS, then the notice goes out); checks the log, waits for the one
# notice to SENDER from the null sender and prints its file.
bounce_notice() {
	local f
	relayq queue run >"$T/run.out" 2>"$T/run.log" || true
	assert_match "$T/run.log" "msg=bounced.*${2//./\\.}" "relayq queue run log"
	relayq queue run >>"$T/run.out" 2>>"$T/run.log" || true
	f=$(wait_for_mail "Delivered-To: $1" 1 | head -n 1)
	assert_contains "$f" "Status: $2" "the notice"
	assert_contains "$f" "Return-Path: <>" "the notice"
	assert_eq "$(mail_files "Delivered-To: $1" | grep -c .)" 1 "notices to $1"
	echo "$f"
}

check "the relay offers SIZE 100000 and no SMTPUTF8"
relayq probe >"$T/probe.out" 2>&1 || { show "$T/probe.out"; fail "relayq probe exited $?"; }
assert_match "$T/probe.out" 'SIZE 100000' "relayq probe"
assert_not_contains "$T/probe.out" "SMTPUTF8" "relayq probe"

tok=t67s-$$-$RANDOM
sender=size-$tok@example.net
check "a 150 KB message: bounced (5.3.4) before it is sent"
{
	printf 'From: %s\nTo: big-%s@example.net\nSubject: big %s\n\n' "$sender" "$tok" "$tok"
	for i in $(seq 1 2000); do printf 'line %05d of a large body that the relay will not take %s\n' "$i" "$tok"; done
} >"$T/big.eml"
[ "$(wc -c <"$T/big.eml")" -gt 140000 ] || fail "the message is too small"
expect_exit 0 relayq sendmail -odq -f "$sender" "big-$tok@example.net" <"$T/big.eml"
check "the sender receives one headers-only notice"
f=$(bounce_notice "$sender" 5.3.4)
assert_contains "$f" "multipart/report" "the notice"
assert_contains "$f" "text/rfc822-headers" "the notice"
assert_contains "$f" "Subject: big $tok" "the notice (the original's header)"
assert_not_contains "$f" "line 00001 of a large body" "the notice (no body of the original)"
assert_no_mail "Delivered-To: big-$tok@example.net" 0
assert_eq "$(queue_count)" 0 "messages left in the queue"

tok=t67u-$$-$RANDOM
sender=utf-$tok@example.net
rcpt="jörg-$tok@example.net"
check "mail to a UTF-8 address: bounced (5.6.7), the address never mangled"
printf 'From: %s\nTo: %s\nSubject: Grüße %s\n\nHallo Jörg\n' "$sender" "$rcpt" "$tok" >"$T/utf.eml"
expect_exit 0 relayq sendmail -odq -f "$sender" "$rcpt" <"$T/utf.eml"
check "the sender receives one 7-bit notice that decodes to the address and subject sent"
f=$(bounce_notice "$sender" 5.6.7)
LC_ALL=C grep -q $'[\x80-\xff]' "$f" && { show "$f"; fail "the notice has 8-bit octets"; }
assert_contains "$f" "Content-Type: message/delivery-status" "the notice"
assert_contains "$f" "Final-Recipient: utf-8; j\\x{F6}rg-$tok@example.net" "the notice (RFC 6533 utf-8-addr-xtext)"
python3 - "$f" "$rcpt" "Grüße $tok" <<'PY' || fail "the notice does not decode to what was sent"
import email, sys
from email import policy
raw = open(sys.argv[1], "rb").read()
m = email.message_from_bytes(raw, policy=policy.compat32)
parts = [p for p in m.walk() if not p.is_multipart()]
text = parts[0].get_payload(decode=True).decode(parts[0].get_content_charset() or "ascii")
if sys.argv[2] not in text:
    print("text part lacks", sys.argv[2]); sys.exit(1)
hdr = parts[-1].get_payload(decode=True).decode("utf-8")
if parts[-1].get_content_type() != "text/rfc822-headers" or ("Subject: " + sys.argv[3]) not in hdr:
    print("returned header:", parts[-1].get_content_type(), repr(hdr[:200])); sys.exit(1)
print("notice decodes: address and subject intact")
PY
assert_eq "$(queue_count)" 0 "messages left in the queue"
pass
