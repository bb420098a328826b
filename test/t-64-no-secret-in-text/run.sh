#!/usr/bin/env bash
# t-64: no secret in any error text. The relay (test/tools/smtprecorder)
# offers only XOAUTH2; the credential is an OAuth refresh-token entry whose
# token endpoint (a Python HTTP server on loopback) refuses every request
# and echoes it whole (client secret, refresh token, the Basic
# authorization header) in its error_description, and once as a plain-text
# body. The message is deferred with the endpoint's RFC 6749 error code as
# the reason; neither the secrets nor their %-escaped or base64 forms reach
# mailq (run as the unprivileged user nobody), `relayq queue list`, the
# daemon's log or `relayq probe`'s output.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3 setpriv base64
CS=cs-$(openssl rand -hex 12)
RT=rt-$(openssl rand -hex 12)

# The echoing token endpoint: JSON (error + echo in error_description) on
# /token, a plain-text echo on /plain.
python3 - "$T/token.port" >"$T/token.log" 2>&1 <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        echo = "you sent %s with %s" % (body, self.headers.get("Authorization"))
        if self.path == "/plain":
            out, ctype = echo.encode(), "text/plain"
        else:
            out, ctype = json.dumps({"error": "invalid_grant", "error_description": echo}).encode(), "application/json"
        self.send_response(400)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
_PIDS+=("$!")
for _ in $(seq 100); do [ -s "$T/token.port" ] && break; sleep 0.1; done
[ -s "$T/token.port" ] || { show "$T/token.log"; fail "token endpoint did not start"; }
TPORT=$(cat "$T/token.port")

start_recorder relay -mechs XOAUTH2
relayq_env "[127.0.0.1]:$RECORDER_PORT"
export RELAYQ_TLS=none # AUTH in plain text is allowed to a loopback relay only
oauth_entry() {
	(umask 077 && printf '[127.0.0.1]:%s oauth2:user=me@relayq.test,client_id=cid,client_secret=%s,refresh_token=%s,token_url=http://127.0.0.1:%s/%s\n' \
		"$RECORDER_PORT" "$CS" "$RT" "$TPORT" "$1" >"$RELAYQ_AUTHINFO")
}
oauth_entry token
save_config
chmod 0644 "$RELAYQ_CONFIG"
chmod 0755 "$T/run"
start_serve

# no_secret FILE WHAT — none of the secrets' forms is in FILE.
no_secret() {
	local s form
	for s in "$CS" "$RT"; do
		for form in "$s" "$(printf '%s' "$s" | base64 -w0)" "$(printf 'cid:%s' "$s" | base64 -w0)"; do
			assert_not_contains "$1" "$form" "$2"
		done
	done
	# The secrets at any offset inside a base64 string: the middle of
	# each form above is enough to find one.
	for s in "$CS" "$RT"; do
		assert_not_contains "$1" "$(printf 'xx%s' "$s" | base64 -w0 | cut -c5-20)" "$2"
	done
}

tok=t64-$$-$RANDOM
check "the message is deferred with the token endpoint's error code as the reason"
printf 'Subject: %s\n\nbody\n' "$tok" | expect_exit 0 relayq sendmail "rcpt-$tok@example.net"
wait_for_log "$T/serve.log" "token endpoint refused" 30
wait_queue_count 1 10
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$BIN/mailq" >"$T/mailq.out" 2>"$T/mailq.err" ||
	{ show "$T/mailq.err"; fail "mailq as nobody failed"; }
assert_contains "$T/mailq.out" "invalid_grant" "mailq as nobody"
assert_contains "$T/mailq.out" "rcpt-$tok@example.net" "mailq as nobody"
check "no secret in mailq (as nobody), relayq queue list or the daemon's log"
no_secret "$T/mailq.out" "mailq as nobody"
relayq queue list >"$T/list.out" 2>&1 || fail "relayq queue list failed"
no_secret "$T/list.out" "relayq queue list"
no_secret "$T/serve.log" "relayq serve log"
assert_contains "$T/serve.log" "you sent" "relayq serve log (the echo arrived, scrubbed)"

check "no secret in relayq probe's output (JSON and plain-text refusals)"
for path in token plain; do
	oauth_entry "$path"
	relayq probe >"$T/probe-$path.out" 2>&1 || true
	assert_contains "$T/probe-$path.out" "token endpoint refused" "relayq probe ($path)"
	no_secret "$T/probe-$path.out" "relayq probe ($path)"
done
stop_serve
pass
