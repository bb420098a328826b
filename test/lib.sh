# shellcheck shell=bash
# lib.sh — sourced by every test/t-NN-name/run.sh.
#
# What sourcing it gives a scenario:
#
#   * relayq built once per run into $BIN (test/.work/bin) with the sendmail,
#     mailq and newaliases symlinks, and test/tools/smtprecorder; $BIN is first
#     in PATH. test/run-all builds before the first scenario and exports
#     TESTBED_BUILT=1; a scenario run on its own builds for itself.
#   * the shared test smarthost (Postfix + Dovecot, test/smarthost/start.sh):
#     run-all starts one and exports TESTBED_SMARTHOST=DIR; a scenario run
#     on its own starts a private one and stops it on exit. Its DIR/env is
#     sourced: SMARTHOST_HOST, SMARTHOST_SUBMISSION_PORT, SMARTHOST_SMTPS_PORT,
#     SMARTHOST_CA, SMARTHOST_USER/PASS (and USER2/PASS2), SMARTHOST_MAILDIR,
#     SMARTHOST_LOG.
#   * $T, a private scratch directory (short path under /tmp, so unix socket
#     paths fit), and a private RELAYQ_* environment in it (relayq_env).
#   * helpers: check/pass/fail, assertions, wait_for_mail, queue helpers,
#     start_serve/stop_serve, start_recorder; everything a scenario starts is
#     stopped by PID on exit. A scenario with clean-up of its own registers
#     it with `on_exit CMD...` (run first, latest first, errors ignored)
#     instead of replacing the EXIT trap.
#
# A scenario states each check with `check "what"` (printed), fails with
# `fail "why"` (exit 1, the scenario's files kept for inspection) and ends
# with `pass`. A missing tool is a failure (need_cmd), never a silent skip.

set -euo pipefail

TEST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$TEST_ROOT")
WORK=$TEST_ROOT/.work
BIN=$WORK/bin
SCENARIO=$(basename "$(cd "$(dirname "$0")" && pwd -P)")
export PATH="$BIN:$PATH"

# Bounded waits (seconds); scenarios may lower or raise them.
: "${MAIL_TIMEOUT:=30}"
: "${SERVE_START_TIMEOUT:=15}"

_PIDS=()          # background processes this scenario started
_ON_EXIT=()       # clean-up commands registered with on_exit
_OWN_SMARTHOST="" # set when this scenario started its own smarthost
SERVE_PID=""
_PASSED=""

# ---------------------------------------------------------------------------
# reporting

# log MSG... — progress line on stderr.
log() { printf '%s: %s\n' "$SCENARIO" "$*" >&2; }

# check WHAT — announce the next assertion (shows up in the run-all log).
check() { printf '  - %s\n' "$*" >&2; }

# fail MSG... — stop the scenario as failed. Files stay in $T.
fail() {
	printf '%s: FAIL: %s\n' "$SCENARIO" "$*" >&2
	if [ -n "${T:-}" ]; then
		printf '%s: files kept in %s\n' "$SCENARIO" "$T" >&2
	fi
	exit 1
}

# pass — end the scenario as passed.
pass() {
	_PASSED=1
	printf '%s: PASS\n' "$SCENARIO" >&2
	exit 0
}

# need_cmd CMD... — fail (not skip) when a tool the scenario uses is absent.
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			fail "required tool '$c' not found (run test/smarthost/install.sh)"
	done
}

# show FILE [LINES] — print the tail of a file to stderr (for failures).
show() {
	if [ -f "$1" ]; then
		printf -- '--- %s (last %s lines)\n' "$1" "${2:-40}" >&2
		tail -n "${2:-40}" "$1" >&2
		printf -- '---\n' >&2
	else
		printf -- '--- %s: no such file\n' "$1" >&2
	fi
}

# ---------------------------------------------------------------------------
# assertions (fixed strings unless the name says "match"; ERE for match)

# assert_contains FILE STRING [WHAT]
assert_contains() {
	grep -qF -- "$2" "$1" 2>/dev/null || {
		show "$1"
		fail "${3:-$1} does not contain '$2'"
	}
}

