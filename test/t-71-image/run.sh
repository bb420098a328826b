#!/usr/bin/env bash
# t-71: the container image (dist/relayq-image.tar, an OCI image layout
# archive written by `scripts/package image` without a container engine)
# runs: its layer unpacked into a directory, the entrypoint (relayq serve)
# started in it with the image's user (65532), environment and a chroot,
# `relayq healthcheck` inside succeeds, and a message submitted with the
# image's /usr/sbin/sendmail relays to a loopback SMTP recorder.
# No podman/crun: the scenario says so and runs the root file system as
# above (the image config's User, Env and Entrypoint are read from it).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd chroot tar gzip stat

check "scripts/package image writes dist/relayq-image.tar"
(cd "$REPO" && scripts/package image) >"$T/package.log" 2>&1 || { show "$T/package.log"; fail "scripts/package image failed"; }
grep 'relayq-image.tar' "$T/package.log" >&2
IMG=$REPO/dist/relayq-image.tar
mkdir -p "$T/oci" "$T/rootfs"
tar -xf "$IMG" -C "$T/oci"
if [ ! -f "$T/oci/oci-layout" ] || [ ! -f "$T/oci/index.json" ]; then fail "not an OCI image layout"; fi
if command -v podman >/dev/null; then
	log "podman is installed but not used here: the sandbox runs no container runtime; the rootfs is run directly"
else
	log "no podman/crun on this machine: running the image's root file system with its user, env and entrypoint (chroot)"
fi

check "the layer unpacks: spool owned by 65532, mode 0700; passwd has the user; CA bundle present"
layer="" config=""
for b in "$T"/oci/blobs/sha256/*; do
	if gzip -t "$b" 2>/dev/null; then layer=$b
	elif grep -q '"rootfs"' "$b"; then config=$b; fi
done
if [ -z "$layer" ] || [ -z "$config" ]; then fail "no layer or config blob"; fi
tar -xzf "$layer" -C "$T/rootfs" --numeric-owner --same-owner --same-permissions
[ "$(stat -c '%u %a' "$T/rootfs/var/spool/relayq")" = "65532 700" ] || fail "spool dir: $(stat -c '%u %a' "$T/rootfs/var/spool/relayq")"
grep -q '^relayq:x:65532:65532:' "$T/rootfs/etc/passwd" || fail "no relayq user in /etc/passwd"
[ -s "$T/rootfs/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle"
# The image config: User, Entrypoint, Env (one JSON line).
user=$(grep -o '"User":"[^"]*"' "$config" | cut -d'"' -f4)
[ "$user" = 65532:65532 ] || fail "image user $user"
mapfile -t entry < <(grep -o '"Entrypoint":\[[^]]*\]' "$config" | sed 's/.*\[//; s/\]$//' | tr ',' '\n' | tr -d '"')
[ "${entry[*]}" = "/usr/sbin/relayq serve" ] || fail "entrypoint ${entry[*]}"
mapfile -t imgenv < <(grep -o '"Env":\[[^]]*\]' "$config" | sed 's/.*\[//; s/\]$//' | sed 's/","/\n/g' | tr -d '"')
printf '%s\n' "${imgenv[@]}" | grep -qx 'RELAYQ_LISTEN=127.0.0.1:2525' || fail "the listener is not loopback by default"

start_recorder relay -auth=false
# The run's settings over the image's: the loopback recorder, no TLS/AUTH
# (it speaks neither), a listener port of our own.
runenv=("${imgenv[@]}" "RELAYQ_RELAYHOST=[127.0.0.1]:$RECORDER_PORT" RELAYQ_TLS=none RELAYQ_AUTH=none
	"RELAYQ_LISTEN=127.0.0.1:0" RELAYQ_DOMAIN=image.test RELAYQ_DRAIN_ON_STOP=10s)
in_image() { env -i "${runenv[@]}" "$(command -v chroot)" --userspec="$user" "$T/rootfs" "$@"; }

check "the entrypoint runs as 65532 in the image; relayq healthcheck inside says ok"
env -i "${runenv[@]}" "$(command -v chroot)" --userspec="$user" "$T/rootfs" "${entry[@]}" >"$T/image-serve.log" 2>&1 &
IMG_PID=$!
_PIDS+=("$IMG_PID")
ok=""
for ((i = 0; i < 100; i++)); do
	if in_image /usr/sbin/relayq healthcheck >"$T/hc.out" 2>&1; then ok=1; break; fi
	kill -0 "$IMG_PID" 2>/dev/null || { show "$T/image-serve.log"; fail "relayq serve in the image exited"; }
	sleep 0.1
done
[ -n "$ok" ] || { show "$T/hc.out"; show "$T/image-serve.log"; fail "healthcheck never passed"; }
grep -qx 'ok (0 queued)' "$T/hc.out" || fail "healthcheck said: $(cat "$T/hc.out")"
[ "$(stat -c %u "$T/rootfs/var/spool/relayq/queue.db")" = 65532 ] || fail "spool not owned by 65532"

check "a message submitted with the image's sendmail relays to the loopback recorder"
printf 'From: app@image.test\nSubject: t-71 image %s\n\nhello from the image\n' "$$" |
	in_image /usr/sbin/sendmail -f app@image.test rcpt@example.net || fail "sendmail in the image failed"
for ((i = 0; i < 100; i++)); do
	grep -q "Subject: t-71 image $$" "$T/relay.rec" && break
	sleep 0.1
done
grep -q "Subject: t-71 image $$" "$T/relay.rec" || { show "$T/image-serve.log"; fail "the message did not reach the recorder"; }

check "SIGTERM: serve exits 0 and says none is left"
stop_pid "$IMG_PID" 15 || fail "relayq serve exited $?"
grep -q '"msg":"relayq serve stopped","queued":0' "$T/image-serve.log" || { show "$T/image-serve.log"; fail "no 'stopped, queued 0' line"; }
pass
