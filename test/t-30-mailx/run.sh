#!/usr/bin/env bash
# t-30: mail(1) from Debian's bsd-mailx, pointed at relayq as its sendmail
# (the mailx variable `sendmail`, so the system's /usr/sbin/sendmail is not
# touched), with no daemon running: mailx pipes the message to
# `sendmail -i -t` with To, Cc and a Bcc: header and no From, Date or
# Message-ID. relayq queues it and its detached queue run relays it through
# the smarthost (STARTTLS + AUTH). Each recipient gets one copy with the
# headers a strict relay wants (From, Date, Message-ID), no Bcc header, the
# lone "." line kept (mailx passes -i), bare local names qualified.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd bsd-mailx

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
save_config

printf 'set sendmail=%s\n' "$BIN/sendmail" >"$T/mailrc"
tok=t30-$$-$RANDOM
to=to-$tok@example.net cc=cc-$tok@example.com bcc=bcc-$tok@example.org

check "mailx -s -c -b hands the message to relayq and exits 0"
printf 'Body of %s.\n.\nline after a lone dot\nGr\303\274\303\237e, 8-bit text\n' "$tok" |
	MAILRC=$T/mailrc bsd-mailx -n -s "mailx $tok" -c "$cc" -b "$bcc" "$to" >"$T/mailx.out" 2>&1 ||
	{ show "$T/mailx.out"; fail "bsd-mailx exited $?"; }

mapfile -t files < <(wait_for_mail "Subject: mailx $tok" 3)
check "three copies (To, Cc, Bcc), no more"
sleep 1
assert_eq "$(mail_files "Subject: mailx $tok" | grep -c .)" 3 "copies"
for rcpt in "$to" "$cc" "$bcc"; do
	f=$(grep -lxF -- "Delivered-To: $rcpt" "${files[@]}" | head -n 1) || fail "no copy for $rcpt"
	headers_of "$f" >"$T/h"
	check "copy for $rcpt: From, Date and Message-ID were added"
	assert_match "$T/h" '^From: root <root@relayq\.test>$' "headers for $rcpt"
	assert_match "$T/h" '^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} [-+][0-9]{4}$' "headers for $rcpt"
	assert_match "$T/h" '^Message-ID: <[^@ ]+@relayq\.test>$' "headers for $rcpt"
	check "copy for $rcpt: no Bcc header, the Bcc address nowhere in the visible copies"
	assert_not_match -i "$T/h" '^bcc:' "headers for $rcpt"
	[ "$rcpt" = "$bcc" ] || assert_not_contains "$f" "$bcc" "copy for $rcpt"
	check "copy for $rcpt: the lone dot line and the 8-bit text are intact"
	body_of "$f" >"$T/b"
	assert_match "$T/b" '^\.$' "body for $rcpt"
	assert_contains "$T/b" "line after a lone dot" "body for $rcpt"
	assert_contains "$T/b" "$(printf 'Gr\303\274\303\237e')" "body for $rcpt"
	check "copy for $rcpt: relayed with TLS and AUTH"
	assert_match "$T/h" 'with ESMTPSA id' "Received: of the copy for $rcpt"
done
check "the envelope sender is root qualified with RELAYQ_DOMAIN"
assert_contains "$T/h" "Return-Path: <root@relayq.test>" "headers"
wait_detached
check "the spool is empty after delivery"
wait_queue_count 0
pass
