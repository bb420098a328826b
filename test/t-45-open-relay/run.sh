#!/usr/bin/env bash
# t-45-open-relay: relayq serve's SMTP listener is never an open relay.
#
# A client in a network namespace made here (veth pair: the daemon's side
# 10.200.45.X/30 in the root namespace, the client's side in the namespace)
# talks to `relayq serve` bound to the veth address with swaks:
#
#   A. RELAYQ_LISTEN on a non-loopback address with neither
#      RELAYQ_MYNETWORKS nor client AUTH: serve refuses to start (exit 78).
#   B. Users file (bcrypt from doveadm pw) + STARTTLS certificate: without
#      AUTH the client gets 530 5.7.0 and nothing is relayed; AUTH is not
#      offered before TLS; a wrong password gets 535; after STARTTLS + AUTH
#      the message is queued and reaches the smarthost. The password is
#      never in the daemon's log.
#   C. RELAYQ_MYNETWORKS naming the client: relayed without AUTH; a
#      MYNETWORKS that does not name it: 554 5.7.1.
. "$(dirname "$0")/../lib.sh"

need_cmd ip swaks openssl doveadm timeout
swaks --support 2>&1 | grep -q '=== TLS supported' ||
	fail "swaks cannot do TLS (install Debian libnet-ssleay-perl)"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"

# --- network namespace -------------------------------------------------------
id=$(($$ % 60))
NS=rq45-$$
VH=rq45h$$
VC=rq45c$$
HOST_IP=10.200.45.$((id * 4 + 1))
CLIENT_IP=10.200.45.$((id * 4 + 2))
PORT=2525
ns_cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	ip link del "$VH" 2>/dev/null || true # gone with the namespace's peer, usually
}
# lib.sh's _cleanup (stop serve and the smarthost) runs after ours and
# still sees the scenario's exit status.
trap 'rc=$?; set +e; ns_cleanup; (exit $rc); _cleanup' EXIT
check "network namespace $NS with a veth pair ($HOST_IP <-> $CLIENT_IP)"
ip netns add "$NS" || fail "cannot create a network namespace (needs root and CAP_SYS_ADMIN)"
ip link add "$VH" type veth peer name "$VC" netns "$NS" || fail "ip link add veth failed"
ip addr add "$HOST_IP/30" dev "$VH"
ip link set "$VH" up
ip -n "$NS" addr add "$CLIENT_IP/30" dev "$VC"
ip -n "$NS" link set "$VC" up
ip -n "$NS" link set lo up

# swaks_out NAME ARGS... — swaks from inside the namespace; output in $T/NAME.swaks.
swaks_out() {
	local name=$1
	shift
	ip netns exec "$NS" swaks --server "$HOST_IP:$PORT" --helo outside.test --timeout 20 \
		--from app@relayq.test "$@" >"$T/$name.swaks" 2>&1 || true
}

export RELAYQ_LISTEN=$HOST_IP:$PORT

# --- A: refuse to start ---------------------------------------------------------
check "A: serve refuses a non-loopback RELAYQ_LISTEN without RELAYQ_MYNETWORKS or AUTH (exit 78)"
save_config
rc=0
timeout 20 "$BIN/relayq" serve >"$T/serve-a.log" 2>&1 || rc=$?
[ "$rc" = 78 ] || { show "$T/serve-a.log"; fail "relayq serve exited $rc, want 78"; }
assert_contains "$T/serve-a.log" "never an open relay" "serve's error"

# --- B: AUTH with STARTTLS ------------------------------------------------------
check "B: users file with a bcrypt hash from doveadm pw, STARTTLS certificate"
hash=$(doveadm pw -s BLF-CRYPT -p 'app secret 45') || fail "doveadm pw failed"
(umask 077 && printf 'app@relayq.test:%s\n' "$hash" >"$T/smtpd-users")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/CN=relayq-t45" -addext "subjectAltName=IP:$HOST_IP" \
	-keyout "$T/smtpd.key" -out "$T/smtpd.crt" >/dev/null 2>&1 || fail "openssl req failed"
