#!/usr/bin/env bash
# t-61: a real Postfix smarthost that does not offer 8BITMIME
# (smtpd_discard_ehlo_keywords = 8bitmime, a private instance). An 8-bit
# multipart message (UTF-8 text marked 8bit, a binary attachment) is sent
# converted to 7-bit MIME, not bounced: what arrives is all 7-bit and every
# part decodes (Python's email package) to the octets that were sent. A
# body line of 3000 octets arrives quoted-printable and decodes to itself
# (no CRLF SP inserted). An 8-bit multipart/signed message is not touched:
# it is bounced with 5.6.3, and the log says why; the sender receives a
# headers-only 7-bit notice (the whole 8-bit original would fail the same way).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3 postconf postfix
SH=$(mktemp -d /tmp/relayq-sh8.XXXXXX)
"$TEST_ROOT/smarthost/start.sh" "$SH" >"$T/sh-start.out" 2>&1 || { show "$T/sh-start.out"; fail "test/smarthost/start.sh failed"; }
on_exit "$TEST_ROOT/smarthost/stop.sh" "$SH"
postconf -c "$SH/etc" -e 'smtpd_discard_ehlo_keywords = 8bitmime'
postfix -c "$SH/etc" reload >/dev/null 2>&1 || fail "postfix reload failed"
# shellcheck disable=SC1091
. "$SH/env"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
export RELAYQ_SASL_MECHANISMS=PLAIN
save_config

check "the private smarthost no longer offers 8BITMIME (relayq probe)"
ok=""
for _ in $(seq 50); do
	relayq probe >"$T/probe.out" 2>&1 || true
	if grep -q 'after TLS' "$T/probe.out" && ! grep -q '8BITMIME' "$T/probe.out"; then ok=1; break; fi
	sleep 0.2
done
[ -n "$ok" ] || { show "$T/probe.out"; fail "8BITMIME still offered"; }

# compare ORIG DELIVERED — every leaf part of DELIVERED decodes to the same
# octets as ORIG's; DELIVERED (past the smarthost's own header lines) is 7-bit.
compare() {
	python3 - "$1" "$2" <<'PY' || fail "delivered message differs from what was sent (see above)"
import email, sys
from email import policy
orig = open(sys.argv[1], 'rb').read()
got = open(sys.argv[2], 'rb').read()
bad = [i for i, b in enumerate(got) if b >= 0x80]
if bad:
    print("delivered message has 8-bit octets at", bad[:5]); sys.exit(1)
long = [l for l in got.split(b"\n") if len(l.rstrip(b"\r")) > 998]
if long:
    print("delivered message has a line of", len(long[0]), "octets"); sys.exit(1)
def leaves(raw):
    m = email.message_from_bytes(raw, policy=policy.compat32)
    return [(p.get_content_type(), p.get_payload(decode=True)) for p in m.walk() if not p.is_multipart()]
a, b = leaves(orig.replace(b"\n", b"\r\n")), leaves(got)
if len(a) != len(b):
    print(len(a), "parts sent,", len(b), "delivered"); sys.exit(1)
for i, (x, y) in enumerate(zip(a, b)):
    if x[1].replace(b"\r\n", b"\n") != y[1].replace(b"\r\n", b"\n") or x[0] != y[0]:
        print("part", i, x[0], "sent", x[1][:80], "delivered", y[0], y[1][:80]); sys.exit(1)
print("parts compared:", len(a))
PY
}

tok=t61a-$$-$RANDOM
printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b-%s"\n\npreamble\n--b-%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\303\274\303\237e aus K\303\266ln, %s.\n.a line with a dot\nTrailing blank \n--b-%s\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="bin"\n\n\001\002\376\377\200 high \351\n--b-%s--\nepilogue\n' \
	"$tok" "$tok" "$tok" "$tok" "$tok" "$tok" "$tok" >"$T/a.eml"
check "an 8-bit multipart message is relayed (sendmail -t, daemonless)"
expect_exit 0 relayq sendmail -t <"$T/a.eml"
f=$(wait_for_mail "$tok" 1 | head -1)
check "it arrived 7-bit and every part decodes to what was sent"
compare "$T/a.eml" "$f"
assert_match "$f" '^Content-Transfer-Encoding: quoted-printable' "delivered message"
assert_match "$f" '^Content-Transfer-Encoding: base64' "delivered message"
assert_contains "$f" "preamble" "delivered message"
wait_detached

tok=t61b-$$-$RANDOM
long=$(head -c 3000 /dev/zero | tr '\0' 'L')
printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nstart %s\n%s\nend\n' "$tok" "$tok" "$tok" "$long" >"$T/b.eml"
check "a body line of 3000 octets arrives quoted-printable and decodes to itself"
expect_exit 0 relayq sendmail -t <"$T/b.eml"
f=$(wait_for_mail "$tok" 1 | head -1)
compare "$T/b.eml" "$f"
assert_match "$f" '^Content-Transfer-Encoding: quoted-printable' "delivered message"
wait_detached

tok=t61c-$$-$RANDOM
printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\nMIME-Version: 1.0\nContent-Type: multipart/signed; boundary="s"; protocol="application/pgp-signature"\n\n--s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nsign\303\251 %s\n--s\nContent-Type: application/pgp-signature\n\nnot a real signature\n--s--\n' \
	"$tok" "$tok" "$tok" >"$T/c.eml"
check "8-bit inside multipart/signed: bounced with 5.6.3, never converted"
expect_exit 0 relayq sendmail -odq -t <"$T/c.eml"
relayq queue run >"$T/run.out" 2>"$T/run.log" || true
assert_match "$T/run.log" 'msg=bounced.*5\.6\.3' "relayq queue run log"
assert_contains "$T/run.log" "multipart/signed" "relayq queue run log"
check "the sender is told: a headers-only, 7-bit notice (the 8-bit original would fail the same way)"
relayq queue run >>"$T/run.out" 2>>"$T/run.log" || true
f=$(wait_for_mail "$tok" 1 | head -1)
assert_contains "$f" "multipart/report" "the notice"
assert_contains "$f" "text/rfc822-headers" "the notice"
assert_contains "$f" "5.6.3" "the notice"
assert_not_contains "$f" "not a real signature" "the notice (no body of the original)"
LC_ALL=C grep -q $'[\x80-\xff]' "$f" && fail "the notice has 8-bit octets"
n=$(mail_files "$tok" | grep -c . || true)
assert_eq "$n" 1 "messages containing $tok (the notice only, the original never arrived)"
assert_eq "$(queue_count)" 0 "messages left in the queue"
pass
