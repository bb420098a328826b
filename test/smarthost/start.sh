#!/usr/bin/env bash
# start.sh DIR — start a private, real authenticated smarthost on loopback.
#
# A Postfix instance (its own config, queue and data directories under DIR,
# started with `postfix -c DIR/etc start`) with Dovecot as its SASL server
# only (`protocols = none`, auth socket at DIR/queue/private/auth), no
# systemd, no system-wide state. Two listeners on free loopback ports:
#
#   submission  STARTTLS required before anything else, AUTH only after TLS
#               (smtpd_tls_security_level = encrypt, smtpd_tls_auth_only = yes)
#   smtps       implicit TLS (smtpd_tls_wrappermode = yes)
#
# Relay only for authenticated clients (permit_sasl_authenticated, reject).
# A recipient whose local part starts with "reject-" is refused at RCPT with
# "550 5.1.1" (SMARTHOST_REJECT_PREFIX), for bounce tests.
# Every accepted recipient is delivered by virtual(8) into one catch-all
# Maildir, one file per recipient copy, with Delivered-To: naming the
# recipient. Postfix's own header cleanups (message_drop_headers, local header
# rewriting, missing-header completion) are off, so the captured files show
# what the client sent.
#
# Writes DIR/env (shell syntax) with SMARTHOST_* for the tests, and waits
# until both ports answer. test/smarthost/stop.sh DIR stops exactly this
# instance. Several instances may run at once. Needs root (Postfix and
# Dovecot master processes), and the packages of install.sh.
set -euo pipefail

die() { echo "start.sh: $*" >&2; exit 1; }
# shellcheck source=postfix.sh
. "$(dirname "$0")/postfix.sh"

[ $# -eq 1 ] || die "usage: start.sh DIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (Postfix and Dovecot masters)"
for c in postfix postconf dovecot openssl ss flock script; do
	command -v "$c" >/dev/null || die "$c not found: run test/smarthost/install.sh"
done

mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
case "$DIR" in
*[[:space:]]* | *,* | *=*) die "DIR must not contain spaces, commas or '=': $DIR" ;;
esac
if [ -f "$DIR/queue/pid/master.pid" ] && kill -0 "$(tr -d ' ' <"$DIR/queue/pid/master.pid")" 2>/dev/null; then
	die "an instance is already running in $DIR (stop it with stop.sh)"
fi

# Directories. Postfix's daemons (user postfix) and virtual(8) (uid nobody)
# must traverse DIR; nothing under it is writable by others.
chmod 0755 "$DIR"
mkdir -p "$DIR/etc" "$DIR/queue" "$DIR/data" "$DIR/log" "$DIR/tls" \
	"$DIR/dovecot/run" "$DIR/dovecot/state" "$DIR/mail"
chmod 0755 "$DIR/etc" "$DIR/queue" "$DIR/log" "$DIR/tls" "$DIR/dovecot"
chown postfix:postfix "$DIR/data"
chmod 0700 "$DIR/data"
chown nobody:nogroup "$DIR/mail"
chmod 0755 "$DIR/mail"
# The catch-all Maildir exists from the start so tests can poll it.
mkdir -p "$DIR/mail/catchall/new" "$DIR/mail/catchall/cur" "$DIR/mail/catchall/tmp"
chown -R nobody:nogroup "$DIR/mail/catchall"
chmod 0755 "$DIR/mail/catchall" "$DIR/mail/catchall/new" "$DIR/mail/catchall/cur"
chmod 0700 "$DIR/mail/catchall/tmp"

# --- test CA and server certificate (EC P-256, quick) ----------------------
TLS=$DIR/tls
if [ ! -s "$TLS/server.pem" ]; then
	openssl ecparam -name prime256v1 -genkey -noout -out "$TLS/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$TLS/ca.key" -sha256 -days 3650 \
		-subj "/CN=relayq test CA $(basename "$DIR")" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$TLS/ca.pem" 2>/dev/null
	openssl ecparam -name prime256v1 -genkey -noout -out "$TLS/server.key" 2>/dev/null
	openssl req -new -key "$TLS/server.key" -subj "/CN=localhost" -out "$TLS/server.csr" 2>/dev/null
	cat >"$TLS/server.ext" <<-EOT
		basicConstraints=critical,CA:FALSE
		keyUsage=critical,digitalSignature,keyEncipherment
		extendedKeyUsage=serverAuth
		subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
	EOT
	openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
		-CAcreateserial -days 3650 -sha256 -extfile "$TLS/server.ext" \
		-out "$TLS/server.crt" 2>/dev/null
	cat "$TLS/server.key" "$TLS/server.crt" >"$TLS/server.pem"
	chmod 0600 "$TLS/ca.key" "$TLS/server.key" "$TLS/server.pem"
	chmod 0644 "$TLS/ca.pem" "$TLS/server.crt"
