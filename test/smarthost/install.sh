#!/usr/bin/env bash
# install.sh — install every Debian package relayq's test suite needs.
#
# Idempotent and non-interactive: when everything is already installed it
# does nothing (no apt-get update), so the dev loop stays fast. Needs root.
# Packages: a real Postfix + Dovecot smarthost (test/smarthost/start.sh),
# swaks to probe it (with Net::SSLeay for TLS and IO::Socket::INET6 for ::1,
# only Recommends of swaks), real sendmail(1) callers (bsd-mailx, php-cli,
# cron), iproute2 (ss, for free ports), openssl (test CA), util-linux
# (flock), bsdutils (script), shellcheck, and gcc + libc6-dev for
# `go test -race` (cgo), groff-base + man-db (cmd/relayq's man page test
# renders each generated page with groff and man -l).
set -euo pipefail

pkgs=(
	postfix
	dovecot-core
	swaks
	libnet-ssleay-perl
	libio-socket-inet6-perl
	bsd-mailx
	php-cli
	cron
	iproute2
	openssl
	ca-certificates
	libsasl2-modules
	util-linux
	bsdutils
	shellcheck
	procps
	git
	gcc
	libc6-dev
	groff-base
	man-db
)

missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [ "$st" != "installed" ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install.sh: all ${#pkgs[@]} packages already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install.sh: missing packages (${missing[*]}); run as root" >&2
	exit 77
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix asks how it is used; the tests run their own instances, so the
# system one gets "No configuration" and is never started by the tests.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string relayq-test.invalid" | debconf-set-selections

echo "install.sh: installing ${missing[*]}"
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${missing[@]}" </dev/null
echo "install.sh: done"
