#!/bin/sh
# Builds the supervisor console into target/console/ (entry index.html): the page, its CSS, the app
# bundled into one classic script (console.js: mosquitto's http_dir sends no Content-Type, and a
# browser runs an ES module only when it is sent as JavaScript), the client module gatewarden.js as
# is (for HMI pages served by a web server that types it), and mqtt.js's browser builds from the
# lockfile. Runs `npm ci` first when node_modules is missing. Usage: console/build.sh [out dir]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../target/console}

if [ ! -d "$here/node_modules" ]; then
  # --ignore-scripts: esbuild's own binary comes as a package (@esbuild/<platform>); nothing to run.
  (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund)
fi

rm -rf "$out"
mkdir -p "$out"
"$here/node_modules/.bin/esbuild" "$here/app.js" --bundle --format=iife --target=es2020 \
  --legal-comments=none --log-level=warning --outfile="$out/console.js"
cp "$here/index.html" "$here/console.css" "$here/gatewarden.js" "$out/"
cp "$here/node_modules/mqtt/dist/mqtt.min.js" "$here/node_modules/mqtt/dist/mqtt.esm.js" "$out/"
cp "$here/node_modules/mqtt/LICENSE.md" "$out/mqtt.LICENSE.md"
echo "console built in $out"
