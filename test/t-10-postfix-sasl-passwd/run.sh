#!/usr/bin/env bash
# t-10: the Postfix sasl_passwd lookup order, cross-checked against real
# Postfix. A second Postfix instance runs as a null client (its own config
# directory; relayhost = [localhost]:PORT of a private test smarthost;
# smtp_sasl_password_maps = texthash:FILE; smtp_sender_dependent_authentication
# = yes; recipient_delimiter = +; smtp_tls_security_level = encrypt with the
# test CA). Mail with different envelope senders goes through its
# sendmail(1); the smarthost's log says which SASL user each message
# authenticated as (sasl_username=…), or the null client's log shows that it
# sent no AUTH (the smarthost refuses to relay). For every case,
# `relayq authinfo lookup` on the very same file must pick the same user —
# or none.
#
# Cases: sender user+ext@domain key; sender with another extension falling
# back to user@domain (also with two '+': split at the first); user@domain; @domain; sender keys folding case; a
# sender without a key falling back to the server name; the null sender
# (sender keys skipped); the server-name key winning over the
# [host]:port next-hop key; the [host]:port key when there is no server-name
# key; a password containing ':'; a host:port key (no brackets) that
# matches neither the server name nor the bracketed next hop (no AUTH).
#
# The smarthost must know one SASL user per entry, more than the two the
# test bed's start.sh creates, so this scenario runs its own private
# smarthost (start.sh into its scratch directory) and adds users to that
# instance's Dovecot passwd-file.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../smarthost/postfix.sh
. "$(dirname "$0")/../smarthost/postfix.sh"

need_cmd postfix postconf openssl base64 script
# Postfix's own sendmail(1): $BIN (first in PATH) has relayq's.
PF_SENDMAIL=$(postconf -dh sendmail_path)
[ -x "$PF_SENDMAIL" ] || fail "Postfix's sendmail ($PF_SENDMAIL) not found"

# --- a private smarthost with our users --------------------------------------
SH=$T/sh
PF=$T/pf
# shellcheck disable=SC2317 # called from the EXIT trap
_t10_cleanup() {
	if [ -f "$PF/queue/pid/master.pid" ]; then
		script -qec "postfix -c $PF/etc stop" /dev/null </dev/null >>"$PF/log/start.log" 2>&1 || true
	fi
	if [ -f "$SH/env" ] || [ -d "$SH/queue" ]; then
		"$TEST_ROOT/smarthost/stop.sh" "$SH" >/dev/null 2>&1 || true
	fi
}
# shellcheck disable=SC2154 # _t10_rc is assigned inside the trap string
trap '_t10_rc=$?; _t10_cleanup; (exit $_t10_rc); _cleanup' EXIT

"$TEST_ROOT/smarthost/start.sh" "$SH" >&2 || fail "test/smarthost/start.sh $SH failed"
# shellcheck disable=SC1091
. "$SH/env"
SUB=$SMARTHOST_SUBMISSION_PORT

# add_user NAME PASSWORD — a Dovecot passwd-file user (base64-encoded
# plaintext, so the password may hold ':'). Dovecot re-reads the file when
# its mtime changes.
add_user() {
	printf '%s:{PLAIN.b64}%s\n' "$1" "$(printf '%s' "$2" | base64 -w0)" >>"$SH/dovecot/users"
}
r=$(openssl rand -hex 6)
declare -A PW=(
	[u-nexthop]="pw-nexthop-$r"
	[u-host]="pw:host:with:colons-$r"
	[u-alice-ext]="pw-alice-ext-$r"
	[u-alice]="pw-alice-$r"
	[u-domb]="pw-domb-$r"
	[u-hostport]="pw-hostport-$r"
	[u-nh2]="pw-nh2-$r"
)
for u in "${!PW[@]}"; do add_user "$u" "${PW[$u]}"; done

# --- the null client -----------------------------------------------------------
NAME=relayq-t10-$$
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/log"
chown postfix:postfix "$PF/data"
chmod 0700 "$PF/data"
chmod 0755 "$PF" "$PF/etc" "$PF/queue" "$PF/log"

