#!/usr/bin/env bash
# t-51-config: the env file (RELAYQ_CONFIG, systemd EnvironmentFile syntax)
# and the environment as every relayq entry point sees them: the
# environment wins key by key; a caller with a scrubbed environment (cron,
# PHP) gets the file's values; an unknown key is a warning on every command
# (sendmail still queues); a syntax error or a bad value in a delivery key
# is a warning naming file:line and key, sendmail still queues, and the
# mail waits with the problem as its reason in mailq; in a key that
# queueing needs (RELAYQ_SPOOL, RELAYQ_LOCK_TIMEOUT, …) it stops sendmail
# with exit 78 naming file:line and key, before anything is queued;
# `relayq config` prints every key with default, source and value, and its
# output loads back.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

relayq_env "[127.0.0.1]:9"
RQ=$BIN/relayq
OUT=$T/last.out
ERR=$T/last.err
MSG=$'To: bob@example.net\nSubject: t51\n\nbody\n'

check "systemd syntax: quotes, continuation, export, comments; the environment wins"
cat >>"$RELAYQ_CONFIG" <<'EOF2'
# comment
; another comment
export RELAYQ_LOG_FORMAT="json"
RELAYQ_DOMAIN=file.\
example
RELAYQ_LOCK_TIMEOUT='3s'
RELAYQ_SMTPD_BANNER_UNUSED_IN_SYSTEMD_FILES_BUT_NOT_OURS=1
EOF2
# the last line is not ours: an unknown RELAYQ_ key in the file is a
# warning on every command, never a refusal (sendmail still queues mail)
expect_exit 0 "$RQ" config
assert_contains "$ERR" "$RELAYQ_CONFIG:" "warning names the file"
assert_match "$ERR" "relayq.env:[0-9]+: unknown key RELAYQ_SMTPD_BANNER_UNUSED[A-Z_]* ignored" "warning names the line and key"
expect_exit 0 "$RQ" queue list
assert_match "$ERR" "unknown key RELAYQ_SMTPD_BANNER_UNUSED" "relayq queue warns and runs"
expect_exit 0 "$BIN/mailq"
assert_match "$ERR" "unknown key RELAYQ_SMTPD_BANNER_UNUSED" "mailq warns and runs"
printf 'Subject: t51 unknown key\n\nbody\n' >"$T/unknown.msg"
expect_exit 0 "$BIN/sendmail" -odq -i nobody@example.net <"$T/unknown.msg"
assert_match "$ERR" "unknown key RELAYQ_SMTPD_BANNER_UNUSED" "sendmail warns"
expect_exit 0 "$RQ" queue list
assert_contains "$OUT" "nobody@example.net" "and queues the message"
expect_exit 0 "$RQ" queue delete "$(awk 'NR==2 {print $1}' "$OUT")"
sed -i '/UNUSED_IN_SYSTEMD/d' "$RELAYQ_CONFIG"
unset RELAYQ_DOMAIN RELAYQ_LOG_FORMAT RELAYQ_LOCK_TIMEOUT
expect_exit 0 "$RQ" config domain log_format lock_timeout
assert_eq "$(tr '\n' ' ' <"$OUT")" "file.example json 3s " "values from the file"
expect_exit 0 env RELAYQ_DOMAIN=env.example "$RQ" config RELAYQ_DOMAIN
assert_eq "$(cat "$OUT")" "env.example" "the environment wins"

check "a scrubbed environment (env -i, as cron and PHP run sendmail) reads the same file"
expect_exit 0 env -i RELAYQ_CONFIG="$RELAYQ_CONFIG" "$RQ" config spool domain
assert_eq "$(tr '\n' ' ' <"$OUT")" "$RELAYQ_SPOOL file.example " "file values without the environment"

check "relayq config: default, source and value of every key; the output loads back"
expect_exit 0 "$RQ" config
assert_contains "$OUT" "RELAYQ_DOMAIN=file.example" "value"
assert_match "$OUT" "^# default: \(none\); from: .*relayq.env:[0-9]+$" "source is file:line"
assert_contains "$OUT" "# default: /etc/relayq/authinfo; from: environment" "source environment"
assert_contains "$OUT" "RELAYQ_LOCK_TIMEOUT=3s" "duration"
assert_contains "$OUT" "#RELAYQ_CONFIG=" "RELAYQ_CONFIG is commented out"
cp "$OUT" "$T/roundtrip.env"
expect_exit 0 env -i RELAYQ_CONFIG="$T/roundtrip.env" "$RQ" config
grep -v '^# relayq configuration' "$OUT" | grep -v '; from: ' | grep -v '^#RELAYQ_CONFIG' >"$T/b.txt"
grep -v '^# relayq configuration' "$T/roundtrip.env" | grep -v '; from: ' | grep -v '^#RELAYQ_CONFIG' >"$T/a.txt"
cmp -s "$T/a.txt" "$T/b.txt" || { diff "$T/a.txt" "$T/b.txt" >&2; fail "relayq config output does not load back to the same values"; }

