#!/usr/bin/env bash
# Installs (once, then cached) what the browser tests need: Debian's chromium and the JavaScript/CSS
# libraries OctoBot 2.1.1's web UI loads from public CDNs (../shared/octobot-2.1.1/webui-cdn-package.json),
# served to the browser in place of the unreachable CDNs. Prints the node_modules path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${OCTOBOT_SIGNALS_CACHE:-$HOME/.cache/octobot-signals}"
TARGET="$CACHE/webui-cdn"
PACKAGE_JSON="$(cd .. && pwd)/shared/octobot-2.1.1/webui-cdn-package.json"

if ! [ -x /usr/bin/chromium ]; then
  echo "browser: installing Debian's chromium (apt)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! [ -f "$PACKAGE_JSON" ]; then
  echo "browser: $PACKAGE_JSON not found (../shared must sit beside the repository)" >&2
  exit 1
fi
if [ -f "$TARGET/package.json" ] && cmp -s "$PACKAGE_JSON" "$TARGET/package.json" && [ -d "$TARGET/node_modules/jquery" ]; then
  echo "browser: reusing $TARGET/node_modules" >&2
else
  echo "browser: npm install of the web UI's CDN libraries into $TARGET" >&2
  rm -rf "$TARGET.partial"
  mkdir -p "$TARGET.partial"
  cp "$PACKAGE_JSON" "$TARGET.partial/package.json"
  # the web UI asks bootstrap 4.6.2 next to popper.js 1.16.0 (bootstrap's peer range says ^1.16.1):
  # keep the versions the pages load, as the CDNs serve them
  (cd "$TARGET.partial" && npm install --no-audit --no-fund --ignore-scripts --legacy-peer-deps --loglevel=error >&2)
  rm -rf "$TARGET"
  mv "$TARGET.partial" "$TARGET"
fi
echo "$TARGET/node_modules"
