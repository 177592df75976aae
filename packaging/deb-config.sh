#!/usr/bin/env bash
# Writes the /etc/gatewarden/gatewarden.toml shipped in the .deb: packaging/gatewarden.toml (every key
# commented, at its default) with the packaged install's paths made explicit:
#   state_dir = "/var/lib/gatewarden"   the unit's StateDirectory; explicit so that `gatewarden recover`,
#                                       run from a shell without $STATE_DIRECTORY, finds the database;
#   socket_group = "gatewarden"         members of the gatewarden group may use the CLI.
# Generated at package time so the two files never drift apart.
#
#   packaging/deb-config.sh OUT      (cross/build.sh --deb writes target/deb-assets/gatewarden.toml)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: packaging/deb-config.sh OUT" >&2; exit 2; }
src=$(dirname "$0")/gatewarden.toml
out=$1
uncomment=('#state_dir = "/var/lib/gatewarden"' '#socket_group = "gatewarden"')
for line in "${uncomment[@]}"; do
  [ "$(grep -cxF "$line" "$src")" = 1 ] || { echo "deb-config.sh: $src has no single line '$line'" >&2; exit 1; }
done
mkdir -p "$(dirname "$out")"
{
  echo "# Installed by the gatewarden package (a dpkg conffile: your edits are kept on upgrade)."
  echo "# Differs from the documented defaults only where marked \"Packaged:\" ([daemon] state_dir, socket_group)."
  echo "#"
  awk -v a="${uncomment[0]}" -v b="${uncomment[1]}" '
    $0 == a { print "# Packaged: the unit'"'"'s StateDirectory, so `gatewarden recover` finds the database."; print substr($0, 2); next }
    $0 == b { print "# Packaged: members of the gatewarden group may use the CLI without root."; print substr($0, 2); next }
    { print }
  ' "$src"
} >"$out.tmp"
mv "$out.tmp" "$out"
