#!/usr/bin/env bash
# t-51-config: the env file (RELAYQ_CONFIG, systemd EnvironmentFile syntax)
# and the environment as every relayq entry point sees them: the
# environment wins key by key; a caller with a scrubbed environment (cron,
# PHP) gets the file's values; an unknown key is a warning on every command
# (sendmail still queues); a broken file or a bad value stops sendmail
# with exit 78 and names file:line or the key, before anything is queued;
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

check "a syntax error stops sendmail with 78, names file:line, queues nothing"
printf 'RELAYQ_TLS="verify\n' >"$T/broken.env"
expect_exit 78 env RELAYQ_CONFIG="$T/broken.env" "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" "$T/broken.env:1: unterminated quote in the value of RELAYQ_TLS"
printf 'RELAYQ_DOMAIN=x\nthis is not an assignment\n' >"$T/broken.env"
expect_exit 78 env RELAYQ_CONFIG="$T/broken.env" "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" "$T/broken.env:2: expected KEY=VALUE"
assert_eq "$(queue_count)" 0 "nothing queued"

check "bad values name the key (and the file:line they came from)"
printf 'RELAYQ_LOCK_TIMEOUT=soon\n' >"$T/bad.env"
expect_exit 78 env RELAYQ_CONFIG="$T/bad.env" "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" "RELAYQ_LOCK_TIMEOUT: invalid value \"soon\" (from $T/bad.env:1)"
expect_exit 78 env RELAYQ_TLS=sometimes "$RQ" sendmail -t -i <<<"$MSG"
assert_contains "$ERR" 'RELAYQ_TLS: "sometimes" is not one of verify, encrypt, may, none'
expect_exit 78 env RELAYQ_SPOOL=relative/queue.db "$RQ" queue list
assert_contains "$ERR" 'RELAYQ_SPOOL: "relative/queue.db" is not an absolute path'

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
