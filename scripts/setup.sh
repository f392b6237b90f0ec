#!/usr/bin/env bash
# Set up what the project needs, idempotently: a .venv with the pinned packages;
# with --dev also the test tools, netlify-cli (npm) and Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=false
[ "${1:-}" = "--dev" ] && dev=true
[ -x .venv/bin/python ] || python3 -m venv .venv
if $dev; then req=requirements-dev.txt; else req=requirements.txt; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
if $dev && [ ! package-lock.json -ot node_modules/.package-lock.json ]; then
  # netlify-cli, pinned by package-lock.json; no install scripts: none is needed for `netlify
  # dev`/`build`, and some would fetch or compile native parts this machine cannot reach.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
if $dev && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi
