#!/usr/bin/env bash
# t-56-spool-owner: a spool created by root, then used by the service user.
#
# root queues a message with no daemon (the spool and the drop directory are
# root's); `relayq serve` run as another user (nobody, standing in for the
# packaged unit's relayq) then fails, and its error names the spool file,
# its owner and the command that fixes it. The packaged tmpfiles line (Z,
# deploy/relayq.tmpfiles.conf, with this scenario's paths and user) gives
# the spool to that user; serve then starts as that user and the message
# root queued is still there.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd setpriv systemd-tmpfiles

relayq_env "[127.0.0.1]:9"
export RELAYQ_TLS=none
chmod 0755 "$T"
save_config
chmod 0644 "$RELAYQ_CONFIG"
OUT=$T/last.out
ERR=$T/last.err

check "root queues a message without a daemon: the spool is root's"
printf 'Subject: t56\n\nbody\n' | "$BIN/sendmail" -odq -i bob@example.net || fail "sendmail as root failed"
assert_eq "$(stat -c %U "$RELAYQ_SPOOL")" root "owner of the spool"

# The run directory must be the service user's (systemd's RuntimeDirectory=).
chown -R nobody:nogroup "$T/run"
chown nobody:nogroup "$RELAYQ_AUTHINFO"

check "serve as the service user fails and names the file, its owner and the fix"
rc=0
timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups "$BIN/relayq" serve >"$OUT" 2>"$ERR" || rc=$?
[ "$rc" != 0 ] || fail "serve as nobody started on root's spool"
[ "$rc" != 124 ] || fail "serve as nobody hung"
# nobody cannot look inside the 0700 directory: the hint names it.
assert_contains "$ERR" "$T/spool is owned by root:root, mode 0700" "names the spool directory and its owner"
assert_contains "$ERR" "relayq runs as nobody:nogroup: run chown -R nobody:nogroup $T/spool" "names the command that fixes it"

check "the packaged tmpfiles rule (Z) gives the spool to the service user"
sed -e "s#/var/spool/relayq#$T/spool#g" -e "s#relayq relayq#nobody nogroup#g" \
	"$REPO/deploy/relayq.tmpfiles.conf" >"$T/tmpfiles.conf"
grep -q "^Z $T/spool - nobody nogroup" "$T/tmpfiles.conf" || { show "$T/tmpfiles.conf"; fail "no Z rule in deploy/relayq.tmpfiles.conf"; }
systemd-tmpfiles --create "$T/tmpfiles.conf" >&2 || fail "systemd-tmpfiles --create failed"
assert_eq "$(stat -c %U "$RELAYQ_SPOOL")" nobody "owner of the spool after tmpfiles"

check "serve as the service user now starts; root's message is still queued"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$BIN/relayq" serve >>"$T/serve.log" 2>&1 &
SERVE_PID=$!
_PIDS+=("$SERVE_PID")
for ((i = 0; i < 100; i++)); do
	[ -S "$RELAYQ_CONTROL_SOCKET" ] && break
	kill -0 "$SERVE_PID" 2>/dev/null || { show "$T/serve.log"; fail "serve as nobody exited"; }
	sleep 0.1
done
[ -S "$RELAYQ_CONTROL_SOCKET" ] || { show "$T/serve.log"; fail "serve as nobody did not start"; }
wait_queue_count 1
stop_serve
pass
