#!/usr/bin/env bash
# t-73: the Debian package, installed as an operator installs it, in a clean
# Debian 12 root (test/pkgroot-prepare debootstraps it once, with postfix,
# bsd-mailx and cron downloaded into its apt cache; scripts/test runs it):
#
#   * next to Postfix: apt removes Postfix, relayq's sendmail, mailq,
#     newaliases and /usr/lib/sendmail are in place, the relayq user and a
#     0700 spool exist, the unit is enabled, relayq(8) is installed;
#   * `apt-get install bsd-mailx cron` pulls in no other MTA;
#   * configured as the README says (relayq.env, a 0600 authinfo), a message
#     sent with mail(1) and the output of a real cron job (cron -f started
#     in the root, an @reboot job, cron's own mailer call) reach the test
#     smarthost through TLS and AUTH, each exactly once, daemonless (no
#     systemd in the root, as in a container or chroot);
#   * a message queued while the relay is down (a closed loopback port)
#     keeps its queue ID across an upgrade to a rebuilt version, and is
#     delivered once after the relay is fixed;
#   * remove keeps /var/spool/relayq, purge deletes it and the conffile.
#
# The root shares this machine's network namespace: its relayq reaches the
# loopback smarthost and nothing else.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd chroot dpkg-deb mount umount
[ "$(id -u)" = 0 ] || fail "needs root (chroot, apt in the root)"
MAIL_TIMEOUT=60
CACHE=${PKGROOT_CACHE:-/var/tmp/relayq-pkgroot}
[ -f "$CACHE/.relayq-pkgroot-v1" ] ||
	fail "no prepared Debian root at $CACHE: run test/pkgroot-prepare as root (scripts/test does)"

work=$(mktemp -d /var/tmp/relayq-t73.XXXXXX)
root=$work/root
cleanup_root() {
	# cron and delivery runs started inside the root: ours, found by their
	# root directory, ended by PID.
	local p
	for p in /proc/[0-9]*; do
		if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then kill "${p#/proc/}" 2>/dev/null || true; fi
	done
	sleep 0.5
	umount "$root/proc" 2>/dev/null || true
	rm -rf "$work"
}
on_exit cleanup_root
cp -a "$CACHE" "$root"
mount -t proc proc "$root/proc"
# policy-rc.d (from pkgroot-prepare) keeps daemons from starting on install.
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
# apt offline: everything it installs is in the root's cache.
apt_root() { in_root apt-get -o Acquire::http::Timeout=1 -o Acquire::Retries=0 "$@"; }

check "scripts/package builds two versions of the package"
v1=1.0.0~t73a
v2=1.0.0~t73b
for v in "$v1" "$v2"; do
	(cd "$REPO" && RELAYQ_VERSION=$v scripts/package >"$T/package-$v.log" 2>&1) ||
		{ show "$T/package-$v.log"; fail "scripts/package ($v)"; }
	mv "$REPO"/dist/relayq_"${v}"_*.deb "$root/tmp/" || fail "scripts/package made no relayq_${v}_*.deb"
done
arch=$(go env GOARCH)

check "Postfix installed in the root"
echo "postfix postfix/main_mailer_type select Local only" | in_root debconf-set-selections
echo "postfix postfix/mailname string pkgtest.invalid" | in_root debconf-set-selections
apt_root install -y -q --no-install-recommends postfix >"$T/postfix.log" 2>&1 || { show "$T/postfix.log"; fail "installing postfix"; }
in_root dpkg -s postfix >/dev/null || fail "postfix not installed"

check "apt installs relayq $v1 in Postfix's place"
apt_root install -y -q "/tmp/relayq_${v1}_${arch}.deb" >"$T/install.log" 2>&1 || { show "$T/install.log"; fail "apt-get install relayq"; }
assert_match "$T/install.log" '^Removing postfix' "apt's output"
if in_root dpkg -s postfix 2>/dev/null | grep -q '^Status: install ok installed'; then fail "postfix still installed"; fi
assert_eq "$(readlink "$root/usr/sbin/sendmail")" relayq-sendmail "/usr/sbin/sendmail"
for l in usr/bin/mailq usr/bin/newaliases usr/lib/sendmail; do
	assert_eq "$(readlink "$root/$l")" ../sbin/relayq-sendmail "/$l"
done
in_root getent passwd relayq >/dev/null || fail "no relayq user"
assert_eq "$(in_root stat -c '%a %U %G' /var/spool/relayq)" "700 relayq relayq" "the spool directory"
assert_eq "$(in_root relayq version | head -n 1)" "relayq $v1" "relayq version"
[ -f "$root/usr/share/man/man8/relayq.8.gz" ] || fail "no relayq(8)"
[ -L "$root/etc/systemd/system/multi-user.target.wants/relayq.service" ] || fail "relayq.service not enabled"

check "apt-get install bsd-mailx cron pulls in no other MTA"
apt_root install -s -y -q --no-install-recommends bsd-mailx cron >"$T/sim.log" 2>&1 || { show "$T/sim.log"; fail "simulating bsd-mailx cron"; }
assert_not_match "$T/sim.log" '^(Inst|Remv) (postfix|exim4|exim4-[a-z-]+|nullmailer|msmtp-mta|dma|sendmail-bin|opensmtpd|courier-mta|ssmtp|relayq) ' "apt's plan"
apt_root install -y -q --no-install-recommends bsd-mailx cron >"$T/mailx.log" 2>&1 || { show "$T/mailx.log"; fail "installing bsd-mailx cron"; }

