#!/usr/bin/env bash
# t-33: `sendmail -bs` (an SMTP session on standard input and output, go-smtp
# underneath) driven by swaks --pipe, with `relayq serve` running and
# without: EHLO advertises DSN and SMTPUTF8, the message gets "250 2.0.0 Ok:
# queued as <ID>", goes through the same intake as -bm (Date and
# Message-ID added, Bcc removed) and reaches the smarthost. A recipient
# starting with '-' is refused with 501 in the session.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd swaks

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
save_config

# bs TOKEN — one swaks session through `relayq sendmail -bs`.
bs() {
	local tok=$1
	swaks --pipe "$BIN/relayq sendmail -bs" \
		--from "swaks-$tok@relayq.test" --to "to-$tok@example.net" \
		--header "Subject: swaks $tok" --header "Bcc: hidden-$tok@example.org" \
		--add-header "X-Test-Token: $tok" \
		--body "body of $tok" >"$T/$tok.swaks" 2>&1 ||
		{ show "$T/$tok.swaks"; fail "swaks exited $?"; }
	check "$tok: the session advertised DSN and SMTPUTF8 and queued the message"
	assert_contains "$T/$tok.swaks" "250-DSN" "swaks transcript"
	assert_contains "$T/$tok.swaks" "250-SMTPUTF8" "swaks transcript"
	assert_match "$T/$tok.swaks" '<- +250 2\.0\.0 Ok: queued as [0-9A-Z]{12}' "swaks transcript"

	f=$(wait_for_mail "X-Test-Token: $tok" 1 | head -n 1)
	headers_of "$f" >"$T/h"
	check "$tok: arrived with Date, Message-ID and From, without Bcc"
	assert_contains "$T/h" "Delivered-To: to-$tok@example.net" "headers"
	assert_contains "$T/h" "Return-Path: <swaks-$tok@relayq.test>" "headers"
	assert_match "$T/h" '^Date: ' "headers"
	assert_match -i "$T/h" '^Message-ID: <' "headers"
	assert_match "$T/h" '^From: ' "headers"
	assert_not_match -i "$T/h" '^bcc:' "headers"
	assert_match "$T/h" 'with ESMTPSA id' "headers"
}

start_serve
bs "t33a-$$-$RANDOM"
wait_queue_count 0
stop_serve

bs "t33b-$$-$RANDOM"
wait_detached
wait_queue_count 0

check "a recipient starting with '-' is refused in the -bs session (501)"
# swaks itself refuses such an address, so this session is written out.
printf 'EHLO x\r\nMAIL FROM:<a@relayq.test>\r\nRCPT TO:<-oQ/tmp@example.net>\r\nQUIT\r\n' |
	"$BIN/relayq" sendmail -bs >"$T/dash.smtp" 2>&1 || fail "sendmail -bs exited $?"
assert_match "$T/dash.smtp" "^501 5\.1\.[0-9] address starts with '-'" "-bs replies"
assert_match "$T/dash.smtp" "^221 " "-bs replies"
wait_queue_count 0
pass