fi

# --- SASL users (Dovecot passwd-file, plaintext scheme: test secrets only) --
if [ ! -s "$DIR/dovecot/users.env" ]; then
	{
		echo "SMARTHOST_USER=relayq"
		echo "SMARTHOST_PASS=pw-$(openssl rand -hex 12)"
		echo "SMARTHOST_USER2=other@relayq.test"
		echo "SMARTHOST_PASS2=pw2-$(openssl rand -hex 12)"
	} >"$DIR/dovecot/users.env"
	chmod 0600 "$DIR/dovecot/users.env"
fi
# shellcheck disable=SC1091
. "$DIR/dovecot/users.env"
umask 077
{
	echo "$SMARTHOST_USER:{PLAIN}$SMARTHOST_PASS"
	echo "$SMARTHOST_USER2:{PLAIN}$SMARTHOST_PASS2"
} >"$DIR/dovecot/users"
umask 022
chown root:dovecot "$DIR/dovecot/users"
chmod 0640 "$DIR/dovecot/users"

NAME=relayq-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
have_v6=
inet_protocols=ipv4
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/128'; then
	have_v6=1
	inet_protocols=all
fi

# --- Postfix main.cf ---------------------------------------------------------
{
	echo "# Private test smarthost written by relayq test/smarthost/start.sh."
	postfix_instance_cf "$DIR" "$NAME" smarthost.relayq.test
} >"$DIR/etc/main.cf"
cat >>"$DIR/etc/main.cf" <<EOF
inet_protocols = $inet_protocols
biff = no
relayhost =
# Deliver everything relayed into one catch-all Maildir (virtual(8)).
virtual_mailbox_domains = regexp:$DIR/etc/domains
virtual_mailbox_maps = static:catchall/
virtual_mailbox_base = $DIR/mail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
virtual_mailbox_limit = 0
message_size_limit = 104857600
# Keep what the client sent: no header drops, no local rewriting or completion.
message_drop_headers =
local_header_rewrite_clients =
always_add_missing_headers = no
# SASL through Dovecot; relay only when authenticated.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = no
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access regexp:$DIR/etc/rcpt_access
smtpd_client_restrictions =
smtpd_helo_required = yes
# TLS (the ports in master.cf set the policy per service).
smtpd_tls_chain_files = $TLS/server.pem
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_auth_only = yes
smtpd_tls_session_cache_database =
smtp_tls_security_level = none
# Quiet, quick, self-contained.
smtpd_banner = \$myhostname ESMTP relayq-test-smarthost
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
anvil_rate_time_unit = 60s
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
bounce_queue_lifetime = 0
EOF
echo '/./ OK' >"$DIR/etc/domains"
echo '/^reject-/ 550 5.1.1 test bed: no such user' >"$DIR/etc/rcpt_access"

# --- ports -------------------------------------------------------------------
# Pick two free loopback ports and start Postfix under one host-wide lock so
# that concurrent start.sh runs never pick the same ones.
port_in_use() {
	ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .
}
# Ports come from below the kernel's ephemeral range, so that outgoing
# connections (and tests listening on port 0) never take them between the
# check and Postfix's bind.
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph_lo=32768
[ "$eph_lo" -gt 12000 ] 2>/dev/null || eph_lo=32768
pick_port() {
	local p
	while :; do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (eph_lo - 10000)))
		port_in_use "$p" || { echo "$p"; return; }
	done
}
listen_addrs() { # port -> master.cf service names
	echo "127.0.0.1:$1"
	if [ -n "$have_v6" ]; then echo "[::1]:$1"; fi
}

write_master_cf() {
	local sub=$1 smtps=$2 a
	{
		echo "# Private test smarthost written by relayq test/smarthost/start.sh."
		echo "# service type  private unpriv chroot wakeup maxproc command"
		for a in $(listen_addrs "$sub"); do
			echo "$a inet n - n - - smtpd"
			echo "  -o syslog_name=$NAME/submission"
			echo "  -o smtpd_tls_security_level=encrypt"
			echo "  -o smtpd_tls_auth_only=yes"
		done
		for a in $(listen_addrs "$smtps"); do
			echo "$a inet n - n - - smtpd"
			echo "  -o syslog_name=$NAME/smtps"
			echo "  -o smtpd_tls_wrappermode=yes"
			echo "  -o smtpd_tls_security_level=encrypt"
		done
		postfix_master_services
	} >"$DIR/etc/master.cf"
}

