#!/usr/bin/env bash
# bench/sendmail.sh — how long a sendmail caller waits with relayq.
#
# Prints, from one run on this machine:
#   * the floor: a static binary that does nothing but one fsync (bench/floor);
#   * the median time a caller waits for `relayq sendmail -t -i < message`
#     (2 KB) with no daemon (direct spool write, detached queue run) and with
#     `relayq serve` running (unix socket);
#   * the time for 1,000 serial and 1,000 8-way parallel submissions to be
#     submitted and relayed to a local go-smtp sink on loopback.
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
trap 'rm -rf "$W"' EXIT

export CGO_ENABLED=0
go build -trimpath -o "$W/relayq" ./cmd/relayq
go build -trimpath -ldflags='-s -w' -o "$W/floor" ./bench/floor
go build -trimpath -o "$W/sendmailbench" ./bench/sendmailbench

"$W/sendmailbench" -relayq "$W/relayq" -floor "$W/floor" -dir "$W/work" -runs "$RUNS" -n "$N" -par "$PAR"
