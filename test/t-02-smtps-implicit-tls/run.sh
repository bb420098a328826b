#!/usr/bin/env bash
# t-02: `relayq sendmail -t` and the `sendmail` symlink relay a message with
# a Bcc: header through the smarthost's smtps port (implicit TLS, RFC 8314)
# with AUTH PLAIN: every recipient (To, Cc, Bcc) receives it, the body is
# intact, no copy carries the Bcc header, and the message leaves the spool.
# Once daemonless, once with `relayq serve` running. The port is not 465, so
# RELAYQ_TLS_IMPLICIT=yes says implicit TLS.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

relayq_env "[$SMARTHOST_HOST]:$SMARTHOST_SMTPS_PORT"
export RELAYQ_TLS_IMPLICIT=yes
export RELAYQ_SASL_MECHANISMS=PLAIN
save_config

# 1. relayq sendmail -t, no daemon.
tok=t02a-$$-$RANDOM
write_bcc_message "$T/a.eml" "$tok"
check "relayq sendmail -t exits 0 (daemonless)"
expect_exit 0 relayq sendmail -t <"$T/a.eml"
check_bcc_delivery "$T/a.eml" "$tok" smtps
wait_detached
check "the spool is empty after delivery"
wait_queue_count 0

# 2. the sendmail symlink.
tok=t02b-$$-$RANDOM
write_bcc_message "$T/b.eml" "$tok" yes
check "sendmail -t -i (symlink) exits 0 (daemonless)"
expect_exit 0 sendmail -t -i <"$T/b.eml"
check_bcc_delivery "$T/b.eml" "$tok" smtps
wait_detached
check "the spool is empty after delivery"
wait_queue_count 0

# 3. with the daemon.
check_daemon_bcc_delivery t02c-$$-$RANDOM smtps

pass