check "configured as the README says: relayq.env and a 0600 authinfo for the smarthost"
relay="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
cp "$SMARTHOST_CA" "$root/etc/relayq/smarthost-ca.pem"
{
	echo "RELAYQ_RELAYHOST=$relay"
	echo "RELAYQ_DOMAIN=pkgtest.invalid"
	echo "RELAYQ_TLS_CA_FILE=/etc/relayq/smarthost-ca.pem"
} >>"$root/etc/relayq/relayq.env"
(umask 077 && printf '%s %s:%s\n' "$relay" "$SMARTHOST_USER" "$SMARTHOST_PASS" >"$root/etc/relayq/authinfo")
in_root relayq check >"$T/check.log" 2>&1 || { show "$T/check.log"; fail "relayq check in the root exited $?"; }

tok=t73-$$-$RANDOM
check "mail(1) reaches the smarthost once"
echo "package mail body $tok-mail" | in_root mail -s "pkg mail $tok" "mail-$tok@example.net" || fail "mail exited $?"
f=$(wait_for_mail "$tok-mail" 1 | head -n 1)
assert_contains "$f" "Delivered-To: mail-$tok@example.net" "the delivered mail"
assert_contains "$f" "Return-Path: <root@pkgtest.invalid>" "the delivered mail"
assert_match "$f" 'with ESMTPSA id' "the delivered mail"

check "a real cron job's output (cron -f in the root, @reboot) reaches the smarthost once"
cat >"$root/etc/crontab" <<CRONTAB
SHELL=/bin/sh
PATH=/usr/bin:/bin
MAILTO=cron-$tok@example.net
@reboot root echo "cron output $tok-cron"
CRONTAB
rm -f "$root/run/crond.reboot"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C cron -f -L 15 >"$T/cron.log" 2>&1 &
_PIDS+=("$!")
f=$(wait_for_mail "$tok-cron" 1 | head -n 1)
assert_contains "$f" "Delivered-To: cron-$tok@example.net" "the cron mail"
assert_match "$f" '^Subject: Cron <root@' "the cron mail"

sleep 2
check "each arrived exactly once and the root's queue is empty"
assert_eq "$(mail_files "$tok-mail" | grep -c .)" 1 "copies of the mail(1) message"
assert_eq "$(mail_files "$tok-cron" | grep -c .)" 1 "copies of the cron mail"
for _ in $(seq 1 50); do
	in_root mailq 2>&1 | grep -q 'Mail queue is empty' && break
	sleep 0.2
done
in_root mailq >"$T/mailq0" 2>&1 || true
assert_contains "$T/mailq0" "Mail queue is empty" "mailq in the root"

check "a message queued while the relay is down (closed loopback port)"
sed -i "s|^RELAYQ_RELAYHOST=.*|RELAYQ_RELAYHOST=[127.0.0.1]:9|" "$root/etc/relayq/relayq.env"
printf '[127.0.0.1]:9 %s:%s\n' "$SMARTHOST_USER" "$SMARTHOST_PASS" >>"$root/etc/relayq/authinfo"
echo "queued across the upgrade $tok-upg" | in_root mail -s "pkg upgrade $tok" "upg-$tok@example.net" || fail "mail exited $?"
sleep 1
in_root mailq >"$T/q1" 2>&1 || true
assert_contains "$T/q1" "upg-$tok@example.net" "mailq before the upgrade"

check "upgrading to $v2 keeps it, with its queue ID"
apt_root install -y -q "/tmp/relayq_${v2}_${arch}.deb" >"$T/upgrade.log" 2>&1 || { show "$T/upgrade.log"; fail "upgrade"; }
assert_eq "$(in_root relayq version | head -n 1)" "relayq $v2" "relayq version after the upgrade"
in_root mailq >"$T/q2" 2>&1 || true
assert_contains "$T/q2" "upg-$tok@example.net" "mailq after the upgrade"
# The first word of mailq's second line is the queue ID, with Postfix's "*"
# (being delivered) or "!" (held) mark.
id1=$(awk 'NR==2{print $1}' "$T/q1" | tr -d '*!')
id2=$(awk 'NR==2{print $1}' "$T/q2" | tr -d '*!')
[ -n "$id1" ] || fail "no queue ID in mailq: $(cat "$T/q1")"
assert_eq "$id2" "$id1" "queue ID after the upgrade"
assert_match "$root/etc/relayq/relayq.env" '^RELAYQ_RELAYHOST=\[127\.0\.0\.1\]:9$' "the conffile after the upgrade"

check "with the relay fixed, the message kept across the upgrade is delivered once"
sed -i "s|^RELAYQ_RELAYHOST=.*|RELAYQ_RELAYHOST=$relay|" "$root/etc/relayq/relayq.env"
in_root relayq queue flush >"$T/flush.log" 2>&1 || { show "$T/flush.log"; fail "relayq queue flush"; }
in_root relayq queue run >"$T/run.log" 2>&1 || { show "$T/run.log"; fail "relayq queue run"; }
f=$(wait_for_mail "$tok-upg" 1 | head -n 1)
assert_contains "$f" "Delivered-To: upg-$tok@example.net" "the kept message"
sleep 2
assert_eq "$(mail_files "$tok-upg" | grep -c .)" 1 "copies of the kept message"

check "remove keeps /var/spool/relayq, purge deletes it and the conffile"
apt_root remove -y -q relayq >"$T/remove.log" 2>&1 || { show "$T/remove.log"; fail "remove"; }
[ -n "$(ls -A "$root/var/spool/relayq" 2>/dev/null)" ] || fail "remove deleted the spool"
apt_root purge -y -q relayq >"$T/purge.log" 2>&1 || { show "$T/purge.log"; fail "purge"; }
[ ! -e "$root/var/spool/relayq" ] || fail "purge kept the spool"
[ ! -e "$root/etc/relayq/relayq.env" ] || fail "purge kept the conffile"
pass
