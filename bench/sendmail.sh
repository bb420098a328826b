#!/usr/bin/env bash
# bench/sendmail.sh — how long a sendmail caller waits with relayq.
#
# Prints, from one run on this machine:
#   * the floor: a static binary that does nothing but one fsync (bench/floor);
#   * the median time a caller waits for `sendmail -t -i < message` (2 KB;
#     the small cmd/sendmail binary, installed as /usr/sbin/sendmail, with
#     relayq beside it) with no daemon (drop directory file, detached queue
#     run unless one runs already; also the slowest call) and with
#     `relayq serve` running (unix socket);
#   * 1,000 serial submissions without the daemon until relayed, and the
#     number of SMTP connections the daemonless runs used;
#   * the time for 1,000 serial and 1,000 8-way parallel submissions to be
#     submitted and relayed to a local go-smtp sink on loopback;
#   * when run as root with Postfix installed (test/smarthost/install.sh),
#     Postfix's own sendmail (postdrop) in the same rounds, against a
#     private Postfix instance on loopback (test/smarthost/start.sh).
#
# Usage: bench/sendmail.sh [RUNS [N [PARALLEL]]]   (defaults 200 1000 8)
# The work directory is on the same file system as TMPDIR (fsync cost
# depends on it); set TMPDIR to measure another disk.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
RUNS=${1:-200}
N=${2:-1000}
PAR=${3:-8}

W=$(mktemp -d "${TMPDIR:-/tmp}/relayq-bench.XXXXXX")
PF=""
cleanup() {
	if [ -n "$PF" ]; then
		test/smarthost/stop.sh "$PF" >/dev/null 2>&1 || true
	fi
	rm -rf "$W"
}
trap cleanup EXIT

export CGO_ENABLED=0
go build -trimpath -o "$W/relayq" ./cmd/relayq
go build -trimpath -o "$W/sendmail" ./cmd/sendmail
go build -trimpath -ldflags='-s -w' -o "$W/floor" ./bench/floor
go build -trimpath -o "$W/sendmailbench" ./bench/sendmailbench

postfix=()
if [ "$(id -u)" = 0 ] && command -v postfix >/dev/null && [ -x /usr/sbin/sendmail ] &&
	dpkg -S /usr/sbin/sendmail 2>/dev/null | grep -q '^postfix:'; then
	chmod 0755 "$W" # Postfix and virtual(8) must traverse it
	PF="$W/postfix"
	if test/smarthost/start.sh "$PF" >"$W/postfix-start.log" 2>&1; then
		postfix=(-postfix "$PF/etc")
	else
		echo "Postfix comparison skipped: test/smarthost/start.sh failed (see below)" >&2
		tail -n 5 "$W/postfix-start.log" >&2
		PF=""
	fi
else
	echo "Postfix comparison skipped: needs root and Postfix's /usr/sbin/sendmail (test/smarthost/install.sh)" >&2
fi

"$W/sendmailbench" -relayq "$W/relayq" -sendmail "$W/sendmail" -floor "$W/floor" -dir "$W/work" -runs "$RUNS" -n "$N" -par "$PAR" "${postfix[@]}"
