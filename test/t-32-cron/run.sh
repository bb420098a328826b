#!/usr/bin/env bash
# t-32: a real cron job mails its output through relayq. Debian's cron runs
# /usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem root (its compiled-in
# MAILCMD), so the scenario runs `cron -f` in a private mount namespace
# (unshare --mount) where relayq is bind-mounted over /usr/sbin/sendmail and
# a private /etc/crontab (one @reboot job), empty /etc/cron.d and user
# crontabs, and a private /run (cron's pid file) hide the system's. Nothing
# outside the namespace changes; the namespace ends with cron.
#
# The job's output goes to root (no MAILTO); RELAYQ_ALIASES maps root to a
# remote address, so this also proves aliases and bare-name handling. No
# daemon runs: sendmail queues directly and starts a detached delivery.
# The copy must arrive with From, Date and Message-ID (cron gives none of
# Date and Message-ID), the 8-bit output intact, and the envelope sender
# root@RELAYQ_DOMAIN. The job is an @reboot one: cron runs it at start
# (the private /run has no crond.reboot), through the same job runner and
# mailer as a timed job, without waiting for a minute boundary.
#
# Where mount namespaces are not permitted (an unprivileged container), the
# scenario says so and sends what Debian cron sends, invoking relayq exactly
# as cron invokes its mailer, instead of running cron.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd cron unshare mount
[ "$(id -u)" = 0 ] || fail "needs root (mount namespace, cron)"
MAIL_TIMEOUT=40

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
tok=t32-$$-$RANDOM
rcpt=cron-$tok@example.net
printf '# cron mail to root reaches a person\nroot: %s\n' "$rcpt" >"$RELAYQ_ALIASES"
save_config

mkdir -p "$T/cron/cron.d" "$T/cron/crontabs" "$T/cron/run"
chmod 0755 "$T/cron" "$T/cron/cron.d"
chmod 1730 "$T/cron/crontabs"
# RELAYQ_CONFIG in the crontab reaches the job and the mailer; cron's own
# environment (below) carries it too.
cat >"$T/cron/crontab" <<CRONTAB
SHELL=/bin/sh
PATH=/usr/bin:/bin
RELAYQ_CONFIG=$RELAYQ_CONFIG
@reboot root echo "cron output $tok"; echo "Grüße aus dem Cron"
CRONTAB
chmod 0644 "$T/cron/crontab"

CRON_PID=
if unshare --mount --propagation private -- true 2>"$T/unshare.err"; then
	check "cron -f starts in a private mount namespace with relayq as /usr/sbin/sendmail"
	# shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
	RELAYQ_CONFIG=$RELAYQ_CONFIG unshare --mount --propagation private -- /bin/sh -c '
		set -e
		mount --bind "$1" /usr/sbin/sendmail
		mount --bind "$2/crontab" /etc/crontab
		mount --bind "$2/cron.d" /etc/cron.d
		mount --bind "$2/crontabs" /var/spool/cron/crontabs
		mount -t tmpfs -o mode=0755 tmpfs /run
		exec cron -f -L 15
	' sh "$BIN/relayq" "$T/cron" >"$T/cron.log" 2>&1 &
	CRON_PID=$!
	_PIDS+=("$CRON_PID")
	sleep 1
	kill -0 "$CRON_PID" 2>/dev/null || { show "$T/cron.log"; fail "cron did not start"; }
else
	# No mount namespaces here (an unprivileged container): relayq cannot
	# stand in for /usr/sbin/sendmail without changing the system, so send
	# what Debian cron sends, exactly as it invokes the mailer
	# (do_command.c: MAILCMD MAILARGS, with the job's owner as recipient).
	log "unshare --mount is not permitted ($(cat "$T/unshare.err")); running cron's mailer invocation by hand instead of a real cron"
	check "cron's mailer invocation: sendmail -FCronDaemon -i -B8BITMIME -oem root"
	{
		printf 'From: root (Cron Daemon)\nTo: root\n'
		printf 'Subject: Cron <root@%s> echo "cron output %s"\n' "$(hostname)" "$tok"
		printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n'
		printf 'X-Cron-Env: <SHELL=/bin/sh>\n\n'
		printf 'cron output %s\nGrüße aus dem Cron\n' "$tok"
	} | "$BIN/sendmail" -FCronDaemon -i -B8BITMIME -oem root || fail "sendmail (cron's invocation) exited $?"
fi

check "the job's output arrives at the aliased address"
f=$(wait_for_mail "cron output $tok" 1 | head -n 1)
headers_of "$f" >"$T/h"
body_of "$f" >"$T/b"
check "delivered to root's alias, with cron's own headers and relayq's completion"
assert_contains "$T/h" "Delivered-To: $rcpt" "headers"
assert_match "$T/h" '^Subject: Cron <root@' "headers"
assert_match "$T/h" '^From: root@relayq\.test \(Cron Daemon\)$|^From: CronDaemon <root@relayq\.test>$' "headers"
assert_match "$T/h" '^Date: ' "headers"
assert_match "$T/h" '^Message-ID: <[^ ]+@relayq\.test>$' "headers"
assert_match "$T/h" '^Received: by .* \(relayq, from userid 0\);' "headers"
assert_not_match -i "$T/h" '^bcc:' "headers"
check "the envelope sender is root@relayq.test"
assert_contains "$T/h" "Return-Path: <root@relayq.test>" "headers"
check "the 8-bit output is intact"
assert_contains "$T/b" "Grüße aus dem Cron" "body"
check "relayed with TLS and AUTH"
assert_match "$T/h" 'with ESMTPSA id' "headers"

[ -z "$CRON_PID" ] || stop_pid "$CRON_PID" 10 || true
wait_detached
wait_queue_count 0
pass
