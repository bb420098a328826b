#!/usr/bin/env bash
# t-62: Python's smtplib (python3 from the machine) sends a bare message
# (only Subject:, no Date, Message-ID or From) through `relayq serve`'s
# listener. It reaches the real smarthost with all three added (as Postfix
# does for local clients): From is the envelope sender, Message-ID is under
# RELAYQ_DOMAIN. A message with 51 Received: fields is refused at the
# listener (554 5.4.6, mail loop), as sendmail refuses it (exit 65).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
export RELAYQ_SASL_MECHANISMS=PLAIN
PORT=$((20000 + ($$ + 7) % 20000))
export RELAYQ_LISTEN=127.0.0.1:$PORT
save_config
start_serve

tok=t62-$$-$RANDOM
check "smtplib sends a bare message (Subject only) through the listener"
python3 - "$PORT" "$tok" >"$T/py.out" 2>&1 <<'PY' || { show "$T/py.out"; fail "smtplib failed"; }
import smtplib, sys
port, tok = int(sys.argv[1]), sys.argv[2]
with smtplib.SMTP("127.0.0.1", port) as s:
    s.sendmail("app@relayq.test", ["rcpt-%s@example.net" % tok], "Subject: %s\r\n\r\nbare body %s\r\n" % (tok, tok))
print("sent")
PY
f=$(wait_for_mail "bare body $tok" 1 | head -1)
check "it arrived with Date, Message-ID and From"
headers_of "$f" >"$T/hdr"
assert_match "$T/hdr" '^Date: [A-Z][a-z][a-z], [0-9]{2} [A-Z][a-z][a-z] [0-9]{4} [0-9:]{8} [-+][0-9]{4}' "headers"
assert_match "$T/hdr" '^Message-ID: <[^@ ]+@relayq\.test>' "headers"
assert_match "$T/hdr" '^From: app@relayq\.test' "headers"
n=$(grep -ciE '^(date|message-id|from):' "$T/hdr")
[ "$n" = 3 ] || { show "$T/hdr"; fail "want one each of Date, Message-ID, From; found $n fields"; }

check "51 Received: fields: refused by the listener with 554 5.4.6, nothing queued"
python3 - "$PORT" "$tok" >"$T/loop.out" 2>&1 <<'PY' || { show "$T/loop.out"; fail "the looping message was not refused with 554 5.4.6"; }
import smtplib, sys
port, tok = int(sys.argv[1]), sys.argv[2]
msg = "".join("Received: from h%d by h%d; Thu, 1 Jan 2026 00:00:00 +0000\r\n" % (i, i) for i in range(51))
msg += "Subject: loop %s\r\n\r\nloop body %s\r\n" % (tok, tok)
try:
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.sendmail("app@relayq.test", ["loop-%s@example.net" % tok], msg)
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
    sys.exit(0 if e.smtp_code == 554 and b"5.4.6" in e.smtp_error else 1)
print("accepted"); sys.exit(1)
PY
assert_no_mail "loop body $tok" 2
pass