# write_nullclient SASL_PASSWD_FILE — main.cf/master.cf of the null client.
write_nullclient() {
	postfix_instance_cf "$PF" "$NAME" nullclient.relayq.test >"$PF/etc/main.cf"
	cat >>"$PF/etc/main.cf" <<-EOF
		local_transport = error:local delivery is disabled
		inet_protocols = ipv4
		relayhost = [localhost]:$SUB
		smtp_host_lookup = native
		smtp_sasl_auth_enable = yes
		smtp_sasl_password_maps = texthash:$1
		smtp_sender_dependent_authentication = yes
		smtp_sasl_security_options = noanonymous
		smtp_sasl_mechanism_filter = plain
		smtp_tls_security_level = encrypt
		smtp_tls_CAfile = $SMARTHOST_CA
		recipient_delimiter = +
		soft_bounce = yes
		queue_run_delay = 300s
		minimal_backoff_time = 300s
		smtp_connection_cache_on_demand = no
	EOF
	postfix_master_services >"$PF/etc/master.cf"
}

pf() { script -qec "postfix -c $PF/etc $*" /dev/null </dev/null >>"$PF/log/start.log" 2>&1; }

# outcome TOKEN — wait until the null client has finished with the message
# whose Message-ID is <TOKEN@t10.relayq.test> and print the SASL user the
# smarthost saw it authenticate as, or "none" when the null client sent no
# AUTH (the smarthost refused to relay: soft_bounce keeps it deferred).
outcome() {
	local tok=$1 qid="" line sqid i user
	for ((i = 0; i < MAIL_TIMEOUT * 5; i++)); do
		qid=$(sed -n "s/.*: \([0-9A-F]*\): message-id=<$tok@t10.relayq.test>.*/\1/p" "$PF/log/maillog" | head -n 1)
		if [ -n "$qid" ]; then
			line=$(grep -E " $qid: to=<.*status=(sent|deferred|bounced|SOFTBOUNCE)" "$PF/log/maillog" | head -n 1 || true)
			[ -n "$line" ] && break
		fi
		sleep 0.2
	done
	[ -n "${line:-}" ] || { show "$PF/log/maillog"; fail "$tok: the null client did not try to deliver it within ${MAIL_TIMEOUT}s"; }
	case "$line" in
	*status=sent*)
		sqid=$(printf '%s' "$line" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p')
		[ -n "$sqid" ] || fail "$tok: no smarthost queue ID in: $line"
		for ((i = 0; i < 25; i++)); do
			user=$(sed -n "s/.* $sqid: client=.*sasl_username=\([^ ,]*\).*/\1/p" "$SMARTHOST_LOG" | head -n 1)
			[ -n "$user" ] && break
			sleep 0.2
		done
		[ -n "$user" ] || { show "$SMARTHOST_LOG"; fail "$tok: smarthost queue ID $sqid has no sasl_username"; }
		printf '%s\n' "$user"
		;;
	*"Recipient address rejected: Access denied"* | *"Relay access denied"*)
		# The smarthost relays only for authenticated clients
		# (permit_sasl_authenticated, reject): the null client sent no AUTH.
		echo none
		;;
	*)
		fail "$tok: unexpected outcome at the null client: $line"
		;;
	esac
}

# relayq_user FILE SENDER — the user `relayq authinfo lookup` picks for the
# next hop [localhost]:PORT and SENDER, or "none".
relayq_user() {
	local rc=0
	"$BIN/relayq" authinfo lookup -f "$1" "[localhost]:$SUB" "$2" >"$T/lookup.out" 2>"$T/lookup.err" || rc=$?
	cat "$T/lookup.out" "$T/lookup.err" >>"$T/lookups.all"
	case $rc in
	0) sed -n 's/^result: user "\([^"]*\)".*/\1/p' "$T/lookup.out" ;;
	1) grep -q '^result: no entry matches' "$T/lookup.out" && echo none ;;
	*) show "$T/lookup.err"; fail "relayq authinfo lookup exited $rc" ;;
	esac
}