# --- Dovecot: SASL server only ----------------------------------------------
start_dovecot() {
	cat >"$DIR/dovecot/dovecot.conf" <<EOF
# Private Dovecot (SASL only) written by relayq test/smarthost/start.sh.
instance_name = $NAME
base_dir = $DIR/dovecot/run
state_dir = $DIR/dovecot/state
protocols = none
ssl = no
log_path = $DIR/log/dovecot.log
info_log_path = $DIR/log/dovecot.log
auth_verbose = yes
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/dovecot/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener $DIR/queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service anvil {
  chroot =
}
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0600
  }
}
EOF
	chmod 0644 "$DIR/dovecot/dovecot.conf"
	dovecot -c "$DIR/dovecot/dovecot.conf" ||
		die "dovecot failed to start; see $DIR/log/dovecot.log"
	local _
	for _ in $(seq 1 100); do
		[ -S "$DIR/queue/private/auth" ] && return 0
		sleep 0.1
	done
	die "dovecot auth socket $DIR/queue/private/auth did not appear; see $DIR/log/dovecot.log"
}

# Wait until a TCP port accepts connections (bash /dev/tcp, no extra tools).
wait_port() {
	local _
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

# postfix(1) reports early fatal errors only to a terminal or syslog; run it
# under script(1) so that they land in DIR/log/start.log.
pf() {
	script -qec "postfix -c $DIR/etc $*" /dev/null </dev/null >>"$DIR/log/start.log" 2>&1
}

# Create the queue directories (and private/, for Dovecot's socket) first.
write_master_cf 1 2
pf check || die "postfix check failed: $(tail -n 3 "$DIR/log/start.log")"
[ -d "$DIR/queue/private" ] || die "postfix check did not create $DIR/queue/private"
start_dovecot

exec 9>/tmp/relayq-smarthost-ports.lock
flock 9
started=
for attempt in 1 2 3 4 5; do
	SUB=$(pick_port)
	SMTPS=$(pick_port)
	[ "$SUB" != "$SMTPS" ] || continue
	if [ -n "$have_v6" ]; then
		# The same port must be free on ::1 as well.
		ss -Hltn "( sport = :$SUB or sport = :$SMTPS )" | grep -q . && continue
	fi
	write_master_cf "$SUB" "$SMTPS"
	if pf start &&
		wait_port "$SUB" && wait_port "$SMTPS"; then
		started=1
		break
	fi
	echo "start.sh: attempt $attempt with ports $SUB/$SMTPS failed; retrying" >&2
	pf stop || true
	sleep 0.5
done
flock -u 9
exec 9>&-
if [ -z "$started" ]; then
	"$(dirname "$0")/stop.sh" "$DIR" || true
	die "postfix did not start; see $DIR/log/start.log and $DIR/log/maillog"
fi

# Wait for the banner on the submission port (smtpd really answers).
banner=
for _ in $(seq 1 50); do
	if exec 3<>"/dev/tcp/127.0.0.1/$SUB"; then
		IFS= read -r -t 5 banner <&3 || true
		printf 'QUIT\r\n' >&3 || true
		exec 3<&- 3>&-
	fi
	case "$banner" in 220*) break ;; esac
	sleep 0.1
done
case "$banner" in 220*) ;; *) die "no 220 banner on port $SUB (got: ${banner:-nothing})" ;; esac

cat >"$DIR/env" <<EOF
# relayq test smarthost ($DIR), written by test/smarthost/start.sh
SMARTHOST_DIR=$DIR
SMARTHOST_HOST=localhost
SMARTHOST_ADDR=127.0.0.1
SMARTHOST_SUBMISSION_PORT=$SUB
SMARTHOST_SMTPS_PORT=$SMTPS
SMARTHOST_CA=$TLS/ca.pem
SMARTHOST_CA_KEY=$TLS/ca.key
SMARTHOST_CERT=$TLS/server.crt
SMARTHOST_USER=$SMARTHOST_USER
SMARTHOST_PASS=$SMARTHOST_PASS
SMARTHOST_USER2=$SMARTHOST_USER2
SMARTHOST_PASS2=$SMARTHOST_PASS2
SMARTHOST_MAILDIR=$DIR/mail/catchall
SMARTHOST_LOG=$DIR/log/maillog
SMARTHOST_DOVECOT_LOG=$DIR/log/dovecot.log
SMARTHOST_POSTFIX_CONFIG=$DIR/etc
SMARTHOST_REJECT_PREFIX=reject-
EOF
chmod 0600 "$DIR/env"
echo "start.sh: smarthost up in $DIR (submission $SUB, smtps $SMTPS)"
