#!/usr/bin/env bash
# Set up what the project needs, idempotently: a .venv with the pinned packages of the local
# runtime; with --dev also the test tools, netlify-cli (npm), Debian's chromium for the
# browser tests and Debian's wrk for scripts/load.py.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=false
[ "${1:-}" = "--dev" ] && dev=true
[ -x .venv/bin/python ] || python3 -m venv .venv
if $dev; then req=requirements-dev.txt; else req=requirements-local.txt; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
if $dev && [ ! package-lock.json -ot node_modules/.package-lock.json ]; then
  # netlify-cli, pinned by package-lock.json; no install scripts: none is needed for `netlify
  # dev`/`build`, and some would fetch or compile native parts this machine cannot reach.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
missing=""
$dev && ! command -v chromium >/dev/null && missing="$missing chromium"
$dev && ! command -v wrk >/dev/null && missing="$missing wrk"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "The browser tests and scripts/load.py need Debian's$missing: sudo apt-get install$missing" >&2
    exit 1
  fi
fi
