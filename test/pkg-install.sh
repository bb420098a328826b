#!/usr/bin/env bash
# pkg-install.sh — install the built .deb into a clean Debian 12 root next
# to Postfix and check what the package promises: Postfix is removed and
# relayq's sendmail is in place, `apt-get install bsd-mailx cron` pulls in
# no other MTA, the relayq user and a 0700 spool exist, mail accepted
# daemonless is queued, an upgrade to a rebuilt version keeps the queued
# message, remove keeps /var/spool/relayq and purge deletes it.
#
# The clean root is debootstrapped once into $PKGROOT_CACHE (default
# /var/tmp/relayq-pkgroot; needs the Debian mirror) and copied for each run,
# so the cache stays clean. Needs root. Not yet part of scripts/test: the
# first run downloads from the mirror.
#
# Usage: test/pkg-install.sh   (builds dist/*.deb with scripts/package)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${PKGROOT_CACHE:-/var/tmp/relayq-pkgroot}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "pkg-install: must run as root" >&2; exit 77; }

fail() { echo "pkg-install: FAIL: $*" >&2; exit 1; }
say() { echo "pkg-install: $*"; }

if [ ! -x "$CACHE/usr/bin/apt-get" ]; then
	say "debootstrapping $CACHE (once)"
	command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap
	debootstrap --variant=minbase --include=adduser,init-system-helpers bookworm "$CACHE" "$MIRROR"
fi

work=$(mktemp -d /var/tmp/relayq-pkgtest.XXXXXX)
root=$work/root
cleanup() {
	# Delivery runs that sendmail started inside the root (trying the
	# unreachable relay): ours, found by their root directory, by PID.
	for p in /proc/[0-9]*; do
		if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then kill "${p#/proc/}" 2>/dev/null || true; fi
	done
	umount "$root/proc" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
cp -a "$CACHE" "$root"
mount -t proc proc "$root/proc"
# No daemons start inside the root (as in a chroot or image build).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

v1=1.0.0~pkgtest1
v2=1.0.0~pkgtest2
rm -rf "$work/dist"
RELAYQ_VERSION=$v1 scripts/package >/dev/null
mv dist/relayq_${v1}_*.deb "$work/"
RELAYQ_VERSION=$v2 scripts/package >/dev/null
mv dist/relayq_${v2}_*.deb "$work/"
cp "$work"/relayq_*.deb "$root/tmp/"

say "installing Postfix"
echo "postfix postfix/main_mailer_type select Local only" | in_root debconf-set-selections
echo "postfix postfix/mailname string pkgtest.invalid" | in_root debconf-set-selections
in_root apt-get install -y -q --no-install-recommends postfix >"$work/postfix.log" 2>&1 || { cat "$work/postfix.log"; fail "installing postfix"; }
in_root dpkg -s postfix >/dev/null || fail "postfix not installed"

say "installing relayq $v1 next to Postfix"
in_root apt-get install -y -q /tmp/relayq_${v1}_amd64.deb >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "apt-get install relayq"; }
grep -q '^Removing postfix' "$work/install.log" || fail "apt did not remove postfix"
if in_root dpkg -s postfix 2>/dev/null | grep -q '^Status: install ok installed'; then fail "postfix still installed"; fi
[ "$(readlink "$root/usr/sbin/sendmail")" = relayq-sendmail ] || fail "/usr/sbin/sendmail is $(readlink "$root/usr/sbin/sendmail")"
for l in usr/bin/mailq usr/bin/newaliases usr/lib/sendmail; do
	[ "$(readlink "$root/$l")" = ../sbin/relayq-sendmail ] || fail "/$l is $(readlink "$root/$l")"
done
in_root getent passwd relayq >/dev/null || fail "no relayq user"
[ "$(in_root stat -c '%a %U %G' /var/spool/relayq)" = "700 relayq relayq" ] || fail "spool: $(in_root stat -c '%a %U %G' /var/spool/relayq)"
in_root relayq version | head -1 | grep -qx "relayq $v1" || fail "relayq version: $(in_root relayq version | head -1)"
in_root man -w relayq >/dev/null 2>&1 || in_root test -f /usr/share/man/man8/relayq.8.gz || fail "no relayq(8)"
[ -L "$root/etc/systemd/system/multi-user.target.wants/relayq.service" ] || fail "relayq.service not enabled"

say "apt-get install bsd-mailx cron pulls in no other MTA"
in_root apt-get install -s -y -q --no-install-recommends bsd-mailx cron >"$work/sim.log" 2>&1 || { cat "$work/sim.log"; fail "simulating bsd-mailx cron"; }
if grep -E '^(Inst|Remv) (postfix|exim4|exim4-[a-z-]+|nullmailer|msmtp-mta|dma|sendmail-bin|opensmtpd|courier-mta|ssmtp|relayq) ' "$work/sim.log"; then
	fail "bsd-mailx/cron would change the MTA"
fi
in_root apt-get install -y -q --no-install-recommends bsd-mailx cron >"$work/mailx.log" 2>&1 || { cat "$work/mailx.log"; fail "installing bsd-mailx cron"; }

say "queueing a message with mail(1), daemonless (the relay 192.0.2.1 is unreachable: it stays queued)"
printf 'RELAYQ_RELAYHOST=[192.0.2.1]:587\nRELAYQ_DOMAIN=pkgtest.invalid\n' >>"$root/etc/relayq/relayq.env"
echo "package test body" | in_root mail -s "pkg test" someone@example.org || fail "mail exited $?"
q1=$(in_root mailq 2>&1) || true
echo "$q1" | grep -q 'someone@example.org' || fail "message not queued: $q1"

say "upgrading to $v2 keeps the queued message"
in_root apt-get install -y -q /tmp/relayq_${v2}_amd64.deb >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "upgrade"; }
in_root relayq version | head -1 | grep -qx "relayq $v2" || fail "not upgraded"
q2=$(in_root mailq 2>&1) || true
echo "$q2" | grep -q 'someone@example.org' || fail "queued message lost on upgrade: $q2"
# The first word of mailq's second line is the queue ID, with Postfix's
# "*" (being delivered: the daemonless run is trying the relay) or "!".
id1=$(echo "$q1" | awk 'NR==2{print $1}' | tr -d '*!'); id2=$(echo "$q2" | awk 'NR==2{print $1}' | tr -d '*!')
[ -n "$id1" ] || fail "no queue ID in: $q1"
[ "$id1" = "$id2" ] || fail "queue ID before upgrade $id1, after $id2"
say "queued before and after the upgrade: $id2"
grep -q '^RELAYQ_RELAYHOST=\[192.0.2.1\]:587' "$root/etc/relayq/relayq.env" || fail "conffile edit lost on upgrade"

say "remove keeps /var/spool/relayq, purge deletes it"
in_root apt-get remove -y -q relayq >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "remove"; }
[ -n "$(ls -A "$root/var/spool/relayq" 2>/dev/null)" ] || fail "remove deleted the spool"
in_root apt-get purge -y -q relayq >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
[ ! -e "$root/var/spool/relayq" ] || fail "purge kept the spool"
[ ! -e "$root/etc/relayq/relayq.env" ] || fail "purge kept the conffile"
say "PASS"