# assert_not_contains FILE STRING [WHAT] — also fails when FILE is missing
# (an absent log proves nothing).
assert_not_contains() {
	[ -f "$1" ] || fail "${3:-$1}: no such file (cannot prove it lacks '$2')"
	if grep -qF -- "$2" "$1"; then
		grep -nF -- "$2" "$1" | head -5 >&2
		fail "${3:-$1} contains '$2'"
	fi
}

# assert_match [-i] FILE ERE [WHAT]
assert_match() {
	local o=-qE
	if [ "$1" = -i ]; then o=-qiE; shift; fi
	grep $o -- "$2" "$1" 2>/dev/null || {
		show "$1"
		fail "${3:-$1} has no line matching /$2/"
	}
}

# assert_not_match [-i] FILE ERE [WHAT]
assert_not_match() {
	local o=-nE
	if [ "$1" = -i ]; then o=-niE; shift; fi
	[ -f "$1" ] || fail "${3:-$1}: no such file (cannot prove it lacks /$2/)"
	if grep $o -- "$2" "$1" >"$T/.match" 2>/dev/null; then
		head -5 "$T/.match" >&2
		fail "${3:-$1} has a line matching /$2/"
	fi
}

# assert_eq GOT WANT WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}

# expect_exit WANT CMD... — run CMD (stdout/stderr to $T/last.out/.err) and
# require exit status WANT.
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$T/last.out" 2>"$T/last.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		show "$T/last.out" 20
		show "$T/last.err" 20
		fail "'$*' exited $rc, want $want"
	fi
}

# ---------------------------------------------------------------------------
# build

build_relayq() {
	if [ -n "${TESTBED_BUILT:-}" ] && [ -x "$BIN/relayq" ] && [ -x "$BIN/smtprecorder" ] && [ -x "$BIN/dsncheck" ]; then
		return 0
	fi
	need_cmd go
	mkdir -p "$BIN"
	(cd "$REPO" && go build -o "$BIN/relayq" ./cmd/relayq) >&2 ||
		fail "go build ./cmd/relayq failed"
	(cd "$REPO" && go build -o "$BIN/smtprecorder" ./test/tools/smtprecorder) >&2 ||
		fail "go build ./test/tools/smtprecorder failed"
	(cd "$REPO" && go build -o "$BIN/dsncheck" ./test/tools/dsncheck) >&2 ||
		fail "go build ./test/tools/dsncheck failed"
	# sendmail is the small binary (cmd/sendmail), as installed; it runs
	# relayq beside it for mailq, -q, -bs, -odi and the delivery run.
	rm -f "$BIN/sendmail"
	(cd "$REPO" && go build -o "$BIN/sendmail" ./cmd/sendmail) >&2 ||
		fail "go build ./cmd/sendmail failed"
	local n
	for n in mailq newaliases; do
		ln -sfn sendmail "$BIN/$n"
	done
	export TESTBED_BUILT=1
}

# ---------------------------------------------------------------------------
# smarthost

use_smarthost() {
	local dir=${TESTBED_SMARTHOST:-}
	if [ -z "$dir" ] || [ ! -f "$dir/env" ]; then
		dir=$(mktemp -d /tmp/relayq-sh.XXXXXX)
		_OWN_SMARTHOST=$dir
		"$TEST_ROOT/smarthost/start.sh" "$dir" >&2 || fail "test/smarthost/start.sh failed"
	fi
	# shellcheck disable=SC1091
	. "$dir/env"
	export SMARTHOST_ENV=$dir/env
	local v
	for v in SMARTHOST_HOST SMARTHOST_SUBMISSION_PORT SMARTHOST_SMTPS_PORT SMARTHOST_CA \
		SMARTHOST_USER SMARTHOST_PASS SMARTHOST_MAILDIR SMARTHOST_LOG; do
		[ -n "${!v:-}" ] || fail "$dir/env lacks $v"
	done
}

# mail_files STRING — Maildir files (new and cur) containing STRING, one per
# line, sorted.
mail_files() {
	grep -rlF -- "$1" "$SMARTHOST_MAILDIR/new" "$SMARTHOST_MAILDIR/cur" 2>/dev/null | sort || true
}

