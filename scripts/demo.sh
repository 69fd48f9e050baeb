#!/usr/bin/env bash
# Install Greenroom into .venv and start the portal with the demo organisation on
# http://127.0.0.1:7007 (data in ${GREENROOM_HOME:-~/.greenroom}).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v git >/dev/null || ! command -v dot >/dev/null; then
  echo "installing git and graphviz (needs apt-get)" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends git graphviz >/dev/null || true
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
bash scripts/install-assets.sh
exec .venv/bin/greenroom serve --demo "$@"
