#!/usr/bin/env bash
# t-05: the test smarthost is what the other scenarios rely on, checked with
# swaks and openssl rather than relayq: on the submission port AUTH is not
# offered and MAIL is refused before STARTTLS; STARTTLS + AUTH PLAIN
# delivers into the Maildir; the smtps port speaks implicit TLS; the
# certificate verifies against SMARTHOST_CA for "localhost" and 127.0.0.1;
# relay without AUTH and a wrong password are refused; the second user
# works; and a Bcc: header a client sends is kept (so a leak would show).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd swaks openssl

SUB=$SMARTHOST_SUBMISSION_PORT
SMTPS=$SMARTHOST_SMTPS_PORT
sw() { swaks --server 127.0.0.1 --hide-informational --suppress-data "$@" </dev/null; }
auth() { echo --auth "$1" --auth-user "$2" --auth-password "$3"; }

check "submission, before STARTTLS: no AUTH in the EHLO reply"
sw --port "$SUB" --quit-after EHLO >"$T/ehlo.out" 2>&1 || { show "$T/ehlo.out"; fail "EHLO to the submission port failed"; }
assert_match "$T/ehlo.out" '^<- +250[ -]STARTTLS' "EHLO reply"
assert_not_match -i "$T/ehlo.out" '^<- +250[ -]AUTH' "EHLO reply before STARTTLS"

check "submission, before STARTTLS: MAIL is refused with 530"
rc=0
sw --port "$SUB" --from a@relayq.test --to x@example.net >"$T/plain.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || { show "$T/plain.out"; fail "a plaintext transaction was accepted"; }
assert_match "$T/plain.out" '^<\*\* +530 5\.7\.0 Must issue a STARTTLS command first' "plaintext MAIL"

check "the certificate verifies for localhost and 127.0.0.1 with SMARTHOST_CA (implicit TLS)"
openssl s_client -connect "127.0.0.1:$SMTPS" -CAfile "$SMARTHOST_CA" -verify_return_error \
	-verify_hostname localhost -servername localhost </dev/null >"$T/s_client.out" 2>&1 ||
	{ show "$T/s_client.out"; fail "openssl s_client -verify_hostname localhost failed"; }
assert_contains "$T/s_client.out" "Verify return code: 0 (ok)" "openssl s_client (localhost)"
openssl s_client -connect "127.0.0.1:$SMTPS" -CAfile "$SMARTHOST_CA" -verify_return_error \
	-verify_ip 127.0.0.1 </dev/null >"$T/s_client_ip.out" 2>&1 ||
	{ show "$T/s_client_ip.out"; fail "openssl s_client -verify_ip 127.0.0.1 failed"; }
check "the certificate does not verify without SMARTHOST_CA"
if openssl s_client -connect "127.0.0.1:$SMTPS" -CApath /nonexistent -CAfile /dev/null -verify_return_error \
	-verify_hostname localhost </dev/null >"$T/s_client_noca.out" 2>&1; then
	fail "the test certificate verified against no CA"
fi

tok=t05a-$$-$RANDOM
check "submission: STARTTLS (verified) + AUTH PLAIN delivers into the Maildir"
# shellcheck disable=SC2046
sw --port "$SUB" --tls --tls-verify --tls-ca-path "$SMARTHOST_CA" --tls-sni localhost \
	$(auth PLAIN "$SMARTHOST_USER" "$SMARTHOST_PASS") \
	--from sender@relayq.test --to "rcpt-$tok@example.net" \
	--header "Subject: $tok" --header "Bcc: hidden-$tok@example.org" --body "body $tok" >"$T/a.out" 2>&1 ||
	{ show "$T/a.out"; fail "swaks STARTTLS + AUTH PLAIN failed"; }
assert_match "$T/a.out" '^<~ +235 ' "AUTH PLAIN reply"
f=$(wait_for_mail "Subject: $tok" 1)
assert_contains "$f" "Delivered-To: rcpt-$tok@example.net" "delivered copy"
check "a Bcc: header the client sent is kept (Postfix's message_drop_headers is off)"
assert_contains "$f" "Bcc: hidden-$tok@example.org" "delivered copy"

tok=t05b-$$-$RANDOM
check "smtps: implicit TLS (verified) + AUTH LOGIN delivers"
# shellcheck disable=SC2046
sw --port "$SMTPS" --tlsc --tls-verify --tls-ca-path "$SMARTHOST_CA" --tls-sni localhost \
	$(auth LOGIN "$SMARTHOST_USER" "$SMARTHOST_PASS") \
	--from sender@relayq.test --to "rcpt-$tok@example.net" --header "Subject: $tok" >"$T/b.out" 2>&1 ||
	{ show "$T/b.out"; fail "swaks implicit TLS + AUTH LOGIN failed"; }
wait_for_mail "Subject: $tok" 1 >/dev/null

tok=t05c-$$-$RANDOM
check "the second user (SMARTHOST_USER2) can relay too"
# shellcheck disable=SC2046
sw --port "$SMTPS" --tlsc $(auth PLAIN "$SMARTHOST_USER2" "$SMARTHOST_PASS2") \
	--from sender@relayq.test --to "rcpt-$tok@example.net" --header "Subject: $tok" >"$T/c.out" 2>&1 ||
	{ show "$T/c.out"; fail "swaks as SMARTHOST_USER2 failed"; }
wait_for_mail "Subject: $tok" 1 >/dev/null

for port in "$SUB" "$SMTPS"; do
	tls=--tls
	[ "$port" = "$SMTPS" ] && tls=--tlsc
	tok=t05d-$port-$$-$RANDOM
	check "port $port: relay without AUTH is refused (554 5.7.1), nothing delivered"
	rc=0
	sw --port "$port" "$tls" --from sender@relayq.test --to "rcpt-$tok@example.net" \
		--header "Subject: $tok" >"$T/noauth.out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || { show "$T/noauth.out"; fail "unauthenticated relay was accepted on port $port"; }
	assert_match "$T/noauth.out" '^<~\* +554 5\.7\.1 .*Access denied' "RCPT without AUTH"
	assert_no_mail "$tok" 0

	tok=t05e-$port-$$-$RANDOM
	check "port $port: a wrong password gets 535 and relays nothing"
	rc=0
	# shellcheck disable=SC2046
	sw --port "$port" "$tls" $(auth PLAIN "$SMARTHOST_USER" "wrong-$RANDOM") \
		--from sender@relayq.test --to "rcpt-$tok@example.net" --header "Subject: $tok" >"$T/wrong.out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || { show "$T/wrong.out"; fail "a wrong password was accepted on port $port"; }
	assert_match "$T/wrong.out" '^<~\* +535 ' "AUTH with a wrong password"
	assert_no_mail "$tok" 0
done

pass