# wait_for_mail STRING [COUNT [TIMEOUT]] — wait until at least COUNT
# delivered messages contain STRING (a token unique to the scenario); print
# their paths. Fails after TIMEOUT seconds (default $MAIL_TIMEOUT).
wait_for_mail() {
	local want=${2:-1} timeout=${3:-$MAIL_TIMEOUT} files n i
	for ((i = 0; i < timeout * 5; i++)); do
		files=$(mail_files "$1")
		n=$(printf '%s' "$files" | grep -c . || true)
		if [ "$n" -ge "$want" ]; then
			printf '%s\n' "$files"
			return 0
		fi
		sleep 0.2
	done
	show "$SMARTHOST_LOG" 30
	fail "timed out after ${timeout}s waiting for $want message(s) containing '$1' (found $n)"
}

# assert_no_mail STRING [SETTLE] — after SETTLE seconds (default 2), no
# delivered message contains STRING.
assert_no_mail() {
	sleep "${2:-2}"
	local files
	files=$(mail_files "$1")
	if [ -n "$files" ]; then
		printf '%s\n' "$files" >&2
		fail "a message containing '$1' was delivered"
	fi
}

# postfix_queue_id FILE — the smarthost's queue ID from a delivered file's
# top Received: header ("... with ESMTPSA id ABC123").
postfix_queue_id() {
	sed -n 's/.* with [A-Z]* id \([0-9A-Za-z]*\).*/\1/p' "$1" | head -n 1
}

# smarthost_session_log FILE — the Postfix log lines of the smtpd session
# that received the delivered FILE (by queue ID and then smtpd PID), written
# to stdout.
smarthost_session_log() {
	local qid pidtag
	qid=$(postfix_queue_id "$1")
	[ -n "$qid" ] || fail "no Postfix queue ID in the Received: header of $1"
	# "... relayq-NNN/submission/smtpd[1234]: ABC123: client=..."
	pidtag=$(grep -F " $qid: client=" "$SMARTHOST_LOG" | head -n 1 |
		sed -n 's/.* \([^ ]*smtpd\[[0-9]*\]\): .*/\1/p')
	[ -n "$pidtag" ] || fail "no smtpd line for queue ID $qid in $SMARTHOST_LOG"
	grep -F -- "$pidtag" "$SMARTHOST_LOG"
}

# ---------------------------------------------------------------------------
# relayq environment

# relayq_env RELAYHOST — a private configuration in $T: spool, sockets,
# authinfo (0600, the smarthost's user and password for RELAYHOST), the test
# CA, debug logs. Scenarios override keys after calling it, then call
# save_config so the env file (RELAYQ_CONFIG) matches the environment.
relayq_env() {
	local relayhost=$1
	mkdir -p "$T/spool" "$T/run"
	chmod 0700 "$T/spool" "$T/run"
	: >"$T/aliases"
	export RELAYQ_CONFIG="$T/relayq.env"
	export RELAYQ_RELAYHOST="$relayhost"
	export RELAYQ_AUTHINFO="$T/authinfo"
	export RELAYQ_TLS=verify
	export RELAYQ_TLS_CA_FILE="$SMARTHOST_CA"
	export RELAYQ_SPOOL="$T/spool/queue.db"
	export RELAYQ_SOCKET="$T/run/submit.sock"
	export RELAYQ_CONTROL_SOCKET="$T/run/control.sock"
	export RELAYQ_ALIASES="$T/aliases"
	export RELAYQ_DOMAIN=relayq.test
	export RELAYQ_LOG_LEVEL=debug
	export RELAYQ_LISTEN=
	write_authinfo "$relayhost" "$SMARTHOST_USER" "$SMARTHOST_PASS"
	save_config
}

# write_authinfo KEY USER PASS — Postfix sasl_passwd syntax, mode 0600.
write_authinfo() {
	(umask 077 && printf '%s %s:%s\n' "$1" "$2" "$3" >"$RELAYQ_AUTHINFO")
	chmod 0600 "$RELAYQ_AUTHINFO"
}

# save_config — write every exported RELAYQ_* key (but RELAYQ_CONFIG) to
# $RELAYQ_CONFIG, so a caller with a scrubbed environment (cron, PHP) sees
# the same configuration.
save_config() {
	(umask 022 && env | grep '^RELAYQ_' | grep -v '^RELAYQ_CONFIG=' | sort >"$RELAYQ_CONFIG")
}

