#!/usr/bin/env bash
# Builds release gatewarden binaries for panel PCs on a Debian x86-64 machine, with Debian's cross
# toolchains. No docker.
#
#   cross/build.sh aarch64            # aarch64-unknown-linux-gnu      (64-bit ARM: i.MX8, RK3568, Pi 4/5)
#   cross/build.sh armv7              # armv7-unknown-linux-gnueabihf  (32-bit ARM, hard float: i.MX6, AM335x)
#   cross/build.sh x86_64             # x86_64-unknown-linux-gnu       (x86 panel PCs, same profile)
#   cross/build.sh --deb aarch64      # ... and the .deb for it (amd64, arm64, armhf; needs cargo-deb;
#                                     # the man pages and completions come from a host build)
#   cross/build.sh aarch64 x86_64     # several targets in one cargo run (they compile in parallel)
#   cross/build.sh aarch64 -- --features ...   # anything after -- goes to cargo build
#
# stdout: the path of each binary, then of each .deb, one per line; progress goes to stderr.
# Missing pieces are installed: the gcc cross compiler and libc via apt-get (skipping `apt-get update`
# when GATEWARDEN_APT_UPDATED is set), the Rust standard library via rustup.
#
# The linker, the qemu runner and the C cross compiler for each target (rusqlite compiles the bundled
# SQLite with cc) are in cross/config.toml, passed with `cargo --config`, not in a repository-wide
# .cargo/config.toml, so a plain `cargo build` is untouched. Builds go to their own target directory
# ($CARGO_TARGET_DIR, default target/edge) so they never hold the lock on target/ that `cargo build`
# and `cargo test` use.
#
# Each binary is checked against the package's Depends in Cargo.toml ([package.metadata.deb]): it may
# need no shared library beyond glibc's and libgcc_s, and no glibc symbol version newer than the
# declared "libc6 (>= X)". (The Depends is written out rather than "$auto" because dpkg-shlibdeps only
# sees the cross libc's package version, 2.36 on bookworm, for arm64 and armhf.)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: cross/build.sh [--deb] aarch64|armv7|x86_64 [more targets] [-- cargo build args]" >&2
  exit 2
}
log() { printf '%s\n' "cross/build.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

deb=0
triples=()
apt_pkgs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=1 ;;
    --) shift; break ;;
    aarch64 | arm64 | aarch64-unknown-linux-gnu)
      triples+=(aarch64-unknown-linux-gnu)
      command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || apt_pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    armv7 | armhf | armv7-unknown-linux-gnueabihf)
      triples+=(armv7-unknown-linux-gnueabihf)
      command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || apt_pkgs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
    x86_64 | amd64 | x86_64-unknown-linux-gnu)
      triples+=(x86_64-unknown-linux-gnu) ;;
    *) usage ;;
  esac
  shift
done
[ ${#triples[@]} -gt 0 ] || usage
[ "$(uname -m)" = x86_64 ] || log "warning: written for an x86-64 build machine, this is $(uname -m)"

# The C cross toolchains. On x86_64 the host's cc is used as is.
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  log "installing ${apt_pkgs[*]}"
  if [ -z "${GATEWARDEN_APT_UPDATED:-}" ]; then as_root apt-get update -qq >&2; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >&2
fi

cargo_targets=()
installed=$(rustup target list --installed)
for triple in "${triples[@]}"; do
  if ! grep -qx "$triple" <<<"$installed"; then
    log "rustup target add $triple"
    rustup target add "$triple" >&2
  fi
  cargo_targets+=(--target "$triple")
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/edge}

log "cargo build --release ${cargo_targets[*]} (target dir $CARGO_TARGET_DIR)"
cargo build --release --locked --config cross/config.toml "${cargo_targets[@]}" "$@" >&2

# The glibc the packages declare, e.g. 2.34 from depends = "libc6 (>= 2.34), ...".
declared_glibc=$(sed -n 's/^depends = ".*libc6 (>= \([0-9.]*\)).*/\1/p' Cargo.toml)
[ -n "$declared_glibc" ] || { log "Cargo.toml: no 'libc6 (>= X)' in [package.metadata.deb] depends"; exit 1; }

for triple in "${triples[@]}"; do
  bin=$CARGO_TARGET_DIR/$triple/release/gatewarden
  size=$(stat -c %s "$bin")
  kind=$(file -b "$bin" 2>/dev/null | cut -d, -f1-2 || true)
  log "$triple: ${kind:+$kind, }$size bytes ($(awk -v s="$size" 'BEGIN { printf "%.2f MiB", s / 1048576 }'))"
  libs=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
  for lib in $libs; do
    case "$lib" in
      libc.so.6 | libm.so.6 | libgcc_s.so.1 | ld-linux*.so.* | libpthread.so.0 | libdl.so.2 | librt.so.1) ;;
      *) log "$triple: needs $lib, which the package does not depend on (Cargo.toml depends)"; exit 1 ;;
    esac
  done
  glibc=$(readelf -V --wide "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
  if [ "$(printf '%s\n' "$glibc" "$declared_glibc" | sort -V | tail -n 1)" != "$declared_glibc" ]; then
    log "$triple: needs glibc $glibc, newer than the declared libc6 (>= $declared_glibc) in Cargo.toml depends"
    exit 1
  fi
  log "$triple: needs $(echo $libs | tr ' ' ,), glibc >= $glibc (package declares >= $declared_glibc)"
  echo "$bin"
done

if [ "$deb" = 1 ]; then
  command -v cargo-deb >/dev/null 2>&1 || { log "cargo-deb is missing: cargo install cargo-deb --locked"; exit 1; }
  # The packaged config; Cargo.toml's [package.metadata.deb] assets name this exact path.
  packaging/deb-config.sh target/deb-assets/gatewarden.toml
  # The supervisor console (an asset: target/console/*), the same for every architecture.
  log "console/build.sh: the supervisor console into target/console"
  console/build.sh >&2
  # The man pages and shell completions (assets too), written by `gatewarden generate` from the clap
  # definitions. The binary must run here, so an arm64 or armhf package gets them from the host build of
  # the same source: they do not depend on the target. A release build for the host is used when it
  # was just built, else a dev build for the host.
  host=$(rustc -vV | sed -n 's/^host: //p')
  if printf '%s\n' "${triples[@]}" | grep -qxF "$host"; then
    gen=$CARGO_TARGET_DIR/$host/release/gatewarden
  else
    log "cargo build (host $host, dev profile): gatewarden generate, for the man pages and completions"
    cargo build --locked --bin gatewarden >&2
    gen=$CARGO_TARGET_DIR/debug/gatewarden
  fi
  rm -rf target/deb-assets/man target/deb-assets/completions
  "$gen" generate man target/deb-assets/man >/dev/null
  gzip -9n target/deb-assets/man/*.1
  "$gen" generate completions target/deb-assets/completions >/dev/null
  for triple in "${triples[@]}"; do
    # The binary is already stripped by the release profile; cargo-deb only packs it.
    out=$(cargo deb --no-build --no-strip --locked --target "$triple" --output "$CARGO_TARGET_DIR/debian/")
    deb_path=$(tail -n 1 <<<"$out")
    log "$triple: $deb_path ($(stat -c %s "$deb_path") bytes)"
    echo "$deb_path"
  done
fi
