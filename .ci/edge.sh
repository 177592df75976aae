#!/usr/bin/env bash
# CI for the panel-PC deliverables (called from .ci/run; runs alone too): on a fresh Debian x86-64
# machine, installs what it needs, builds the release binaries for aarch64 and x86_64 with
# cross/build.sh, runs the aarch64 one under qemu-aarch64 (cross/smoke.sh), checks the systemd unit with
# systemd-analyze, checks the packaged config with the binary, builds the amd64 and arm64 .debs, checks
# their contents, runs lintian on both (any error or warning fails), and installs, upgrades, removes and purges the amd64 one in a scratch root (dpkg
# --root, maintainer scripts run chrootless with DPKG_ROOT: nothing is installed on this machine).
#
#   GATEWARDEN_CI_ARMV7=1 .ci/edge.sh    also builds armv7 and smoke-tests it under qemu-arm
#
# Build products go to target/edge (cross/build.sh), so this never waits on target/'s cargo lock.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

t_start=$(date +%s)
t_step=$t_start
timings=()
step() {
  local now
  now=$(date +%s)
  if [ -n "${current:-}" ]; then timings+=("$(printf '%4ss  %s' $((now - t_step)) "$current")"); fi
  current=$*
  t_step=$now
  printf '\n== edge: %s\n' "$*"
}
fail() { printf '\nedge: FAILED: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

armv7=${GATEWARDEN_CI_ARMV7:-}

step "system packages"
need=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
[ -f /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
if [ -n "$armv7" ]; then
  command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || need+=(gcc-arm-linux-gnueabihf)
  [ -f /usr/arm-linux-gnueabihf/lib/libc.so.6 ] || need+=(libc6-dev-armhf-cross)
fi
qemu=
for q in qemu-aarch64 qemu-aarch64-static; do
  if command -v "$q" >/dev/null 2>&1; then qemu=$q; break; fi
done
[ -n "$qemu" ] || { need+=(qemu-user); qemu=qemu-aarch64; }
if [ -n "$armv7" ] && ! command -v qemu-arm >/dev/null 2>&1 && ! command -v qemu-arm-static >/dev/null 2>&1; then
  need+=(qemu-user)
fi
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v systemd-sysusers >/dev/null 2>&1 || need+=(systemd)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v readelf >/dev/null 2>&1 || need+=(binutils)
command -v file >/dev/null 2>&1 || need+=(file)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export GATEWARDEN_APT_UPDATED=1

step "cargo-deb"
# Pinned: the packaging (and its checks below) are written against this version's behaviour.
cargo_deb_version=3.8.0
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $cargo_deb_version"; then
  cargo install cargo-deb --locked --version "$cargo_deb_version"
fi
cargo deb --version

step "release build: aarch64, x86_64${armv7:+, armv7} (cross/build.sh --deb)"
targets=(aarch64 x86_64)
if [ -n "$armv7" ]; then targets+=(armv7); fi
# Not `mapfile < <(...)`: a failed build must stop here, with its own message.
built_list=$(mktemp)
cross/build.sh --deb "${targets[@]}" >"$built_list" || fail "cross/build.sh exited $?"
mapfile -t built <"$built_list"
rm -f "$built_list"
bin_arm64=${built[0]}
bin_amd64=${built[1]}
bin_armv7=
if [ -n "$armv7" ]; then bin_armv7=${built[2]}; fi
deb_amd64=$(printf '%s\n' "${built[@]}" | grep '_amd64\.deb$') || fail "no amd64 .deb built"
deb_arm64=$(printf '%s\n' "${built[@]}" | grep '_arm64\.deb$') || fail "no arm64 .deb built"
file -b "$bin_arm64" | grep -q 'ELF 64-bit LSB .*ARM aarch64' || fail "$bin_arm64 is not an aarch64 ELF: $(file -b "$bin_arm64")"
for b in "$bin_arm64" "$bin_amd64" $bin_armv7; do
  printf '%9d bytes  %s\n' "$(stat -c %s "$b")" "$b"
  file -b "$b" | grep -q 'stripped' && ! file -b "$b" | grep -q 'not stripped' || fail "$b is not stripped"
done

step "aarch64 smoke test under $qemu"
cross/smoke.sh "$bin_arm64" "$qemu"

if [ -n "$armv7" ]; then
  step "armv7 smoke test under qemu-arm"
  qarm=qemu-arm
  command -v qemu-arm >/dev/null 2>&1 || qarm=qemu-arm-static
  cross/smoke.sh "$bin_armv7" "$qarm"
fi

step "amd64 .deb: dpkg-deb -I / -c"
info=$(dpkg-deb -I "$deb_amd64")
echo "$info"
grep -qx ' Package: gatewarden' <<<"$info" || fail "Package is not gatewarden"
grep -qx ' Architecture: amd64' <<<"$info" || fail "Architecture is not amd64"
grep -q '^ Depends: libc6 (>= [0-9.]*), systemd | ' <<<"$info" || fail "Depends is not libc6 and systemd(-sysusers)"
for f in conffiles postinst prerm postrm; do
  dpkg-deb -I "$deb_amd64" "$f" >/dev/null 2>&1 || fail "control member $f is missing"
done
[ "$(dpkg-deb -I "$deb_amd64" conffiles)" = /etc/gatewarden/gatewarden.toml ] || fail "conffiles is not exactly /etc/gatewarden/gatewarden.toml"
contents=$(dpkg-deb -c "$deb_amd64")
echo "$contents"
# Not `awk ... | grep -q` under pipefail: grep -q exits at the first match, and awk, still writing a
# listing longer than its buffer, dies of SIGPIPE and fails the pipeline.
paths=$(awk '{ print $NF }' <<<"$contents")
for p in ./usr/bin/gatewarden ./usr/lib/systemd/system/gatewarden.service ./usr/lib/sysusers.d/gatewarden.conf \
  ./etc/gatewarden/gatewarden.toml ./usr/share/doc/gatewarden/examples/mosquitto-acl.example \
  ./usr/share/doc/gatewarden/examples/gatewarden.toml ./usr/share/doc/gatewarden/copyright \
  ./usr/share/doc/gatewarden/changelog.Debian.gz ./usr/share/man/man1/gatewarden.1.gz \
  ./usr/share/man/man1/gatewarden-role-grant.1.gz ./usr/share/bash-completion/completions/gatewarden \
  ./usr/share/zsh/vendor-completions/_gatewarden ./usr/share/fish/vendor_completions.d/gatewarden.fish \
  ./usr/share/gatewarden/console/index.html ./usr/share/gatewarden/console/console.js \
  ./usr/share/gatewarden/console/mqtt.min.js; do
  grep -qxF "$p" <<<"$paths" || fail "$p is not in the package"
done
grep -Eq '^-rwxr-xr-x (root/root|0/0) .* \./usr/bin/gatewarden$' <<<"$contents" || fail "/usr/bin/gatewarden is not root:root 0755"

step "arm64 .deb: architecture and binary"
dpkg-deb -f "$deb_arm64" Architecture | grep -qx arm64 || fail "$deb_arm64: Architecture is not arm64"
dpkg-deb --fsys-tarfile "$deb_arm64" | tar -xO ./usr/bin/gatewarden | cmp -s - "$bin_arm64" ||
  fail "the arm64 package does not hold the aarch64 binary just built"
echo "arm64: $(dpkg-deb -f "$deb_arm64" Package Version Architecture Depends | tr '\n' ' ')"

step "lintian: amd64 and arm64 .debs"
# Any error or warning fails (info tags are printed and pass). A tag that truly does not apply is
# overridden in packaging/debian/gatewarden.lintian-overrides, with its reason, not here.
lintian --version
lintian --fail-on error,warning "$deb_amd64" "$deb_arm64" || fail "lintian found errors or warnings (above)"
echo "lintian: no error, no warning"

step "amd64 .deb: install, upgrade, remove, purge in a scratch root (dpkg --root)"
# dpkg --root with --force-script-chrootless runs the maintainer scripts here with DPKG_ROOT=$root:
# systemd-sysusers and deb-systemd-helper write into the scratch root, and nothing is started.
# --force-depends: the scratch root has no libc6 or systemd in its dpkg database.
root=$(mktemp -d "${TMPDIR:-/tmp}/gatewarden-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$root/etc" "$root/tmp"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
touch "$root/etc/passwd" "$root/etc/group" "$root/etc/shadow" "$root/etc/gshadow"
sdpkg() { as_root dpkg --root="$root" --force-script-chrootless --force-depends "$@"; }

sdpkg -i "$deb_amd64"
for p in usr/bin/gatewarden usr/lib/systemd/system/gatewarden.service usr/lib/sysusers.d/gatewarden.conf etc/gatewarden/gatewarden.toml; do
  [ -f "$root/$p" ] || fail "/$p missing after install"
done
[ -x "$root/usr/bin/gatewarden" ] || fail "/usr/bin/gatewarden is not executable"
"$root/usr/bin/gatewarden" --version
cmp -s "$root/usr/bin/gatewarden" "$bin_amd64" || fail "the packaged binary is not the one just built"
grep -q '^gatewarden:x:[0-9]*:[0-9]*:gatewarden daemon:/var/lib/gatewarden:' "$root/etc/passwd" ||
  fail "postinst (systemd-sysusers) did not create the gatewarden user"
grep -q '^gatewarden:x:' "$root/etc/group" || fail "postinst (systemd-sysusers) did not create the gatewarden group"
grep '^gatewarden:' "$root/etc/passwd" "$root/etc/group"
[ "$(readlink "$root/etc/systemd/system/multi-user.target.wants/gatewarden.service")" = /usr/lib/systemd/system/gatewarden.service ] ||
  fail "postinst did not enable gatewarden.service"
echo "enabled: /etc/systemd/system/multi-user.target.wants/gatewarden.service"

# State the daemon would have written, and an edited conffile: an upgrade keeps both.
mkdir -p "$root/var/lib/gatewarden"
echo marker >"$root/var/lib/gatewarden/gatewarden.db"
printf '\n[license]\nseats = 7\n' >>"$root/etc/gatewarden/gatewarden.toml"
# The upgrade: the same package with a higher version, repacked (cargo deb would replace the .deb above).
upgrade_dir=$(mktemp -d)
dpkg-deb -R "$deb_amd64" "$upgrade_dir/pkg"
sed -i 's/^Version: .*/&+ci2/' "$upgrade_dir/pkg/DEBIAN/control"
new_version=$(sed -n 's/^Version: //p' "$upgrade_dir/pkg/DEBIAN/control")
dpkg-deb --root-owner-group -b "$upgrade_dir/pkg" "$upgrade_dir/gatewarden-upgrade.deb" >/dev/null
sdpkg -i "$upgrade_dir/gatewarden-upgrade.deb"
rm -rf "$upgrade_dir"
dpkg --root="$root" -s gatewarden | grep -qxF "Version: $new_version" || fail "upgrade to $new_version did not happen"
[ -f "$root/var/lib/gatewarden/gatewarden.db" ] || fail "upgrade deleted /var/lib/gatewarden"
grep -qx 'seats = 7' "$root/etc/gatewarden/gatewarden.toml" || fail "upgrade overwrote the edited conffile"
echo "upgrade: state and edited conffile kept"

sdpkg -r gatewarden
[ ! -e "$root/usr/bin/gatewarden" ] || fail "remove left /usr/bin/gatewarden"
[ -f "$root/var/lib/gatewarden/gatewarden.db" ] || fail "remove deleted /var/lib/gatewarden"
[ -f "$root/etc/gatewarden/gatewarden.toml" ] || fail "remove deleted the conffile"
echo "remove: binary gone; state and conffile kept"

sdpkg --purge gatewarden
[ ! -e "$root/var/lib/gatewarden" ] || fail "purge left /var/lib/gatewarden"
[ ! -e "$root/etc/gatewarden/gatewarden.toml" ] || fail "purge left the conffile"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/gatewarden.service" ] || fail "purge left the enable symlink"
[ ! -e "$root/etc/systemd/system/gatewarden.service" ] || fail "purge left a mask"
echo "purge: state, conffile and enable symlink gone"
# Unpacked once more, for the config and unit checks below.
dpkg -x "$deb_amd64" "$root"

step "packaged config passes gatewarden config check"
"$bin_amd64" config check "$root/etc/gatewarden/gatewarden.toml"
"$bin_amd64" config check packaging/gatewarden.toml >/dev/null
grep -qx 'socket_group = "gatewarden"' "$root/etc/gatewarden/gatewarden.toml" || fail "packaged config does not set socket_group"
grep -qx 'state_dir = "/var/lib/gatewarden"' "$root/etc/gatewarden/gatewarden.toml" || fail "packaged config does not set state_dir"
grep -q '^ExecStart=/usr/bin/gatewarden serve --config /etc/gatewarden/gatewarden.toml$' \
  "$root/usr/lib/systemd/system/gatewarden.service" || fail "the unit does not start the packaged binary on the packaged config"

step "systemd-analyze verify / security (the packaged unit)"
# verify checks ExecStart= against this machine's filesystem, where /usr/bin/gatewarden does not exist
# (nothing is installed here), so it checks a copy pointing at the binary unpacked into the scratch root.
# It exits 0 on unknown keys and bad values, printing a warning: any output is a failure.
unit_dir=$root/verify
mkdir -p "$unit_dir"
sed "s#/usr/bin/gatewarden#$root/usr/bin/gatewarden#" "$root/usr/lib/systemd/system/gatewarden.service" >"$unit_dir/gatewarden.service"
rc=0
verify=$(systemd-analyze verify --man=no "$unit_dir/gatewarden.service" 2>&1) || rc=$?
[ "$rc" -eq 0 ] && [ -z "$verify" ] || fail "systemd-analyze verify (exit $rc): $verify"
echo "systemd-analyze verify: clean"
security=$(systemd-analyze security --offline=true --no-pager "$unit_dir/gatewarden.service" 2>&1)
grep -E '✗|Overall' <<<"$security"
score=$(sed -n 's/.*Overall exposure level for gatewarden.service: \([0-9.]*\).*/\1/p' <<<"$security")
[ -n "$score" ] || fail "no exposure score in systemd-analyze security output"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score is above 2.0: a hardening setting was lost"

step "done"
for t in "${timings[@]}"; do echo "$t"; done
echo "edge: OK in $(($(date +%s) - t_start)) s"