# queue_count — number of messages in the queue (relayq queue list -json).
queue_count() {
	local out
	out=$("$BIN/relayq" queue list -json 2>"$T/queue_count.err") || {
		show "$T/queue_count.err" 10
		fail "relayq queue list -json failed"
	}
	printf '%s' "$out" | grep -c . || true
}

# wait_queue_count N [TIMEOUT] — until the queue holds exactly N messages.
wait_queue_count() {
	local want=$1 timeout=${2:-$MAIL_TIMEOUT} n="" i
	for ((i = 0; i < timeout * 5; i++)); do
		n=$(queue_count)
		[ "$n" = "$want" ] && return 0
		sleep 0.2
	done
	"$BIN/relayq" queue list >&2 || true
	fail "queue holds $n message(s) after ${timeout}s, want $want"
}

# wait_for_log FILE STRING [TIMEOUT] — until FILE contains STRING.
wait_for_log() {
	local timeout=${3:-$MAIL_TIMEOUT} i
	for ((i = 0; i < timeout * 5; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	show "$1"
	fail "timed out after ${timeout}s waiting for '$2' in $1"
}

# relayq_pids — PIDs of processes running our relayq binary with this
# scenario's configuration (serve, and the detached `queue run` that sendmail
# starts), found by executable and RELAYQ_CONFIG, never by name.
relayq_pids() {
	local p exe
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		[ "$exe" = "$BIN/relayq" ] || continue
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "RELAYQ_CONFIG=$RELAYQ_CONFIG" || continue
		echo "${p#/proc/}"
	done
}

# shellcheck disable=SC2120 # the argument is optional
# wait_detached [TIMEOUT] — wait until no relayq process of this scenario
# other than the daemon runs (the detached delivery sendmail started).
wait_detached() {
	local timeout=${1:-$MAIL_TIMEOUT} i p others
	for ((i = 0; i < timeout * 5; i++)); do
		others=""
		for p in $(relayq_pids); do
			[ "$p" = "$SERVE_PID" ] || others="$others $p"
		done
		[ -z "$others" ] && return 0
		sleep 0.2
	done
	fail "relayq process(es)$others still running after ${timeout}s"
}

# ---------------------------------------------------------------------------
# background processes

# start_serve — run `relayq serve` in the background (log: $T/serve.log)
# and wait until its submission and control sockets exist.
start_serve() {
	[ -z "$SERVE_PID" ] || fail "start_serve: a daemon already runs (pid $SERVE_PID)"
	save_config
	"$BIN/relayq" serve >>"$T/serve.log" 2>&1 &
	SERVE_PID=$!
	_PIDS+=("$SERVE_PID")
	local i
	for ((i = 0; i < SERVE_START_TIMEOUT * 10; i++)); do
		if ! kill -0 "$SERVE_PID" 2>/dev/null; then
			local rc=0
			wait "$SERVE_PID" || rc=$?
			SERVE_PID=""
			show "$T/serve.log"
			fail "relayq serve exited with status $rc during start-up"
		fi
		if [ -S "$RELAYQ_SOCKET" ] && [ -S "$RELAYQ_CONTROL_SOCKET" ]; then
			return 0
		fi
		sleep 0.1
	done
	show "$T/serve.log"
	fail "relayq serve did not create $RELAYQ_SOCKET and $RELAYQ_CONTROL_SOCKET within ${SERVE_START_TIMEOUT}s"
}

# stop_serve — SIGTERM the daemon, wait for it (bounded), require exit 0.
stop_serve() {
	[ -n "$SERVE_PID" ] || return 0
	local pid=$SERVE_PID rc=0
	SERVE_PID=""
	stop_pid "$pid" 35 || rc=$?
	if [ "$rc" != 0 ]; then
		show "$T/serve.log"
		fail "relayq serve (pid $pid) exited with status $rc after SIGTERM"
	fi
}

# stop_pid PID [TIMEOUT] — SIGTERM a child we started, SIGKILL after
# TIMEOUT seconds (default 10); returns its exit status.
stop_pid() {
	local pid=$1 timeout=${2:-10} i rc=0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		printf '%s: pid %s ignored SIGTERM for %ss; SIGKILL\n' "$SCENARIO" "$pid" "$timeout" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# start_recorder NAME [ARGS...] — start test/tools/smtprecorder on a free
# loopback port; sets RECORDER_PORT, and records to $T/NAME.rec.
start_recorder() {
	local name=$1 i
	shift
	rm -f "$T/$name.addr"
	"$BIN/smtprecorder" -listen 127.0.0.1:0 -record "$T/$name.rec" -addr-file "$T/$name.addr" "$@" \
		>>"$T/$name.log" 2>&1 &
	_PIDS+=("$!")
	for ((i = 0; i < 100; i++)); do
		if [ -s "$T/$name.addr" ]; then
			# shellcheck disable=SC2034 # used by the scenarios
			RECORDER_PORT=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$T/$name.addr")
			: >>"$T/$name.rec"
			return 0
		fi
		sleep 0.1
	done
	show "$T/$name.log"
	fail "smtprecorder did not start"
}

# ---------------------------------------------------------------------------
# messages

# headers_of FILE / body_of FILE — the header section (up to the first empty
# line) and the body of a delivered message.
headers_of() { sed '/^$/q' "$1"; }
body_of() { sed '1,/^$/d' "$1"; }

# write_bcc_message FILE TOKEN [LONE_DOT] — a message for `sendmail -t`
# with To:, Cc: and Bcc: recipients and a body that exercises dot-stuffing,
# leading "From ", trailing blanks and a long (990-octet) line; with
# LONE_DOT=yes also a line holding a single "." (which ends the input of
# `sendmail` without -i, so only for -i/-oi). Sets MSG_TO, MSG_CC, MSG_BCC
# and writes the expected body to FILE.body.
write_bcc_message() {
	local file=$1 token=$2 lone_dot=${3:-no} long
	MSG_TO="to-$token@example.net"
	MSG_CC="cc-$token@example.com"
	MSG_BCC="bcc-$token@example.org"
	long=$(printf 'L%.0s' $(seq 1 990))
	{
		printf 'Body of %s.\n' "$token"
		printf '.a line that starts with a dot\n'
		if [ "$lone_dot" = yes ]; then printf '.\n'; fi
		printf '..two dots\n'
		printf 'From the start of a line\n'
		printf 'trailing blanks   \n'
		printf '\n'
		printf '%s\n' "$long"
		printf 'last line\n'
	} >"$file.body"
	{
		printf 'From: Relayq Test <sender@relayq.test>\n'
		printf 'To: Visible <%s>\n' "$MSG_TO"
		printf 'Cc: %s\n' "$MSG_CC"
		printf 'Bcc: Hidden <%s>\n' "$MSG_BCC"
		printf 'Subject: %s\n' "$token"
		printf 'X-Test-Token: %s\n' "$token"
		printf '\n'
		cat "$file.body"
	} >"$file"
}

# check_bcc_delivery MSGFILE TOKEN SERVICE — the message of
# write_bcc_message arrived once per recipient (To, Cc and Bcc), with the
# body byte for byte, without any Bcc: header, without the Bcc address
# anywhere in the copies for the visible recipients, through the smarthost's
# SERVICE ("submission" or "smtps") with TLS and AUTH PLAIN as
# $SMARTHOST_USER.
check_bcc_delivery() {
	local msg=$1 token=$2 service=$3 f rcpt files=()
	wait_for_mail "X-Test-Token: $token" 3 >"$T/files"
	mapfile -t files <"$T/files"
	check "$token: three copies (To, Cc, Bcc), no more"
	sleep 1
	assert_eq "$(mail_files "X-Test-Token: $token" | grep -c .)" 3 "copies of $token"
	for rcpt in "$MSG_TO" "$MSG_CC" "$MSG_BCC"; do
		f=$(grep -lxF -- "Delivered-To: $rcpt" "${files[@]}" | head -n 1) ||
			fail "no copy of $token was delivered to $rcpt"
		check "$token: copy for $rcpt has the body intact"
		body_of "$f" >"$T/got.body"
		if ! cmp -s "$T/got.body" "$msg.body"; then
			diff -u "$msg.body" "$T/got.body" | head -40 >&2
			fail "body of the copy for $rcpt differs from what was sent"
		fi
		check "$token: copy for $rcpt has no Bcc header"
		headers_of "$f" >"$T/got.headers"
		assert_not_match -i "$T/got.headers" '^(resent-)?bcc:' "headers of the copy for $rcpt"
		assert_contains "$T/got.headers" "Subject: $token" "headers of the copy for $rcpt"
		if [ "$rcpt" != "$MSG_BCC" ]; then
			check "$token: copy for $rcpt does not reveal the Bcc address"
			assert_not_contains "$f" "$MSG_BCC" "copy for $rcpt"
		fi
		check "$token: copy for $rcpt came in over TLS with AUTH (ESMTPSA) on $service"
		assert_match "$T/got.headers" 'with ESMTPSA id' "Received: header of the copy for $rcpt"
		smarthost_session_log "$f" >"$T/session.log"
		assert_contains "$T/session.log" "/$service/smtpd[" "smarthost session log"
		assert_match "$T/session.log" 'TLS connection established' "smarthost session log"
		assert_contains "$T/session.log" "sasl_method=PLAIN, sasl_username=$SMARTHOST_USER" "smarthost session log"
	done
}

# check_daemon_bcc_delivery TOKEN SERVICE — with `relayq serve` started
# here, sendmail -t -i hands a message with Bcc to the daemon over the unix
# socket; check_bcc_delivery through SERVICE, the daemon's queue ends
# empty, and the credentials never appear in its log. Stops the daemon.
check_daemon_bcc_delivery() {
	local tok=$1 service=$2
	start_serve
	write_bcc_message "$T/$tok.eml" "$tok" yes
	check "sendmail -t -i exits 0 with relayq serve running"
	expect_exit 0 sendmail -t -i <"$T/$tok.eml"
	check_bcc_delivery "$T/$tok.eml" "$tok" "$service"
	check "the daemon's queue is empty after delivery"
	wait_queue_count 0
	stop_serve
	check "the credentials never appear in relayq's log"
	assert_not_contains "$T/serve.log" "$SMARTHOST_PASS" "relayq serve log"
}

# ---------------------------------------------------------------------------
# set-up and clean-up

# on_exit CMD... — run CMD (one string, eval'd) when the scenario ends, pass
# or fail, before lib.sh stops the daemon and the other processes it knows.
on_exit() {
	_ON_EXIT+=("$*")
}

_cleanup() {
	local rc=$? p i
	set +e
	for ((i = ${#_ON_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${_ON_EXIT[$i]}"
	done
	if [ -n "$SERVE_PID" ]; then
		kill -TERM "$SERVE_PID" 2>/dev/null
	fi
	for p in "${_PIDS[@]}"; do
		stop_pid "$p" 10 >/dev/null 2>&1
	done
	# Detached deliveries (sendmail's `queue run`) of this scenario: give them
	# a moment, then stop them by PID.
	if [ -n "${RELAYQ_CONFIG:-}" ]; then
		for _ in $(seq 1 50); do
			[ -z "$(relayq_pids)" ] && break
			sleep 0.2
		done
		for p in $(relayq_pids); do
			kill -TERM "$p" 2>/dev/null
		done
	fi
	if [ -n "$_OWN_SMARTHOST" ]; then
		if [ "$rc" = 0 ] && [ -z "${TESTBED_KEEP:-}" ]; then
			"$TEST_ROOT/smarthost/stop.sh" "$_OWN_SMARTHOST" && rm -rf "$_OWN_SMARTHOST"
		else
			"$TEST_ROOT/smarthost/stop.sh" "$_OWN_SMARTHOST"
		fi
	fi
	if [ "$rc" = 0 ] && [ -n "$_PASSED" ] && [ -z "${TESTBED_KEEP:-}" ]; then
		rm -rf "$T"
	elif [ "$rc" = 0 ] && [ -z "$_PASSED" ]; then
		printf '%s: FAIL: the scenario ended without calling pass\n' "$SCENARIO" >&2
		rc=1
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

T=$(mktemp -d "/tmp/relayq-$SCENARIO.XXXXXX")
chmod 0755 "$T"
build_relayq
use_smarthost
log "scratch directory $T"