check "a syntax error in a key queueing needs stops sendmail with 78, names file:line, queues nothing"
printf 'RELAYQ_DOMAIN=x\nRELAYQ_SPOOL /var/spool/elsewhere.db\n' >"$T/broken.env"
expect_exit 78 env RELAYQ_CONFIG="$T/broken.env" "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" "$T/broken.env:2: expected KEY=VALUE"
assert_eq "$(queue_count)" 0 "nothing queued"

check "bad values of keys queueing needs name the key and the file:line, exit 78"
printf 'RELAYQ_LOCK_TIMEOUT=soon\n' >"$T/bad.env"
expect_exit 78 env RELAYQ_CONFIG="$T/bad.env" "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" "RELAYQ_LOCK_TIMEOUT: invalid value \"soon\" (from $T/bad.env:1)"
expect_exit 78 env RELAYQ_SPOOL=relative/queue.db "$RQ" queue list
assert_contains "$ERR" 'RELAYQ_SPOOL: "relative/queue.db" is not an absolute path'
assert_eq "$(queue_count)" 0 "nothing queued"

check "a syntax error or a bad value of a delivery key: sendmail warns (file:line, key) and queues; mailq shows why it waits"
# The env file's own keys plus the broken lines, so that the spool is ours.
cp "$RELAYQ_CONFIG" "$T/broken.env"
printf 'RELAYQ_TLS="verify\n' >>"$T/broken.env"
line=$(wc -l <"$T/broken.env")
expect_exit 0 env RELAYQ_CONFIG="$T/broken.env" "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" "$T/broken.env:$line: unterminated quote in the value of RELAYQ_TLS (mail is queued but not delivered until it is fixed)"
# A file of its own: the delivery run the first sendmail started may read
# its file only now, and must find it still broken.
cp "$RELAYQ_CONFIG" "$T/broken2.env"
printf 'this is not an assignment\nRELAYQ_SMTP_CONNECT_TIMEOUT=5x\n' >>"$T/broken2.env"
expect_exit 0 env RELAYQ_CONFIG="$T/broken2.env" "$BIN/sendmail" -t -i <<<"$MSG"
assert_contains "$ERR" "$T/broken2.env:$line: expected KEY=VALUE"
assert_contains "$ERR" "$T/broken2.env:$((line + 1)): RELAYQ_SMTP_CONNECT_TIMEOUT: invalid value \"5x\""
expect_exit 0 env RELAYQ_TLS=sometimes "$BIN/sendmail" -t -i <<<"$MSG"
assert_contains "$ERR" 'environment: RELAYQ_TLS: "sometimes" is not one of verify, encrypt, may, none'
wait_detached
assert_eq "$(queue_count)" 3 "queued"
# Each message was tried by a delivery run that read one of the broken
# configurations (which one depends on timing): each waits with its reason.
expect_exit 0 "$RQ" mailq
assert_eq "$(grep -c '(4.3.5 configuration error (mail waits; fix it; the next delivery run or relayq serve reads it again): .*RELAYQ_\(TLS\|SMTP_CONNECT_TIMEOUT\)' "$OUT")" 3 "messages in mailq waiting for the configuration error"
expect_exit 78 env RELAYQ_CONFIG="$T/broken2.env" "$RQ" check
assert_contains "$ERR" "relayq check: configuration: $T/broken2.env:$((line + 1)): RELAYQ_SMTP_CONNECT_TIMEOUT"
expect_exit 0 "$RQ" queue delete ALL
assert_eq "$(queue_count)" 0 "deleted"

check "a named env file that is missing is an error; a world-writable one is refused"
expect_exit 78 env RELAYQ_CONFIG="$T/nope.env" "$RQ" config
assert_contains "$ERR" "RELAYQ_CONFIG: open $T/nope.env: no such file or directory"
cp "$RELAYQ_CONFIG" "$T/ww.env"
chmod 0666 "$T/ww.env"
expect_exit 78 env RELAYQ_CONFIG="$T/ww.env" "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" "is world-writable"

check "unknown RELAYQ_ variables in the environment are warnings, shown by relayq config"
expect_exit 0 env RELAYQ_RELAYHSOT=x "$RQ" config domain
assert_contains "$ERR" "unknown environment variable RELAYQ_RELAYHSOT ignored (did you mean RELAYQ_RELAYHOST?)"
assert_eq "$(queue_count)" 0 "still nothing queued"

pass
