#!/usr/bin/env bash
# Install the web UI's third-party front-end assets from the npm registry into
# src/greenroom/web/static/vendor/ (git-ignored; never committed).
#
# Usage: bash scripts/install-assets.sh            (idempotent; reinstalls when versions change)
#
# Pinned packages:
#   swagger-ui-dist  interactive OpenAPI viewer on API entity pages
# Pages work without these files: an API definition is then shown as highlighted text.
set -euo pipefail
cd "$(dirname "$0")/.."

SWAGGER_UI_VERSION="5.32.0"
VENDOR="src/greenroom/web/static/vendor"
STAMP="$VENDOR/.versions"
WANT="swagger-ui-dist@$SWAGGER_UI_VERSION"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
   && [ -f "$VENDOR/swagger-ui/swagger-ui-bundle.js" ]; then
  echo "front-end assets up to date ($WANT)"
  exit 0
fi

command -v npm >/dev/null || { echo "install-assets: npm is required (apt-get install npm)" >&2; exit 1; }

BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT
echo '{"name":"greenroom-web-assets","private":true}' > "$BUILD/package.json"
npm install --no-audit --no-fund --ignore-scripts --save-exact --prefix "$BUILD" "$WANT" >/dev/null

rm -rf "$VENDOR"
mkdir -p "$VENDOR/swagger-ui"
src="$BUILD/node_modules/swagger-ui-dist"
cp "$src/swagger-ui-bundle.js" "$src/swagger-ui.css" "$src/LICENSE" "$VENDOR/swagger-ui/"
echo "$WANT" > "$STAMP"
echo "installed $WANT into $VENDOR"
