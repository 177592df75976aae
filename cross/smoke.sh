#!/usr/bin/env bash
# Smoke test of one gatewarden binary, natively or under qemu-user:
#
#   cross/smoke.sh target/edge/x86_64-unknown-linux-gnu/release/gatewarden
#   cross/smoke.sh target/edge/aarch64-unknown-linux-gnu/release/gatewarden qemu-aarch64
#   cross/smoke.sh target/edge/armv7-unknown-linux-gnueabihf/release/gatewarden qemu-arm
#
# --version; `serve` on a temp dir (MQTT off) in the background; wait for the control socket; `status
# --json`; through the CLI a role granted a permission, a user created with it, and the permission
# checked (allowed, and another one denied); SIGTERM and a clean exit 0 with the socket removed. The
# ARM libc comes from Debian's cross packages (-L /usr/<gnu triple>, or $QEMU_LD_PREFIX).
# As root the CLI acts as the built-in admin (uid 0 on the control socket, SO_PEERCRED); otherwise it
# logs in as admin, whose first password the daemon takes from --admin-password-file.
set -euo pipefail

usage() { echo "usage: cross/smoke.sh BINARY [QEMU]   e.g. cross/smoke.sh path/to/gatewarden qemu-aarch64" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
bin=$(realpath "$1")
qemu=${2:-}
[ -x "$bin" ] || { echo "smoke: $bin is not an executable file" >&2; exit 2; }

run=()
if [ -n "$qemu" ]; then
  command -v "$qemu" >/dev/null 2>&1 || { echo "smoke: $qemu not found (Debian: apt-get install qemu-user)" >&2; exit 2; }
  case "$qemu" in
    *aarch64*) prefix=/usr/aarch64-linux-gnu ;;
    *arm*) prefix=/usr/arm-linux-gnueabihf ;;
    *) prefix= ;;
  esac
  prefix=${QEMU_LD_PREFIX:-$prefix}
  run=("$qemu")
  if [ -n "$prefix" ]; then run+=(-L "$prefix"); fi
fi
gw() { timeout 120 "${run[@]}" "$bin" "$@"; }

step() { printf '\n== smoke: %s\n' "$*"; }
fail() { printf '\nsmoke: FAILED: %s\n' "$*" >&2; if [ -f "${log:-}" ]; then echo "--- daemon log:" >&2; cat "$log" >&2; fi; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/gatewarden-smoke.XXXXXX")
sock=$dir/state/gatewarden.sock
log=$dir/daemon.log
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

step "--version"
version=$(gw --version) || fail "--version exited $?"
echo "$version"
[[ "$version" =~ ^gatewarden\ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "unexpected --version output: $version"

step "serve on $dir"
cat >"$dir/gatewarden.toml" <<EOF
[daemon]
state_dir = "$dir/state"
log_level = "debug"

[mqtt]
enabled = false
EOF
gw config check "$dir/gatewarden.toml" || fail "config check refused the smoke config"
admin_password=smoke-admin-password
printf '%s\n' "$admin_password" >"$dir/admin-password"
"${run[@]}" "$bin" serve --config "$dir/gatewarden.toml" --admin-password-file "$dir/admin-password" >"$log" 2>&1 &
pid=$!
start=$(date +%s)
until [ -S "$sock" ]; do
  kill -0 "$pid" 2>/dev/null || { wait "$pid" && rc=0 || rc=$?; pid=; fail "serve exited $rc before binding $sock"; }
  [ $(($(date +%s) - start)) -lt 60 ] || fail "no control socket after 60 s"
  sleep 0.2
done
echo "socket up after $(($(date +%s) - start)) s"

step "status --json"
status=$(gw --socket "$sock" --json status) || fail "status exited $?"
echo "$status"
grep -q '"version"' <<<"$status" || fail "status --json has no version"

step "accounts: role grant, user add, check"
export GATEWARDEN_SOCKET=$sock
if [ "$(id -u)" -ne 0 ]; then
  token=$(printf '%s\n' "$admin_password" | gw login admin --password-stdin) || fail "login admin exited $?"
  export GATEWARDEN_TOKEN=$token
  echo "not root: acting as admin with a login token"
fi
gw role add smoke-operator >/dev/null || fail "role add exited $?"
gw role grant smoke-operator audit.view --read >/dev/null || fail "role grant exited $?"
t0=$(date +%s%N)
printf 'smoke-password-1\n' | gw user add smoke --role smoke-operator --password-stdin ||
  fail "user add smoke exited $?"
echo "user add took $((($(date +%s%N) - t0) / 1000000)) ms (one argon2id hash at the configured cost)"
check=$(gw --json check smoke audit.view '*') || fail "check smoke audit.view exited $?, expected 0 (allow)"
echo "$check"
grep -Eq '"decision"[[:space:]]*:[[:space:]]*"allow"' <<<"$check" || fail "check did not print \"decision\": \"allow\""
rc=0
check=$(gw --json check smoke user.create '*') || rc=$?
echo "$check"
[ "$rc" -eq 1 ] || fail "check smoke user.create exited $rc, expected 1 (deny)"
grep -Eq '"decision"[[:space:]]*:[[:space:]]*"deny"' <<<"$check" || fail "check did not print \"decision\": \"deny\""

step "SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "serve exited $rc after SIGTERM, expected 0"
[ ! -e "$sock" ] || fail "the control socket was left behind"
grep -q 'gatewarden stopped' "$log" || fail "no 'gatewarden stopped' in the log"

printf '\nsmoke: OK %s%s\n' "$(file -b "$bin" | cut -d, -f2 | sed 's/^ //')" "${qemu:+ (under $qemu)}"
