#!/usr/bin/env bash
# t-31: PHP's mail() (Debian's php-cli) with sendmail_path pointed at relayq
# (php -d sendmail_path=..., PHP's default arguments "-t -i"), once with
# `relayq serve` running (the message goes over the unix socket) and once
# without (direct spool, detached delivery). The script gives a From and a
# Bcc in the additional headers, a UTF-8 subject (raw 8-bit, as many PHP
# scripts do), LF line ends in the body and a line longer than 998 octets,
# and uses mail()'s fifth parameter for the envelope sender (-f). Each copy
# arrives with Date and Message-ID added, no Bcc header, every line within
# 998 octets (the long line sent quoted-printable, decoding to itself), the
# envelope sender from -f.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd php python3

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
save_config

# php_mail TOKEN — send one message with mail(); PHP's exit status is 0
# only when mail() returned true (sendmail exited 0).
php_mail() {
	local tok=$1
	cat >"$T/$tok.php" <<PHP
<?php
\$long = str_repeat("0123456789", 150);
\$body = "Hello from PHP, $tok.\nGrüße aus Köln.\n.\n\$long\nlast line\n";
\$headers = "From: PHP App <app@relayq.test>\r\nBcc: bcc-$tok@example.org\r\nContent-Type: text/plain; charset=UTF-8";
\$ok = mail("to-$tok@example.net", "PHP $tok Grüße", \$body, \$headers, "-fbounces@relayq.test");
exit(\$ok ? 0 : 1);
PHP
	php -n -d "sendmail_path=$BIN/sendmail -t -i" "$T/$tok.php" >"$T/$tok.out" 2>&1 ||
		{ show "$T/$tok.out"; fail "PHP mail() returned false for $tok"; }
}

# check_copies TOKEN — both copies arrived as a strict relay wants them.
check_copies() {
	local tok=$1 f rcpt files
	mapfile -t files < <(wait_for_mail "to-$tok@example.net" 2)
	check "$tok: two copies (To and Bcc)"
	sleep 1
	assert_eq "$(mail_files "to-$tok@example.net" | grep -c .)" 2 "copies of $tok"
	for rcpt in "to-$tok@example.net" "bcc-$tok@example.org"; do
		f=$(grep -lxF -- "Delivered-To: $rcpt" "${files[@]}" | head -n 1) || fail "no copy for $rcpt"
		headers_of "$f" >"$T/h"
		check "$tok: copy for $rcpt has From, Date, Message-ID and no Bcc"
		assert_match "$T/h" '^From: PHP App <app@relayq\.test>' "headers"
		assert_match "$T/h" '^Date: ' "headers"
		assert_match "$T/h" '^Message-ID: <' "headers"
		assert_not_match -i "$T/h" '^bcc:' "headers"
		check "$tok: envelope sender from mail()'s -f"
		assert_contains "$T/h" "Return-Path: <bounces@relayq.test>" "headers"
		check "$tok: no line longer than 998 octets; the long line arrives quoted-printable and decodes to itself"
		if LC_ALL=C awk 'length($0) > 999 { exit 1 }' "$f"; then :; else fail "a line over 998 octets in $f"; fi
		python3 - "$f" "$(printf '0123456789%.0s' $(seq 1 150))" <<'PY' || fail "the 1500-octet line of $tok was not kept whole in $f"
import email, sys
m = email.message_from_bytes(open(sys.argv[1], 'rb').read())
body = m.get_payload(decode=True).decode('utf-8', 'replace')
sys.exit(0 if sys.argv[2] in body.splitlines() else 1)
PY
		check "$tok: the lone dot line is data (-i)"
		body_of "$f" >"$T/b"
		assert_contains "$T/b" "last line" "body"
	done
}

check "mail() with relayq serve running"
start_serve
tok=t31a-$$-$RANDOM
php_mail "$tok"
check_copies "$tok"
wait_queue_count 0
stop_serve

check "mail() without a daemon (direct spool, detached delivery)"
tok=t31b-$$-$RANDOM
php_mail "$tok"
check_copies "$tok"
wait_detached
wait_queue_count 0
pass