chmod 0600 "$T/smtpd.key"
export RELAYQ_SMTPD_USERS=$T/smtpd-users
export RELAYQ_SMTPD_TLS_CERT=$T/smtpd.crt
export RELAYQ_SMTPD_TLS_KEY=$T/smtpd.key
export RELAYQ_SMTPD_AUTH_FAIL_DELAY=0s
start_serve

tok=t45-$$-$RANDOM
check "B: no AUTH: 530 5.7.0 at MAIL, nothing relayed"
swaks_out noauth --to "victim-$tok@example.net" --header "Subject: noauth-$tok"
assert_contains "$T/noauth.swaks" "<** 530 5.7.0" "swaks without AUTH"
assert_not_contains "$T/noauth.swaks" "queued as" "swaks without AUTH"

check "B: AUTH is not offered without TLS from outside loopback"
swaks_out plainauth --to "victim-$tok@example.net" --header "Subject: plainauth-$tok" \
	--auth PLAIN --auth-user app@relayq.test --auth-password 'app secret 45'
assert_not_contains "$T/plainauth.swaks" "250-AUTH" "plaintext EHLO"
assert_not_contains "$T/plainauth.swaks" "queued as" "swaks AUTH without TLS"

check "B: wrong password over TLS: 535 5.7.8, nothing relayed"
swaks_out badpw --tls --to "victim-$tok@example.net" --header "Subject: badpw-$tok" \
	--auth PLAIN --auth-user app@relayq.test --auth-password 'wrong'
assert_contains "$T/badpw.swaks" "<~* 535 5.7.8" "swaks with a wrong password"
assert_not_contains "$T/badpw.swaks" "queued as" "swaks with a wrong password"

check "B: STARTTLS + AUTH PLAIN: queued, then delivered by the smarthost"
swaks_out good --tls --to "ok-$tok@example.net" --header "Subject: good-$tok" \
	--auth PLAIN --auth-user app@relayq.test --auth-password 'app secret 45'
assert_contains "$T/good.swaks" "<~  250 2.0.0 Ok: queued as" "swaks with STARTTLS and AUTH"
f=$(wait_for_mail "good-$tok" | head -n 1)
assert_contains "$f" "Received: from outside.test ([$CLIENT_IP])" "delivered message"
assert_contains "$f" "with ESMTPSA;" "delivered message"

check "B: the refused messages were not delivered"
assert_no_mail "noauth-$tok" 1
assert_no_mail "plainauth-$tok" 0
assert_no_mail "badpw-$tok" 0

check "B: the password is not in the daemon's log"
assert_not_contains "$T/serve.log" "app secret 45" "serve log"
assert_not_contains "$T/serve.log" "$(printf '\0app@relayq.test\0app secret 45' | base64)" "serve log"
assert_contains "$T/serve.log" "auth failed" "serve log"
stop_serve

# --- C: allow-list ----------------------------------------------------------------
unset RELAYQ_SMTPD_USERS RELAYQ_SMTPD_TLS_CERT RELAYQ_SMTPD_TLS_KEY
check "C: RELAYQ_MYNETWORKS not naming the client: 554 5.7.1"
export RELAYQ_MYNETWORKS=192.0.2.0/24
start_serve
swaks_out other --to "victim-$tok@example.net" --header "Subject: other-$tok"
assert_contains "$T/other.swaks" "<** 554 5.7.1" "swaks from outside RELAYQ_MYNETWORKS"
stop_serve

check "C: RELAYQ_MYNETWORKS naming the client: relayed without AUTH"
export RELAYQ_MYNETWORKS=$CLIENT_IP/32
start_serve
swaks_out listed --to "ok-$tok@example.net" --header "Subject: listed-$tok"
assert_contains "$T/listed.swaks" "<-  250 2.0.0 Ok: queued as" "swaks from RELAYQ_MYNETWORKS"
wait_for_mail "listed-$tok" >/dev/null
assert_no_mail "other-$tok" 0
stop_serve

pass