# run_cases FILE CASE... — CASE is "SENDER=EXPECTED_USER" (SENDER "<>" for
# the null sender). Starts the null client on FILE, submits one message per
# case through its sendmail, and compares the smarthost's view, relayq's
# answer and the expectation.
n=0
PF_RUNNING=
run_cases() {
	local file=$1 c sender want tok got_pf got_rq
	shift
	chmod 0600 "$file"
	write_nullclient "$file"
	pf check || { show "$PF/log/start.log"; fail "postfix check of the null client failed"; }
	if [ -z "$PF_RUNNING" ]; then
		pf start || { show "$PF/log/start.log"; show "$PF/log/maillog"; fail "the null client did not start"; }
		PF_RUNNING=1
	else
		# texthash tables are read when a process starts; reload restarts
		# the smtp(8) processes with the new file.
		pf reload || { show "$PF/log/start.log"; fail "postfix reload of the null client failed"; }
		sleep 1
	fi
	local toks=()
	for c in "$@"; do
		sender=${c%%=*}
		n=$((n + 1))
		tok=t10-$$-$n
		toks+=("$tok")
		printf 'From: %s\nTo: rcpt-%s@example.net\nSubject: %s\nMessage-ID: <%s@t10.relayq.test>\n\nsender %s\n' \
			"${sender/<>/mailer-daemon@relayq.test}" "$tok" "$tok" "$tok" "$sender" |
			"$PF_SENDMAIL" -C "$PF/etc" -f "$sender" "rcpt-$tok@example.net" ||
			fail "$PF_SENDMAIL -C $PF/etc -f $sender failed"
	done
	local i=0
	for c in "$@"; do
		sender=${c%%=*}
		want=${c#*=}
		tok=${toks[$i]}
		i=$((i + 1))
		check "$(basename "$file"): sender $sender: Postfix and relayq both use $want"
		got_pf=$(outcome "$tok")
		got_rq=$(relayq_user "$file" "$sender")
		log "sender $sender: Postfix authenticated as '$got_pf', relayq authinfo lookup says '$got_rq', expected '$want'"
		if [ "$got_pf" != "$got_rq" ]; then
			show "$T/lookup.out" 20
			fail "sender $sender: Postfix used '$got_pf' but relayq picks '$got_rq'"
		fi
		assert_eq "$got_pf" "$want" "sender $sender with $(basename "$file")"
	done
}

# 1. Sender-dependent keys, a server-name key and a next-hop key.
cat >"$T/sasl_passwd.senders" <<EOF
# sender-dependent, server name and next hop
[localhost]:$SUB	u-nexthop:${PW[u-nexthop]}
localhost	u-host:${PW[u-host]}
alice+tag@a.test	u-alice-ext:${PW[u-alice-ext]}
alice@a.test
	u-alice:${PW[u-alice]}
@b.test	u-domb:${PW[u-domb]}
EOF
run_cases "$T/sasl_passwd.senders" \
	"alice+tag@a.test=u-alice-ext" \
	"alice+other@a.test=u-alice" \
	"alice+tag+more@a.test=u-alice" \
	"alice@a.test=u-alice" \
	"Alice+TAG@A.Test=u-alice-ext" \
	"bob@b.test=u-domb" \
	"bob+x@b.test=u-domb" \
	"carol@c.test=u-host" \
	"<>=u-host"

# 2. No sender keys and no server-name key: the [host]:port next hop; a
#    host:port key (no brackets) matches neither the server name nor the
#    bracketed next hop.
cat >"$T/sasl_passwd.nexthop" <<EOF
localhost:$SUB	u-hostport:${PW[u-hostport]}
[localhost]:$SUB	u-nh2:${PW[u-nh2]}
EOF
run_cases "$T/sasl_passwd.nexthop" \
	"alice@a.test=u-nh2" \
	"<>=u-nh2"

# 3. Nothing matches: no AUTH at all.
cat >"$T/sasl_passwd.nomatch" <<EOF
localhost:$SUB	u-hostport:${PW[u-hostport]}
@b.test	u-domb:${PW[u-domb]}
EOF
run_cases "$T/sasl_passwd.nomatch" \
	"alice@a.test=none" \
	"<>=none"

check "no password appears in any relayq authinfo lookup output"
assert_contains "$T/lookups.all" 'password ********' "relayq authinfo lookup output"
for u in "${!PW[@]}"; do
	assert_not_contains "$T/lookups.all" "${PW[$u]}" "relayq authinfo lookup output"
done
pass
