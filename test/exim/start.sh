#!/usr/bin/env bash
# start.sh DIR CA_PEM CA_KEY USER PASS — an Exim 4 smarthost from Debian's
# own packages, for the scenarios that need a relay other than Postfix.
#
# exim4-daemon-light conflicts with Postfix (both are the MTA), so it is not
# installed: `apt-get download` fetches exim4-daemon-light, exim4-base and
# libidn12 once (cached in test/.work/exim-debs) and dpkg-deb unpacks them
# into DIR/root. The binary looks up its compiled-in user "Debian-exim" at
# start, so Exim runs in a private mount namespace (unshare -m) in which
# /etc/passwd and /etc/group are DIR's copies with that user added; the
# machine's files are untouched.
#
# The relay: STARTTLS with a certificate for localhost signed by CA, AUTH
# LOGIN (plaintext authenticator) with the non-standard prompts
# `server_prompts = User Name : Password` and PLAIN, advertised only after
# TLS; authenticated clients may relay; every message is appended to
# DIR/mail/mbox. Writes DIR/env (EXIM_PORT, EXIM_MBOX, EXIM_LOG, EXIM_PID)
# and leaves the daemon running (stop it with kill "$EXIM_PID": the daemon runs in the foreground of that
# process).
set -euo pipefail
DIR=$1 CA=$2 CA_KEY=$3 USER=$4 PASS=$5
HERE=$(cd "$(dirname "$0")" && pwd -P)
DEBS=$HERE/../.work/exim-debs
mkdir -p "$DIR/root" "$DIR/spool" "$DIR/mail" "$DIR/log" "$DIR/tls" "$DEBS"

die() { echo "exim/start.sh: $*" >&2; exit 1; }
for c in apt-get dpkg-deb unshare openssl ss; do
	command -v "$c" >/dev/null || die "required tool '$c' not found"
done

if ! ls "$DEBS"/exim4-daemon-light_*.deb "$DEBS"/exim4-base_*.deb "$DEBS"/libidn12_*.deb >/dev/null 2>&1; then
	(cd "$DEBS" && apt-get download exim4-daemon-light exim4-base libidn12 >/dev/null 2>&1) ||
		die "apt-get download exim4-daemon-light exim4-base libidn12 failed"
fi
for f in "$DEBS"/*.deb; do dpkg-deb -x "$f" "$DIR/root"; done
EXIM=$DIR/root/usr/sbin/exim4
[ -x "$EXIM" ] || die "no exim4 binary in the unpacked packages"
# Not set-uid: the loader would ignore LD_LIBRARY_PATH when Exim, running as
# Debian-exim, re-executes itself.
chmod u-s "$EXIM"

# The user Exim runs as: a uid nobody on the machine uses.
XUID=64999
cp /etc/passwd "$DIR/passwd"
cp /etc/group "$DIR/group"
echo "Debian-exim:x:$XUID:$XUID::$DIR/spool:/usr/sbin/nologin" >>"$DIR/passwd"
echo "Debian-exim:x:$XUID:" >>"$DIR/group"
chown -R "$XUID:$XUID" "$DIR/spool" "$DIR/mail" "$DIR/log"

# Server certificate for localhost, signed by the test CA.
openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/tls/key.pem" 2>/dev/null
openssl req -new -key "$DIR/tls/key.pem" -subj "/CN=localhost" -out "$DIR/tls/csr.pem" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$DIR/tls/ext"
openssl x509 -req -in "$DIR/tls/csr.pem" -CA "$CA" -CAkey "$CA_KEY" -CAcreateserial -CAserial "$DIR/tls/ca.srl" \
	-days 2 -sha256 -extfile "$DIR/tls/ext" -out "$DIR/tls/cert.pem" 2>/dev/null
chown "$XUID" "$DIR/tls/key.pem" "$DIR/tls/cert.pem"
chmod 0600 "$DIR/tls/key.pem"

PORT=$(for p in $(seq 30000 30999 | shuf); do
	ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; break; }
done)
[ -n "$PORT" ] || die "no free port"

# Exim re-executes itself (exim_path) for deliveries and clears the
# environment first: a wrapper sets the library path for the unpacked libidn.
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$DIR/root/usr/lib/x86_64-linux-gnu" "$EXIM" >"$DIR/exim"
chmod 0755 "$DIR/exim"

cat >"$DIR/exim.conf" <<EOT
primary_hostname = exim.relayq.test
exim_path = $DIR/exim
keep_environment =
spool_directory = $DIR/spool
log_file_path = $DIR/log/%slog
pid_file_path = $DIR/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
daemon_smtp_ports = $PORT
local_interfaces = 127.0.0.1
tls_certificate = $DIR/tls/cert.pem
tls_privatekey = $DIR/tls/key.pem
tls_advertise_hosts = *
auth_advertise_hosts = \${if eq{\$tls_in_cipher}{}{}{*}}
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
host_lookup =
rfc1413_hosts =
log_selector = +smtp_protocol_error +smtp_syntax_error +tls_cipher

begin acl
acl_check_rcpt:
  accept authenticated = *
  deny message = 5.7.1 relay access denied (authenticate first)
acl_check_data:
  accept

begin routers
all:
  driver = accept
  transport = mbox

begin transports
mbox:
  driver = appendfile
  file = $DIR/mail/mbox
  user = Debian-exim
  group = Debian-exim
  mode = 0644
  envelope_to_add
  return_path_add

begin retry
*  *  F,1m,1m

begin authenticators
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = User Name : Password
  server_condition = \${if and{{eq{\$auth1}{$USER}}{eq{\$auth2}{$PASS}}}}
  server_set_id = \$auth1
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and{{eq{\$auth2}{$USER}}{eq{\$auth3}{$PASS}}}}
  server_set_id = \$auth2
EOT
chmod 0644 "$DIR/exim.conf"

# shellcheck disable=SC2016 # expanded by the inner sh, from its arguments
unshare -m sh -c '
	mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group &&
	exec "$1/exim" -C "$1/exim.conf" -bdf -q1m' sh "$DIR" >"$DIR/log/stdout" 2>&1 &
PID=$!
for _ in $(seq 100); do
	ss -Hltn "sport = :$PORT" | grep -q . && break
	kill -0 "$PID" 2>/dev/null || { cat "$DIR/log/stdout" "$DIR/log/"*log 2>/dev/null >&2; die "exim did not start"; }
	sleep 0.1
done
ss -Hltn "sport = :$PORT" | grep -q . || die "exim not listening on $PORT"
cat >"$DIR/env" <<EOT
EXIM_PORT=$PORT
EXIM_MBOX=$DIR/mail/mbox
EXIM_LOG=$DIR/log/mainlog
EXIM_PID=$PID
EOT
echo "exim/start.sh: exim up on 127.0.0.1:$PORT (pid $PID)"
