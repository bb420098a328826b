#!/usr/bin/env bash
# t-70: moving to relayq with `relayq import`, as an operator would: a real
# msmtprc (msmtp-mta's system file: defaults, an account, "account default
# : …", tls_trust_file, auth, user, password), then a Postfix null client
# (main.cf with relayhost, smtp_sasl_password_maps = hash:…/sasl_passwd,
# smtp_tls_security_level, smtp_tls_CAfile) with its sasl_passwd, each
# pointing at the test smarthost. relayq import -n shows the result with
# the password masked and writes nothing; relayq import writes relayq.env
# and a 0600 credentials file; `relayq check` passes on the result; a
# message sent with sendmail using only the imported configuration (the
# relay host, CA and credentials come from the written files, not the
# environment) reaches the smarthost once, with TLS and AUTH.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"
# What the imported files must provide is taken out of the environment.
unset RELAYQ_RELAYHOST RELAYQ_AUTHINFO RELAYQ_TLS RELAYQ_TLS_CA_FILE
relay="[$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT"

# import_and_send NAME FILE... — import FILEs into $T/NAME, check, send one
# message with the imported configuration and see it arrive once.
import_and_send() {
	local name=$1 out=$T/out-$1 tok
	shift
	mkdir -p "$out"
	check "$name: relayq import -n shows the mapping, the password masked, and writes nothing"
	expect_exit 0 relayq import -n -env "$out/relayq.env" -authinfo "$out/authinfo" "$@"
	assert_contains "$T/last.out" "RELAYQ_RELAYHOST=$relay" "import -n"
	assert_contains "$T/last.out" "$SMARTHOST_USER:********" "import -n"
	assert_not_contains "$T/last.out" "$SMARTHOST_PASS" "import -n"
	[ -z "$(ls -A "$out")" ] || fail "import -n wrote files: $(ls "$out")"
	cp "$T/last.out" "$T/$name.report"
	check "$name: relayq import writes relayq.env and a 0600 credentials file"
	expect_exit 0 relayq import -env "$out/relayq.env" -authinfo "$out/authinfo" "$@"
	assert_not_contains "$T/last.out" "$SMARTHOST_PASS" "import"
	assert_eq "$(stat -c %a "$out/authinfo")" 600 "the credentials file's mode"
	assert_match "$out/relayq.env" "^RELAYQ_RELAYHOST=\\[$SMARTHOST_HOST\\]:$SMARTHOST_SUBMISSION_PORT\$" "relayq.env"
	assert_match "$out/relayq.env" "^RELAYQ_TLS_CA_FILE=" "relayq.env"
	check "$name: a second import refuses to overwrite (73) and says -f"
	expect_exit 73 relayq import -env "$out/relayq.env" -authinfo "$out/authinfo" "$@"
	assert_contains "$T/last.err" "-f" "the refusal"
	check "$name: relayq check passes with the imported configuration"
	RELAYQ_CONFIG=$out/relayq.env expect_exit 0 relayq check
	check "$name: a message sent with only the imported configuration arrives once, with TLS and AUTH"
	tok=t70-$name-$$-$RANDOM
	printf 'From: sender@relayq.test\nTo: rcpt-%s@example.net\nSubject: %s\n\nimported %s\n' "$tok" "$tok" "$tok" |
		RELAYQ_CONFIG=$out/relayq.env relayq sendmail -t -i || fail "sendmail exited $?"
	f=$(wait_for_mail "imported $tok" 1 | head -n 1)
	assert_match "$f" 'with ESMTPSA id' "the delivered message"
	RELAYQ_CONFIG=$out/relayq.env wait_detached
	sleep 1
	assert_eq "$(mail_files "imported $tok" | grep -c .)" 1 "copies delivered"
}

mkdir -p "$T/msmtp"
cat >"$T/msmtp/msmtprc" <<MSMTPRC
# /etc/msmtprc as msmtp-mta users write it
defaults
tls on
tls_starttls on
tls_trust_file $SMARTHOST_CA
logfile /var/log/msmtp.log

account smarthost
host $SMARTHOST_HOST
port $SMARTHOST_SUBMISSION_PORT
auth on
user $SMARTHOST_USER
password "$SMARTHOST_PASS"

account default : smarthost
MSMTPRC
import_and_send msmtp "$T/msmtp/msmtprc"
assert_contains "$T/msmtp.report" "logfile /var/log/msmtp.log" "the notes (what is not mapped)"

mkdir -p "$T/pf"
cat >"$T/pf/main.cf" <<MAINCF
# a Postfix null client relaying through the smarthost
myhostname = client.relayq.test
relayhost = [$SMARTHOST_HOST]:$SMARTHOST_SUBMISSION_PORT
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = hash:$T/pf/sasl_passwd
smtp_sasl_security_options = noanonymous
smtp_tls_security_level = encrypt
smtp_tls_CAfile = $SMARTHOST_CA
inet_interfaces = loopback-only
mydestination =
MAINCF
(umask 077 && printf '[%s]:%s %s:%s\n' "$SMARTHOST_HOST" "$SMARTHOST_SUBMISSION_PORT" "$SMARTHOST_USER" "$SMARTHOST_PASS" >"$T/pf/sasl_passwd")
import_and_send postfix "$T/pf/main.cf"
assert_contains "$T/postfix.report" "smtp_tls_security_level = encrypt: Postfix did not verify" "the notes (what relayq does differently)"
pass
